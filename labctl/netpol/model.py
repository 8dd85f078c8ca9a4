"""What the rules are computed from: pods, namespaces and policies, read once from API objects.

The API objects are plain dicts (validated by the API server, but an informer may still
hold an old or odd one); these frozen types keep only what enforcement needs, so the rule
builder (:mod:`labctl.netpol.rules`) is a pure function of typed values and can be tested
and benchmarked without a cluster.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from labctl.kube.labels import LabelSelector, SelectorError, format_label_selector, selector_from_label_selector

Obj = Mapping[str, Any]
INGRESS, EGRESS = "Ingress", "Egress"


@dataclass(frozen=True)
class PodInfo:
    """A pod that has an IP of its own: a policy may select it or name it as a peer."""

    namespace: str
    name: str
    ip: str
    node: str
    labels: Mapping[str, str]
    #: named container ports: (name, protocol) -> number, for ``port: http`` in a policy
    named_ports: Mapping[tuple[str, str], int]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def pod_info(pod: Obj) -> PodInfo | None:
    """The enforcement view of a pod; None for pods policies do not apply to.

    A pod without an IPv4 address yet, a ``hostNetwork`` pod (it has the node's address,
    NetworkPolicy does not cover it) and a finished pod (its IP may already be reused) are
    left out, as upstream implementations do.
    """
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    if spec.get("hostNetwork") or status.get("phase") in ("Succeeded", "Failed"):
        return None
    ips = [status.get("podIP")] + [entry.get("ip") for entry in status.get("podIPs") or [] if isinstance(entry, dict)]
    ip = next((a for a in ips if isinstance(a, str) and _is_ipv4(a)), None)
    if ip is None:
        return None
    ports: dict[tuple[str, str], int] = {}
    for container in spec.get("containers") or []:
        for port in (container or {}).get("ports") or []:
            if isinstance(port, dict) and port.get("name") and isinstance(port.get("containerPort"), int):
                ports.setdefault((port["name"], port.get("protocol") or "TCP"), port["containerPort"])
    return PodInfo(meta.get("namespace", ""), meta.get("name", ""), ip, spec.get("nodeName") or "",
                   dict(meta.get("labels") or {}), ports)


def _is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


@dataclass(frozen=True)
class Selector:
    """A label selector with the text ``kubectl get netpol`` would print for it."""

    selector: LabelSelector
    text: str

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.selector.matches(labels)


def selector(obj: Any) -> Selector:
    """A ``metav1.LabelSelector``; an invalid one (never stored by the API server) matches nothing."""
    obj = obj if isinstance(obj, Mapping) else {}
    try:
        return Selector(selector_from_label_selector(obj), format_label_selector(obj))
    except SelectorError:
        return Selector(selector_from_label_selector(None), "<error>")


@dataclass(frozen=True)
class IPBlock:
    cidr: str
    excepts: tuple[str, ...] = ()

    def networks(self) -> tuple[ipaddress.IPv4Network, ...]:
        """``cidr`` minus ``except`` as IPv4 networks, so each is one ``-s``/``-d`` match.

        The arithmetic is done here instead of with an ``except → RETURN`` rule, so peers
        of one rule never shadow each other. An IPv6 block matches nothing on these IPv4 rules.
        """
        return _block_networks(self.cidr, self.excepts)

    def contains(self, ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        return any(address in net for net in self.networks())

    @property
    def text(self) -> str:
        return self.cidr + (f" except {','.join(self.excepts)}" if self.excepts else "")


@cache
def _block_networks(cidr: str, excepts: tuple[str, ...]) -> tuple[ipaddress.IPv4Network, ...]:
    outer = ipaddress.ip_network(cidr, strict=False)
    if not isinstance(outer, ipaddress.IPv4Network):
        return ()
    parts = [outer]
    for text in excepts:
        hole = ipaddress.ip_network(text, strict=False)
        next_parts: list[ipaddress.IPv4Network] = []
        for part in parts:
            if isinstance(hole, ipaddress.IPv4Network) and hole.subnet_of(part):
                next_parts += part.address_exclude(hole)
            elif not (isinstance(hole, ipaddress.IPv4Network) and part.subnet_of(hole)):
                next_parts.append(part)
        parts = next_parts
    return tuple(sorted(parts))


@dataclass(frozen=True)
class Peer:
    """One ``from``/``to`` entry: pods by selectors (both set = AND) or an ipBlock."""

    pods: Selector | None = None
    namespaces: Selector | None = None
    ip_block: IPBlock | None = None

    def describe(self, policy_namespace: str) -> str:
        if self.ip_block is not None:
            return self.ip_block.text
        pods = f"pods {self.pods.text}" if self.pods and self.pods.text != "<none>" else "all pods"
        if self.namespaces is None:
            return f"{pods} in {policy_namespace}"
        spaces = self.namespaces.text
        return f"{pods} in namespaces {spaces}" if spaces != "<none>" else f"{pods} in all namespaces"

    def selects(self, pod: PodInfo, policy_namespace: str, namespace_labels: Mapping[str, Mapping[str, str]]) -> bool:
        """Whether a pod is this peer (NetworkPolicyPeer semantics; ipBlock peers never select by labels)."""
        if self.ip_block is not None:
            return False
        if self.namespaces is None:
            in_namespace = pod.namespace == policy_namespace
        else:
            in_namespace = self.namespaces.matches(namespace_labels.get(pod.namespace, {}))
        return in_namespace and (self.pods is None or self.pods.matches(pod.labels))


@dataclass(frozen=True)
class Port:
    """One ``ports`` entry: protocol, and a number, a range (``endPort``) or a container port name."""

    protocol: str = "TCP"
    port: int | str | None = None
    end_port: int | None = None

    @property
    def text(self) -> str:
        if self.port is None:
            return f"{self.protocol} (all ports)"
        if self.end_port is not None:
            return f"{self.protocol}/{self.port}-{self.end_port}"
        return f"{self.protocol}/{self.port}"


@dataclass(frozen=True)
class Rule:
    """An ingress or egress rule: ``peers`` empty = everyone, ``ports`` empty = every port."""

    peers: tuple[Peer, ...]
    ports: tuple[Port, ...]


@dataclass(frozen=True)
class Policy:
    namespace: str
    name: str
    pods: Selector
    types: frozenset[str]
    ingress: tuple[Rule, ...]
    egress: tuple[Rule, ...]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    def rules(self, direction: str) -> tuple[Rule, ...]:
        return self.ingress if direction == INGRESS else self.egress


def policy_info(obj: Obj) -> Policy:
    """A NetworkPolicy as stored (defaults applied: ``policyTypes``, port protocols)."""
    meta, spec = obj.get("metadata") or {}, obj.get("spec") or {}
    types = frozenset(t for t in spec.get("policyTypes") or [INGRESS] if t in (INGRESS, EGRESS))
    return Policy(meta.get("namespace", ""), meta.get("name", ""), selector(spec.get("podSelector")), types,
                  tuple(_rule(r, "from") for r in spec.get("ingress") or [] if isinstance(r, Mapping)),
                  tuple(_rule(r, "to") for r in spec.get("egress") or [] if isinstance(r, Mapping)))


def _rule(rule: Obj, peers_key: str) -> Rule:
    peers = tuple(_peer(p) for p in rule.get(peers_key) or [] if isinstance(p, Mapping))
    ports = tuple(Port(p.get("protocol") or "TCP", p.get("port"), p.get("endPort"))
                  for p in rule.get("ports") or [] if isinstance(p, Mapping))
    return Rule(peers, ports)


def _peer(peer: Obj) -> Peer:
    block = peer.get("ipBlock")
    if isinstance(block, Mapping):
        return Peer(ip_block=IPBlock(str(block.get("cidr", "")), tuple(block.get("except") or ())))
    pods, spaces = peer.get("podSelector"), peer.get("namespaceSelector")
    return Peer(selector(pods) if pods is not None else None, selector(spaces) if spaces is not None else None)
