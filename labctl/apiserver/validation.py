"""Validation of the served kinds, as kube-apiserver's ``pkg/apis/*/validation`` does it.

Every function returns all ``FieldError``s at once (kube reports all problems, not the
first), with kube's field paths and messages, so the 422 a student sees from labctl reads
exactly like the one from a real cluster: ``Deployment.apps "web" is invalid:
spec.template.metadata.labels: Invalid value: ...: `selector` does not match template
`labels```. Each kind's strategy (:mod:`labctl.apiserver.strategies`) puts them together:
``validate_object_meta`` with the kind's name rule, then the kind's own checks.

Objects arrive as decoded JSON after defaulting; this module never mutates.
ObjectMeta and the small kinds live here, pods and workloads in ``_validate_pods``,
Services in ``_validate_services``, apimachinery's string checks in
:mod:`labctl.kube.validators`.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Any

from labctl.apiserver._validate_common import (
    as_dict,
    as_list,
    is_int,
    nonnegative,
    validate_annotations,
    validate_dns1123_subdomain,
    validate_labels,
)
from labctl.apiserver._validate_services import validate_endpoint_ports
from labctl.apiserver.errors import FieldError, forbidden, invalid, not_supported, required
from labctl.kube import validators as v

Obj = dict[str, Any]
NameFn = Callable[[str, bool], list[str]]

MAX_SECRET_SIZE = 1024 * 1024
_STANDARD_FINALIZERS = {"kubernetes", "orphan", "foregroundDeletion"}
_IMMUTABLE = "field is immutable"


# --- metadata --------------------------------------------------------------------------


def validate_object_meta(meta: Any, namespaced: bool, name_fn: NameFn, path: str = "metadata") -> list[FieldError]:
    """ValidateObjectMeta: name (or generateName), namespace, labels, annotations, owners, finalizers."""
    meta = as_dict(meta)
    errs: list[FieldError] = []
    generate_name = meta.get("generateName") or ""
    if generate_name:
        errs += [invalid(f"{path}.generateName", generate_name, m) for m in name_fn(str(generate_name), True)]
    name = meta.get("name") or ""
    if not name:
        errs.append(required(f"{path}.name", "name or generateName is required"))
    else:
        errs += [invalid(f"{path}.name", name, m) for m in name_fn(str(name), False)]
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            errs.append(required(f"{path}.namespace"))
        else:
            errs += [invalid(f"{path}.namespace", namespace, m) for m in v.name_is_dns_label(str(namespace))]
    elif namespace:
        errs.append(forbidden(f"{path}.namespace", "not allowed on this type"))
    if meta.get("generation") is not None:
        errs += nonnegative(meta["generation"], f"{path}.generation")
    errs += validate_labels(meta.get("labels"), f"{path}.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.annotations")
    errs += _validate_owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences")
    for finalizer in as_list(meta.get("finalizers")):
        errs += _validate_finalizer(finalizer, f"{path}.finalizers")
    return errs


def _validate_owner_references(refs: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    controller = ""
    for ref in as_list(refs):
        ref = as_dict(ref)
        api_version = str(ref.get("apiVersion") or "")
        if not api_version or api_version.count("/") > 1 or api_version.endswith("/"):
            errs.append(invalid(f"{path}.apiVersion", api_version, "version must not be empty"))
        for key in ("kind", "name", "uid"):
            if not ref.get(key):
                errs.append(invalid(f"{path}.{key}", ref.get(key) or "", "must not be empty"))
        if ref.get("controller") is True:
            current = f"{ref.get('kind')}/{ref.get('name')}"
            if controller:
                errs.append(invalid(path, refs, "Only one reference can have Controller set to true. "
                                    f'Found "true" in references for {controller} and {current}'))
            else:
                controller = current
    return errs


def _validate_finalizer(name: Any, path: str) -> list[FieldError]:
    name = str(name)
    errs = [invalid(path, name, m) for m in v.is_qualified_name(name)]
    if "/" not in name and name not in _STANDARD_FINALIZERS:
        errs.append(invalid(path, name, "name is neither a standard finalizer name nor is it fully qualified"))
    return errs


def validate_object_meta_update(old: Any, new: Any, path: str = "metadata") -> list[FieldError]:
    """ValidateObjectMetaUpdate: name, namespace and uid never change (an empty uid means "keep")."""
    old, new = as_dict(old), as_dict(new)
    errs: list[FieldError] = []
    for key in ("name", "namespace"):
        if (new.get(key) or "") != (old.get(key) or ""):
            errs.append(invalid(f"{path}.{key}", new.get(key) or "", _IMMUTABLE))
    if new.get("uid") and new.get("uid") != old.get("uid"):
        errs.append(invalid(f"{path}.uid", new["uid"], _IMMUTABLE))
    if is_int(new.get("generation")) and is_int(old.get("generation")) and new["generation"] < old["generation"]:
        errs.append(invalid(f"{path}.generation", new["generation"], "must not be decremented"))
    return errs


# --- small kinds -----------------------------------------------------------------------


def _validate_data_keys(data: Any, path: str) -> tuple[int, list[FieldError]]:
    """ConfigMap/Secret keys become file names in volumes; returns the keys' total value size too."""
    errs: list[FieldError] = []
    size = 0
    for key, value in as_dict(data).items():
        errs += [invalid(f"{path}[{key}]", key, m) for m in v.is_config_map_key(str(key))]
        size += len(value) if isinstance(value, str) else 0
    return size, errs


