"""The pure rule builder: the exact rules a student sees in ``iptables-save``.

Hashes are checked against kube-proxy's own test data (pkg/proxy/iptables/proxier_test.go):
ns1/svc1:p80 -> KUBE-SVC-XPGD46QRK7WJZT7O, its endpoint 10.180.0.1:80 -> KUBE-SEP-SXIVWICOYRO3J4NJ.
"""

from __future__ import annotations

from objects import endpoint_slice, ep_port, port, service

from labctl.proxy import chains
from labctl.proxy.chains import JUMP_CHAINS
from labctl.proxy.changes import EndpointsChangeTracker, UpdateResult, apply_endpoints_changes, service_to_port_map
from labctl.proxy.rules import NodeConfig, build_ruleset, declared_chains

SVC1 = "KUBE-SVC-XPGD46QRK7WJZT7O"
SEP1 = "KUBE-SEP-SXIVWICOYRO3J4NJ"
FIXED_NAT = [
    "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN",
    "-A KUBE-POSTROUTING -j MARK --xor-mark 0x4000",
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    "-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000",
]
NODEPORTS_TAIL = ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last'
                  ' rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS')


def build(svcs, eps=(), node="node1", existing=None, jumps=(), **cfg) -> str:
    services, endpoints_, tracker = {}, {}, EndpointsChangeTracker(node)
    for s in svcs:
        services.update(service_to_port_map(s))
    for e in eps:
        tracker.update(None, e)
    apply_endpoints_changes(endpoints_, tracker, UpdateResult())
    return build_ruleset(services, endpoints_, NodeConfig(node, **cfg), existing, jumps)


def rules(text: str, table: str) -> list[str]:
    """The ``-A``/``-I``/``-X`` lines of one table, fixed kube-proxy rules left out."""
    out, current = [], ""
    for line in text.splitlines():
        if line.startswith("*"):
            current = line[1:]
        elif current == table and line[:2] in ("-A", "-I", "-X") and line not in FIXED_NAT:
            if not line.startswith(("-A KUBE-FORWARD", "-A KUBE-FIREWALL")) and line != NODEPORTS_TAIL:
                out.append(line)
    return out


def chains_of(text: str, table: str) -> set[str]:
    return declared_chains(text)[table]


def test_chain_names_match_kube_proxy():
    assert chains.service_chain(chains.SVC_PREFIX, "ns1/svc1:p80", "tcp") == SVC1
    assert chains.endpoint_chain("ns1/svc1:p80", "tcp", "10.180.0.1:80") == SEP1
    assert chains.service_chain(chains.EXT_PREFIX, "ns2/svc2:p80", "tcp") == "KUBE-EXT-GNZBNJ2PO5MGZ6GT"
    assert chains.endpoint_chain("ns4/svc4:p80", "tcp", "10.180.0.5:80") == "KUBE-SEP-C6EBXVWJJZMIWKLZ"


def test_fixed_chains_and_rules_always_present():
    text = build([])
    assert text.startswith("*filter\n:KUBE-NODEPORTS - [0:0]\n:KUBE-SERVICES - [0:0]\n")
    for line in FIXED_NAT + [NODEPORTS_TAIL]:
        assert line in text.splitlines()
    assert '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 -j ACCEPT' in text
    assert chains_of(text, "nat") == {"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"}
    assert text.count("COMMIT") == 2 and rules(text, "nat") == []


def test_cluster_ip_without_endpoints_is_rejected_in_filter():
    text = build([service("ns1", "svc1", "172.30.0.41", [port("p80", 80)])])
    assert rules(text, "filter") == [
        '-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 has no endpoints" -m tcp -p tcp'
        " -d 172.30.0.41 --dport 80 -j REJECT"
    ]
    assert rules(text, "nat") == []
    assert SVC1 not in text


