"""The live trace's pure parts against real tracer outputs: the monitor parser, the rule plan, the assembly."""

from __future__ import annotations

from netfixtures import example_network, trace_capture

from labctl.inspect.explain import explain, walk_paths
from labctl.inspect.live import TRACE_TAG, TRACER_SCRIPT, assemble, plan_trace_rules
from labctl.inspect.model import to_jsonable
from labctl.inspect.targets import resolve_destination, resolve_source
from labctl.inspect.tracemodel import SCHEMA
from labctl.inspect.xtrace import packets_of, parse_monitor


def test_the_monitor_output_parses_into_hooks_and_rules():
    capture = trace_capture("pod-to-no-endpoints")
    hooks = parse_monitor(capture["outputs"]["worker"]["events"])
    probe = [h for h in hooks if h.get("SPORT") == str(capture["sport"])]
    assert probe and all(h.get("SRC") == "10.244.1.3" for h in probe)
    [ip_id] = {h.get("ID") for h in probe if h.first_packet}
    path = packets_of(hooks, "tcp", ip_id)
    assert [(h.table, h.hook) for h in path] == [("raw", "PREROUTING"), ("nat", "PREROUTING"), ("filter", "FORWARD")]
    reject = path[-1].events[-1]
    # nftables reports the REJECT as DROP; the rule says what it was
    assert (reject.chain, reject.verdict, reject.rule.comment) == ("KUBE-SERVICES", "REJECT",
                                                                   "default/nobody:http has no endpoints")
    assert path[1].events[0].verdict == "KUBE-SERVICES"  # JUMP:KUBE-SERVICES


def test_return_and_policy_verdicts():
    capture = trace_capture("pod-to-clusterip")
    hooks = [h for node in capture["outputs"].values() for h in parse_monitor(node["events"])]
    verdicts = {e.verdict for h in hooks for e in h.events}
    assert {"RETURN", "ACCEPT", "DNAT", "KUBE-SERVICES"} <= verdicts
    assert not any(v.startswith("0x") for v in verdicts)


def resolved(src: str, dst: str, proto: str = "tcp"):
    net = example_network()
    destination, service = resolve_destination(net, dst, None, proto)
    return net, resolve_source(net, src), destination, service


def test_trace_rules_match_only_the_probe():
    net, src, dst, _ = resolved("example-1-gcsdw", "ex1-svc")
    plan = plan_trace_rules(net, src, walk_paths(net, src, dst, "tcp", 23456), "tcp", 23456)
    assert [(r.hook, r.match) for r in plan["worker"]] == [
        ("PREROUTING", "-s 10.244.1.3/32 -p tcp -m tcp --sport 23456")]
    assert {(r.hook, r.match) for r in plan["worker2"]} == {
        ("PREROUTING", "-d 10.244.2.2/32 -p tcp -m tcp --dport 80 --syn"),
        ("PREROUTING", "-d 10.244.2.3/32 -p tcp -m tcp --dport 80 --syn")}
    net, src, dst, _ = resolved("host", "127.0.0.1:31999")
    plan = plan_trace_rules(net, src, walk_paths(net, src, dst, "tcp", 23456), "tcp", 23456)
    assert list(plan) == ["control-plane", "worker", "worker2"]
    assert plan["control-plane"][0].match == "-s 172.30.1.1/32 -d 172.30.1.2/32 -p tcp -m tcp --dport 30000"


def test_the_tracer_removes_its_rules_whatever_happens():
    # on exit (normal, error, signal) the EXIT trap deletes every rule it added, then it counts leftovers
    assert "trap cleanup EXIT" in TRACER_SCRIPT and "trap 'exit 130' INT TERM HUP PIPE" in TRACER_SCRIPT
    assert "iptables -w 5 -t raw -D $r" in TRACER_SCRIPT and "read -r -t 30" in TRACER_SCRIPT
    assert f"--comment {TRACE_TAG}:" in TRACER_SCRIPT


def assembled(name: str):
    capture = trace_capture(name)
    net, src, dst, service = resolved(capture["source"], capture["destination"], capture["protocol"])
    paths = walk_paths(net, src, dst, capture["protocol"], capture["sport"])
    computed = explain(net, src, dst, capture["protocol"], service)
    return net, assemble(net, src, dst, capture["protocol"], capture["sport"], computed, paths, capture["outputs"],
                         capture["report"])


