"""The pure rule builder: Services + their endpoints in, the whole ``iptables-restore`` text out.

This is kube-proxy's ``syncProxyRules`` without the side effects: one linear pass writes
four buffers (filter chains/rules, nat chains/rules) in kube-proxy's layout, names and
comments, so ``iptables-save -t nat`` on a labctl node reads like a real node's. Only our
chains are declared (which flushes them under ``--noflush``); per-service chains that exist
but are no longer wanted are declared and then deleted with ``-X``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from labctl.proxy import chains as c
from labctl.proxy.chains import JumpChain
from labctl.proxy.topology import categorize_endpoints
from labctl.proxy.types import Endpoint, ServicePortInfo, ServicePortName

from ..clusterconfig import DEFAULT_POD_SUBNET

NODEPORTS_COMMENT = '"kubernetes service nodeports; NOTE: this must be the last rule in this chain"'


@dataclass(frozen=True)
class NodeConfig:
    """What the rules depend on besides Services: this node and the cluster's pod network.

    ``nodeport_addresses`` works like kube-proxy's ``--nodeport-addresses`` once resolved to
    IPs: ``None`` accepts NodePorts on every local address (``-m addrtype --dst-type LOCAL``,
    which includes 127.0.0.1 given ``route_localnet=1``); a list limits them to those IPs.
    """

    node_name: str
    cluster_cidr: str = DEFAULT_POD_SUBNET
    nodeport_addresses: tuple[str, ...] | None = None
    masquerade_all: bool = False


def _q(text: str) -> str:
    """Quote a comment only when it has spaces, as kube-proxy writes ``--comment ns/svc:p``."""
    return f'"{text}"' if " " in text else text


def build_ruleset(
    services: Mapping[ServicePortName, ServicePortInfo],
    endpoints: Mapping[ServicePortName, Sequence[Endpoint]],
    node: NodeConfig,
    existing_chains: Mapping[str, Iterable[str]] | None = None,
    missing_jumps: Sequence[JumpChain] = (),
) -> str:
    """Return the complete ``*filter`` + ``*nat`` restore text for ``iptables-restore --noflush``.

    ``existing_chains`` (table -> chain names now in the kernel) lets stale per-service chains
    be deleted; ``missing_jumps`` are the built-in-chain jumps to insert (they cannot be
    flushed and rewritten without touching other tools' rules, so they are only added once).
    """
    return build_ruleset_partial(services, endpoints, node, existing_chains, missing_jumps)[0]


def build_ruleset_partial(
    services: Mapping[ServicePortName, ServicePortInfo],
    endpoints: Mapping[ServicePortName, Sequence[Endpoint]],
    node: NodeConfig,
    existing_chains: Mapping[str, Iterable[str]] | None = None,
    missing_jumps: Sequence[JumpChain] = (),
    changed: set[ServicePortName] | None = None,
) -> tuple[str, dict[str, set[str]]]:
    """Like :func:`build_ruleset`, rewriting per-service chains only for ``changed`` (None: all).

    kube-proxy's ``MinimizeIPTablesRestore``: the top-level chains (KUBE-SERVICES,
    KUBE-NODEPORTS, the filter table) are always rewritten whole, but the SVC/SEP/EXT
    chains of untouched services are left in the kernel as they are, neither declared nor
    deleted. iptables-nft gets slower per rule as the table grows, so after the first sync
    this is the difference between seconds and tens of milliseconds. Returns the text and
    table -> every chain of ours that exists after it is applied.
    """
    b = _Builder(node)
    for name in sorted(services):
        b.write_service(services[name], endpoints.get(name, ()), changed is None or name in changed)
    b.finish(existing_chains or {}, missing_jumps)
    return b.text(), {"nat": set(b.nat_active), "filter": set(c.FILTER_FIXED_CHAINS)}


def declared_chains(text: str) -> dict[str, set[str]]:
    """Table -> chains a restore text leaves behind (declared, not ``-X``-ed), for the next stale check."""
    result: dict[str, set[str]] = {}
    current: set[str] = set()
    for line in text.splitlines():
        if line.startswith("*"):
            current = result.setdefault(line[1:], set())
        elif line.startswith(":"):
            current.add(line[1:].split(" ", 1)[0])
        elif line.startswith("-X "):
            current.discard(line[3:])
    return result


class _Builder:
    """Four line buffers, filled in kube-proxy's order; one instance per sync."""

    def __init__(self, node: NodeConfig) -> None:
        self.node = node
        self.filter_chains = [f":{name} - [0:0]" for name in c.FILTER_FIXED_CHAINS]
        self.filter_rules: list[str] = []
        self.nat_chains = [f":{name} - [0:0]" for name in c.NAT_FIXED_CHAINS]
        self.nat_rules: list[str] = []
        self.nat_active: set[str] = set(c.NAT_FIXED_CHAINS)
        self._write_fixed_rules()

    def _write_fixed_rules(self) -> None:
        mark = c.MASQ_MARK
        self.filter_rules += [
            f'-A {c.KUBE_FIREWALL} -m comment --comment "block incoming localnet connections"'
            " -d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP",
            f"-A {c.KUBE_FORWARD} -m conntrack --ctstate INVALID -j DROP",
            f'-A {c.KUBE_FORWARD} -m comment --comment "kubernetes forwarding rules"'
            f" -m mark --mark {mark}/{mark} -j ACCEPT",
            f'-A {c.KUBE_FORWARD} -m comment --comment "kubernetes forwarding conntrack rule"'
            " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT",
        ]
        self.nat_rules += [
            f"-A {c.KUBE_POSTROUTING} -m mark ! --mark {mark}/{mark} -j RETURN",
            # Clear the mark so a packet re-traversing the stack (e.g. after a tunnel) is not masqueraded twice.
            f"-A {c.KUBE_POSTROUTING} -j MARK --xor-mark {mark}",
            f'-A {c.KUBE_POSTROUTING} -m comment --comment "kubernetes service traffic requiring SNAT"'
            " -j MASQUERADE --random-fully",
            f"-A {c.KUBE_MARK_MASQ} -j MARK --or-mark {mark}",
        ]

    def _chain(self, name: str) -> None:
        self.nat_chains.append(f":{name} - [0:0]")
        self.nat_active.add(name)

    def write_service(self, svc: ServicePortInfo, all_eps: Sequence[Endpoint], write_chains: bool = True) -> None:
        """Every rule of one service port (the loop body of ``syncProxyRules``).

        ``all_eps`` are every endpoint of the port with its conditions; which of them each
        kind of traffic uses is :func:`categorize_endpoints`'s answer. With ``write_chains``
        False only the rules in the shared chains are written and the service's own chains
        are just recorded as still in use.
        """
        name, proto, port = svc.name_string, svc.proto, svc.port
        match = f"-m {proto} -p {proto}"
        eps = categorize_endpoints(all_eps, svc, self.node.node_name)
        has_endpoints = eps.has_any
        # Traffic to the cluster IP goes to the SVC chain, or with internalTrafficPolicy: Local to the SVL one.
        internal_chain = svc.svl_chain if svc.internal_policy_local else svc.svc_chain
        has_internal_endpoints = has_endpoints and (not svc.internal_policy_local or bool(eps.local))
        has_external_endpoints = has_endpoints and (not svc.external_local or bool(eps.local))
        uses_fw = bool(svc.load_balancer_source_ranges) and bool(svc.load_balancer_ips)
        ext_chain = svc.ext_chain
        lb_chain = svc.fw_chain if uses_fw else ext_chain
        if has_endpoints:
            filter_target, filter_comment = "DROP", f'"{name} has no local endpoints"'
        else:
            filter_target, filter_comment = "REJECT", f'"{name} has no endpoints"'
        nat, flt = self.nat_rules, self.filter_rules

        # Capture the cluster IP.
        if has_internal_endpoints:
            nat.append(
                f'-A {c.KUBE_SERVICES} -m comment --comment "{name} cluster IP" {match}'
                f" -d {svc.cluster_ip} --dport {port} -j {internal_chain}"
            )
        else:
            flt.append(
                f"-A {c.KUBE_SERVICES} -m comment --comment {filter_comment} {match}"
                f" -d {svc.cluster_ip} --dport {port} -j {filter_target}"
            )
        # Capture external IPs and load-balancer ingress IPs.
        for ip in svc.external_ips:
            if has_endpoints:
                nat.append(
                    f'-A {c.KUBE_SERVICES} -m comment --comment "{name} external IP" {match}'
                    f" -d {ip} --dport {port} -j {ext_chain}"
                )
            if not has_external_endpoints:
                flt.append(
                    f"-A {c.KUBE_EXTERNAL_SERVICES} -m comment --comment {filter_comment} {match}"
                    f" -d {ip} --dport {port} -j {filter_target}"
                )
        for ip in svc.load_balancer_ips:
            if has_endpoints:
                nat.append(
                    f'-A {c.KUBE_SERVICES} -m comment --comment "{name} loadbalancer IP" {match}'
                    f" -d {ip} --dport {port} -j {lb_chain}"
                )
            if uses_fw:
                flt.append(
                    f'-A {c.KUBE_PROXY_FIREWALL} -m comment --comment "{name} traffic not accepted by {svc.fw_chain}"'
                    f" {match} -d {ip} --dport {port} -j DROP"
                )
        if not has_external_endpoints:
            for ip in svc.load_balancer_ips:
                flt.append(
                    f"-A {c.KUBE_EXTERNAL_SERVICES} -m comment --comment {filter_comment} {match}"
                    f" -d {ip} --dport {port} -j {filter_target}"
                )
        # Capture NodePorts.
        if svc.node_port:
            if has_endpoints:
                nat.append(
                    f"-A {c.KUBE_NODEPORTS} -m comment --comment {_q(name)} {match}"
                    f" --dport {svc.node_port} -j {ext_chain}"
                )
            if not has_external_endpoints:
                flt.append(
                    f"-A {c.KUBE_EXTERNAL_SERVICES} -m comment --comment {filter_comment}"
                    f" -m addrtype --dst-type LOCAL {match} --dport {svc.node_port} -j {filter_target}"
                )
        if not has_endpoints:
            return
        uses_cluster_chain = bool(eps.cluster) and svc.uses_cluster_endpoints
        uses_local_chain = bool(eps.local) and svc.uses_local_endpoints
        if not write_chains:
            self._keep_chains(svc, eps.reachable, uses_cluster_chain, uses_local_chain, uses_fw)
            return
        if has_internal_endpoints:
            self._write_internal(svc, internal_chain, match)
        if svc.externally_accessible:
            self._write_external(svc, has_external_endpoints)
        if uses_fw:
            self._write_firewall(svc)
        if uses_cluster_chain:
            self._chain(svc.svc_chain)
            self._write_service_to_endpoints(svc, svc.svc_chain, eps.cluster)
        if uses_local_chain:
            self._chain(svc.svl_chain)
            self._write_service_to_endpoints(svc, svc.svl_chain, eps.local)
        for ep in eps.reachable:
            self._write_endpoint(svc, ep, match)

    def _keep_chains(self, svc: ServicePortInfo, eps: Sequence[Endpoint], uses_cluster_chain: bool,
                     uses_local_chain: bool, uses_fw: bool) -> None:
        """Mark an unchanged service's chains active: the same set write_service would declare."""
        active = self.nat_active
        if uses_cluster_chain:
            active.add(svc.svc_chain)
        if svc.externally_accessible:
            active.add(svc.ext_chain)
        if uses_fw:
            active.add(svc.fw_chain)
        if uses_local_chain:
            active.add(svc.svl_chain)
        active.update(svc.endpoint_chain(ep) for ep in eps)

    def _write_internal(self, svc: ServicePortInfo, chain: str, match: str) -> None:
        """Masquerade off-cluster traffic to the cluster IP: it may bounce to another node.

        Written into the chain the cluster IP jumps to: ``KUBE-SVC-``, or ``KUBE-SVL-`` with
        ``internalTrafficPolicy: Local`` (as kube-proxy's ``internalTrafficChain``).
        """
        args = (
            f'-A {chain} -m comment --comment "{svc.name_string} cluster IP" {match}'
            f" -d {svc.cluster_ip} --dport {svc.port}"
        )
        if self.node.masquerade_all:
            self.nat_rules.append(f"{args} -j {c.KUBE_MARK_MASQ}")
        else:
            self.nat_rules.append(f"{args} ! -s {self.node.cluster_cidr} -j {c.KUBE_MARK_MASQ}")

    def _write_external(self, svc: ServicePortInfo, has_external_endpoints: bool) -> None:
        """The ``KUBE-EXT-`` chain: masquerade (Cluster) or keep the client IP (Local)."""
        ext, name, rules = svc.ext_chain, svc.name_string, self.nat_rules
        self._chain(ext)
        if not svc.external_local:
            # The backend may sit on another node: without SNAT its reply would leave that
            # node directly and never meet the DNAT done here.
            rules.append(
                f'-A {ext} -m comment --comment "masquerade traffic for {name} external destinations"'
                f" -j {c.KUBE_MARK_MASQ}"
            )
            rules.append(f"-A {ext} -j {svc.svc_chain}")
            return
        rules += [
            f'-A {ext} -m comment --comment "pod traffic for {name} external destinations"'
            f" -s {self.node.cluster_cidr} -j {svc.svc_chain}",
            f'-A {ext} -m comment --comment "masquerade LOCAL traffic for {name} external destinations"'
            f" -m addrtype --src-type LOCAL -j {c.KUBE_MARK_MASQ}",
            f'-A {ext} -m comment --comment "route LOCAL traffic for {name} external destinations"'
            f" -m addrtype --src-type LOCAL -j {svc.svc_chain}",
        ]
        if has_external_endpoints:
            rules.append(f"-A {ext} -j {svc.svl_chain}")

    def _write_firewall(self, svc: ServicePortInfo) -> None:
        """``KUBE-FW-``: only ``loadBalancerSourceRanges`` reach the service; the rest falls to a DROP."""
        fw, name = svc.fw_chain, svc.name_string
        self._chain(fw)
        for cidr in svc.load_balancer_source_ranges:
            self.nat_rules.append(
                f'-A {fw} -m comment --comment "{name} loadbalancer IP" -s {cidr} -j {svc.ext_chain}'
            )
        self.nat_rules.append(
            f'-A {fw} -m comment --comment "other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL"'
        )

    def _write_service_to_endpoints(self, svc: ServicePortInfo, chain: str, eps: Sequence[Endpoint]) -> None:
        """Affinity rules first, then the ``statistic`` cascade 1/n, 1/(n-1), ..., unconditional."""
        name, rules = svc.name_string, self.nat_rules
        if svc.session_affinity_seconds:
            for ep in eps:
                sep = svc.endpoint_chain(ep)
                rules.append(
                    f'-A {chain} -m comment --comment "{name} -> {ep}" -m recent --name {sep}'
                    f" --rcheck --seconds {svc.session_affinity_seconds} --reap -j {sep}"
                )
        n = len(eps)
        for i, ep in enumerate(eps):
            sep = svc.endpoint_chain(ep)
            if i < n - 1:
                rules.append(
                    f'-A {chain} -m comment --comment "{name} -> {ep}"'
                    f" -m statistic --mode random --probability {1.0 / (n - i):0.10f} -j {sep}"
                )
            else:
                rules.append(f'-A {chain} -m comment --comment "{name} -> {ep}" -j {sep}')

    def _write_endpoint(self, svc: ServicePortInfo, ep: Endpoint, match: str) -> None:
        """``KUBE-SEP-``: hairpin masquerade (a backend reaching itself), then the DNAT."""
        sep = svc.endpoint_chain(ep)
        self._chain(sep)
        comment = f"-A {sep} -m comment --comment {_q(svc.name_string)}"
        recent = f" -m recent --name {sep} --set" if svc.session_affinity_seconds else ""
        self.nat_rules.append(f"{comment} -s {ep.ip} -j {c.KUBE_MARK_MASQ}")
        self.nat_rules.append(f"{comment}{recent} {match} -j DNAT --to-destination {ep}")

    def finish(self, existing: Mapping[str, Iterable[str]], missing_jumps: Sequence[JumpChain]) -> None:
        """Tail-call to KUBE-NODEPORTS, delete stale chains, insert missing jumps."""
        if self.node.nodeport_addresses is None:
            self.nat_rules.append(
                f"-A {c.KUBE_SERVICES} -m comment --comment {NODEPORTS_COMMENT}"
                f" -m addrtype --dst-type LOCAL -j {c.KUBE_NODEPORTS}"
            )
        else:
            for ip in self.node.nodeport_addresses:
                self.nat_rules.append(
                    f"-A {c.KUBE_SERVICES} -m comment --comment {NODEPORTS_COMMENT} -d {ip} -j {c.KUBE_NODEPORTS}"
                )
        stale = sorted(ch for ch in existing.get("nat", ()) if c.is_service_chain(ch) and ch not in self.nat_active)
        for chain in stale:
            # Declaring flushes it (so nothing of ours still points at it), then delete it.
            self.nat_chains.append(f":{chain} - [0:0]")
            self.nat_rules.append(f"-X {chain}")
        # -I prepends, as kube-proxy's EnsureRule(Prepend, ...): our jumps run before other tools'.
        jumps = {"filter": self.filter_rules, "nat": self.nat_rules}
        for table, rules in jumps.items():
            rules[0:0] = [f"-I {j.src_chain} {j.rule_args()}" for j in missing_jumps if j.table == table]

    def text(self) -> str:
        parts = ["*filter", *self.filter_chains, *self.filter_rules, "COMMIT",
                 "*nat", *self.nat_chains, *self.nat_rules, "COMMIT", ""]
        return "\n".join(parts)