def validate_configmap(cm: Obj) -> list[FieldError]:
    size, errs = _validate_data_keys(cm.get("data"), "data")
    binary_size, binary_errs = _validate_data_keys(cm.get("binaryData"), "binaryData")
    errs += binary_errs
    for key in as_dict(cm.get("binaryData")):
        if key in as_dict(cm.get("data")):
            errs.append(invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    for key, value in as_dict(cm.get("binaryData")).items():
        errs += _validate_base64(value, f"binaryData[{key}]")
    if size + binary_size > MAX_SECRET_SIZE:
        errs.append(FieldError("FieldValueTooLong", "", "", f"must have at most {MAX_SECRET_SIZE} bytes"))
    return errs


def _validate_base64(value: Any, path: str) -> list[FieldError]:
    """``data`` of a Secret is base64 on the wire; kube rejects it while decoding the body."""
    try:
        base64.b64decode(str(value), validate=True) if isinstance(value, str) else base64.b64decode(b"!")
    except (binascii.Error, ValueError):
        return [invalid(path, "<secret contents redacted>" if path.startswith("data") else value,
                        "illegal base64 data")]
    return []


_SECRET_REQUIRED_KEYS = {
    "kubernetes.io/tls": ("tls.crt", "tls.key"),
    "kubernetes.io/dockerconfigjson": (".dockerconfigjson",),
    "kubernetes.io/dockercfg": (".dockercfg",),
    "kubernetes.io/ssh-auth": ("ssh-privatekey",),
}


def validate_secret(secret: Obj) -> list[FieldError]:
    data = as_dict(secret.get("data"))
    size, errs = _validate_data_keys(data, "data")
    _, string_errs = _validate_data_keys(secret.get("stringData"), "stringData")
    errs += string_errs
    for key, value in data.items():
        errs += _validate_base64(value, f"data[{key}]")
    present = set(data) | set(as_dict(secret.get("stringData")))
    for key in _SECRET_REQUIRED_KEYS.get(str(secret.get("type")), ()):
        if key not in present:
            errs.append(required(f"data[{key}]"))
    if secret.get("type") == "kubernetes.io/service-account-token":
        if not as_dict(as_dict(secret.get("metadata")).get("annotations")).get("kubernetes.io/service-account.name"):
            errs.append(required("metadata.annotations[kubernetes.io/service-account.name]"))
    if size * 3 // 4 > MAX_SECRET_SIZE:
        errs.append(FieldError("FieldValueTooLong", "data", "", f"must have at most {MAX_SECRET_SIZE} bytes"))
    return errs


def validate_node(node: Obj) -> list[FieldError]:
    spec = as_dict(node.get("spec"))
    errs: list[FieldError] = []
    if spec.get("podCIDR"):
        errs += [invalid("spec.podCIDR", spec["podCIDR"], m) for m in v.is_valid_cidr(spec["podCIDR"])]
    for i, cidr in enumerate(as_list(spec.get("podCIDRs"))):
        errs += [invalid(f"spec.podCIDRs[{i}]", cidr, m) for m in v.is_valid_cidr(cidr)]
    for i, taint in enumerate(as_list(spec.get("taints"))):
        taint, tpath = as_dict(taint), f"spec.taints[{i}]"
        errs += [invalid(f"{tpath}.key", taint.get("key"), m) for m in v.is_qualified_name(str(taint.get("key") or ""))]
        if taint.get("value"):
            errs += [invalid(f"{tpath}.value", taint["value"], m) for m in v.is_valid_label_value(str(taint["value"]))]
        effect = taint.get("effect")
        if not effect:
            errs.append(required(f"{tpath}.effect"))
        elif effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
            errs.append(not_supported(f"{tpath}.effect", effect, ["NoSchedule", "PreferNoSchedule", "NoExecute"]))
    for i, address in enumerate(as_list(as_dict(node.get("status")).get("addresses"))):
        address = as_dict(address)
        if address.get("type") in ("InternalIP", "ExternalIP"):
            errs += [invalid(f"status.addresses[{i}].address", address.get("address"), m)
                     for m in v.is_valid_ip(address.get("address"))]
    return errs


def validate_endpoints(ep: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, subset in enumerate(as_list(ep.get("subsets"))):
        subset, spath = as_dict(subset), f"subsets[{i}]"
        if not as_list(subset.get("addresses")) and not as_list(subset.get("notReadyAddresses")):
            errs.append(required(spath, "must specify `addresses` or `notReadyAddresses`"))
        for key in ("addresses", "notReadyAddresses"):
            for j, address in enumerate(as_list(subset.get(key))):
                errs += _validate_endpoint_address(as_dict(address), f"{spath}.{key}[{j}]")
        if not as_list(subset.get("ports")):
            errs.append(required(f"{spath}.ports"))
        errs += validate_endpoint_ports(subset.get("ports"), f"{spath}.ports")
    return errs


def _validate_endpoint_address(address: Obj, path: str) -> list[FieldError]:
    ip = address.get("ip")
    errs = [invalid(f"{path}.ip", ip, m) for m in v.is_valid_ip(ip)]
    if not errs and isinstance(ip, str) and (ip.startswith("127.") or ip == "::1"):
        errs.append(invalid(f"{path}.ip", ip, "may not be in the loopback range (127.0.0.0/8, ::1/128)"))
    if address.get("nodeName"):
        errs += validate_dns1123_subdomain(address["nodeName"], f"{path}.nodeName")
    if address.get("hostname"):
        errs += [invalid(f"{path}.hostname", address["hostname"], m) for m in v.is_dns1123_label(str(address["hostname"]))]
    return errs


def validate_endpointslice(eps: Obj) -> list[FieldError]:
    address_type = eps.get("addressType")
    errs: list[FieldError] = []
    if not address_type:
        errs.append(required("addressType"))
    elif address_type not in ("IPv4", "IPv6", "FQDN"):
        errs.append(not_supported("addressType", address_type, ["FQDN", "IPv4", "IPv6"]))
    for i, endpoint in enumerate(as_list(eps.get("endpoints"))):
        addresses, apath = as_list(as_dict(endpoint).get("addresses")), f"endpoints[{i}].addresses"
        if not addresses:
            errs.append(required(apath, "must contain at least 1 address"))
        for j, address in enumerate(addresses):
            if address_type == "FQDN":
                errs += validate_dns1123_subdomain(address, f"{apath}[{j}]")
            elif v.is_valid_ip(address) or (":" in str(address)) != (address_type == "IPv6"):
                errs.append(invalid(f"{apath}[{j}]", address, f"must be a valid {address_type} address"))
    errs += validate_endpoint_ports(eps.get("ports"), "ports", require_names=False)
    return errs


def validate_lease(lease: Obj) -> list[FieldError]:
    spec = as_dict(lease.get("spec"))
    errs: list[FieldError] = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and (not is_int(duration) or duration <= 0):
        errs.append(invalid("spec.leaseDurationSeconds", duration, "must be greater than 0"))
    if spec.get("leaseTransitions") is not None:
        errs += nonnegative(spec["leaseTransitions"], "spec.leaseTransitions")
    return errs


def validate_event(event: Obj) -> list[FieldError]:
    """Legacy core/v1 events: the involved object lives in the event's namespace (or "default")."""
    namespace = as_dict(event.get("metadata")).get("namespace") or ""
    involved = as_dict(event.get("involvedObject")).get("namespace") or ""
    if event.get("eventTime"):
        return []
    if (involved and involved != namespace) or (not involved and namespace not in ("", "default")):
        return [invalid("involvedObject.namespace", involved, "does not match event.namespace")]
    return []


def validate_service_account(sa: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, ref in enumerate(as_list(sa.get("secrets"))):
        if as_dict(ref).get("name"):
            errs += validate_dns1123_subdomain(ref["name"], f"secrets[{i}].name")
    return errs


def validate_namespace(ns: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    for finalizer in as_list(as_dict(ns.get("spec")).get("finalizers")):
        errs += _validate_finalizer(finalizer, "spec.finalizers")
    return errs


# --- updates ---------------------------------------------------------------------------


def validate_immutable_data(old: Obj, new: Obj) -> list[FieldError]:
    """Once ``immutable: true``, data and the flag itself are frozen; a Secret's type never changes."""
    errs: list[FieldError] = []
    if "type" in old and new.get("type") != old.get("type"):
        errs.append(invalid("type", new.get("type"), _IMMUTABLE))
    if old.get("immutable") is True:
        if new.get("immutable") is not True:
            errs.append(forbidden("immutable", "field is immutable when `immutable` is set"))
        for key in ("data", "binaryData"):
            if (old.get(key) or {}) != (new.get(key) or {}):
                errs.append(forbidden(key, "field is immutable when `immutable` is set"))
    return errs


def validate_node_update(old: Obj, new: Obj) -> list[FieldError]:
    old_spec, new_spec = as_dict(old.get("spec")), as_dict(new.get("spec"))
    if old_spec.get("podCIDRs") and new_spec.get("podCIDRs") != old_spec.get("podCIDRs"):
        return [forbidden("spec.podCIDRs", 'node updates may not change podCIDR except from "" to valid')]
    return []
