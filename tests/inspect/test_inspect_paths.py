"""Where a packet goes, computed (``--explain``): the rule walker, target resolution, whole paths in a captured lab."""

from __future__ import annotations

import pytest
from netfixtures import example_network

from labctl.errors import LabctlError
from labctl.inspect.explain import explain
from labctl.inspect.netfilter import Packet, Walk, run_hook
from labctl.inspect.ruleset import parse_ruleset
from labctl.inspect.targets import resolve_destination, resolve_source

RULES = """*nat
:PREROUTING ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:SVC - [0:0]
:MASQ - [0:0]
-A PREROUTING -d 10.96.0.5/32 -p tcp -m tcp --dport 80 -j SVC
-A PREROUTING -m addrtype --dst-type LOCAL -m weird --thing 1 -j MASQ
-A SVC -m statistic --mode random --probability 0.25000000000 -j DNAT --to-destination 10.0.0.1:8080
-A SVC -m statistic --mode random --probability 0.33333333349 -j DNAT --to-destination 10.0.0.2:8080
-A SVC -m statistic --mode random --probability 0.50000000000 -j DNAT --to-destination 10.0.0.3:8080
-A SVC -j DNAT --to-destination 10.0.0.4:8080
-A POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN
-A POSTROUTING -j MASQUERADE
-A MASQ -j MARK --set-xmark 0x4000/0x4000
COMMIT
*filter
:FORWARD ACCEPT [0:0]
-A FORWARD -d 10.96.0.9/32 -p tcp -m comment --comment "ns/gone:http has no endpoints" -j REJECT
COMMIT
"""


def packet(dst: str, dport: int = 80) -> Packet:
    return Packet("tcp", "10.244.1.5", 40000, dst, dport)


def test_a_statistic_cascade_forks_the_walk_into_equal_shares():
    outcomes = run_hook(parse_ruleset(RULES), "PREROUTING", packet("10.96.0.5"), Walk({"172.30.0.2"}))
    assert sorted(o.packet.dst for o in outcomes) == ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert all(abs(o.probability - 0.25) < 1e-6 and o.packet.dport == 8080 and o.packet.dnat for o in outcomes)
    assert all(o.hits[-1].verdict == "DNAT" for o in outcomes)


def test_policies_returns_marks_and_masquerade():
    rules = parse_ruleset(RULES)
    [plain] = run_hook(rules, "POSTROUTING", packet("10.0.0.1"), Walk(set(), "10.244.1.1"))
    assert [h.verdict for h in plain.hits] == ["RETURN", "ACCEPT"] and plain.hits[-1].rule is None  # the policy
    [marked] = run_hook(rules, "POSTROUTING", Packet("tcp", "172.30.0.1", 1, "10.0.0.1", 80, mark=0x4000),
                        Walk(set(), "10.244.1.1"))
    assert marked.hits[-1].verdict == "MASQUERADE" and marked.packet.src == "10.244.1.1" and marked.packet.snat


def test_reject_and_an_unknown_match_never_guessed():
    rules = parse_ruleset(RULES)
    [rejected] = run_hook(rules, "FORWARD", packet("10.96.0.9"), Walk(set()))
    assert rejected.verdict == "REJECT" and rejected.hits[-1].rule.comment == "ns/gone:http has no endpoints"
    walk = Walk({"10.96.0.7"})
    [passed] = run_hook(rules, "PREROUTING", packet("10.96.0.7"), walk)
    assert passed.packet.mark == 0 and any("-m weird" in text for text in walk.unknown)


def test_sources_and_destinations_resolve_from_the_lab_itself():
    net = example_network()
    assert resolve_source(net, "host").ip == net.gateway == "172.30.1.1"
    assert resolve_source(net, "worker2").ip == "172.30.1.4"
    pod = resolve_source(net, "example-1-gcsdw")
    assert (pod.kind, pod.ip, pod.node, str(pod.object)) == ("pod", "10.244.1.3", "worker", "default/example-1-gcsdw")
    assert resolve_source(net, "kube-system/kube-dns-95cf665d4-k85gq").ip == "10.244.1.2"
    for spec, port, proto in (("ex1-svc", None, "tcp"), ("default/ex1-svc", None, "tcp"), ("svc/ex1-svc", "web", "tcp"),
                              ("ex1-svc.default.svc.cluster.local", 80, "tcp"), ("ex1-svc.default:80", None, "tcp"),
                              ("10.111.206.202", None, "tcp")):
        dst, service = resolve_destination(net, spec, port, proto)
        assert (dst.ip, dst.port, service.name) == ("10.111.206.202", 80, "default/ex1-svc:web"), spec
    dns, service = resolve_destination(net, "kube-dns.kube-system.svc.cluster.local", 53, "udp")
    assert (dns.ip, service.name, service.protocol) == ("10.96.0.10", "kube-system/kube-dns:dns", "udp")
    mapped, service = resolve_destination(net, "127.0.0.1:31999", None, "tcp")
    assert (mapped.kind, mapped.node, service.name) == ("host-port", "control-plane", "default/ex1-svc-external:web")
    lb, _ = resolve_destination(net, "172.30.1.200:8080", None, "tcp")
    assert (lb.kind, lb.node) == ("load-balancer", "worker")  # the node announcing it
    nodeport, _ = resolve_destination(net, "172.30.1.3:30000", None, "tcp")
    assert nodeport.kind == "node-port"
    with pytest.raises(LabctlError, match="which port"):
        resolve_destination(net, "example-1-w2hg9", None, "tcp")
    with pytest.raises(LabctlError, match="nothing is published"):
        resolve_destination(net, "127.0.0.1:1", None, "tcp")
    with pytest.raises(LabctlError, match="no udp port"):
        resolve_destination(net, "ex1-svc", None, "udp")


