"""The pure parsers against outputs captured on a real worker: rules, services, links, routes, conntrack."""

from __future__ import annotations

import json

from netfixtures import capture

from labctl.inspect.conntrack import entries_for, parse_conntrack
from labctl.inspect.links import Reservation, SandboxLabels, parse_bridge, parse_interfaces, pods_of
from labctl.inspect.routes import parse_routes
from labctl.inspect.ruleset import parse_rule, parse_ruleset
from labctl.inspect.services import service_ports, split_port_name
from labctl.proxy import chains

NODE_IPS = {"172.30.2.2": "control-plane", "172.30.2.3": "worker", "172.30.2.4": "worker2"}


def test_iptables_save_tables_chains_and_rules_in_order():
    rs = parse_ruleset(capture("worker.iptables-save.txt"))
    assert set(rs.tables) == {"filter", "nat"}
    assert rs.chain("nat", "PREROUTING").policy == "ACCEPT" and rs.chain("nat", "PREROUTING").builtin
    assert not rs.chain("nat", "KUBE-SERVICES").builtin
    svc = rs.chain("nat", "KUBE-SVC-6RQIX2OIXPYVR2LS").rules
    assert [r.position for r in svc] == [1, 2, 3, 4, 5]
    masq = svc[0]
    assert masq.target == "KUBE-MARK-MASQ" and masq.comment == "default/ex1-svc:web cluster IP"
    source = masq.match("source")
    assert source is not None and source.negated and source.value == "10.244.0.0/16"
    assert [r.value("probability") for r in svc[1:]] == ["0.25000000000", "0.33333333349", "0.50000000000", ""]
    assert svc[1].text.startswith("-A KUBE-SVC-6RQIX2OIXPYVR2LS -m comment --comment \"default/ex1-svc:web -> ")
    dnat = rs.chain("nat", "KUBE-SEP-N4OSF22F6NJALH33").rules[1]
    assert dnat.target == "DNAT" and dnat.target_option("to-destination") == "10.244.1.3:80"
    assert rs.chain("nat", "KUBE-MARK-MASQ").rules[0].target_option("set-xmark") == "0x4000/0x4000"


def test_a_traced_rule_parses_like_a_saved_one():
    saved = parse_ruleset(capture("worker.iptables-save.txt")).chain("nat", "KUBE-POSTROUTING").rules[0]
    traced = parse_rule("nat", "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN")
    assert (traced.chain, traced.target, traced.matches) == (saved.chain, saved.target, saved.matches)
    assert traced.args == "-m mark ! --mark 0x4000/0x4000 -j RETURN"


def test_services_from_kube_proxys_chains():
    ports = {p.name: p for p in service_ports(parse_ruleset(capture("worker.iptables-save.txt")))}
    assert set(ports) == {"default/ex1-svc:web", "default/ex1-svc-external:web", "default/kubernetes:https",
                          "kube-system/kube-dns:dns", "kube-system/kube-dns:dns-tcp"}
    web = ports["default/ex1-svc:web"]
    assert (web.cluster_ip, web.port, web.protocol, web.node_port) == ("10.111.134.244", 80, "tcp", 0)
    assert [c.chain for c in web.chains] == [chains.service_chain(chains.SVC_PREFIX, web.name, "tcp")]
    assert [e.address for e in web.endpoints] == ["10.244.1.3:80", "10.244.1.4:80", "10.244.2.2:80", "10.244.2.3:80"]
    # the probabilities as kube-proxy writes them, and what each endpoint gets of new connections
    assert [e.written for e in web.endpoints] == ["0.25000000000", "0.33333333349", "0.50000000000", ""]
    assert [round(e.probability, 4) for e in web.endpoints] == [0.25, 0.3333, 0.5, 1.0]
    assert all(abs(e.share - 0.25) < 1e-6 for e in web.endpoints)
    assert all(e.chain.startswith("KUBE-SEP-") and e.rules[-1].target == "DNAT" for e in web.endpoints)
    ext = ports["default/ex1-svc-external:web"]
    assert ext.node_port == 30000
    assert [c.role for c in ext.chains] == ["service", "external"] and ext.chains[1].chain == ext.ext_chain
    assert {r.chain for r in ext.entry_rules} == {"KUBE-SERVICES", "KUBE-NODEPORTS"}
    assert ports["kube-system/kube-dns:dns"].protocol == "udp"
    assert split_port_name("kube-system/kube-dns:dns-tcp") == ("kube-system", "kube-dns", "dns-tcp")


def test_the_rules_endpoints_are_the_apis_ready_endpoints():
    items = json.loads(capture("svc-ep.json"))["items"]
    ep = next(i for i in items if i["kind"] == "Endpoints" and i["metadata"]["name"] == "ex1-svc")
    api = {f"{a['ip']}:{p['port']}" for s in ep["subsets"] for a in s["addresses"] for p in s["ports"]}
    ports = {p.name: p for p in service_ports(parse_ruleset(capture("worker.iptables-save.txt")))}
    assert {e.address for e in ports["default/ex1-svc:web"].endpoints} == api


def test_a_service_without_endpoints_is_its_reject_rule():
    text = capture("worker.iptables-save.txt").replace("COMMIT\n# Completed", (
        '-A KUBE-SERVICES -d 10.96.5.5/32 -p tcp -m comment --comment "default/nobody:http has no endpoints" '
        "-m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable\nCOMMIT\n# Completed"), 1)
    nobody = next(p for p in service_ports(parse_ruleset(text)) if p.service == "nobody")
    assert (nobody.cluster_ip, nobody.port, nobody.endpoints) == ("10.96.5.5", 80, [])
    assert [r.target for r in nobody.reject_rules] == ["REJECT"]


