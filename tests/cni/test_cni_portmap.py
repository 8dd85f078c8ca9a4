"""``labctl-portmap``: the reference portmap's nat layout, rule by rule, and hostPort traffic.

The pure rule builder is unit-tested; the plugin itself runs in a throwaway node netns and
its ``iptables-save`` is compared line for line with Debian's ``/usr/lib/cni/portmap`` run
on the same input. Traffic goes through the whole configuration list (bridge, then
portmap) exactly as the node agent invokes it.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cni_helpers import REPO, Flavour, unique

from labctl.cni.portmap_rules import (
    PortMapping,
    SavedNat,
    check_problem,
    dnat_chain_name,
    entry_rules,
    parse_port_mappings,
    setup_text,
    teardown_text,
)
from labctl.cni.types import CNIError

POD = ipaddress.IPv4Interface("10.244.1.5/24")
WEB = [PortMapping(8081, 80, "tcp"), PortMapping(5353, 53, "udp")]
PREV_RESULT = {"cniVersion": "1.0.0", "interfaces": [{"name": "cni0"}, {"name": "vethx"},
                                                      {"name": "eth0", "sandbox": "/run/netns/x"}],
               "ips": [{"address": "10.244.1.5/24", "gateway": "10.244.1.1", "interface": 2}]}
MAPPINGS = [{"hostPort": 8081, "containerPort": 80, "protocol": "tcp"},
            {"hostPort": 5353, "containerPort": 53, "protocol": "udp"}]


def restore_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line[:2] in ("-A", "-I", "-D", "-X")]


# -- the pure rule builder ------------------------------------------------------------------
def test_chain_name_is_the_reference_one() -> None:
    """Read from ``iptables-save`` after Debian's portmap ADD of container abc123 on network labctl."""
    assert dnat_chain_name("labctl", "abc123") == "CNI-DN-b7ae6ccdf51ecf0d36402"
    assert len(dnat_chain_name("n" * 80, "c" * 64)) == 28


def test_first_add_writes_the_reference_layout() -> None:
    chain = dnat_chain_name("labctl", "abc123")
    text = setup_text(SavedNat(set(), []), "labctl", "abc123", WEB, POD)
    assert text.startswith("*nat\n:CNI-HOSTPORT-DNAT - [0:0]\n:CNI-HOSTPORT-SETMARK - [0:0]\n:CNI-HOSTPORT-MASQ - [0:0]")
    assert restore_lines(text) == [
        "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
        "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT",
        '-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000',
        "-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE",
        '-I POSTROUTING 1 -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ',
        f"-A {chain} -s 10.244.1.0/24 -p tcp -m tcp --dport 8081 -j CNI-HOSTPORT-SETMARK",
        f"-A {chain} -s 127.0.0.1/32 -p tcp -m tcp --dport 8081 -j CNI-HOSTPORT-SETMARK",
        f"-A {chain} -p tcp -m tcp --dport 8081 -j DNAT --to-destination 10.244.1.5:80",
        f"-A {chain} -s 10.244.1.0/24 -p udp -m udp --dport 5353 -j CNI-HOSTPORT-SETMARK",
        f"-A {chain} -s 127.0.0.1/32 -p udp -m udp --dport 5353 -j CNI-HOSTPORT-SETMARK",
        f"-A {chain} -p udp -m udp --dport 5353 -j DNAT --to-destination 10.244.1.5:53",
        f'-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"labctl\\" id: \\"abc123\\"" '
        f"-m multiport --dports 8081 -j {chain}",
        f'-A CNI-HOSTPORT-DNAT -p udp -m comment --comment "dnat name: \\"labctl\\" id: \\"abc123\\"" '
        f"-m multiport --dports 5353 -j {chain}",
    ]


def _saved_after(text: str) -> SavedNat:
    """What iptables-save would print after applying ``text`` to an empty table (pure model)."""
    chains = {line[1:].split()[0] for line in text.splitlines() if line.startswith(":")}
    rules = [line.replace("-I POSTROUTING 1 ", "-A POSTROUTING ") for line in restore_lines(text)]
    return SavedNat(chains | {"PREROUTING", "OUTPUT", "POSTROUTING"}, rules)