def explained(src: str, dst: str, port=None, proto: str = "tcp"):
    net = example_network()
    destination, service = resolve_destination(net, dst, port, proto)
    return net, explain(net, resolve_source(net, src), destination, proto, service)


def test_explain_pod_to_cluster_ip_lists_every_endpoint_as_kube_proxy_weighs_them():
    net, t = explained("example-1-8dhs7", "ex1-svc")
    assert t.mode == "explain" and t.verdict.result == "delivered"
    assert [c.written for c in t.candidates] == ["0.25000000000", "0.33333333349", "0.50000000000", ""]
    assert [round(c.probability, 4) for c in t.candidates] == [0.25, 0.3333, 0.5, 1.0]
    assert all(abs(c.share - 0.25) < 1e-6 for c in t.candidates)
    assert {str(c.pod) for c in t.candidates} == {f"default/{p}" for p in
                                                  ("example-1-gcsdw", "example-1-8dhs7", "example-1-w2hg9",
                                                   "example-1-hkm54")}
    # the common path: the pod's route, its veth, the bridge, then the node's rules up to KUBE-SVC
    assert [h.kind for h in t.hops[:3]] == ["route", "link", "bridge"]
    assert t.hops[0].netns == "pod default/example-1-8dhs7"
    rules = net.node("worker").ruleset
    for c in t.candidates:
        assert c.verdict.result == "delivered" and str(c.verdict.object) == str(c.pod)
        for hop in (h for h in c.hops if h.kind == "netfilter" and h.rule):
            # every hop is a rule of that node's iptables-save
            assert hop.rule in {r.text for r in net.node(hop.node).ruleset.table(hop.table).rules()}
        dnat = next(h for h in c.hops if h.verdict == "DNAT")
        assert dnat.dst == c.endpoint and rules.chain("nat", c.chain).rules
    remote = next(c for c in t.candidates if c.node == "worker2")
    assert any(h.kind == "link" and "eth0 of node worker2" in h.summary for h in remote.hops)
    assert all(h.src.startswith("10.244.1.4") for h in remote.hops if h.src)  # a pod client is not masqueraded


def test_explain_pod_to_pod_on_another_node_keeps_the_source_ip():
    _, t = explained("example-1-gcsdw", "example-1-hkm54", 80)
    assert t.candidates == [] and t.verdict.result == "delivered" and t.verdict.node == "worker2"
    assert str(t.verdict.object) == "default/example-1-hkm54"
    assert all(h.verdict not in ("DNAT", "MASQUERADE") for h in t.hops)
    assert [h.summary for h in t.hops if h.kind == "route"][1].startswith("route 10.244.2.0/24 via 172.30.1.4")


def test_explain_same_node_pod_to_pod_is_bridged():
    _, t = explained("example-1-gcsdw", "example-1-8dhs7:80")
    assert "own subnet" in t.hops[0].summary and "br_netfilter" in t.hops[2].summary
    assert t.verdict.result == "delivered" and t.verdict.node == "worker"


def test_explain_a_service_without_endpoints_is_rejected_at_the_rule():
    _, t = explained("example-1-gcsdw", "nobody")
    assert t.verdict.result == "rejected" and t.verdict.node == "worker"
    hop = t.hops[t.verdict.hop]
    assert (hop.table, hop.chain, hop.verdict) == ("filter", "KUBE-SERVICES", "REJECT")
    assert hop.comment == "default/nobody:http has no endpoints" and str(hop.object) == "default/nobody:http"


def test_explain_host_to_the_port_mapping_goes_through_nodeports_and_masquerade():
    _, t = explained("host", "127.0.0.1:31999")
    assert t.hops[0].kind == "mapping" and t.hops[0].netns == "host"
    chains = [h.chain for h in t.hops if h.kind == "netfilter"]
    assert "KUBE-NODEPORTS" in chains and any(c.startswith("KUBE-EXT-") for c in chains)
    assert len(t.candidates) == 4
    for c in t.candidates:
        assert any(h.verdict == "MASQUERADE" for h in c.hops) and c.verdict.result == "delivered"


def test_explain_host_to_a_load_balancer_ip_and_to_a_cluster_ip():
    _, t = explained("host", "172.30.1.200:8080")
    assert "answers ARP" in t.hops[0].summary and t.verdict.result == "delivered" and len(t.candidates) == 4
    _, t = explained("host", "10.111.206.202")
    assert t.verdict.result == "unreachable" and "NodePort" in t.verdict.reason


def test_explain_udp_to_cluster_dns():
    _, t = explained("example-1-gcsdw", "kube-dns.kube-system.svc.cluster.local", 53, "udp")
    assert [c.endpoint for c in t.candidates] == ["10.244.0.2:53", "10.244.1.2:53"]
    assert [c.written for c in t.candidates] == ["0.50000000000", ""]
    assert {c.node for c in t.candidates} == {"control-plane", "worker"}
