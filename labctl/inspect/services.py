"""kube-proxy's chains, read back into Services: the entry rules, the chains, the endpoints.

The proxy (:mod:`labctl.proxy.rules`) writes every Service port as a fixed pattern, each rule
commented with the ``ns/svc:port`` it belongs to; this module reads that pattern back from a
node's ``iptables-save`` so a student sees *Services*, not hashes:

- ``KUBE-SERVICES``: ``"ns/svc:port cluster IP"`` (``-d clusterIP --dport port -j KUBE-SVC-…``),
  ``"… external IP"`` and ``"… loadbalancer IP"`` (``-j KUBE-EXT-…``/``KUBE-FW-…``);
- ``KUBE-NODEPORTS``: ``"ns/svc:port"`` ``--dport nodePort -j KUBE-EXT-…``;
- ``KUBE-SVC-…``: the off-cluster masquerade, then one rule per endpoint
  (``"ns/svc:port -> ip:port"``) with ``statistic --probability 1/n, 1/(n-1), …``, the last
  unconditional; ``KUBE-SEP-…``: hairpin masquerade and the ``DNAT``;
- the filter table's ``REJECT``/``DROP`` for ports without (local) endpoints.

Chain names are checked against :func:`labctl.proxy.chains.service_chain`, the proxy's own
hash, so a chain this module attributes to a Service really is that Service's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..proxy import chains
from .ruleset import Rule, Ruleset

if TYPE_CHECKING:
    from .model import PodRef

__all__ = ["ChainRules", "ServiceEndpoint", "ServicePort", "service_ports", "split_port_name"]

_CLUSTER_IP, _EXTERNAL_IP, _LB_IP = " cluster IP", " external IP", " loadbalancer IP"
_NO_ENDPOINTS, _NO_LOCAL = " has no endpoints", " has no local endpoints"


@dataclass(frozen=True)
class ServiceEndpoint:
    """One backend of a Service port, as the node's rules choose it.

    ``probability`` is what the ``KUBE-SVC-`` rule says (``written`` is its text, as
    kube-proxy prints it): 1/n, 1/(n-1), …, 1/2, and 1 for the last rule, which has no
    ``statistic`` match (``written`` is empty) and takes whatever is left. ``share`` is the
    fraction of new connections the endpoint gets, ``p × Π(1 − earlier p)``: 1/n for each.
    """

    address: str  # ip:port, the DNAT target
    ip: str
    port: int
    chain: str  # KUBE-SEP-…
    probability: float
    written: str
    share: float
    pod: PodRef | None
    rules: tuple[Rule, ...]  # the KUBE-SVC rule choosing it, then the KUBE-SEP chain


@dataclass(frozen=True)
class ChainRules:
    """A per-Service chain and its rules; ``role`` is ``service`` (KUBE-SVC), ``external``
    (KUBE-EXT), ``local`` (KUBE-SVL) or ``firewall`` (KUBE-FW)."""

    table: str
    chain: str
    role: str
    rules: tuple[Rule, ...]


@dataclass
class ServicePort:
    """One port of one Service, everything a node does for it."""

    name: str  # ns/svc:port, as the rules' comments and kube-proxy's hash spell it
    namespace: str
    service: str
    port_name: str
    protocol: str  # tcp | udp | sctp, as iptables writes it
    cluster_ip: str = ""
    port: int = 0
    node_port: int = 0
    external_ips: list[str] = field(default_factory=list)
    load_balancer_ips: list[str] = field(default_factory=list)
    endpoints: list[ServiceEndpoint] = field(default_factory=list)
    chains: list[ChainRules] = field(default_factory=list)
    entry_rules: list[Rule] = field(default_factory=list)  # KUBE-SERVICES / KUBE-NODEPORTS jumps (nat)
    reject_rules: list[Rule] = field(default_factory=list)  # the filter table's REJECT / DROP

    @property
    def has_endpoints(self) -> bool:
        return bool(self.endpoints)

    @property
    def svc_chain(self) -> str:
        return chains.service_chain(chains.SVC_PREFIX, self.name, self.protocol)

    @property
    def ext_chain(self) -> str:
        return chains.service_chain(chains.EXT_PREFIX, self.name, self.protocol)


def split_port_name(name: str) -> tuple[str, str, str]:
    """``"ns/svc:port"`` → ``("ns", "svc", "port")`` (port ``""`` for an unnamed single port)."""
    namespaced, _, port = name.partition(":")
    namespace, _, service = namespaced.partition("/")
    return namespace, service, port


def service_ports(ruleset: Ruleset, pods_by_ip: Mapping[str, PodRef] | None = None) -> list[ServicePort]:
    """Every Service port a node's rules serve, in ``namespace/name:port`` order."""
    reader = _Reader(ruleset, pods_by_ip or {})
    reader.read_entries()
    reader.read_rejects()
    for port in reader.ports.values():
        reader.read_chains(port)
    return sorted(reader.ports.values(), key=lambda p: (p.namespace, p.service, p.port_name, p.protocol))


