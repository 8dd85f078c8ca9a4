"""A whole lab read from captured node outputs, its JSON, and ``labctl net``/``trace --explain`` printing it."""

from __future__ import annotations

import contextlib
import json

import pytest
from netfixtures import _lab_document, example_network

from labctl.cli.main import run
from labctl.inspect import gather
from labctl.inspect.model import to_jsonable


def test_the_snapshot_script_output_splits_into_sections():
    sections = gather.split_sections(_lab_document()["nodes"][1]["output"])
    assert list(sections) == ["nodeconfig", "links", "addrs", "routes", "bridge", "ipam", "sysctl", "iptables", "end"]


def test_every_veth_is_tied_to_its_pod_and_every_endpoint_to_its_pod():
    net = example_network()
    assert [n.node for n in net.nodes] == ["control-plane", "worker", "worker2"]
    worker = net.node("worker")
    assert worker.pod_cidr == "10.244.1.0/24" and worker.cluster.cluster_domain == "cluster.local"
    assert {(v.pod.name, v.pod.ip) for v in worker.veths} == {("kube-dns-95cf665d4-k85gq", "10.244.1.2"),
                                                              ("example-1-gcsdw", "10.244.1.3"),
                                                              ("example-1-8dhs7", "10.244.1.4")}
    assert all(v.pod.node == "worker" and v.hairpin for v in worker.veths)
    for node in net.nodes:
        for port in node.services:
            for e in port.endpoints:
                assert e.pod is not None or e.ip == "172.30.1.2", (port.name, e.address)  # the API server: a node IP
    assert worker.sysctls["net.bridge.bridge-nf-call-iptables"] == "1"
    assert {(r.destination, r.node) for r in worker.routes if r.leads_to == "node"} == {
        ("10.244.0.0/24", "control-plane"), ("10.244.2.0/24", "worker2")}
    assert net.node_by_ip("172.30.1.200").node == "worker"  # it announces the LoadBalancer IP (eth0:lb)


def test_the_net_json_document():
    doc = to_jsonable(example_network())
    assert doc["schema"] == "labctl.dev/net/v1" and doc["gateway"] == "172.30.1.1"
    worker = doc["nodes"][1]
    assert set(worker) == {"node", "container", "role", "internalIP", "podCIDR", "interfaces", "bridge", "routes",
                           "services", "sysctls", "conntrack", "policies"}
    port = worker["bridge"]["ports"][0]
    assert set(port) == {"name", "index", "mac", "portState", "hairpin", "pod"}
    assert set(port["pod"]) == {"namespace", "name", "ip", "node", "sandbox", "uid"}
    svc = next(s for s in worker["services"] if s["name"] == "default/ex1-svc:web")
    assert svc["clusterIP"] == "10.111.206.202" and svc["endpoints"][0]["written"] == "0.25000000000"
    assert set(svc["endpoints"][0]["rules"][0]) == {"table", "chain", "position", "text", "comment", "target"}
    json.dumps(doc)  # nothing that is not JSON


@pytest.fixture
def fake_lab(monkeypatch):
    """``labctl net``/``trace`` against the captured lab instead of Docker."""
    import labctl.cluster
    import labctl.inspect

    @contextlib.contextmanager
    def open_lab(name=None):
        yield object()

    monkeypatch.setattr(labctl.cluster.Lab, "open", staticmethod(open_lab))
    monkeypatch.setattr(labctl.inspect, "read_lab", lambda lab, **kw: example_network())

    async def snapshot(lab, **kw):
        return example_network()

    monkeypatch.setattr("labctl.inspect.tracing.snapshot", snapshot)


def test_labctl_net_prints_pods_routes_and_services_without_hashes_alone(fake_lab, capsys):
    assert run(["net", "worker"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("node worker ") and "\nnode worker2 " not in text and "\nnode control-plane " not in text
    assert "veth6d6471e2" in text and "default/example-1-gcsdw" in text
    assert "node worker2's pods (host-gw)" in text
    assert "default/ex1-svc:web" in text and "0.33333333349 = 1/3" in text and "1 (last rule)" in text
    for line in text.splitlines():
        if "KUBE-SEP-" in line:  # an endpoint's chain is printed with its endpoint and pod
            assert "->" in line and ("pod " in line or "not a pod" in line or "node " in line), line


def test_labctl_net_json_for_some_nodes(fake_lab, capsys):
    assert run(["net", "worker2", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [n["node"] for n in doc["nodes"]] == ["worker2"] and len(doc["pods"]) == 6


def test_labctl_trace_explain(fake_lab, capsys):
    assert run(["trace", "example-1-gcsdw", "ex1-svc", "--explain"]) == 0
    text = capsys.readouterr().out
    assert "trace (explain)" in text and "KUBE-SVC-6RQIX2OIXPYVR2LS" in text
    assert all(f in text for f in ("= 1/4", "= 1/3", "= 1/2", "1 (last rule)"))
    assert "verdict: delivered" in text
    assert run(["trace", "example-1-gcsdw", "nobody", "--explain", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verdict"]["result"] == "rejected" and doc["hops"][doc["verdict"]["hop"]]["verdict"] == "REJECT"
