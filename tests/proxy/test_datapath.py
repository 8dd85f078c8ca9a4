"""Packets through real rules: a node netns with a bridge, pods, and the proxier's iptables.

These run the real ``iptables-restore`` in a throwaway netns, so the host is untouched.
"""

from __future__ import annotations

import collections
import subprocess
import time

import pytest
from netns import Topology
from objects import endpoint_slice, ep_port, port, service

from labctl.proxy import Proxier

pytestmark = pytest.mark.root
BACKENDS = ["10.244.1.11", "10.244.1.12", "10.244.1.13"]


@pytest.fixture(scope="module")
def topo():
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces, veths, a bridge and iptables rules")
    t = Topology()
    try:
        t.create(backends=3)
        yield t
    finally:
        t.destroy()


@pytest.fixture(scope="module")
def proxier(topo):
    p = Proxier("node1", node_ips=[topo.node_ext_ip], command_prefix=("ip", "netns", "exec", topo.node),
                min_sync_interval=0.05)
    p.on_synced()
    p.start()
    p.sync()  # the first ruleset is in before any test reads the node (the runner's may still be on its way)
    yield p
    p.stop()


def apply(p: Proxier, svc: dict, eps: dict | None = None) -> None:
    p.on_service_add(svc)
    if eps is not None:
        p.on_endpoint_slice_add(eps)
    p.sync()


def web(name: str, ip: str, **spec) -> dict:
    return service("default", name, ip, [port("http", 80, node_port=spec.pop("node_port", 0), target=8080)], **spec)


def web_eps(name: str, ips=BACKENDS) -> dict:
    return endpoint_slice("default", name, list(ips), [ep_port("http", 8080)])


def save_nat(topo: Topology) -> str:
    return subprocess.run(["ip", "netns", "exec", topo.node, "iptables-save", "-t", "nat"],
                          capture_output=True, text=True, check=True).stdout


def test_cluster_ip_spreads_over_all_backends_and_keeps_client_ip(topo, proxier):
    apply(proxier, web("spread", "10.96.0.11"), web_eps("spread"))
    out = topo.connect(topo.client, "10.96.0.11", 80, 200)
    assert out["errors"] == []
    hits = collections.Counter(backend for backend, _ in out["answers"])
    assert set(hits) == set(BACKENDS), hits
    assert min(hits.values()) >= 20, f"uneven balancing over 200 requests: {hits}"
    # The backend on the client's own bridge sees the real pod IP: br_netfilter un-DNATs its reply.
    assert {peer for _, peer in out["answers"]} == {"10.244.1.20"}


def test_hairpin_backend_reaches_its_own_service(topo, proxier):
    apply(proxier, web("hairpin", "10.96.0.12"), web_eps("hairpin"))
    out = topo.connect(topo.backend(0), "10.96.0.12", 80, 30)
    assert out["errors"] == []
    to_self = [peer for backend, peer in out["answers"] if backend == BACKENDS[0]]
    assert to_self, "no request landed on the calling pod; hairpin path untested"
    # KUBE-SEP's "-s <podIP> -j KUBE-MARK-MASQ": the pod sees the bridge IP, not itself.
    assert set(to_self) == {"10.244.1.1"}


def test_service_without_endpoints_is_rejected_fast(topo, proxier):
    apply(proxier, web("empty", "10.96.0.13"))
    out = topo.connect(topo.client, "10.96.0.13", 80, 3)
    assert out["errors"] == ["ConnectionRefusedError"] * 3
    assert max(out["seconds"]) < 1.0


def test_nodeport_from_outside_the_pod_network(topo, proxier):
    apply(proxier, web("np", "10.96.0.14", type="NodePort", node_port=30080), web_eps("np"))
    out = topo.connect(topo.outside, topo.node_ext_ip, 30080, 30)
    assert out["errors"] == []
    assert {backend for backend, _ in out["answers"]} <= set(BACKENDS)
    # externalTrafficPolicy: Cluster masquerades, so replies come back through this node.
    assert {peer for _, peer in out["answers"]} == {"10.244.1.1"}


def test_nodeport_on_localhost_of_the_node(topo, proxier):
    apply(proxier, web("nplo", "10.96.0.15", type="NodePort", node_port=30081), web_eps("nplo"))
    out = topo.connect(topo.node, "127.0.0.1", 30081, 5)
    assert out["errors"] == [] and len(out["answers"]) == 5


def test_load_balancer_ingress_ip_from_outside(topo, proxier):
    svc = web("lb", "10.96.0.16", type="LoadBalancer", node_port=30082,
              status={"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}})
    apply(proxier, svc, web_eps("lb"))
    # The outside host routes the LB IP via the node (its default gateway), as a cloud LB would deliver it.
    out = topo.connect(topo.outside, "203.0.113.10", 80, 10)
    assert out["errors"] == [] and len(out["answers"]) == 10


def test_local_policy_keeps_client_ip_on_nodeport(topo, proxier):
    eps = endpoint_slice("default", "local", [("10.244.1.11", "node1"), ("10.244.1.12", "node2")], [ep_port("http", 8080)])
    apply(proxier, web("local", "10.96.0.17", type="NodePort", node_port=30083, externalTrafficPolicy="Local"), eps)
    out = topo.connect(topo.outside, topo.node_ext_ip, 30083, 10)
    assert out["errors"] == []
    assert {tuple(a) for a in out["answers"]} == {("10.244.1.11", topo.outside_ip)}


def test_deleting_a_service_removes_its_chains_within_a_second(topo, proxier):
    svc, eps = web("gone", "10.96.0.18"), web_eps("gone")
    apply(proxier, svc, eps)
    info = next(i for n, i in proxier.services.items() if n.name == "gone")
    assert f":{info.svc_chain}" in save_nat(topo)
    start = time.monotonic()
    proxier.on_service_delete(svc)  # through the runner, as the node agent does it
    proxier.on_endpoint_slice_delete(eps)
    while info.svc_chain in save_nat(topo):
        assert time.monotonic() - start < 1.0, "chains still present after 1 s"
        time.sleep(0.02)
    assert "10.96.0.18" not in save_nat(topo)


def test_kube_proxy_layout_in_iptables_save(topo, proxier):
    nat = save_nat(topo)
    for line in ('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
                 '-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
                 '-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING',
                 "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000"):
        assert line in nat.splitlines()
    assert nat.count('-j KUBE-SERVICES') == 2  # jumps inserted once, however many syncs ran
