"""``labctl trace --explain``: the path a packet would take, computed from rules and routes.

Nothing is sent. The walk starts where the packet is born (a pod's netns, a node, or the
host), follows the veth and the bridge onto the node, runs the node's netfilter hooks
(:mod:`.netfilter`: PREROUTING or OUTPUT, then FORWARD or INPUT, then POSTROUTING), takes the
node's routing decision, and, when the route leads to another node, does the same there.
Where kube-proxy's ``statistic`` rules choose an endpoint the walk forks: the result lists
every candidate with the probability its rule carries (1/4, 1/3, 1/2, then the rest: each
endpoint gets 1/4) and the rest of the path to it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from .hops import address, bridge_hop, link_hop, netfilter_hop, pod_netns, route_hop
from .model import LabNetwork, NodeNetwork
from .netfilter import Outcome, Packet, Walk, run_hook
from .services import ServiceEndpoint, ServicePort
from .targets import pod_ref
from .tracemodel import Candidate, Hop, ObjectRef, Peer, Trace, Verdict

__all__ = ["explain", "walk_paths"]

_MAX_NODES = 4  # a packet crosses at most: source node → backend's node (→ back, for a misroute)


@dataclass
class Path:
    """One way the packet can go, and how likely it is."""

    probability: float
    hops: list[Hop]
    verdict: Verdict


def explain(net: LabNetwork, source: Peer, destination: Peer, protocol: str,
            service: ServicePort | None = None) -> Trace:
    """The computed trace: common hops, then every candidate endpoint with its probability and path."""
    paths = walk_paths(net, source, destination, protocol)
    candidates = _candidates(net, paths, service)
    prefix = _common_prefix([p.hops for p in paths])
    if len(paths) > 1:
        candidates = [replace(c, hops=c.hops[len(prefix):]) for c in candidates]
    verdict = paths[0].verdict if len(paths) == 1 else _overall(paths, candidates, len(prefix))
    return Trace("explain", net.lab, protocol, source, destination, prefix if len(paths) > 1 else paths[0].hops,
                 verdict, candidates, notes=_notes(net, paths))


def walk_paths(net: LabNetwork, source: Peer, destination: Peer, protocol: str, sport: int = 0) -> list[Path]:
    """Every path of the first packet from ``source`` to ``destination``, most likely first."""
    walker = _Walker(net)
    pkt = Packet(protocol, source.ip, sport, destination.ip, destination.port)
    if source.kind == "pod":
        paths = walker.from_pod(source, pkt)
    elif source.kind == "node":
        node = net.node(source.node)
        paths = walker.from_node(node, pkt) if node else [
            Path(1.0, [], Verdict("unreachable", f"node {source.node} is not running"))]
    else:
        paths = walker.from_host(destination, pkt)
    return sorted(paths, key=lambda p: -p.probability)


class _Walker:
    def __init__(self, net: LabNetwork) -> None:
        self.net = net

    def from_pod(self, source: Peer, pkt: Packet) -> list[Path]:
        node = self.net.node(source.node)
        netns = pod_netns(self.net, source.ip)
        if node is None:
            return [Path(1.0, [], Verdict("unreachable", f"node {source.node} is not running"))]
        gateway = node.bridge.addresses[0].ip if node.bridge and node.bridge.addresses else "the node"
        on_link = bool(node.pod_cidr) and _in(pkt.dst, node.pod_cidr)
        veth = node.veth_of(source.ip)
        where = address(pkt.dst, pkt.dport)
        hops = [Hop("route", node.node, netns,
                    f"route {node.pod_cidr} dev eth0 (on the pod's own subnet: straight onto the bridge)" if on_link
                    else f"route default via {gateway} dev eth0 (everything off the pod's subnet goes to the node)",
                    src=address(pkt.src, pkt.sport), dst=where),
                link_hop(node.node, netns, f"eth0 → {veth.name if veth else 'its veth'} on node {node.node} "
                         "(the pod's veth pair)", source.object, address(pkt.src, pkt.sport), where),
                Hop("bridge", node.node, "node", f"{veth.name if veth else 'veth'} → cni0 (a port of the bridge)"
                    + ("; br_netfilter passes the bridged frame through iptables" if on_link else
                       "; the frame is for the bridge's own address, so the node routes the packet"),
                    src=address(pkt.src, pkt.sport), dst=where)]
        return self.arrive(node, replace(pkt, in_iface="cni0"), hops, 1.0, 0)

    def from_node(self, node: NodeNetwork, pkt: Packet) -> list[Path]:
        route = node.route_for(pkt.dst)
        src = (route.source if route and route.source else "") or node.internal_ip
        pkt = replace(pkt, src=src, out_iface=route.device if route else "")
        walk = Walk(node.local_addresses, self._iface_address(node, route.device if route else ""))
        paths = []
        for o in run_hook(node.ruleset, "OUTPUT", pkt, walk):
            hops = self._nf(node, o)
            if o.verdict != "ACCEPT":
                paths.append(self._blocked(node, o, hops))
            elif o.packet.dst in node.local_addresses:
                paths.append(Path(o.probability, hops, Verdict("delivered", f"to node {node.node} itself",
                                                               node.node, len(hops) - 1,
                                                               ObjectRef("Node", node.node, ip=o.packet.dst))))
            else:
                paths += self.route_out(node, o.packet, hops, o.probability, 0)
        return paths

    def from_host(self, destination: Peer, pkt: Packet) -> list[Path]:
        net = self.net
        if destination.kind == "host-port":
            node = net.node(destination.node)
            mapping = next(m for m in net.port_mappings if m.host_port == destination.port)
            if node is None:
                return [Path(1.0, [], Verdict("unreachable", f"node {destination.node} is not running"))]
            pkt = replace(pkt, src=net.gateway, dst=node.internal_ip, dport=mapping.node_port, in_iface="eth0")
            hops = [Hop("mapping", "", "host", f"Docker publishes {mapping.host_ip}:{mapping.host_port} and connects "
                        f"from the lab network's gateway {net.gateway} to node {node.node} "
                        f"{node.internal_ip}:{mapping.node_port}",
                        object=ObjectRef("Node", node.node, ip=node.internal_ip),
                        src=net.gateway, dst=address(node.internal_ip, mapping.node_port)),
                    link_hop(node.node, "node", f"the lab network → eth0 of node {node.node}",
                             src=net.gateway, dst=address(pkt.dst, pkt.dport))]
            return self.arrive(node, pkt, hops, 1.0, 0)
        owner = net.node_by_ip(pkt.dst)
        if owner is None:
            return [Path(1.0, [Hop("route", "", "host", f"the host has no route to {pkt.dst}", verdict="unreachable",
                                   dst=address(pkt.dst, pkt.dport))],
                         Verdict("unreachable", "the host has no route into the pod or Service network: reach a "
                                 "Service through a NodePort (NODE_IP:NODEPORT, 127.0.0.1:HOSTPORT) or a "
                                 "LoadBalancer IP", hop=0))]
        announced = pkt.dst != owner.internal_ip
        pkt = replace(pkt, src=net.gateway, in_iface="eth0")
        hops = [Hop("route", "", "host", f"the host reaches {pkt.dst} on the lab network"
                    + (f" (node {owner.node} answers ARP for this LoadBalancer IP)" if announced else ""),
                    object=ObjectRef("Node", owner.node, ip=owner.internal_ip), src=net.gateway,
                    dst=address(pkt.dst, pkt.dport)),
                link_hop(owner.node, "node", f"the lab network → eth0 of node {owner.node}",
                         src=net.gateway, dst=address(pkt.dst, pkt.dport))]
        return self.arrive(owner, pkt, hops, 1.0, 0)

    def arrive(self, node: NodeNetwork, pkt: Packet, hops: list[Hop], prob: float, depth: int) -> list[Path]:
        """A packet entering ``node`` (from its bridge or its eth0): PREROUTING, then routing."""
        paths = []
        for o in run_hook(node.ruleset, "PREROUTING", pkt, Walk(node.local_addresses), prob):
            h = hops + self._nf(node, o)
            if o.verdict != "ACCEPT":
                paths.append(self._blocked(node, o, h))
            elif o.packet.dst in node.local_addresses:
                paths += self._input(node, o.packet, h, o.probability)
            else:
                paths += self.route_out(node, o.packet, h, o.probability, depth, forward=True)
        return paths

    def route_out(self, node: NodeNetwork, pkt: Packet, hops: list[Hop], prob: float, depth: int,
                  forward: bool = False) -> list[Path]:
        """The node's routing decision, FORWARD (for a packet passing through), POSTROUTING, then the way out."""
        route = node.route_for(pkt.dst)
        hops = [*hops, route_hop(self.net, node, route, pkt.dst, address(pkt.src, pkt.sport), pkt.dport)]
        if route is None:
            return [Path(prob, hops, Verdict("unreachable", f"node {node.node} has no route to {pkt.dst}", node.node,
                                             len(hops) - 1))]
        pkt = replace(pkt, out_iface=route.device)
        walk = Walk(node.local_addresses, self._iface_address(node, route.device))
        stages = ["FORWARD", "POSTROUTING"] if forward else ["POSTROUTING"]
        outcomes = [Outcome(prob, (), "ACCEPT", pkt)]
        paths = []
        for hook in stages:
            after = []
            for o in outcomes:
                if o.verdict != "ACCEPT":  # rejected or dropped in FORWARD: it never reaches POSTROUTING
                    after.append(o)
                    continue
                for r in run_hook(node.ruleset, hook, o.packet, walk, o.probability):
                    after.append(Outcome(r.probability, o.hits + r.hits, r.verdict, r.packet))
            outcomes = after
        for o in outcomes:
            h = hops + self._nf(node, o)
            if o.verdict != "ACCEPT":
                paths.append(self._blocked(node, o, h))
            else:
                paths += self._leave(node, route.leads_to, route.node, o.packet, h, o.probability, depth)
        return paths

    def _leave(self, node: NodeNetwork, leads_to: str, next_name: str, pkt: Packet, hops: list[Hop], prob: float,
               depth: int) -> list[Path]:
        where = address(pkt.dst, pkt.dport)
        src = address(pkt.src, pkt.sport)
        if leads_to == "bridge":
            hop = bridge_hop(self.net, node, pkt.dst, src, where)
            hops = [*hops, hop]
            veth = node.veth_of(pkt.dst)
            if veth is None or veth.pod is None:
                return [Path(prob, hops, Verdict("dropped", hop.summary, node.node, len(hops) - 1))]
            hops.append(link_hop(node.node, f"pod {veth.pod}", f"{veth.name} → eth0 of pod {veth.pod} "
                                 "(the pod's veth pair)", pod_ref(veth.pod), src, where))
            return [Path(prob, hops, Verdict("delivered", f"to pod {veth.pod} on node {node.node}", node.node,
                                             len(hops) - 1, pod_ref(veth.pod)))]
        target = self.net.node(next_name) if next_name else self.net.node_by_ip(pkt.dst)
        if target is None or target is node:
            hops = [*hops, link_hop(node.node, "node", "eth0 → out of the lab (the host and beyond)", src=src,
                                    dst=where)]
            return [Path(prob, hops, Verdict("unreachable", f"{pkt.dst} is outside the lab", node.node, len(hops) - 1))]
        if depth + 1 >= _MAX_NODES:
            return [Path(prob, hops, Verdict("dropped", "routing loop between nodes", node.node, len(hops) - 1))]
        hops = [*hops, link_hop(node.node, "node", f"eth0 → the lab network → eth0 of node {target.node}",
                                ObjectRef("Node", target.node, ip=target.internal_ip), src, where)]
        return self.arrive(target, replace(pkt, in_iface="eth0", out_iface=""), hops, prob, depth + 1)

    def _input(self, node: NodeNetwork, pkt: Packet, hops: list[Hop], prob: float) -> list[Path]:
        paths = []
        for o in run_hook(node.ruleset, "INPUT", pkt, Walk(node.local_addresses), prob):
            h = hops + self._nf(node, o)
            if o.verdict != "ACCEPT":
                paths.append(self._blocked(node, o, h))
            else:
                paths.append(Path(o.probability, h, Verdict(
                    "delivered", f"to node {node.node} itself ({address(pkt.dst, pkt.dport)})", node.node,
                    len(h) - 1, ObjectRef("Node", node.node, ip=pkt.dst))))
        return paths

    def _nf(self, node: NodeNetwork, outcome: Outcome) -> list[Hop]:
        return [netfilter_hop(self.net, node.node, h.table, h.chain, h.rule, h.verdict,
                              address(h.packet.src, h.packet.sport), address(h.packet.dst, h.packet.dport))
                for h in outcome.hits]

    @staticmethod
    def _blocked(node: NodeNetwork, o: Outcome, hops: list[Hop]) -> Path:
        last = hops[-1] if hops else None
        result = "rejected" if o.verdict == "REJECT" else "dropped"
        reason = (last.comment or last.summary) if last else o.verdict
        return Path(o.probability, hops, Verdict(result, f"{o.verdict} on node {node.node}: {reason}", node.node,
                                                 len(hops) - 1, last.object if last else None))

    @staticmethod
    def _iface_address(node: NodeNetwork, device: str) -> str:
        iface = node.interface(device)
        return next((a.ip for a in iface.addresses if not a.label.endswith(":lb")), "") if iface else ""


