"""A flushed table heals: kube-proxy's canary chains, Docker's embedded-DNS rules remembered.

Pure parts first (what is missing, what gets written back), then the real thing in a
throwaway network namespace: a proxier with the canary watch, Docker's DNS rules as a node
has them, ``iptables -t nat -F`` (and ``-X``), and the clock until all of it is back.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid

import pytest

from labctl.proxy import Proxier
from labctl.proxy.canary import CANARY_RULE, CanaryWatch, is_canary_loss, missing_canaries, repair_text
from labctl.proxy.dockerdns import missing_docker_dns, parse_docker_dns

DOCKER_DNS = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER_OUTPUT - [0:0]
:DOCKER_POSTROUTING - [0:0]
-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT
-A POSTROUTING -d 127.0.0.11/32 -j DOCKER_POSTROUTING
-A DOCKER_OUTPUT -d 127.0.0.11/32 -p tcp -m tcp --dport 53 -j DNAT --to-destination 127.0.0.11:34485
-A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:53460
-A DOCKER_POSTROUTING -s 127.0.0.11/32 -p tcp -m tcp --sport 34485 -j SNAT --to-source :53
-A DOCKER_POSTROUTING -s 127.0.0.11/32 -p udp -m udp --sport 53460 -j SNAT --to-source :53
COMMIT
"""
FLUSHED = """\
*nat
:PREROUTING ACCEPT [0:0]
:INPUT ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:POSTROUTING ACCEPT [0:0]
:DOCKER_OUTPUT - [0:0]
:DOCKER_POSTROUTING - [0:0]
:KUBE-PROXY-CANARY - [0:0]
COMMIT
"""
WITH_CANARIES = "".join(f"*{t}\n:KUBE-PROXY-CANARY - [0:0]\n{CANARY_RULE}\nCOMMIT\n" for t in ("mangle", "filter")) \
    + DOCKER_DNS.replace("COMMIT", f":KUBE-PROXY-CANARY - [0:0]\n{CANARY_RULE}\nCOMMIT")


# -- pure ---------------------------------------------------------------------------------------
def test_docker_dns_rules_are_read_from_a_nodes_nat_table():
    saved = parse_docker_dns(DOCKER_DNS)
    assert saved is not None and len(saved.chain_rules) == 4
    assert saved.jumps == ("-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT",
                           "-A POSTROUTING -d 127.0.0.11/32 -j DOCKER_POSTROUTING")
    assert parse_docker_dns(FLUSHED) is None  # nothing worth remembering in a flushed table
    assert missing_docker_dns(saved, DOCKER_DNS) == []


def test_a_flushed_nat_table_gets_dockers_chains_refilled_and_its_jumps_back():
    saved = parse_docker_dns(DOCKER_DNS)
    lines = missing_docker_dns(saved, FLUSHED)
    assert lines[:1] == [":DOCKER_OUTPUT - [0:0]"] and ":DOCKER_POSTROUTING - [0:0]" in lines
    assert set(saved.chain_rules) | set(saved.jumps) <= set(lines)
    only_jump_lost = DOCKER_DNS.replace("-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT\n", "")
    assert missing_docker_dns(saved, only_jump_lost) == ["-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT"]


def test_only_tables_without_a_whole_canary_get_it_written_again():
    assert missing_canaries(WITH_CANARIES) == {}
    recreate = [":KUBE-PROXY-CANARY - [0:0]", CANARY_RULE]
    assert missing_canaries(FLUSHED) == {"mangle": recreate, "nat": recreate, "filter": recreate}
    text = repair_text(FLUSHED, parse_docker_dns(DOCKER_DNS))
    nat = text.split("*nat\n", 1)[1].split("COMMIT", 1)[0].splitlines()
    assert nat.index(":DOCKER_POSTROUTING - [0:0]") < nat.index(CANARY_RULE)  # declarations first
    assert repair_text(WITH_CANARIES, parse_docker_dns(DOCKER_DNS)) == ""


