"""NetworkPolicy validation: kube's ``ValidateNetworkPolicy`` (``pkg/apis/networking/validation``).

Field paths and messages are upstream's, so ``kubectl apply`` of a wrong policy fails with
the same 422 a real cluster gives: a port that is not a port, an ``endPort`` without a
numeric ``port`` or below it, an ``ipBlock`` whose ``except`` is not strictly inside its
``cidr``, a peer with nothing in it, a peer mixing ``ipBlock`` with selectors, a policy
type that is neither ``Ingress`` nor ``Egress``.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from labctl.apiserver._validate_common import PROTOCOLS, as_dict, as_list, is_int, validate_label_selector
from labctl.apiserver.errors import FieldError, forbidden, invalid, not_supported, required
from labctl.kube import validators as v

__all__ = ["POLICY_TYPES", "validate_network_policy"]

Obj = dict[str, Any]
POLICY_TYPES = ["Ingress", "Egress"]


def validate_network_policy(policy: Obj) -> list[FieldError]:
    """ValidateNetworkPolicySpec on ``spec`` (defaults applied: ``policyTypes``, port protocols)."""
    spec = as_dict(policy.get("spec"))
    errs = validate_label_selector(spec.get("podSelector"), "spec.podSelector")
    for direction, peers_key in (("ingress", "from"), ("egress", "to")):
        for i, rule in enumerate(as_list(spec.get(direction))):
            rule, path = as_dict(rule), f"spec.{direction}[{i}]"
            for j, port in enumerate(as_list(rule.get("ports"))):
                errs += _validate_port(as_dict(port), f"{path}.ports[{j}]")
            for j, peer in enumerate(as_list(rule.get(peers_key))):
                errs += _validate_peer(as_dict(peer), f"{path}.{peers_key}[{j}]")
    types = as_list(spec.get("policyTypes"))
    if len(types) > len(POLICY_TYPES):
        return [*errs, invalid("spec.policyTypes", types, "may not specify more than two policyTypes")]
    for i, kind in enumerate(types):
        if kind not in POLICY_TYPES:
            errs.append(not_supported(f"spec.policyTypes[{i}]", kind, POLICY_TYPES))
    return errs


def _validate_port(port: Obj, path: str) -> list[FieldError]:
    """ValidateNetworkPolicyPort: ``endPort`` needs a numeric ``port`` no greater than it."""
    errs: list[FieldError] = []
    protocol = port.get("protocol")
    if protocol is not None and protocol not in PROTOCOLS:
        errs.append(not_supported(f"{path}.protocol", protocol, ["TCP", "UDP", "SCTP"]))
    number, end = port.get("port"), port.get("endPort")
    if number is None:
        if end is not None:
            errs.append(invalid(f"{path}.endPort", end, "may not be specified when `port` is not specified"))
    elif is_int(number):
        errs += [invalid(f"{path}.port", number, m) for m in v.is_valid_port_num(number)]
        if end is not None:
            if is_int(end) and end < number:
                errs.append(invalid(f"{path}.endPort", number, "must be greater than or equal to `port`"))
            errs += [invalid(f"{path}.endPort", end, m) for m in v.is_valid_port_num(end)]
    else:
        if end is not None:
            errs.append(invalid(f"{path}.endPort", end, "may not be specified when `port` is non-numeric"))
        errs += [invalid(f"{path}.port", number, m) for m in v.is_valid_port_name(str(number))]
    return errs


def _validate_peer(peer: Obj, path: str) -> list[FieldError]:
    """ValidateNetworkPolicyPeer: at least one of the three, and ``ipBlock`` alone."""
    errs: list[FieldError] = []
    present = 0
    for key in ("podSelector", "namespaceSelector"):
        if peer.get(key) is not None:
            present += 1
            errs += validate_label_selector(peer[key], f"{path}.{key}")
    if peer.get("ipBlock") is not None:
        present += 1
        errs += _validate_ip_block(as_dict(peer["ipBlock"]), f"{path}.ipBlock")
    if present == 0:
        errs.append(required(path, "must specify a peer"))
    elif present > 1 and peer.get("ipBlock") is not None:
        errs.append(forbidden(path, "may not specify both ipBlock and another peer"))
    return errs


def _validate_ip_block(block: Obj, path: str) -> list[FieldError]:
    """ValidateIPBlock: a valid ``cidr``; every ``except`` a valid CIDR strictly inside it."""
    cidr = block.get("cidr")
    if not cidr:
        return [required(f"{path}.cidr", "")]
    errs = [invalid(f"{path}.cidr", cidr, m) for m in v.is_valid_cidr(cidr)]
    if errs:
        return errs
    outer = ipaddress.ip_network(cidr, strict=False)
    for i, text in enumerate(as_list(block.get("except"))):
        epath = f"{path}.except[{i}]"
        problems = v.is_valid_cidr(text)
        errs += [invalid(epath, text, m) for m in problems]
        if problems:
            continue
        inner = ipaddress.ip_network(text, strict=False)
        if inner.version != outer.version or not inner.subnet_of(outer) or inner.prefixlen <= outer.prefixlen:  # type: ignore[arg-type]
            errs.append(invalid(epath, text, "must be a strict subset of `cidr`"))
    return errs