def test_cluster_ip_with_one_endpoint():
    text = build([service("ns1", "svc1", "172.30.0.41", [port("p80", 80)])],
                 [endpoint_slice("ns1", "svc1", ["10.180.0.1"], [ep_port("p80", 80)])])
    assert rules(text, "filter") == []
    assert rules(text, "nat") == [
        f'-A KUBE-SERVICES -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80 -j {SVC1}',
        f'-A {SVC1} -m comment --comment "ns1/svc1:p80 cluster IP" -m tcp -p tcp -d 172.30.0.41 --dport 80'
        " ! -s 10.244.0.0/16 -j KUBE-MARK-MASQ",
        f'-A {SVC1} -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -j {SEP1}',
        f"-A {SEP1} -m comment --comment ns1/svc1:p80 -s 10.180.0.1 -j KUBE-MARK-MASQ",
        f"-A {SEP1} -m comment --comment ns1/svc1:p80 -m tcp -p tcp -j DNAT --to-destination 10.180.0.1:80",
    ]
    assert {SVC1, SEP1} <= chains_of(text, "nat")


def test_three_endpoints_cascade_probabilities():
    text = build([service("ns1", "svc1", "172.30.0.41", [port("p80", 80)])],
                 [endpoint_slice("ns1", "svc1", ["10.180.0.3", "10.180.0.10", "10.180.0.2"], [ep_port("p80", 80)])])
    svc_rules = [r for r in rules(text, "nat") if r.startswith(f"-A {SVC1}") and "->" in r]
    seps = [chains.endpoint_chain("ns1/svc1:p80", "tcp", f"10.180.0.{i}:80") for i in (2, 3, 10)]
    assert svc_rules == [  # sorted numerically: .2, .3, .10
        f'-A {SVC1} -m comment --comment "ns1/svc1:p80 -> 10.180.0.2:80" -m statistic --mode random'
        f" --probability 0.3333333333 -j {seps[0]}",
        f'-A {SVC1} -m comment --comment "ns1/svc1:p80 -> 10.180.0.3:80" -m statistic --mode random'
        f" --probability 0.5000000000 -j {seps[1]}",
        f'-A {SVC1} -m comment --comment "ns1/svc1:p80 -> 10.180.0.10:80" -j {seps[2]}',
    ]
    for sep, ip in zip(seps, ("10.180.0.2", "10.180.0.3", "10.180.0.10")):
        assert f"-A {sep} -m comment --comment ns1/svc1:p80 -s {ip} -j KUBE-MARK-MASQ" in text


def test_not_ready_addresses_get_no_traffic():
    text = build([service("ns1", "svc1", "172.30.0.41", [port("p80", 80)])],
                 [endpoint_slice("ns1", "svc1", [], [ep_port("p80", 80)], not_ready=["10.180.0.9"])])
    assert "10.180.0.9" not in text and "has no endpoints" in text


def test_nodeport_cluster_policy_masquerades():
    ext = "KUBE-EXT-GNZBNJ2PO5MGZ6GT"
    text = build([service("ns2", "svc2", "172.30.0.42", [port("p80", 80, node_port=3001)], type="NodePort")],
                 [endpoint_slice("ns2", "svc2", ["10.180.0.2"], [ep_port("p80", 80)])])
    nat = rules(text, "nat")
    assert f"-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j {ext}" in nat
    assert nat[nat.index(f"-A KUBE-NODEPORTS -m comment --comment ns2/svc2:p80 -m tcp -p tcp --dport 3001 -j {ext}") + 2:][:2] == [
        f'-A {ext} -m comment --comment "masquerade traffic for ns2/svc2:p80 external destinations" -j KUBE-MARK-MASQ',
        f"-A {ext} -j KUBE-SVC-GNZBNJ2PO5MGZ6GT",
    ]
    assert NODEPORTS_TAIL == text.split("\n-X")[0].split("COMMIT")[1].strip().splitlines()[-1]


def test_nodeport_without_endpoints_rejected_on_local_addresses():
    text = build([service("ns2", "svc2", "172.30.0.42", [port("p80", 80, node_port=3001)], type="NodePort")])
    assert ('-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no endpoints" -m addrtype'
            " --dst-type LOCAL -m tcp -p tcp --dport 3001 -j REJECT") in rules(text, "filter")
    assert "KUBE-NODEPORTS -m comment" not in text


def test_nodeport_addresses_limit_the_tail_call():
    text = build([], nodeport_addresses=("172.18.0.2", "127.0.0.1"))
    assert "--dst-type LOCAL -j KUBE-NODEPORTS" not in text
    assert ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule'
            ' in this chain" -d 172.18.0.2 -j KUBE-NODEPORTS') in text


