"""The pure rule builder: the layout, and what the rules do to packets (walked, no kernel).

Semantics are checked by walking a packet through the generated chains with
``labctl.inspect.netfilter`` (the walker ``labctl trace --explain`` uses), after they are
put into a node's FORWARD chain as the enforcer leaves them: first rule, then a
kube-proxy-like ``KUBE-FORWARD`` that accepts.
"""

from __future__ import annotations

import pytest

from labctl.apiserver.defaults import default_network_policy
from labctl.inspect.netfilter import Packet, Walk, run_hook
from labctl.inspect.ruleset import parse_ruleset
from labctl.netpol.model import INGRESS, IPBlock, pod_info, policy_info
from labctl.netpol.rules import FORWARD_JUMP_ARGS, NETPOL_CHAIN, build_ruleset, parse_filter_state, pod_chain

NODE = "worker"


def pod(ns: str, name: str, ip: str, node: str = NODE, ports: dict[str, int] | None = None, **labels: str):
    return pod_info({"metadata": {"namespace": ns, "name": name, "labels": labels},
                     "spec": {"nodeName": node, "containers": [{"name": "c", "ports": [
                         {"name": n, "containerPort": p} for n, p in (ports or {}).items()]}]},
                     "status": {"podIP": ip, "phase": "Running"}})


def policy(ns: str, name: str, **spec):
    """A policy as the API server stores it: defaulted."""
    obj = {"metadata": {"namespace": ns, "name": name}, "spec": spec}
    default_network_policy(obj)
    return policy_info(obj)


# x/a, x/b on this node; y/a on this node; y/b, z/c on another node
PODS = [pod("x", "a", "10.244.1.2", ports={"http": 8080}, app="web"),
        pod("x", "b", "10.244.1.3", app="client"),
        pod("y", "a", "10.244.1.4", app="client"),
        pod("y", "b", "10.244.2.2", node="worker2", ports={"http": 9090}, app="web"),
        pod("z", "c", "10.244.2.3", node="worker2", app="other")]
NAMESPACES = {"x": {"team": "x"}, "y": {"team": "y"}, "z": {"team": "z"}}


def node_rules(policies, pods, namespaces) -> str:
    """The node's filter table as iptables-save would print it after the restore."""
    text = build_ruleset(policies, pods, namespaces, NODE, forward_rules=[]).text
    ours = [line for line in text.splitlines() if line.startswith(("-A ", ":"))]
    return "\n".join(["*filter", ":FORWARD ACCEPT [0:0]", ":KUBE-FORWARD - [0:0]", *ours,
                      f"-A FORWARD {FORWARD_JUMP_ARGS}", "-A FORWARD -j KUBE-FORWARD",
                      "-A KUBE-FORWARD -j ACCEPT", "COMMIT", ""])


def verdict(policies, src: str, dst: str, port: int = 80, protocol: str = "tcp", pods=PODS,
            namespaces=NAMESPACES) -> str:
    """ACCEPT or DROP for the first packet from ``src`` to ``dst`` (pod keys or IPs) on this node."""
    ips = {p.key: p.ip for p in pods}
    packet = Packet(protocol, ips.get(src, src), 40000, ips.get(dst, dst), port)
    rules = parse_ruleset(node_rules(policies, pods, namespaces))
    outcomes = run_hook(rules, "FORWARD", packet, Walk(local_addresses=()))
    assert len(outcomes) == 1
    return outcomes[0].verdict


def test_no_policy_leaves_only_the_established_rule_and_the_jump():
    text = build_ruleset([], PODS, NAMESPACES, NODE, forward_rules=[]).text
    assert text.splitlines() == [
        "*filter", f":{NETPOL_CHAIN} - [0:0]",
        f'-A {NETPOL_CHAIN} -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment '
        '"replies and related packets of allowed connections" -j RETURN',
        f"-I FORWARD 1 {FORWARD_JUMP_ARGS}", "COMMIT"]
    assert verdict([], "z/c", "x/a") == "ACCEPT"


def test_the_jump_is_kept_first_in_forward():
    ours = f"-A FORWARD {FORWARD_JUMP_ARGS}"
    kube = "-A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD"
    assert "FORWARD" not in build_ruleset([], PODS, NAMESPACES, NODE, forward_rules=[ours, kube]).text
    moved = build_ruleset([], PODS, NAMESPACES, NODE, forward_rules=[kube, ours]).text
    assert f"-D FORWARD {FORWARD_JUMP_ARGS}\n-I FORWARD 1 {FORWARD_JUMP_ARGS}\n" in moved
    assert "FORWARD" not in build_ruleset([], PODS, NAMESPACES, NODE, forward_rules=None).text