def test_links_bridge_and_veths():
    links, addrs = capture("worker.ip-j-d-link.json"), capture("worker.ip-j-addr.json")
    interfaces = parse_interfaces(links, addrs)
    kinds = {i.name: i.kind for i in interfaces}
    assert kinds["cni0"] == "bridge" and kinds["lo"] == "loopback" and kinds["vethe541867f"] == "veth"
    bridge = parse_bridge("cni0", interfaces, capture("worker.bridge-j-link.json"), links, [], [])
    assert bridge is not None and [str(a) for a in bridge.addresses] == ["10.244.1.1/24"]
    assert [v.name for v in bridge.ports] == ["vethe541867f", "veth5aea2a43", "vethdd67eef9"]
    assert all(v.hairpin and v.port_state == "forwarding" and v.pod is None for v in bridge.ports)


def test_a_veth_is_tied_to_its_pod_through_the_cni_name_and_the_ipam_file():
    # labctl's CNI names the host end veth + sha256(containerID + ifname)[:8]
    sandbox = "d33f11947c81c0d5a362fd31205e8f75773a03b67e0ca18d7492933a987013c6"
    links = json.dumps([{"ifindex": 4, "ifname": "veth6d6471e2", "address": "fe:84:af:f8:7e:24", "master": "cni0",
                         "linkinfo": {"info_kind": "veth", "info_slave_data": {"hairpin": True}}},
                        {"ifindex": 2, "ifname": "cni0", "linkinfo": {"info_kind": "bridge"}}])
    reservations = [Reservation("10.244.1.3", sandbox, "eth0")]
    pods = pods_of(reservations, {sandbox: SandboxLabels(sandbox, "default", "web-1", "u1")}, "worker")
    bridge = parse_bridge("cni0", parse_interfaces(links, "[]"),
                          json.dumps([{"ifname": "veth6d6471e2", "master": "cni0", "state": "forwarding"}]),
                          links, pods, reservations)
    assert bridge is not None and str(bridge.ports[0].pod) == "default/web-1"
    assert bridge.ports[0].pod.ip == "10.244.1.3" and bridge.ports[0].pod.sandbox == sandbox


def test_routes_lead_to_nodes():
    routes = {r.destination: r for r in parse_routes(capture("worker.ip-j-route.json"), NODE_IPS)}
    assert (routes["10.244.0.0/24"].leads_to, routes["10.244.0.0/24"].node) == ("node", "control-plane")
    assert (routes["10.244.2.0/24"].leads_to, routes["10.244.2.0/24"].node) == ("node", "worker2")
    assert routes["10.244.2.0/24"].protocol == "labctl"
    assert routes["10.244.1.0/24"].leads_to == "bridge" and routes["10.244.1.0/24"].device == "cni0"
    assert routes["default"].leads_to == "host" and routes["172.30.2.0/24"].leads_to == "lab-network"


def test_conntrack_entries_show_the_nat():
    entries = parse_conntrack(capture("worker.conntrack-L-o-extended.txt"))
    assert len(entries) == 16
    api = [e for e in entries if e.original.dst == "10.96.0.1"]
    assert len(api) == 3 and all(e.dnat and not e.snat and e.reply.src == "172.30.2.2" for e in api)
    assert api[0].state == "ESTABLISHED" and "ASSURED" in api[0].flags
    dns = next(e for e in entries if e.protocol == "udp" and e.original.dst == "10.96.0.10")
    assert dns.dnat and dns.snat  # a node's query: DNAT to a DNS pod, masqueraded (ports rewritten)
    plain = next(e for e in entries if e.original.dport == 8080)
    assert not plain.dnat and not plain.snat
    assert {e.original.src for e in entries_for(entries, "10.244.1.2")} == {"10.244.1.2", "10.244.1.1", "172.30.2.4"}


def test_a_snapshot_with_conntrack_gives_each_address_its_connections():
    from labctl.cluster import NodeInfo
    from labctl.inspect.gather import SECTION_MARK, NodeOutput, build_network, split_sections

    output = (f"\n{SECTION_MARK}conntrack\n" + capture("worker.conntrack-L-o-extended.txt") + f"\n{SECTION_MARK}end\n")
    net = build_network("lab", [NodeOutput(NodeInfo("worker", "worker", "lab-worker", "172.30.2.3", "running"),
                                           split_sections(output))], {})
    worker = net.node("worker")
    assert len(worker.conntrack) == 16
    assert [e.reply.src for e in worker.conntrack_for("10.96.0.1")] == ["172.30.2.2"] * 3


def test_internal_traffic_policy_local_endpoints_are_the_local_chains():
    svl = chains.service_chain(chains.SVL_PREFIX, "default/itp:http", "tcp")
    sep = chains.endpoint_chain("default/itp:http", "tcp", "10.244.1.9:8080")
    text = capture("worker.iptables-save.txt")
    head, _, tail = text.rpartition("COMMIT")
    head = head.replace("*nat\n", f"*nat\n:{svl} - [0:0]\n:{sep} - [0:0]\n", 1)
    text = head + "\n".join([
        '-A KUBE-SERVICES -d 10.96.7.7/32 -p tcp -m comment --comment "default/itp:http cluster IP" -m tcp'
        f" --dport 80 -j {svl}",
        f'-A {svl} -m comment --comment "default/itp:http -> 10.244.1.9:8080" -j {sep}',
        f"-A {sep} -p tcp -m comment --comment default/itp:http -m tcp -j DNAT --to-destination 10.244.1.9:8080",
        "COMMIT"]) + tail
    itp = next(p for p in service_ports(parse_ruleset(text)) if p.service == "itp")
    assert [c.role for c in itp.chains] == ["local"]
    assert [(e.address, e.share) for e in itp.endpoints] == [("10.244.1.9:8080", 1.0)]