def test_second_pod_and_re_add_leave_shared_chains_alone() -> None:
    first = _saved_after(setup_text(SavedNat(set(), []), "labctl", "pod-a", WEB, POD))
    other = setup_text(first, "labctl", "pod-b", [PortMapping(9090, 90)], ipaddress.IPv4Interface("10.244.1.6/24"))
    assert ":CNI-HOSTPORT-DNAT" not in other and ":CNI-HOSTPORT-SETMARK" not in other  # would flush pod-a's
    assert not [r for r in restore_lines(other) if "PREROUTING" in r or "POSTROUTING" in r]
    # pod-a again with only one port: its chain is refilled and the stale udp entry goes
    again = setup_text(first, "labctl", "pod-a", WEB[:1], POD)
    chain = dnat_chain_name("labctl", "pod-a")
    assert f":{chain} - [0:0]" in again
    assert [r for r in restore_lines(again) if r.startswith("-D")] == [
        "-D" + r[2:] for r in entry_rules("labctl", "pod-a", WEB[1:])]


def test_more_than_fifteen_ports_split_like_multiport_needs() -> None:
    many = [PortMapping(10000 + i, 80) for i in range(17)]
    rules = entry_rules("labctl", "c", many)
    assert len(rules) == 2 and "--dports 10000,10001," in rules[0] and "--dports 10015,10016 " in rules[1]


def test_host_ip_and_no_snat() -> None:
    rules = setup_text(SavedNat(set(), []), "labctl", "c", [PortMapping(8081, 80, "tcp", "172.30.0.3")], POD,
                       snat=False)
    chain = dnat_chain_name("labctl", "c")
    assert f"-A {chain} -d 172.30.0.3/32 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 10.244.1.5:80" in rules
    assert "SETMARK" not in rules and "MASQ" not in rules


def test_teardown_removes_chain_and_jumps_only() -> None:
    saved = _saved_after(setup_text(SavedNat(set(), []), "labctl", "c", WEB, POD))
    chain = dnat_chain_name("labctl", "c")
    text = teardown_text(saved, "labctl", "c")
    assert restore_lines(text) == ["-D" + r[2:] for r in entry_rules("labctl", "c", WEB)] + [f"-X {chain}"]
    assert teardown_text(saved, "labctl", "other") == ""


def test_check_names_what_is_missing() -> None:
    saved = _saved_after(setup_text(SavedNat(set(), []), "labctl", "c", WEB, POD))
    assert check_problem(saved, "labctl", "c", WEB, POD) == ""
    dnat = next(r for r in saved.rules if "DNAT --to-destination 10.244.1.5:80" in r)
    broken = SavedNat(saved.chains, [r for r in saved.rules if r != dnat])
    assert check_problem(broken, "labctl", "c", WEB, POD) == f"rule {dnat!r} not found in iptables table nat"
    assert "chain CNI-DN-" in check_problem(SavedNat(set(), []), "labctl", "c", WEB, POD)


@pytest.mark.parametrize("entries, field", [
    ("x", "'portMappings' must be a list"),
    ([{"hostPort": 0, "containerPort": 80}], "portMappings[0].hostPort"),
    ([{"hostPort": 80, "containerPort": 70000}], "portMappings[0].containerPort"),
    ([{"hostPort": 80, "containerPort": 80, "protocol": "icmp"}], "portMappings[0].protocol"),
    ([{"hostPort": 80, "containerPort": 80, "hostIP": "nope"}], "portMappings[0].hostIP"),
])
def test_bad_port_mappings_are_error_7_naming_the_entry(entries: Any, field: str) -> None:
    with pytest.raises(CNIError) as err:
        parse_port_mappings(entries)
    assert err.value.code == 7 and field in err.value.msg


def test_protocol_is_case_insensitive() -> None:
    assert parse_port_mappings([{"hostPort": 1, "containerPort": 2, "protocol": "UDP"}]) == [PortMapping(1, 2, "udp")]


# -- the plugin in a node netns -------------------------------------------------------------
def nat_rules(flavour: Flavour) -> list[str]:
    return [r for r in flavour.node.run("iptables-save", "-t", "nat").stdout.splitlines() if r.startswith("-A")]