def test_stale_chains_are_flushed_and_deleted():
    text = build_ruleset([], PODS, NAMESPACES, NODE, existing_chains={NETPOL_CHAIN, "LABCTL-RULE-GONE"}).text
    assert ":LABCTL-RULE-GONE - [0:0]" in text and text.endswith("-X LABCTL-RULE-GONE\nCOMMIT\n")
    state = parse_filter_state(":LABCTL-RULE-GONE - [0:0]\n:KUBE-FORWARD - [0:0]\n-A FORWARD -j KUBE-FORWARD\n")
    assert state == ({"LABCTL-RULE-GONE"}, ["-A FORWARD -j KUBE-FORWARD"])


def test_default_deny_ingress_isolates_only_this_nodes_pods_of_the_namespace():
    deny = [policy("x", "deny", podSelector={})]
    ruleset = build_ruleset(deny, PODS, NAMESPACES, NODE)
    assert ruleset.isolated == {"x/a": ["Ingress"], "x/b": ["Ingress"]}
    assert verdict(deny, "y/a", "x/a") == "DROP"
    assert verdict(deny, "x/b", "x/a") == "DROP"  # the same namespace too
    assert verdict(deny, "10.1.2.3", "x/b") == "DROP"
    assert verdict(deny, "x/a", "y/a") == "ACCEPT"  # egress is not isolated
    assert verdict(deny, "x/a", "z/c") == "ACCEPT"
    assert verdict(deny, "x/a", "x/a") == "ACCEPT"  # through its own Service: a pod cannot block itself


def test_a_drop_names_the_pod_and_its_policies():
    text = build_ruleset([policy("x", "deny", podSelector={"matchLabels": {"app": "web"}})], PODS, NAMESPACES,
                         NODE).text
    assert '-m comment --comment "pod x/a is isolated for ingress by x/deny" -j LABCTL-POD-INGRESS-' in text
    assert '"pod x/a ingress: no rule of x/deny allows this: drop" -j DROP' in text


def test_pod_selector_peer_is_the_policys_namespace_only():
    allow = [policy("x", "from-clients", podSelector={"matchLabels": {"app": "web"}},
                    ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}])]
    assert verdict(allow, "x/b", "x/a") == "ACCEPT"
    assert verdict(allow, "y/a", "x/a") == "DROP"  # app=client, but in y
    assert verdict(allow, "y/a", "x/b") == "ACCEPT"  # x/b is not selected
    text = build_ruleset(allow, PODS, NAMESPACES, NODE).text
    assert ('-s 10.244.1.3/32 -m comment --comment "policy x/from-clients ingress rule 0: from pods app=client '
            'in x (x/b)" -j MARK --set-xmark 0x10000/0x10000') in text


def test_namespace_selector_alone_and_with_a_pod_selector():
    by_ns = [policy("x", "from-y", podSelector={}, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "y"}}}]}])]
    assert [verdict(by_ns, src, "x/a") for src in ("y/a", "y/b", "z/c", "x/b")] == ["ACCEPT", "ACCEPT", "DROP", "DROP"]
    both = [policy("x", "from-y-web", podSelector={}, ingress=[{"from": [{
        "namespaceSelector": {"matchLabels": {"team": "y"}}, "podSelector": {"matchLabels": {"app": "web"}}}]}])]
    assert [verdict(both, src, "x/a") for src in ("y/a", "y/b", "z/c")] == ["DROP", "ACCEPT", "DROP"]


def test_policies_add_up():
    policies = [policy("x", "from-y", podSelector={}, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "y"}}}]}]),
                policy("x", "from-z", podSelector={}, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {"team": "z"}}}]}])]
    assert [verdict(policies, src, "x/a") for src in ("y/a", "z/c", "x/b")] == ["ACCEPT", "ACCEPT", "DROP"]


def test_ip_block_except():
    block = [policy("x", "block", podSelector={}, ingress=[{"from": [
        {"ipBlock": {"cidr": "10.244.0.0/16", "except": ["10.244.2.0/24", "10.244.1.4/32"]}}]}])]
    assert [verdict(block, src, "x/a") for src in ("x/b", "y/a", "y/b", "z/c", "10.245.0.1")] == [
        "ACCEPT", "DROP", "DROP", "DROP", "DROP"]
    assert IPBlock("10.0.0.0/8", ("10.1.0.0/16",)).contains("10.2.0.1")
    assert not IPBlock("10.0.0.0/8", ("10.1.0.0/16",)).contains("10.1.0.1")