def test_a_live_trace_to_a_cluster_ip_shows_the_chosen_endpoint_confirmed_by_conntrack():
    net, t = assembled("pod-to-clusterip")
    assert t.mode == "live" and t.verdict.result == "delivered" and t.probe.result == "connected"
    assert t.chosen is not None and len(t.candidates) == 4
    assert str(t.verdict.object) == str(t.chosen.pod)
    dnat = [h for h in t.hops if h.verdict == "DNAT"]
    assert len(dnat) == 1 and dnat[0].dst == t.chosen.endpoint and dnat[0].chain == t.chosen.chain
    saved = {r.text for r in net.node("worker").ruleset.table("nat").rules()}
    assert all(h.rule in saved for h in t.hops if h.kind == "netfilter" and h.table == "nat" and h.rule)
    [entry] = [e for e in t.conntrack if e.original.dst == "10.111.206.202"]
    assert entry.dnat and f"{entry.reply.src}:{entry.reply.sport}" == t.chosen.endpoint
    assert not any(TRACE_TAG in h.rule for h in t.hops)


def test_a_live_trace_to_a_service_without_endpoints_stops_at_the_reject():
    _, t = assembled("pod-to-no-endpoints")
    assert t.probe.result == "refused" and t.verdict.result == "rejected"
    hop = t.hops[t.verdict.hop]
    assert (hop.node, hop.table, hop.chain, hop.verdict) == ("worker", "filter", "KUBE-SERVICES", "REJECT")


def test_a_live_trace_from_the_host_port_shows_nodeports_and_masquerade():
    _, t = assembled("host-to-hostport")
    assert t.hops[0].kind == "mapping" and t.verdict.result == "delivered"
    chains = [h.chain for h in t.hops if h.kind == "netfilter"]
    assert "KUBE-NODEPORTS" in chains and any(h.verdict == "MASQUERADE" for h in t.hops)
    first = next(e for e in t.conntrack if e.original.dport == 30000)
    assert first.dnat and first.snat  # DNAT to the pod, masqueraded to the node's address


def test_a_live_dns_query_is_answered_by_a_dns_pod():
    _, t = assembled("pod-to-dns")
    assert t.protocol == "udp" and t.probe.result == "answered" and t.verdict.result == "delivered"
    assert t.chosen is not None and t.chosen.pod.namespace == "kube-system"


def test_the_json_document():
    _, t = assembled("pod-to-clusterip")
    doc = to_jsonable(t)
    assert doc["schema"] == SCHEMA and doc["mode"] == "live" and doc["protocol"] == "tcp"
    assert set(doc["hops"][0]) == {"kind", "node", "netns", "summary", "table", "chain", "rule", "comment",
                                   "verdict", "object", "src", "dst"}
    assert {h["kind"] for h in doc["hops"]} <= {"route", "link", "bridge", "netfilter", "conntrack", "mapping"}
    assert doc["chosen"]["endpoint"] and doc["verdict"]["result"] == "delivered"
    assert doc["source"]["object"] == {"kind": "Pod", "name": "example-1-gcsdw", "namespace": "default", "port": "",
                                       "ip": "10.244.1.3"}
    assert doc["traceRulesLeft"] == 0 and doc["candidates"][0]["written"] == "0.25000000000"


def test_a_host_port_probe_the_node_never_saw_is_not_called_delivered():
    # Docker's proxy accepts the connection on the host before it connects to the node: "connected" alone
    # proves nothing, so when the node's kernel reported no packet the trace says so
    capture = trace_capture("host-to-hostport")
    net, src, dst, service = resolved(capture["source"], capture["destination"], capture["protocol"])
    outputs = {node: {**out, "events": ""} for node, out in capture["outputs"].items()}
    t = assemble(net, src, dst, "tcp", capture["sport"], explain(net, src, dst, "tcp", service),
                 walk_paths(net, src, dst, "tcp", capture["sport"]), outputs, capture["report"])
    assert t.probe.result == "connected" and t.verdict.result == "no-answer"
    assert t.verdict.reason == "Docker's proxy accepted the connection, but no packet of it reached node control-plane"
