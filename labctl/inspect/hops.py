"""Hops in a student's words: each rule, route and link of a path, tied to its Kubernetes object.

Both ways of tracing build their hops here, so a rule reads the same whether the kernel
reported it (live) or the rules were walked (``--explain``): ``KUBE-SVC-…`` becomes "Service
default/ex1-svc:web picks endpoint 10.244.2.3:80 (pod default/example-1-x) with probability
0.5", never a bare hash.
"""

from __future__ import annotations

from ..netpol import rules as netpol
from ..proxy import chains
from .model import LabNetwork, NodeNetwork, Route
from .ruleset import Rule
from .services import split_port_name
from .targets import pod_ref, service_index
from .tracemodel import Hop, ObjectRef

__all__ = ["address", "bridge_hop", "link_hop", "netfilter_hop", "pod_netns", "route_hop", "rule_object"]


def address(ip: str, port: int) -> str:
    return f"{ip}:{port}" if port else ip


def pod_netns(net: LabNetwork, ip: str) -> str:
    pod = net.pod_by_ip(ip)
    return f"pod {pod}" if pod else "pod"


def netfilter_hop(net: LabNetwork, node: str, table: str, chain: str, rule: Rule | None, verdict: str,
                  src: str = "", dst: str = "") -> Hop:
    """A rule the packet matched (or ``rule`` None: the chain's policy applied)."""
    return Hop("netfilter", node, "node", f"{table} {chain}: {_describe(net, chain, rule, verdict)}", table, chain,
               rule.text if rule else "", rule.comment if rule else "", verdict,
               rule_object(net, rule) if rule else None, src, dst)


def route_hop(net: LabNetwork, node: NodeNetwork, route: Route | None, dst: str, src: str = "",
              dport: int = 0) -> Hop:
    """The node's routing decision for ``dst``: its own bridge, another node, or out to the host."""
    where = address(dst, dport)
    if route is None:
        return Hop("route", node.node, "node", f"no route to {dst}", verdict="unreachable", src=src, dst=where)
    via = f"via {route.gateway} " if route.gateway else ""
    text = f"{route.destination} {via}dev {route.device}"
    obj: ObjectRef | None
    if route.leads_to == "node":
        what, obj = f"to {route.node}'s pods", ObjectRef("Node", route.node, ip=route.gateway)
    elif route.leads_to == "bridge":
        pod = net.pod_by_ip(dst)
        what, obj = (f"on this node's bridge: pod {pod}", pod_ref(pod)) if pod else ("on this node's bridge", None)
    elif route.leads_to == "lab-network":
        owner = net.node_by_ip(dst)
        what, obj = ((f"on the lab network: node {owner.node}", ObjectRef("Node", owner.node, ip=dst)) if owner
                     else ("on the lab network", None))
    else:
        what, obj = "out of the lab, to the host", ObjectRef("Host", "host", ip=route.gateway)
    return Hop("route", node.node, "node", f"route {text} ({what})", object=obj, src=src, dst=where)


def link_hop(node: str, netns: str, summary: str, obj: ObjectRef | None = None, src: str = "", dst: str = "") -> Hop:
    return Hop("link", node, netns, summary, object=obj, src=src, dst=dst)


def bridge_hop(net: LabNetwork, node: NodeNetwork, dst_ip: str, src: str = "", dst: str = "") -> Hop:
    """``cni0`` hands the frame to the port of the pod holding ``dst_ip``."""
    veth = node.veth_of(dst_ip)
    if veth is None:
        return Hop("bridge", node.node, "node", f"cni0: no port leads to {dst_ip} (no pod holds it)",
                   verdict="dropped", src=src, dst=dst)
    pod = veth.pod
    return Hop("bridge", node.node, "node", f"cni0 → {veth.name} (port of pod {pod})",
               object=pod_ref(pod) if pod else None, src=src, dst=dst)