def test_ports_numbers_ranges_protocols_and_named_ports():
    ports = [policy("x", "ports", podSelector={}, ingress=[{"ports": [
        {"port": 53, "protocol": "UDP"}, {"port": 78, "endPort": 80}, {"port": "http"}]}])]
    assert verdict(ports, "z/c", "x/a", 53, "udp") == "ACCEPT"
    assert verdict(ports, "z/c", "x/a", 53, "tcp") == "DROP"
    assert [verdict(ports, "z/c", "x/a", p) for p in (77, 78, 80, 81)] == ["DROP", "ACCEPT", "ACCEPT", "DROP"]
    assert verdict(ports, "z/c", "x/a", 8080) == "ACCEPT"  # x/a names 8080 http
    assert verdict(ports, "z/c", "x/b", 8080) == "DROP"  # x/b has no port named http
    assert "port TCP/http (8080 on x/a)" in build_ruleset(ports, PODS, NAMESPACES, NODE).text


def test_egress_isolation_with_dns_and_named_ports_resolved_at_the_destination():
    dns_pod = pod("kube-system", "dns", "10.244.2.9", node="worker2", **{"k8s-app": "kube-dns"})
    pods = [*PODS, dns_pod]
    namespaces = {**NAMESPACES, "kube-system": {"kubernetes.io/metadata.name": "kube-system"}}
    egress = [policy("x", "egress", podSelector={"matchLabels": {"app": "web"}}, policyTypes=["Egress"], egress=[
        {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                 "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
         "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
        {"to": [{"podSelector": {}, "namespaceSelector": {}}], "ports": [{"port": "http"}]}])]
    assert verdict(egress, "x/a", "kube-system/dns", 53, "udp", pods, namespaces) == "ACCEPT"
    assert verdict(egress, "x/a", "kube-system/dns", 53, "tcp", pods, namespaces) == "ACCEPT"
    assert verdict(egress, "x/a", "kube-system/dns", 80, "tcp", pods, namespaces) == "DROP"
    assert verdict(egress, "x/a", "y/b", 9090, "tcp", pods, namespaces) == "ACCEPT"  # y/b's http
    assert verdict(egress, "x/a", "y/b", 8080, "tcp", pods, namespaces) == "DROP"
    assert verdict(egress, "x/b", "y/b", 80, "tcp", pods, namespaces) == "ACCEPT"  # x/b is not selected
    assert verdict(egress, "y/b", "x/a", 80, "tcp", pods, namespaces) == "ACCEPT"  # ingress to x/a is not isolated


def test_egress_and_ingress_are_both_checked_for_pods_on_one_node():
    policies = [policy("x", "a-egress-to-y", podSelector={"matchLabels": {"app": "web"}}, policyTypes=["Egress"],
                       egress=[{"to": [{"namespaceSelector": {"matchLabels": {"team": "y"}}}]}]),
                policy("y", "deny", podSelector={})]
    assert verdict(policies, "x/a", "y/a") == "DROP"  # egress allows it, y/a's ingress does not
    assert verdict(policies[:1], "x/a", "y/a") == "ACCEPT"


@pytest.mark.parametrize("pod_obj", [
    {"metadata": {"namespace": "x", "name": "h"}, "spec": {"hostNetwork": True}, "status": {"podIP": "172.30.0.2"}},
    {"metadata": {"namespace": "x", "name": "p"}, "spec": {}, "status": {"phase": "Pending"}},
    {"metadata": {"namespace": "x", "name": "d"}, "spec": {}, "status": {"podIP": "10.244.1.9", "phase": "Succeeded"}},
])
def test_pods_policies_do_not_apply_to(pod_obj):
    assert pod_info(pod_obj) is None


def test_only_changed_chains_are_rewritten_when_the_kernel_holds_the_last_restore():
    deny = [policy("x", "deny", podSelector={}), policy("y", "from-x", podSelector={}, ingress=[
        {"from": [{"namespaceSelector": {"matchLabels": {"team": "x"}}}]}])]
    first = build_ruleset(deny, PODS, NAMESPACES, NODE)
    assert build_ruleset(deny, PODS, NAMESPACES, NODE, first.chains, applied=first.rules).text == "*filter\nCOMMIT\n"
    moved = [*PODS[:1], pod("x", "b", "10.244.1.7", app="client"), *PODS[2:]]  # x/b has a new IP
    text = build_ruleset(deny, moved, NAMESPACES, NODE, first.chains, applied=first.rules).text
    declared = [line for line in text.splitlines() if line.startswith(":")]
    # the top chain, x/b's new chain (its old one goes) and y's rule chain naming x/b as a peer
    assert len(declared) == 4 and f":{NETPOL_CHAIN} - [0:0]" in declared
    assert "-s 10.244.1.7/32" in text and [line for line in text.splitlines() if line.startswith("-X LABCTL-POD-")]
    assert f"-A {pod_chain(INGRESS, PODS[0])} " not in text  # x/a's chain is untouched
