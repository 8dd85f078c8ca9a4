"""The load-balancer announcer believes no Service status: only pool addresses, and none once cut off.

Pure choice functions, then the announcer's loop with its kernel side replaced by a recorder
and informers that the test makes fail.
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

import pytest

from labctl.agent import lbannounce
from labctl.agent.lbannounce import LBAnnouncer, announceable, announced_ips, refused_ips
from labctl.clusterconfig import ClusterConfig, NodeConfig, NodeLifecycleTimings, load_balancer_pool

POOL = load_balancer_pool("172.30.0.3")
CONTROL_PLANE_IP, WORKER_IP = "172.30.0.2", "172.30.0.3"


def node(name: str, ip: str, role: str = "worker") -> dict:
    labels = {"node-role.kubernetes.io/control-plane": ""} if role == "control-plane" else {}
    return {"metadata": {"name": name, "labels": labels},
            "status": {"conditions": [{"type": "Ready", "status": "True"}],
                       "addresses": [{"type": "InternalIP", "address": ip}]}}


def lb(name: str, *ips: object, cluster_ip: str = "10.96.0.50", lb_class: str | None = None) -> dict:
    spec = {"type": "LoadBalancer", "clusterIP": cluster_ip, "clusterIPs": [cluster_ip]}
    if lb_class:
        spec["loadBalancerClass"] = lb_class
    return {"metadata": {"name": name, "namespace": "default"}, "spec": spec,
            "status": {"loadBalancer": {"ingress": [{"ip": ip} for ip in ips]}}}


NODES = [node("worker", WORKER_IP)]


def test_the_pool_is_shared_with_the_controller():
    from labctl.controllers import loadbalancer
    assert loadbalancer.load_balancer_pool is load_balancer_pool
    assert POOL[0] == "172.30.0.200" and POOL[-1] == "172.30.0.250"


def test_the_hijack_patch_is_refused_the_pool_address_is_announced():
    services = [lb("hijack", CONTROL_PLANE_IP, lb_class="example.com/none"), lb("web", "172.30.0.200")]
    nodes = [*NODES, node("control-plane", CONTROL_PLANE_IP, "control-plane")]
    assert announced_ips("worker", services, nodes, {}, POOL) == {"172.30.0.200"}


@pytest.mark.parametrize("ip", [CONTROL_PLANE_IP, WORKER_IP, "172.30.0.1", "10.96.0.1", "8.8.8.8", "172.30.1.200",
                                "172.30.0.199", "172.30.0.251", "not an ip", "172.030.0.200"])
def test_nothing_outside_the_pool_is_ever_announced(ip):
    assert announced_ips("worker", [lb("x", ip)], NODES, {}, POOL) == set()


def test_a_pool_address_held_by_a_node_or_a_service_is_not_announced():
    nodes = [*NODES, node("worker9", "172.30.0.201")]  # a large lab: nodes reach the pool
    services = [lb("a", "172.30.0.201"), lb("b", "172.30.0.202"), lb("c", "172.30.0.203", cluster_ip="172.30.0.202")]
    assert announceable(POOL, services, nodes) == set(POOL) - {"172.30.0.201", "172.30.0.202"}
    assert refused_ips(services, announceable(POOL, services, nodes)) == {("default/a", "172.30.0.201"),
                                                                          ("default/b", "172.30.0.202")}


def test_malformed_ingress_entries_are_skipped():
    svc = lb("x")
    svc["status"]["loadBalancer"]["ingress"] = ["172.30.0.200", {"ip": 5}, {"hostname": "lb.example"},
                                               {"ip": "172.30.0.210"}]
    assert announced_ips("worker", [svc], NODES, {}, POOL) == {"172.30.0.210"}


# -- the loop: withdraw when cut off ----------------------------------------------------------
class FakeInformer:
    def __init__(self, items: list[dict]) -> None:
        self.items = items
        self.cache = {}
        self.synced = asyncio.Event()
        self.synced.set()
        self.failing = 0.0

    def list(self) -> list[dict]:
        return self.items

    def failing_for(self, now: float | None = None) -> float:
        return self.failing


@pytest.fixture
def announcer(monkeypatch):
    cfg = NodeConfig(ClusterConfig(lifecycle=NodeLifecycleTimings(node_monitor_grace_seconds=0.3)),
                     "worker", "worker", WORKER_IP, "10.244.1.0/24")
    synced: list[set[str]] = []

    def sync_addresses(_internal_ip: str, wanted: set[str]):
        synced.append(set(wanted))
        return set(), set()
    monkeypatch.setattr(lbannounce, "sync_addresses", sync_addresses)
    return SimpleNamespace(announcer=LBAnnouncer(cfg), synced=synced)


def test_addresses_are_withdrawn_once_the_api_is_gone_longer_than_the_grace_period(announcer, caplog):
    services, nodes, endpoints = FakeInformer([lb("web", "172.30.0.200")]), FakeInformer(NODES), FakeInformer([])

    async def scenario():
        task = asyncio.create_task(announcer.announcer.run(services, nodes, endpoints))
        try:
            await _until(lambda: announcer.synced and announcer.synced[-1] == {"172.30.0.200"})
            services.failing = 0.1  # a short hiccup: nothing changes
            announcer.announcer.dirty.set()
            await asyncio.sleep(0.05)
            assert announcer.synced[-1] == {"172.30.0.200"}
            services.failing = 1.0  # beyond the grace period: the cache can no longer be trusted
            await _until(lambda: announcer.synced[-1] == set(), timeout=3)
            services.failing = 0.0
            announcer.announcer.dirty.set()
            await _until(lambda: announcer.synced[-1] == {"172.30.0.200"}, timeout=3)
        finally:
            task.cancel()
    with caplog.at_level(logging.INFO, logger="labctl.lbannounce"):
        asyncio.run(scenario())
    text = caplog.text
    assert "cut off from the API server for more than 0s" in text and "the API server is back" in text


def test_a_refusal_is_logged_once_per_service_and_address(announcer, caplog):
    services = [lb("hijack", CONTROL_PLANE_IP, lb_class="example.com/none")]
    with caplog.at_level(logging.WARNING, logger="labctl.lbannounce"):
        for _ in range(3):
            assert announcer.announcer._wanted(services, NODES, {}) == set()
    assert caplog.text.count("refusing to announce 172.30.0.2 of Service default/hijack") == 1


async def _until(check, timeout: float = 2.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)