def portmap_conf(flavour: Flavour, mappings: list[dict[str, Any]] | None = MAPPINGS) -> dict[str, Any]:
    conf: dict[str, Any] = {"cniVersion": "1.0.0", "name": "labctl", "type": flavour.portmap_type,
                            "capabilities": {"portMappings": True}, "prevResult": PREV_RESULT}
    if mappings is not None:
        conf["runtimeConfig"] = {"portMappings": mappings}
    return conf


@pytest.mark.root
def test_add_is_idempotent_and_del_removes_the_pod_chain(flavour: Flavour) -> None:
    """ADD, the same ADD again, DEL: both flavours pass prevResult on and end with no CNI-DN chain."""
    if not (flavour.cni_bin / flavour.portmap_type).exists():
        pytest.skip("reference portmap missing: apt-get install containernetworking-plugins")
    seen = []
    for command in ("ADD", "ADD", "DEL"):
        run = flavour.call(command, container_id="abc123", netns="/run/netns/x", conf=portmap_conf(flavour),
                           plugin=flavour.portmap_type)
        assert run.rc == 0, run
        if command == "ADD":
            assert (run.out or {})["ips"] == PREV_RESULT["ips"]
        seen.append(nat_rules(flavour))
    dnat = "-A CNI-DN-b7ae6ccdf51ecf0d36402 -p tcp -m tcp --dport 8081 -j DNAT --to-destination 10.244.1.5:80"
    assert dnat in seen[0]
    assert seen[0] == seen[1], "a second ADD must not duplicate rules"
    assert not [r for r in seen[2] if "CNI-DN-" in r]


@pytest.mark.root
def test_rules_equal_the_reference_line_for_line(labctl: Flavour, netns_factory: Any) -> None:
    if not (labctl.cni_bin / "portmap").exists():
        pytest.skip("reference portmap missing: apt-get install containernetworking-plugins")
    reference = Flavour("reference", "bridge", "host-local", node=netns_factory("lcn"), cni_bin=labctl.cni_bin,
                        data_dir=labctl.data_dir)
    for flavour in (labctl, reference):
        run = flavour.call("ADD", container_id="abc123", netns="/run/netns/x", conf=portmap_conf(flavour),
                           plugin=flavour.portmap_type)
        assert run.rc == 0, run
    assert nat_rules(labctl) == nat_rules(reference)
    for flavour in (labctl, reference):
        assert flavour.call("DEL", container_id="abc123", conf=portmap_conf(flavour), plugin=flavour.portmap_type).rc == 0
    assert nat_rules(labctl) == nat_rules(reference)


@pytest.mark.root
def test_check_and_delete_without_mappings(labctl: Flavour) -> None:
    """CHECK spots a deleted DNAT rule (101); DEL cleans up even when the runtime forgot the ports."""
    conf = portmap_conf(labctl)
    assert labctl.call("ADD", container_id="c1", netns="/run/netns/x", conf=conf, plugin="labctl-portmap").rc == 0
    assert labctl.call("CHECK", container_id="c1", netns="/run/netns/x", conf=conf, plugin="labctl-portmap").rc == 0
    chain = dnat_chain_name("labctl", "c1")
    labctl.node.run("iptables", "-t", "nat", "-D", chain, "-p", "tcp", "-m", "tcp", "--dport", "8081", "-j", "DNAT",
                    "--to-destination", "10.244.1.5:80")
    run = labctl.call("CHECK", container_id="c1", netns="/run/netns/x", conf=conf, plugin="labctl-portmap")
    assert run.rc == 1 and (run.out or {})["code"] == 101 and "10.244.1.5:80" in (run.out or {})["msg"]
    no_ports = portmap_conf(labctl, mappings=None)
    assert labctl.call("DEL", container_id="c1", conf=no_ports, plugin="labctl-portmap").rc == 0
    assert not [r for r in nat_rules(labctl) if chain in r]
    assert labctl.call("DEL", container_id="c1", conf=no_ports, plugin="labctl-portmap").rc == 0  # twice is fine


