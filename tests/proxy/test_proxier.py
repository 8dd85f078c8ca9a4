"""Trackers, the proxier's sync logic and the bounded-frequency runner, with fakes for iptables."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from objects import endpoint_slice, ep_port, port, service

from labctl.client.waiting import wait_for
from labctl.proxy.changes import EndpointsChangeTracker, ServiceChangeTracker
from labctl.proxy.iptables import IPTablesError, build_cleanup, parse_saved_state
from labctl.proxy.proxier import Proxier, resolve_nodeport_addresses
from labctl.proxy.runner import BoundedFrequencyRunner

SVC1 = "KUBE-SVC-XPGD46QRK7WJZT7O"


class FakeIPTables:
    """Records restores; ``save()`` returns a canned iptables-save text."""

    def __init__(self, saved: str = "*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n") -> None:
        self.saved = saved
        self.restores: list[str] = []
        self.saves = 0
        self.fail_next = 0

    def save(self, table=None) -> str:
        self.saves += 1
        return self.saved

    def restore(self, text: str, noflush: bool = True) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise IPTablesError("failed to restore iptables rules", ["iptables-restore"], "boom", 1)
        self.restores.append(text)


class FakeConntrack:
    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args)) or True


def svc1(**spec):
    return service("ns1", "svc1", "172.30.0.41", [port("p80", 80, spec.pop("protocol", "TCP"))], **spec)


def eps1(*ips, protocol="TCP"):
    return endpoint_slice("ns1", "svc1", list(ips), [ep_port("p80", 80, protocol)])


def make_proxier():
    ipt, ct = FakeIPTables(), FakeConntrack()
    return Proxier("node1", ["172.18.0.3"], iptables=ipt, conntrack=ct), ipt, ct


def test_tracker_collapses_and_drops_noop_changes():
    t = ServiceChangeTracker()
    assert t.update(None, svc1()) is True
    assert t.update(svc1(), svc1(clusterIP="172.30.0.99")) is True
    assert len(t) == 1
    assert t.update(svc1(clusterIP="172.30.0.99"), None) is False  # added then deleted: nothing to do
    assert len(t) == 0
    assert t.update(svc1(), svc1()) is False


def test_endpoints_tracker_keys_by_port_name():
    t = EndpointsChangeTracker()
    t.update(None, eps1("10.244.1.2", "10.244.1.3"))
    (change,) = t.drain().values()
    ((name, eps),) = change.current.items()
    assert str(name) == "ns1/svc1:p80" and [str(e) for e in eps] == ["10.244.1.2:80", "10.244.1.3:80"]


def test_no_sync_until_both_initial_lists_are_synced():
    p, ipt, _ = make_proxier()
    p.on_service_add(svc1())
    p.on_services_synced()
    assert p.sync() is False and ipt.restores == []
    p.on_endpoint_slices_synced()
    assert p.sync() is True and len(ipt.restores) == 1


def test_first_sync_reads_state_later_syncs_do_not():
    p, ipt, _ = make_proxier()
    p.on_synced()
    p.sync()
    p.sync()
    assert ipt.saves == 1
    assert '-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in ipt.restores[0]
    assert "-I " not in ipt.restores[1]  # jumps are inserted once, never duplicated


def test_deleting_a_service_deletes_its_chains():
    p, ipt, _ = make_proxier()
    p.on_service_add(svc1())
    p.on_endpoint_slice_add(eps1("10.244.1.2"))
    p.on_synced()
    p.sync()
    assert f":{SVC1} - [0:0]" in ipt.restores[-1]
    p.on_service_delete(svc1())
    p.on_endpoint_slice_delete(eps1("10.244.1.2"))
    p.sync()
    assert f"-X {SVC1}" in ipt.restores[-1].splitlines()
    p.sync()
    assert SVC1 not in ipt.restores[-1]


def test_failed_restore_keeps_changes_and_rereads_state():
    p, ipt, _ = make_proxier()
    p.on_synced()
    p.on_service_add(svc1())
    p.on_endpoint_slice_add(eps1("10.244.1.2"))
    ipt.fail_next = 1
    with pytest.raises(IPTablesError, match="failed to restore iptables rules"):
        p.sync()
    p.sync()
    assert ipt.saves == 2 and SVC1 in ipt.restores[-1]


def test_removed_udp_endpoint_flushes_conntrack():
    p, _, ct = make_proxier()
    p.on_service_add(svc1(protocol="UDP"))
    p.on_endpoint_slice_add(eps1("10.244.1.2", "10.244.1.3", protocol="UDP"))
    p.on_synced()
    p.sync()
    assert ("clear_entries_for_ip", "172.30.0.41") in ct.calls  # 0 -> 2 endpoints: drop REJECT-era entries
    ct.calls.clear()
    p.on_endpoint_slice_update(eps1("10.244.1.2", "10.244.1.3", protocol="UDP"), eps1("10.244.1.2", protocol="UDP"))
    p.sync()
    assert ct.calls == [("clear_entries_for_nat", "172.30.0.41", "10.244.1.3")]


def test_tcp_endpoint_changes_do_not_touch_conntrack():
    p, _, ct = make_proxier()
    p.on_service_add(svc1())
    p.on_endpoint_slice_add(eps1("10.244.1.2", "10.244.1.3"))
    p.on_synced()
    p.sync()
    p.on_endpoint_slice_update(eps1("10.244.1.2", "10.244.1.3"), eps1("10.244.1.2"))
    p.sync()
    assert ct.calls == []


def test_nodeport_addresses_resolve_against_node_ips():
    assert resolve_nodeport_addresses(None, ["172.18.0.3"]) is None
    assert resolve_nodeport_addresses(["172.18.0.0/16", "127.0.0.0/8"], ["172.18.0.3", "10.0.0.1"]) == (
        "172.18.0.3", "127.0.0.1")


SAVED = """*filter
:INPUT ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service portals" -j KUBE-EXTERNAL-SERVICES
COMMIT
*nat
:PREROUTING ACCEPT [0:0]
:KUBE-SERVICES - [0:0]
:KUBE-SVC-AAAA - [0:0]
:DOCKER - [0:0]
-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
COMMIT
"""


def test_parse_saved_state_finds_our_chains_and_present_jumps():
    state = parse_saved_state(SAVED)
    assert state.chains["nat"] == {"KUBE-SERVICES", "KUBE-SVC-AAAA"}
    missing = {(j.table, j.src_chain, j.dst_chain) for j in state.missing_jumps}
    assert ("nat", "PREROUTING", "KUBE-SERVICES") not in missing
    assert ("filter", "INPUT", "KUBE-EXTERNAL-SERVICES") not in missing
    assert ("nat", "OUTPUT", "KUBE-SERVICES") in missing


def test_cleanup_removes_jumps_then_chains():
    text = build_cleanup(SAVED)
    assert '-D PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in text
    assert "-X KUBE-SVC-AAAA" in text and "DOCKER" not in text


def test_runner_coalesces_bursts():
    calls = []
    r = BoundedFrequencyRunner(lambda: calls.append(time.monotonic()), min_interval=0.2, max_interval=60)
    r.start()
    try:
        started = time.monotonic()
        for _ in range(50):  # a burst of requests over about one min_interval
            r.run()
            time.sleep(0.004)
        burst = time.monotonic() - started
        # once a run has started after the last request, no request is left (max_interval is a minute)
        wait_for(lambda: not r._pending, timeout=5, interval=0.01, what="a run after the last request")
    finally:
        r.stop()  # lets that run finish
    # one run at once, at most one per min_interval while the requests come, one after them: a
    # burst of 0.2 s costs at most 3 runs however slowly the machine went through it
    assert 1 <= len(calls) <= 2 + int(burst / 0.2)
    assert all(b - a >= 0.19 for a, b in itertools.pairwise(calls))


def test_runner_retries_after_failure_with_backoff():
    attempts = []
    done = threading.Event()

    def flaky():
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise RuntimeError("restore failed")
        done.set()

    r = BoundedFrequencyRunner(flaky, min_interval=0.01, max_interval=60, retry_initial=0.05)
    r.start()
    r.run()
    try:
        assert done.wait(3)
    finally:
        r.stop()
    assert r.failures == 2 and r.runs == 1
    assert attempts[1] - attempts[0] >= 0.045  # first retry after 0.05 s
    assert attempts[2] - attempts[1] >= 0.09  # then doubled


def test_partial_sync_rewrites_only_changed_services():
    p, ipt, _ = make_proxier()
    other = service("ns1", "other", "172.30.0.50", [port("p80", 80)])
    other_eps = endpoint_slice("ns1", "other", ["10.244.1.9"], [ep_port("p80", 80)])
    for obj in (svc1(), other):
        p.on_service_add(obj)
    p.on_endpoint_slice_add(eps1("10.244.1.2"))
    p.on_endpoint_slice_add(other_eps)
    p.on_synced()
    p.sync()
    other_chain = p.services[next(n for n in p.services if n.name == "other")].svc_chain
    p.on_endpoint_slice_update(eps1("10.244.1.2"), eps1("10.244.1.3"))
    p.sync()
    text = ipt.restores[-1]
    assert f":{SVC1} - [0:0]" in text and "--to-destination 10.244.1.3:80" in text
    assert f":{other_chain}" not in text  # untouched chains stay in the kernel as they are
    assert f"-j {other_chain}" in text  # but KUBE-SERVICES, rewritten whole, still jumps there
    assert "-X KUBE-SEP-" in text  # the replaced endpoint's chain goes
    p.sync(full=True)
    assert f":{other_chain}" in ipt.restores[-1]