def rule_object(net: LabNetwork, rule: Rule) -> ObjectRef | None:
    """The object a rule belongs to: a kube-proxy rule's Service (from the comment) or endpoint pod (KUBE-SEP),
    a network policy rule's NetworkPolicy, a policy drop's isolated pod."""
    if rule.chain.startswith(netpol.CHAIN_PREFIXES):
        return _policy_object(net, rule)
    name = rule.comment.split(" ", 1)[0]
    if "/" not in name:
        return None  # a fixed chain's rule ("kubernetes service portals"), or Docker's
    if rule.chain.startswith(chains.SEP_PREFIX):
        target = rule.target_option("to-destination") or rule.value("source").removesuffix("/32")
        pod = net.pod_by_ip(target.partition(":")[0]) if target else None
        if pod is not None:
            return pod_ref(pod)
    namespace, service, port = split_port_name(name)
    cluster_ip = next((s.cluster_ip for s in service_index(net) if s.name == name), "")
    return ObjectRef("Service", service, namespace, port, cluster_ip)


def _policy_object(net: LabNetwork, rule: Rule) -> ObjectRef | None:
    """``policy NS/NAME ...`` names a NetworkPolicy; ``pod NS/NAME ...`` the pod a policy chain guards."""
    kind, _, rest = rule.comment.partition(" ")
    namespace, _, name = rest.split(" ", 1)[0].partition("/")
    if kind == "policy" and name:
        return ObjectRef("NetworkPolicy", name, namespace)
    if kind == "pod" and name:
        return ObjectRef("Pod", name, namespace)
    return None


def _describe_policy_rule(rule: Rule) -> str | None:
    """The network policy chains in a student's words; None for their plain jumps."""
    comment = rule.comment
    if rule.chain.startswith(netpol.RULE_PREFIX) and rule.target == "MARK":
        title, _, what = comment.partition(": ")
        return f"Network{title[0].upper()}{title[1:]} allows it ({what})"
    if rule.chain.startswith(netpol.CHAIN_PREFIXES[1]):
        pod, _, direction = comment.partition(" ")[2].partition(" ")
        direction = direction.split(" ", 1)[0].rstrip(":")
        if rule.target == "MARK":
            return f"{direction} check of pod {pod}: no rule has allowed the packet yet"
        if rule.target == "RETURN" and "itself" in comment:
            return f"pod {pod} reaches itself: no policy applies"
        if rule.target == "RETURN":
            return f"a rule allowed the packet: the {direction} check of pod {pod} passes"
        if rule.target == "DROP":
            return f"DROP: pod {pod} is isolated for {direction} and {comment.partition(': ')[2].removesuffix(': drop')}"
    return None


def _describe(net: LabNetwork, chain: str, rule: Rule | None, verdict: str) -> str:
    """One line on what the rule did to the packet."""
    if rule is None:
        return f"policy {verdict}"
    if rule.chain.startswith(netpol.CHAIN_PREFIXES) and (text := _describe_policy_rule(rule)):
        return text
    target, comment = rule.target, rule.comment
    if target.startswith(chains.SEP_PREFIX):
        endpoint = comment.rpartition(" -> ")[2]
        pod = net.pod_by_ip(endpoint.partition(":")[0])
        chance = (f" with probability {rule.value('probability')}" if rule.probability is not None
                  else " (the last rule, probability 1: whatever is left)")
        return f"picks endpoint {endpoint}{f' (pod {pod})' if pod else ''}{chance} → {target}"
    if target == "DNAT":
        return f"DNAT to {rule.target_option('to-destination')}"
    if target == chains.KUBE_MARK_MASQ:
        return f"marks for masquerade{_why(comment)} → {target}"
    if target in ("MASQUERADE", "SNAT"):
        return f"{target}: the source becomes this node's address" + ("" if not comment else f" ({comment})")
    if target == "MARK":
        return "sets the packet mark " + (rule.target_option("set-xmark") or rule.target_option("xor-mark"))
    if target in ("REJECT", "DROP"):
        return f"{target}" + (f": {comment}" if comment else "")
    if target.startswith((chains.SVC_PREFIX, chains.EXT_PREFIX, chains.FW_PREFIX, chains.SVL_PREFIX)):
        return f"{comment or 'jump'} → {target}"
    if target == "RETURN":
        return "RETURN" + (" (not marked for masquerade)" if "mark" in rule.text else "")
    if target:
        return f"→ {target}" + (f" ({comment})" if comment else "")
    return comment or "matched"


def _why(comment: str) -> str:
    if comment.endswith(" cluster IP"):
        return " (the client is outside the pod network)"
    if "external destinations" in comment:
        return " (traffic from outside: NodePort, LoadBalancer or external IP)"
    return " (hairpin: the pod reaches itself through its Service)" if comment else ""
