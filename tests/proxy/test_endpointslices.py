"""The proxy reads EndpointSlices as kube-proxy does: merging, conditions, internalTrafficPolicy.

Pure parts only: slices → endpoints (``changes``), which endpoints each kind of traffic uses
(``topology``), and the rules ``internalTrafficPolicy: Local`` gets. The lab test
(``tests/services/test_services_lab.py``) sends the packets.
"""

from __future__ import annotations

from objects import endpoint_slice, ep_port, port, service
from test_rules import build, rules

from labctl.proxy import chains
from labctl.proxy.changes import (
    EndpointsChangeTracker,
    UpdateResult,
    apply_endpoints_changes,
    endpoint_slice_to_map,
    service_to_port_map,
)
from labctl.proxy.topology import categorize_endpoints
from labctl.proxy.types import Endpoint

P80 = [ep_port("p80", 80)]


def merged(tracker: EndpointsChangeTracker) -> dict[str, list[str]]:
    """Port name → ``ip:port`` of every endpoint, after applying the tracker's changes."""
    endpoints: dict = {}
    apply_endpoints_changes(endpoints, tracker, UpdateResult())
    return {str(name): [str(ep) for ep in eps] for name, eps in endpoints.items()}


def test_conditions_read_as_kube_proxy_reads_them():
    s = endpoint_slice("ns1", "svc1", ["10.244.1.2"], P80, not_ready=["10.244.1.3"], terminating=["10.244.1.4"])
    s["endpoints"].append({"addresses": ["10.244.1.5"]})  # no conditions: ready and serving
    s["endpoints"].append({"addresses": ["10.244.1.6"], "conditions": {"ready": False, "terminating": True}})
    s["endpoints"].append({"addresses": []})  # no address: skipped
    ((name, eps),) = endpoint_slice_to_map(s).items()
    assert str(name) == "ns1/svc1:p80"
    assert [(ep.ip, ep.ready, ep.serving, ep.terminating) for ep in eps] == [
        ("10.244.1.2", True, True, False), ("10.244.1.3", False, False, False),
        ("10.244.1.4", False, True, True), ("10.244.1.5", True, True, False),
        ("10.244.1.6", False, True, True)]  # serving unset: serving, as kube-proxy reads it


def test_slices_that_are_not_a_services_ipv4_slice_are_ignored():
    no_label = endpoint_slice("ns1", "svc1", ["10.244.1.2"], P80)
    del no_label["metadata"]["labels"]["kubernetes.io/service-name"]
    ipv6 = {**endpoint_slice("ns1", "svc1", ["fd00::2"], P80), "addressType": "IPv6"}
    portless = endpoint_slice("ns1", "svc1", ["10.244.1.2"], [{"name": "p80", "protocol": "TCP"}])
    assert endpoint_slice_to_map(no_label) == endpoint_slice_to_map(ipv6) == {}
    assert endpoint_slice_to_map(portless) == {}


def test_a_services_slices_are_merged_and_a_deleted_slice_takes_only_its_endpoints():
    a = endpoint_slice("ns1", "svc1", ["10.244.1.2", "10.244.1.10"], P80, slice_name="svc1-aaaaa")
    b = endpoint_slice("ns1", "svc1", [("10.244.2.2", "node2"), "10.244.1.2"], P80, slice_name="svc1-bbbbb")
    t = EndpointsChangeTracker("node1")
    t.update(None, a)
    t.update(None, b)
    # one entry per ip:port (10.244.1.2 is in both), in numeric order
    assert merged(t) == {"ns1/svc1:p80": ["10.244.1.2:80", "10.244.1.10:80", "10.244.2.2:80"]}
    t.update(a, None)
    (change,) = t.drain().values()
    assert [str(e) for e in change.current[next(iter(change.current))]] == ["10.244.1.2:80", "10.244.2.2:80"]
    assert [str(e) for e in change.previous[next(iter(change.previous))]] == [
        "10.244.1.2:80", "10.244.1.10:80", "10.244.2.2:80"]


def test_a_slice_relabelled_to_another_service_moves_to_it():
    t = EndpointsChangeTracker()
    first = endpoint_slice("ns1", "svc1", ["10.244.1.2"], P80, slice_name="s-1")
    t.update(None, first)
    t.drain()
    moved = endpoint_slice("ns1", "svc2", ["10.244.1.2"], P80, slice_name="s-1")
    assert t.update(first, moved) is True
    changes = {str(svc): sorted(str(name) for name in c.current) for svc, c in t.drain().items()}
    assert changes == {"ns1/svc1": [], "ns1/svc2": ["ns1/svc2:p80"]}  # svc1 loses it, svc2 gets it
    unlabelled = endpoint_slice("ns1", "svc2", ["10.244.1.2"], P80, slice_name="s-1")
    del unlabelled["metadata"]["labels"]["kubernetes.io/service-name"]
    t.update(moved, unlabelled)
    (change,) = t.drain().values()
    assert change.current == {}


def test_ports_are_matched_by_name_across_slices():
    t = EndpointsChangeTracker()
    t.update(None, endpoint_slice("ns1", "web", ["10.244.1.2"], [ep_port("http", 8080)], slice_name="web-1"))
    t.update(None, endpoint_slice("ns1", "web", ["10.244.1.3"], [ep_port("dns", 5353, "UDP")], slice_name="web-2"))
    assert merged(t) == {"ns1/web:http": ["10.244.1.2:8080"], "ns1/web:dns": ["10.244.1.3:5353"]}