def _candidates(net: LabNetwork, paths: list[Path], service: ServicePort | None) -> list[Candidate]:
    """The Service's endpoints as the rules weigh them, each with the path that reaches it."""
    chosen: dict[str, Path] = {}
    for p in paths:
        sep = next((h.chain for h in p.hops if h.verdict == "DNAT" and h.chain.startswith("KUBE-SEP-")), "")
        chosen.setdefault(sep, p)
    endpoints = _endpoints_on_path(net, paths, service)
    return [Candidate(e.address, e.probability, e.written, e.share, e.chain, _node_of(net, e.ip),
                      pod_ref(e.pod) if e.pod else None, list(chosen[e.chain].hops) if e.chain in chosen else [],
                      chosen[e.chain].verdict if e.chain in chosen else None) for e in endpoints]


def _endpoints_on_path(net: LabNetwork, paths: list[Path], service: ServicePort | None) -> list[ServiceEndpoint]:
    """The endpoints of the KUBE-SVC/KUBE-SVL chain the walk went through (on the node it did)."""
    for p in paths:
        for hop in p.hops:
            if hop.verdict.startswith("KUBE-SEP-"):
                node = net.node(hop.node)
                for port in node.services if node else []:
                    if any(e.chain == hop.verdict for e in port.endpoints):
                        return port.endpoints
    return list(service.endpoints) if service and not any(h.verdict == "REJECT" for p in paths for h in p.hops) else []