class _Reader:
    def __init__(self, ruleset: Ruleset, pods_by_ip: Mapping[str, PodRef]) -> None:
        self.nat = ruleset.table("nat")
        self.filter = ruleset.table("filter")
        self.pods_by_ip = pods_by_ip
        self.ports: dict[tuple[str, str], ServicePort] = {}

    def port(self, name: str, protocol: str) -> ServicePort:
        key = (name, protocol)
        if key not in self.ports:
            self.ports[key] = ServicePort(name, *split_port_name(name), protocol=protocol)
        return self.ports[key]

    def read_entries(self) -> None:
        """The nat jumps into per-Service chains: cluster, external and LoadBalancer IPs, NodePorts."""
        for rule in self.nat.chain(chains.KUBE_SERVICES).rules:
            text, proto = rule.comment, rule.value("protocol")
            for suffix in (_CLUSTER_IP, _EXTERNAL_IP, _LB_IP):
                if text.endswith(suffix) and proto:
                    port = self.port(text[: -len(suffix)], proto)
                    self._address(port, suffix, _ip(rule.value("destination")), int(rule.value("dport") or 0))
                    port.entry_rules.append(rule)
        for rule in self.nat.chain(chains.KUBE_NODEPORTS).rules:
            if rule.comment and rule.value("protocol"):
                port = self.port(rule.comment, rule.value("protocol"))
                port.node_port = int(rule.value("dport") or 0)
                port.entry_rules.append(rule)

    def read_rejects(self) -> None:
        """The filter table's verdicts for ports without (local) endpoints."""
        for chain in (chains.KUBE_SERVICES, chains.KUBE_EXTERNAL_SERVICES, chains.KUBE_PROXY_FIREWALL):
            for rule in self.filter.chain(chain).rules:
                text, proto = rule.comment, rule.value("protocol")
                name = next((text[: -len(s)] for s in (_NO_ENDPOINTS, _NO_LOCAL) if text.endswith(s)), "")
                if not name or not proto:
                    continue
                port = self.port(name, proto)
                port.reject_rules.append(rule)
                dst, dport = _ip(rule.value("destination")), int(rule.value("dport") or 0)
                if chain == chains.KUBE_SERVICES:
                    self._address(port, _CLUSTER_IP, dst, dport)
                elif rule.value("dst-type") == "LOCAL":
                    port.node_port = dport
                elif dst and dst != port.cluster_ip and dst not in port.load_balancer_ips + port.external_ips:
                    port.external_ips.append(dst)  # an external or LB IP: the rule cannot say which

    def read_chains(self, port: ServicePort) -> None:
        """KUBE-SVC/EXT/SVL/FW chains of the port (named by the proxy's hash) and its endpoints."""
        for prefix, role in ((chains.SVC_PREFIX, "service"), (chains.EXT_PREFIX, "external"),
                             (chains.SVL_PREFIX, "local"), (chains.FW_PREFIX, "firewall")):
            name = chains.service_chain(prefix, port.name, port.protocol)
            if name in self.nat.chains:
                port.chains.append(ChainRules("nat", name, role, tuple(self.nat.chains[name].rules)))
        # the cluster IP's choice: KUBE-SVC-, or with internalTrafficPolicy: Local only KUBE-SVL- exists
        svc = next((c for c in port.chains if c.role == "service"), None) or \
            next((c for c in port.chains if c.role == "local"), None)
        if svc is not None:
            port.endpoints = self._endpoints(port, svc.rules)

    def _endpoints(self, port: ServicePort, rules: tuple[Rule, ...]) -> list[ServiceEndpoint]:
        """The statistic cascade, in order; affinity (``-m recent``) rules are not choices."""
        out, left = [], 1.0
        for rule in rules:
            if not rule.target.startswith(chains.SEP_PREFIX) or rule.match("rcheck"):
                continue
            sep = self.nat.chain(rule.target).rules
            dnat = next((r for r in sep if r.target == "DNAT"), None)
            address = dnat.target_option("to-destination") if dnat else rule.comment.rpartition(" -> ")[2]
            ip, _, port_text = address.rpartition(":")
            p = rule.probability if rule.probability is not None else 1.0
            share = left * p
            left -= share
            out.append(ServiceEndpoint(address, ip, int(port_text or 0), rule.target, p, rule.value("probability"),
                                       share, self.pods_by_ip.get(ip), (rule, *sep)))
        return out

    @staticmethod
    def _address(port: ServicePort, kind: str, ip: str, dport: int) -> None:
        if kind == _CLUSTER_IP:
            port.cluster_ip, port.port = ip, dport
        elif kind == _EXTERNAL_IP and ip not in port.external_ips:
            port.external_ips.append(ip)
        elif kind == _LB_IP and ip not in port.load_balancer_ips:
            port.load_balancer_ips.append(ip)
        if kind != _CLUSTER_IP and not port.port:
            port.port = dport


def _ip(cidr: str) -> str:
    return cidr.removesuffix("/32")