@pytest.mark.root
def test_add_without_mappings_touches_no_rules(labctl: Flavour) -> None:
    run = labctl.call("ADD", container_id="c2", netns="/run/netns/x", conf=portmap_conf(labctl, mappings=None),
                      plugin="labctl-portmap")
    assert run.rc == 0 and (run.out or {})["ips"] == PREV_RESULT["ips"]
    assert nat_rules(labctl) == []
    run = labctl.call("ADD", container_id="c2", netns="/run/netns/x",
                      conf={k: v for k, v in portmap_conf(labctl).items() if k != "prevResult"}, plugin="labctl-portmap")
    assert run.rc == 1 and "chained" in (run.out or {})["msg"]


SERVER = r"""
import socket
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('0.0.0.0', 80)); srv.listen(8); print('listening', flush=True)
while True:
    conn, peer = srv.accept(); conn.sendall(peer[0].encode()); conn.close()
"""
CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], 8081), timeout=3); print(s.recv(100).decode())
"""

# The node agent's call, made from inside the node netns (invoke execs plugins in its own netns).
AGENT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from labctl.cni import invoke
req = json.loads(sys.stdin.read())
kw = dict(cni_path=[req["cni_path"]], cache_dir=req["cache_dir"])
if req["command"] == "add":
    print(json.dumps(invoke.add(req["conf"], req["cid"], req["netns"], capability_args={"portMappings": req["mappings"]},
                                **kw)))
else:  # as the kubelet does: the ports and prevResult come from the cache
    invoke.delete(req["conf"], req["cid"], req["netns"], **kw)
"""


def agent(flavour: Flavour, command: str, cid: str, netns: str, conf: dict[str, Any]) -> dict[str, Any] | None:
    req = {"command": command, "conf": conf, "cid": cid, "netns": netns, "cni_path": str(flavour.cni_bin),
           "mappings": MAPPINGS[:1], "cache_dir": str(flavour.data_dir.parent / "cache")}
    proc = subprocess.run(["nsenter", f"--net={flavour.node.path}", sys.executable, "-c", AGENT, str(REPO)],
                          input=json.dumps(req), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout) if proc.stdout.strip() else None


@pytest.mark.root
def test_host_port_reaches_the_pod_from_the_node_and_a_neighbour(labctl: Flavour, netns_factory: Any) -> None:
    """bridge + portmap through :mod:`labctl.cni.invoke`: node:8081 → pod:80, then DEL removes the rules."""
    conf = labctl.conflist()
    labctl.node.run("ip", "link", "set", "lo", "up")
    web, neighbour = netns_factory(), netns_factory()
    web_cid = unique("c")
    result = agent(labctl, "add", web_cid, web.path, conf) or {}
    web_ip = result["ips"][0]["address"].split("/")[0]
    agent(labctl, "add", unique("c"), neighbour.path, conf)
    server = subprocess.Popen(["ip", "netns", "exec", web.name, sys.executable, "-c", SERVER],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout and server.stdout.readline().strip() == "listening"
        from_node = labctl.node.run(sys.executable, "-c", CLIENT, "127.0.0.1", check=False, timeout=10)
        # a pod on the same bridge calls its node's address: masqueraded, so the reply comes back via the node
        from_pod = neighbour.run(sys.executable, "-c", CLIENT, "10.244.1.1", check=False, timeout=10)
    finally:
        server.kill()
        server.wait()
    assert from_node.returncode == 0 and from_node.stdout.strip() == "10.244.1.1", from_node.stderr
    assert from_pod.returncode == 0 and from_pod.stdout.strip() == "10.244.1.1", from_pod.stderr
    assert any(f"--to-destination {web_ip}:80" in r for r in nat_rules(labctl))
    cached = json.loads((labctl.data_dir.parent / "cache" / "results" / f"labctl-{web_cid}-eth0").read_text())
    assert (cached["kind"], cached["capabilityArgs"], cached["result"]) == ("cniCacheV1", {"portMappings": MAPPINGS[:1]},
                                                                            result)
    agent(labctl, "del", web_cid, web.path, conf)
    assert not (labctl.data_dir.parent / "cache" / "results" / f"labctl-{web_cid}-eth0").exists()
    assert not [r for r in nat_rules(labctl) if dnat_chain_name("labctl", web_cid) in r]
    assert not (Path(labctl.data_dir) / "labctl" / web_ip).exists()