def _node_of(net: LabNetwork, ip: str) -> str:
    pod = net.pod_by_ip(ip)
    if pod:
        return pod.node
    node = net.node_by_ip(ip) or net.node_for_pod_ip(ip)
    return node.node if node else ""


def _common_prefix(lists: list[list[Hop]]) -> list[Hop]:
    prefix: list[Hop] = []
    for hops in zip(*lists, strict=False):
        if any(h != hops[0] for h in hops[1:]):
            break
        prefix.append(hops[0])
    return prefix


def _overall(paths: list[Path], candidates: list[Candidate], prefix_len: int) -> Verdict:
    results = {p.verdict.result for p in paths}
    if results == {"delivered"}:
        return Verdict("delivered", f"to one of {len(candidates) or len(paths)} endpoints, chosen at random for each "
                       "new connection", hop=prefix_len - 1 if prefix_len else None)
    worst = next(p.verdict for p in paths if p.verdict.result != "delivered")
    return Verdict("partly-delivered", f"some endpoints are not reached: {worst.reason}", worst.node)


def _notes(net: LabNetwork, paths: list[Path]) -> list[str]:
    notes = []
    for node in net.nodes:
        if node.sysctls.get("net.bridge.bridge-nf-call-iptables") == "0":
            notes.append(f"node {node.node}: net.bridge.bridge-nf-call-iptables is 0, so frames between pods on "
                         "its bridge skip iptables (and replies from a same-node Service backend are not un-DNATed)")
    return notes


def _in(ip: str, cidr: str) -> bool:
    return ipaddress.ip_address(ip) in ipaddress.ip_network(cidr, strict=False)
