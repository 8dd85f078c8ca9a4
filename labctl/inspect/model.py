"""The typed picture of a lab's network: what ``labctl net`` prints and ``labctl trace`` walks.

Everything here is plain data read from the nodes' own tools — no hash is left without the
object it belongs to: a veth carries its pod, a route the node it leads to, a ``KUBE-SEP-``
chain its endpoint and pod (:mod:`.services`). :func:`to_jsonable` turns any of it into the
documented ``--json`` form (camelCase keys, as Kubernetes objects spell theirs).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass, field
from typing import Any

from ..clusterconfig import ClusterConfig
from .conntrack import ConntrackEntry, entries_for
from .policies import IsolatedPod
from .ruleset import Ruleset
from .services import ServicePort

__all__ = ["Address", "Bridge", "Interface", "LabNetwork", "NodeNetwork", "PodRef", "PortMapping", "Route",
           "Veth", "to_jsonable"]


@dataclass(frozen=True)
class PodRef:
    """A pod as the node sees it: its sandbox container holds the IP the IPAM plugin gave it."""

    namespace: str
    name: str
    ip: str
    node: str
    sandbox: str  # the sandbox (pause) container's ID: the CNI "container ID"
    uid: str = ""

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class Address:
    ip: str
    prefixlen: int
    label: str = ""  # ``eth0:lb`` marks a LoadBalancer IP this node announces

    def __str__(self) -> str:
        return f"{self.ip}/{self.prefixlen}"


@dataclass(frozen=True)
class Interface:
    """One link of the node's network namespace (``ip -d link`` + ``ip addr``)."""

    name: str
    index: int
    kind: str  # bridge, veth, loopback, … (``ip -d``'s info_kind)
    mac: str
    state: str
    addresses: tuple[Address, ...] = ()
    master: str = ""  # the bridge a port is enslaved to


@dataclass(frozen=True)
class Veth:
    """The node's end of a pod's veth pair, a port of ``cni0``, with the pod at its other end."""

    name: str
    index: int
    mac: str
    port_state: str  # the bridge port's STP state: forwarding, disabled, …
    hairpin: bool
    pod: PodRef | None  # None for a veth no running sandbox owns (a leftover)


@dataclass(frozen=True)
class Bridge:
    name: str
    mac: str
    addresses: tuple[Address, ...]
    ports: tuple[Veth, ...]


@dataclass(frozen=True)
class Route:
    """A route of the node's main table and where it leads.

    ``leads_to`` says it in the lesson's words: ``node`` (host-gw: another node's podCIDR via
    its InternalIP, ``node`` names it), ``bridge`` (this node's own pods on ``cni0``),
    ``lab-network`` (the nodes' Docker network) or ``host`` (the default route: the Docker
    gateway, i.e. the machine running the lab).
    """

    destination: str  # "default" or a CIDR
    gateway: str
    device: str
    protocol: str
    scope: str
    source: str  # prefsrc
    leads_to: str
    node: str = ""


@dataclass(frozen=True)
class PortMapping:
    """A topology port mapping: Docker publishes ``host_ip:host_port`` to ``node``'s ``node_port``."""

    host_ip: str
    host_port: int
    node: str
    node_port: int
    protocol: str  # tcp | udp


@dataclass
class NodeNetwork:
    """One node's network namespace at one moment."""

    node: str
    container: str
    role: str
    internal_ip: str
    pod_cidr: str
    interfaces: list[Interface]
    bridge: Bridge | None
    routes: list[Route]
    ruleset: Ruleset = field(metadata={"json": False})
    services: list[ServicePort]
    sysctls: dict[str, str]
    cluster: ClusterConfig | None = field(default=None, metadata={"json": False})
    conntrack: list[ConntrackEntry] = field(default_factory=list)
    #: this node's pods isolated by NetworkPolicies, read back from labctl's chains (:mod:`.policies`)
    policies: list[IsolatedPod] = field(default_factory=list)

    @property
    def local_addresses(self) -> set[str]:
        """Every address of this namespace: what ``addrtype --dst-type LOCAL`` matches."""
        return {a.ip for i in self.interfaces for a in i.addresses}

    @property
    def veths(self) -> tuple[Veth, ...]:
        return self.bridge.ports if self.bridge else ()

    def route_for(self, ip: str) -> Route | None:
        """The route the kernel picks for ``ip``: the longest prefix that holds it."""
        addr = ipaddress.ip_address(ip)
        best: tuple[int, Route] | None = None
        for route in self.routes:
            net = ipaddress.ip_network("0.0.0.0/0" if route.destination == "default" else route.destination,
                                       strict=False)
            if addr in net and (best is None or net.prefixlen > best[0]):
                best = (net.prefixlen, route)
        return best[1] if best else None

    def veth_of(self, pod_ip: str) -> Veth | None:
        return next((v for v in self.veths if v.pod and v.pod.ip == pod_ip), None)

    def interface(self, name: str) -> Interface | None:
        return next((i for i in self.interfaces if i.name == name), None)

    def conntrack_for(self, ip: str) -> list[ConntrackEntry]:
        """The connections ``ip`` takes part in, on either side of the NAT (needs ``snapshot(conntrack=True)``)."""
        return entries_for(self.conntrack, ip)


@dataclass
class LabNetwork:
    """Every node of a lab, plus what ties them together: pods by IP, the gateway, port mappings."""

    lab: str
    nodes: list[NodeNetwork]
    pods: list[PodRef]
    gateway: str  # the lab network's gateway: the source of packets from the host
    port_mappings: list[PortMapping]
    elapsed_seconds: float = 0.0
    schema: str = "labctl.dev/net/v1"

    def node(self, name: str) -> NodeNetwork | None:
        return next((n for n in self.nodes if name in (n.node, n.container)), None)

    def node_by_ip(self, ip: str) -> NodeNetwork | None:
        """The node owning ``ip``: its InternalIP, another of its addresses, or a LoadBalancer IP it announces."""
        return (next((n for n in self.nodes if n.internal_ip == ip), None)
                or next((n for n in self.nodes if ip in n.local_addresses and not ip.startswith("127.")), None))

    def node_for_pod_ip(self, ip: str) -> NodeNetwork | None:
        """The node whose podCIDR holds ``ip``."""
        addr = ipaddress.ip_address(ip)
        return next((n for n in self.nodes if n.pod_cidr and addr in ipaddress.ip_network(n.pod_cidr)), None)

    def pod_by_ip(self, ip: str) -> PodRef | None:
        return next((p for p in self.pods if p.ip == ip), None)

    def find_pods(self, name: str, namespace: str | None = None) -> list[PodRef]:
        return [p for p in self.pods if p.name == name and (namespace is None or p.namespace == namespace)]


def to_jsonable(value: Any) -> Any:
    """Dataclasses → dicts with camelCase keys (fields marked ``json: False`` left out), recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {_camel(f.name): to_jsonable(getattr(value, f.name))
                for f in dataclasses.fields(value) if f.metadata.get("json", True)}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    return value


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(_ACRONYMS.get(word, word.capitalize()) for word in rest)


#: Kubernetes spells these in capitals: ``podIP``, ``clusterIP``, ``podCIDR``, ``loadBalancerIPs``
_ACRONYMS = {"ip": "IP", "ips": "IPs", "cidr": "CIDR"}