def test_load_balancer_ingress_ip_jumps_to_ext():
    svc = service("ns5", "svc5", "172.30.0.45", [port("p80", 80, node_port=3002)], type="LoadBalancer",
                  status={"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}]}})
    text = build([svc], [endpoint_slice("ns5", "svc5", ["10.180.0.3"], [ep_port("p80", 80)])])
    assert ('-A KUBE-SERVICES -m comment --comment "ns5/svc5:p80 loadbalancer IP" -m tcp -p tcp -d 5.6.7.8'
            " --dport 80 -j KUBE-EXT-NUKIZ6OKUXPJNT4C") in rules(text, "nat")
    empty = build([svc])
    assert ('-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns5/svc5:p80 has no endpoints" -m tcp -p tcp'
            " -d 5.6.7.8 --dport 80 -j REJECT") in rules(empty, "filter")


def test_load_balancer_source_ranges_use_fw_chain():
    fw = "KUBE-FW-NUKIZ6OKUXPJNT4C"
    svc = service("ns5", "svc5", "172.30.0.45", [port("p80", 80, node_port=3002)], type="LoadBalancer",
                  loadBalancerSourceRanges=[" 203.0.113.0/25"], status={"loadBalancer": {"ingress": [{"ip": "5.6.7.8"}]}})
    text = build([svc], [endpoint_slice("ns5", "svc5", ["10.180.0.3"], [ep_port("p80", 80)])])
    nat = rules(text, "nat")
    assert f'-A {fw} -m comment --comment "ns5/svc5:p80 loadbalancer IP" -s 203.0.113.0/25 -j KUBE-EXT-NUKIZ6OKUXPJNT4C' in nat
    assert f'-A {fw} -m comment --comment "other traffic to ns5/svc5:p80 will be dropped by KUBE-PROXY-FIREWALL"' in nat
    assert (f'-A KUBE-PROXY-FIREWALL -m comment --comment "ns5/svc5:p80 traffic not accepted by {fw}" -m tcp -p tcp'
            " -d 5.6.7.8 --dport 80 -j DROP") in rules(text, "filter")


def test_session_affinity_client_ip_uses_recent():
    svc = service("ns1", "svc1", "172.30.0.41", [port("p80", 80)], sessionAffinity="ClientIP",
                  sessionAffinityConfig={"clientIP": {"timeoutSeconds": 600}})
    text = build([svc], [endpoint_slice("ns1", "svc1", ["10.180.0.1", "10.180.0.2"], [ep_port("p80", 80)])])
    sep2 = chains.endpoint_chain("ns1/svc1:p80", "tcp", "10.180.0.2:80")
    nat = rules(text, "nat")
    svc_rules = [r for r in nat if r.startswith(f"-A {SVC1}")]
    assert svc_rules[1:] == [
        f'-A {SVC1} -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m recent --name {SEP1}'
        f" --rcheck --seconds 600 --reap -j {SEP1}",
        f'-A {SVC1} -m comment --comment "ns1/svc1:p80 -> 10.180.0.2:80" -m recent --name {sep2}'
        f" --rcheck --seconds 600 --reap -j {sep2}",
        f'-A {SVC1} -m comment --comment "ns1/svc1:p80 -> 10.180.0.1:80" -m statistic --mode random'
        f" --probability 0.5000000000 -j {SEP1}",
        f'-A {SVC1} -m comment --comment "ns1/svc1:p80 -> 10.180.0.2:80" -j {sep2}',
    ]
    assert (f"-A {SEP1} -m comment --comment ns1/svc1:p80 -m recent --name {SEP1} --set -m tcp -p tcp"
            " -j DNAT --to-destination 10.180.0.1:80") in nat


def test_named_ports_match_endpoints_by_name_and_target_port():
    svc = service("ns2", "web", "10.96.0.20", [port("http", 80, target=8080), port("dns", 53, "UDP")])
    eps = endpoint_slice("ns2", "web", ["10.244.1.5"], [ep_port("dns", 5353, "UDP"), ep_port("http", 8080)])
    text = build([svc], [eps])
    assert "-m comment --comment ns2/web:http -m tcp -p tcp -j DNAT --to-destination 10.244.1.5:8080" in text
    assert "-m comment --comment ns2/web:dns -m udp -p udp -j DNAT --to-destination 10.244.1.5:5353" in text
    assert '-m comment --comment "ns2/web:dns cluster IP" -m udp -p udp -d 10.96.0.20 --dport 53' in text


def test_unnamed_single_port_comment_has_no_port_suffix():
    text = build([service("default", "kubernetes", "10.96.0.1", [port("", 443)])],
                 [endpoint_slice("default", "kubernetes", ["172.18.0.2"], [ep_port("", 6443)])])
    assert '-m comment --comment "default/kubernetes cluster IP" -m tcp -p tcp -d 10.96.0.1 --dport 443' in text


def test_headless_and_external_name_services_are_ignored():
    headless = service("ns1", "h", "None", [port("p", 80)])
    external = service("ns1", "x", "", [port("p", 80)], type="ExternalName", externalName="example.com")
    assert rules(build([headless, external]), "nat") == [] and rules(build([headless, external]), "filter") == []


def test_external_traffic_policy_local_with_local_endpoint():
    svc = service("ns2", "svc2", "172.30.0.42", [port("p80", 80, node_port=3001)], type="NodePort",
                  externalTrafficPolicy="Local")
    eps = endpoint_slice("ns2", "svc2", [("10.244.1.5", "node1"), ("10.244.2.5", "node2")], [ep_port("p80", 80)])
    text = build([svc], [eps])
    ext, svc_chain, svl = (f"KUBE-{p}-GNZBNJ2PO5MGZ6GT" for p in ("EXT", "SVC", "SVL"))
    sep_local = chains.endpoint_chain("ns2/svc2:p80", "tcp", "10.244.1.5:80")
    nat = rules(text, "nat")
    assert [r for r in nat if r.startswith(f"-A {ext}")] == [
        f'-A {ext} -m comment --comment "pod traffic for ns2/svc2:p80 external destinations" -s 10.244.0.0/16 -j {svc_chain}',
        f'-A {ext} -m comment --comment "masquerade LOCAL traffic for ns2/svc2:p80 external destinations"'
        " -m addrtype --src-type LOCAL -j KUBE-MARK-MASQ",
        f'-A {ext} -m comment --comment "route LOCAL traffic for ns2/svc2:p80 external destinations"'
        f" -m addrtype --src-type LOCAL -j {svc_chain}",
        f"-A {ext} -j {svl}",
    ]
    assert [r for r in nat if r.startswith(f"-A {svl}")] == [
        f'-A {svl} -m comment --comment "ns2/svc2:p80 -> 10.244.1.5:80" -j {sep_local}'
    ]
    assert rules(text, "filter") == []


def test_external_traffic_policy_local_without_local_endpoint_drops():
    svc = service("ns2", "svc2", "172.30.0.42", [port("p80", 80, node_port=3001)], type="NodePort",
                  externalTrafficPolicy="Local")
    text = build([svc], [endpoint_slice("ns2", "svc2", [("10.244.2.5", "node2")], [ep_port("p80", 80)])])
    assert rules(text, "filter") == [
        '-A KUBE-EXTERNAL-SERVICES -m comment --comment "ns2/svc2:p80 has no local endpoints" -m addrtype'
        " --dst-type LOCAL -m tcp -p tcp --dport 3001 -j DROP"
    ]
    assert "KUBE-SVL-GNZBNJ2PO5MGZ6GT" not in text
    assert "-A KUBE-SERVICES -m comment --comment \"ns2/svc2:p80 cluster IP\"" in text  # pods still reach it


def test_stale_service_chains_are_deleted_and_foreign_chains_left_alone():
    existing = {"nat": {SVC1, SEP1, "KUBE-SERVICES", "DOCKER", "KUBE-XLB-OLD"}}
    text = build([], existing=existing)
    assert set(rules(text, "nat")) == {f"-X {SVC1}", f"-X {SEP1}", "-X KUBE-XLB-OLD"}
    assert f":{SVC1} - [0:0]" in text and "DOCKER" not in text
    assert declared_chains(text)["nat"] == {"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"}


def test_missing_jumps_are_inserted_once():
    text = build([], jumps=JUMP_CHAINS)
    assert '-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in text
    assert ('-I FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals"'
            " -j KUBE-SERVICES") in text
    assert "-I " not in build([])