def test_canary_events_are_told_from_our_own_writes():
    assert is_canary_loss(' EVENT: -4 -t nat -D KUBE-PROXY-CANARY -m comment --comment "x" -j RETURN')
    assert is_canary_loss(" EVENT: -4 -t mangle -X KUBE-PROXY-CANARY")
    assert not is_canary_loss(" EVENT: -4 -t nat -N KUBE-PROXY-CANARY")
    assert not is_canary_loss(" EVENT: -4 -t nat -D KUBE-SERVICES -d 10.96.0.1/32 -j KUBE-SVC-X")


class FakeIPTables:
    prefix = ()

    def __init__(self, state: str) -> None:
        self.state, self.restores = state, []

    def save(self, table=None) -> str:
        return self.state

    def restore(self, text: str, noflush: bool = True) -> None:
        self.restores.append(text)


def test_the_first_check_creates_canaries_later_losses_repair_and_resync():
    ipt, losses = FakeIPTables(DOCKER_DNS), []
    watch = CanaryWatch(ipt, lambda: losses.append(1), events=False)
    assert watch.check(initial=True) and not losses and "KUBE-PROXY-CANARY" in ipt.restores[0]
    ipt.state = WITH_CANARIES
    assert watch.check() and len(ipt.restores) == 1
    ipt.state = FLUSHED
    assert not watch.check() and losses == [1] and watch.losses == 1
    assert "127.0.0.11:53460" in ipt.restores[-1]  # Docker's rules from the copy seen before


# -- real iptables in a throwaway network namespace -----------------------------------------------
def sh(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def netns():
    if os.geteuid() != 0:
        pytest.skip("needs root: a network namespace and iptables rules")
    name = f"canary{uuid.uuid4().hex[:6]}"
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
        subprocess.run(["ip", "netns", "exec", name, "iptables-restore", "--noflush"], input=DOCKER_DNS,
                       text=True, check=True, capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


def nat(ns: str) -> str:
    return sh("ip", "netns", "exec", ns, "iptables-save", "-t", "nat")


def whole(ns: str) -> bool:
    text = nat(ns)
    return all(s in text for s in ("-j KUBE-SERVICES", "KUBE-SVC-", "DNAT --to-destination 10.244.1.5:8080",
                                   "-j DOCKER_OUTPUT", "127.0.0.11:53460", "KUBE-PROXY-CANARY"))


def wait_whole(ns: str, timeout: float) -> float:
    started = time.monotonic()
    while not whole(ns):
        assert time.monotonic() - started < timeout, f"rules not back within {timeout}s:\n{nat(ns)}"
        time.sleep(0.02)
    return time.monotonic() - started


@pytest.mark.root
@pytest.mark.parametrize("flush", [("-F",), ("-F", "-X")], ids=["F", "F-X"])
def test_a_flushed_nat_table_is_whole_again_within_a_second(netns, flush):
    p = Proxier("node1", node_ips=["192.168.77.2"], command_prefix=("ip", "netns", "exec", netns),
                watch_canaries=True, min_sync_interval=0.05)
    p.on_service_add({"metadata": {"namespace": "default", "name": "web"},
                      "spec": {"type": "ClusterIP", "clusterIP": "10.96.0.50",
                               "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}})
    p.on_endpoint_slice_add({"metadata": {"namespace": "default", "name": "web-abcde",
                                          "labels": {"kubernetes.io/service-name": "web"}},
                             "addressType": "IPv4", "endpoints": [{"addresses": ["10.244.1.5"], "nodeName": "node1"}],
                             "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
    p.on_synced()
    p.start()
    try:
        wait_whole(netns, 10)
        for _ in range(3):  # every time, not just once
            for flag in flush:  # -X may find the chains refilled already: then it fails, as on a node
                subprocess.run(["ip", "netns", "exec", netns, "iptables", "-t", "nat", flag], capture_output=True)
            took = wait_whole(netns, 1.0)
            print(f"nat {' '.join(flush)}: whole again after {took * 1000:.0f} ms")
    finally:
        p.stop()
    assert p.canaries.losses == 3
