"""The pure parts of the pod-network checks: pods against their nodes' podCIDRs, what ADD configured
in a pod, the grader's connection in a conntrack table, a stub resolver's search order and dig's
answers, and the spellings of a kube-proxy probability."""

from __future__ import annotations

import pytest

from labctl.exercises.checks.frompod import arrival, parse_lookups, patience, search_order
from labctl.exercises.checks.podnet import parse_pod_interface, pod_ip_problems
from labctl.exercises.checks.proxyrules import probability_spellings
from labctl.inspect.conntrack import parse_conntrack

CIDRS = {"worker": "10.244.1.0/24", "worker2": "10.244.2.0/24"}
SEARCH = ("shop.svc.cluster.local", "svc.cluster.local", "cluster.local")


def pod(name: str, ip: str, node: str, ready: bool = True) -> dict:
    return {"metadata": {"name": name}, "spec": {"nodeName": node},
            "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def test_pods_with_their_own_ips_from_their_nodes_podcidrs_pass():
    problems, rows = pod_ip_problems([pod("a", "10.244.1.3", "worker"), pod("b", "10.244.2.3", "worker2")], CIDRS)
    assert not problems
    assert rows[0] == {"pod": "a", "ip": "10.244.1.3", "node": "worker", "podCIDR": "10.244.1.0/24"}


@pytest.mark.parametrize(("pods", "problem"), [
    ([pod("a", "10.244.2.3", "worker")], "a's IP 10.244.2.3 is not in the podCIDR of its node worker (10.244.1.0/24)"),
    ([pod("a", "10.244.1.3", "worker"), pod("b", "10.244.1.3", "worker")], "b and a have the same IP 10.244.1.3"),
    ([pod("a", "", "")], "a is not Ready (not scheduled)"),
    ([pod("a", "10.244.1.3", "worker", ready=False)], "a is not Ready (on worker)"),
    ([pod("a", "10.244.9.3", "worker9")], "a's IP 10.244.9.3 is not in the podCIDR of its node worker9 (none)"),
])
def test_what_breaks_the_rule_is_named(pods, problem):
    problems, _ = pod_ip_problems(pods, CIDRS)
    assert problem in problems


def test_the_address_and_gateway_add_configured_are_read_from_ip_json():
    text = ('[{"ifindex":2,"ifname":"eth0","addr_info":[{"family":"inet","local":"10.244.1.5","prefixlen":24}]}]\n'
            '[{"dst":"default","gateway":"10.244.1.1","dev":"eth0"}]\n')
    assert parse_pod_interface(text) == ("10.244.1.5/24", "10.244.1.1")
    assert parse_pod_interface('[{"ifname":"eth0","addr_info":[]}]\n[]\n') == ("", "")


CONNTRACK = (
    "ipv4 2 tcp 6 117 TIME_WAIT src=10.244.2.14 dst=10.244.1.13 sport=59767 dport=80 "
    "src=10.244.1.13 dst=10.244.2.14 sport=80 dport=59767 [ASSURED] mark=0 use=1\n"
    "ipv4 2 tcp 6 110 TIME_WAIT src=172.30.2.4 dst=10.244.1.13 sport=43479 dport=80 "
    "src=10.244.1.13 dst=172.30.2.4 sport=80 dport=43479 [ASSURED] mark=0 use=1\n")


def test_the_graders_connection_is_found_by_its_source_port_and_shows_whether_it_was_translated():
    entries = parse_conntrack(CONNTRACK)
    direct = arrival(entries, "10.244.1.13", 80, 59767)
    assert direct is not None and direct.original.src == "10.244.2.14" and not direct.snat
    masqueraded = arrival(entries, "10.244.1.13", 80, 43479)
    assert masqueraded is not None and masqueraded.original.src == "172.30.2.4"
    assert arrival(entries, "10.244.1.13", 80, 40000) is None
    assert arrival(entries, "10.244.1.99", 80, 59767) is None


def test_a_stub_resolver_tries_the_search_path_first_below_ndots():
    assert search_order("api", SEARCH, 5) == [
        "api.shop.svc.cluster.local.", "api.svc.cluster.local.", "api.cluster.local.", "api."]
    assert search_order("a.b.c.d.e.f", SEARCH, 5)[0] == "a.b.c.d.e.f."
    assert search_order("api.payments.svc.cluster.local.", SEARCH, 5) == ["api.payments.svc.cluster.local."]


def test_names_of_the_cluster_zone_get_more_patience_than_names_sent_upstream():
    assert patience("api.payments.svc.cluster.local.", SEARCH) == 2
    assert patience("api.", SEARCH) == 1


def test_dig_answers_and_silences_are_read_per_name():
    text = ("@@ db.shop.svc.cluster.local.\n"
            "db.shop.svc.cluster.local. 5\tIN\tCNAME\tPG1.prod.example.com.\n"
            "@@ api.\n;; communications error to 10.96.0.10#53: timed out\n;; no servers could be reached\n"
            "@@ api.cluster.local.\n\n")
    first, second, third = parse_lookups(text)
    assert first.records == (("CNAME", "pg1.prod.example.com."),) and not first.timed_out
    assert second.name == "api." and second.timed_out and not second.records
    assert not third.records and not third.timed_out


def test_a_probability_is_right_in_any_usual_spelling():
    right = probability_spellings("0.50000000000", 0.5)
    assert {"0.50000000000", "0.5", "1/2"} <= right
    assert "0.33333333349" not in right
    assert {"0.33333333349", "0.333", "1/3"} <= probability_spellings("0.33333333349", 0.33333333349)
    assert probability_spellings("", 1.0) == {"1", "1.0", "1/1"}