def test_a_condition_change_is_a_change_and_an_identical_update_is_none():
    t = EndpointsChangeTracker()
    ready = endpoint_slice("ns1", "svc1", ["10.244.1.2"], P80)
    t.update(None, ready)
    t.drain()
    assert t.update(ready, endpoint_slice("ns1", "svc1", ["10.244.1.2"], P80)) is False
    assert t.update(ready, endpoint_slice("ns1", "svc1", [], P80, not_ready=["10.244.1.2"])) is True


def ep(ip: str, node: str = "node1", ready: bool = True, serving: bool | None = None,
       terminating: bool = False) -> Endpoint:
    return Endpoint(ip, 80, node, ready, ready if serving is None else serving, terminating)


def port_info(**spec):
    return next(iter(service_to_port_map(service("ns1", "svc1", "172.30.0.41", [port("p80", 80)], **spec)).values()))


def test_ready_endpoints_serve_and_terminating_ones_only_when_none_is_ready():
    svc = port_info()
    ready, draining, gone = ep("10.244.1.2"), ep("10.244.1.3", ready=False, serving=True, terminating=True), \
        ep("10.244.1.4", ready=False, serving=False, terminating=True)
    got = categorize_endpoints([ready, draining, gone], svc, "node1")
    assert got.cluster == got.reachable == (ready,) and got.has_any
    got = categorize_endpoints([draining, gone], svc, "node1")
    assert got.cluster == (draining,) and got.has_any
    assert not categorize_endpoints([gone, ep("10.244.1.5", ready=False)], svc, "node1").has_any


def test_internal_local_uses_this_nodes_endpoints_only():
    svc = port_info(internalTrafficPolicy="Local")
    here, there = ep("10.244.1.2", "node1"), ep("10.244.2.2", "node2")
    got = categorize_endpoints([here, there], svc, "node1")
    assert got.cluster == () and got.local == got.reachable == (here,)
    got = categorize_endpoints([here, there], svc, "node2")
    assert got.local == (there,)
    none_here = categorize_endpoints([there], svc, "node1")
    assert none_here.local == () and none_here.has_any  # → DROP "has no local endpoints", not REJECT
    # a local endpoint draining is used even though another node has a ready one
    draining = ep("10.244.1.3", "node1", ready=False, serving=True, terminating=True)
    assert categorize_endpoints([draining, there], svc, "node1").local == (draining,)


SVC_CHAIN, SVL_CHAIN = (f"KUBE-{p}-XPGD46QRK7WJZT7O" for p in ("SVC", "SVL"))


def test_internal_traffic_policy_local_with_a_local_endpoint():
    svc = service("ns1", "svc1", "172.30.0.41", [port("p80", 80)], internalTrafficPolicy="Local")
    eps = endpoint_slice("ns1", "svc1", [("10.244.1.5", "node1"), ("10.244.2.5", "node2")], P80)
    text = build([svc], [eps])
    sep = chains.endpoint_chain("ns1/svc1:p80", "tcp", "10.244.1.5:80")
    assert rules(text, "nat") == [
        '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80'
        f" -j {SVL_CHAIN}",
        f'-A {SVL_CHAIN} -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80'
        " ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ",
        f'-A {SVL_CHAIN} -m comment --comment "ns1/svc1:p80 -> 10.244.1.5:80" -j {sep}',
        f"-A {sep} -m comment --comment ns1/svc1:p80 -s 10.244.1.5 -j KUBE-MARK-MASQ",
        f"-A {sep} -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.244.1.5:80",
    ]
    assert SVC_CHAIN not in text and "10.244.2.5" not in text  # the other node's endpoint is not reachable
    assert rules(text, "filter") == []


def test_internal_traffic_policy_local_without_a_local_endpoint_drops():
    svc = service("ns1", "svc1", "172.30.0.41", [port("p80", 80)], internalTrafficPolicy="Local")
    text = build([svc], [endpoint_slice("ns1", "svc1", [("10.244.2.5", "node2")], P80)])
    assert rules(text, "filter") == [
        '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no local endpoints" -m tcp -p tcp'
        " -d 172.30.0.41 --dport 80 -j DROP"]
    assert rules(text, "nat") == []


def test_internal_local_node_port_keeps_the_cluster_chain_for_external_traffic():
    svc = service("ns1", "svc1", "172.30.0.41", [port("p80", 80, node_port=30001)], type="NodePort",
                  internalTrafficPolicy="Local")
    text = build([svc], [endpoint_slice("ns1", "svc1", [("10.244.2.5", "node2")], P80)])
    nat = rules(text, "nat")
    assert f"-A KUBE-EXT-XPGD46QRK7WJZT7O -j {SVC_CHAIN}" in nat  # NodePort traffic: every node's endpoints
    assert any(r.startswith(f"-A {SVC_CHAIN} ") and "10.244.2.5:80" in r for r in nat)
    assert rules(text, "filter") == [
        '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no local endpoints" -m tcp -p tcp'
        " -d 172.30.0.41 --dport 80 -j DROP"]


def test_terminating_endpoints_get_the_traffic_when_none_is_ready():
    svc = service("ns1", "svc1", "172.30.0.41", [port("p80", 80)])
    text = build([svc], [endpoint_slice("ns1", "svc1", [], P80, not_ready=["10.244.1.9"],
                                        terminating=["10.244.1.8"])])
    assert "DNAT --to-destination 10.244.1.8:80" in text and "10.244.1.9" not in text
