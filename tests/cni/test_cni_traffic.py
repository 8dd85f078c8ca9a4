"""Real packets between pods wired by labctl-bridge, plus the IPAM's on-disk state."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from cni_helpers import Flavour, unique

pytestmark = pytest.mark.root

# ICMP echo over a raw socket: the test host has no ping binary.
PING = r"""
import socket, struct, sys
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); sock.settimeout(2)
hdr = struct.pack('!BBHHH', 8, 0, 0, 0x4c43, 1) + b'labctl'
sock.sendto(struct.pack('!BBHHH', 8, 0, csum(hdr), 0x4c43, 1) + b'labctl', (sys.argv[1], 0))
while True:
    data, addr = sock.recvfrom(1500)
    if data[20] == 0 and addr[0] == sys.argv[1]:
        print('reply from', addr[0]); break
"""

SERVER = r"""
import socket, sys
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('0.0.0.0', 8080)); srv.listen(1); print('listening', flush=True)
conn, peer = srv.accept(); conn.sendall(peer[0].encode()); conn.close()
"""

CLIENT = r"""
import socket, sys
s = socket.create_connection((sys.argv[1], 8080), timeout=5); print(s.recv(100).decode())
"""


def ip_of(result: dict[str, Any]) -> str:
    return str(result["ips"][0]["address"]).split("/")[0]


def test_two_pods_ping_and_tcp_keeps_source_ip(labctl: Flavour, netns_factory: Any) -> None:
    pod_a, pod_b = netns_factory(), netns_factory()
    a = ip_of(labctl.add(pod_a, unique("a")).out or {})
    b = ip_of(labctl.add(pod_b, unique("b")).out or {})
    assert "reply from " + b in pod_a.run(sys.executable, "-c", PING, b, timeout=10).stdout
    assert "reply from 10.244.1.1" in pod_b.run(sys.executable, "-c", PING, "10.244.1.1", timeout=10).stdout
    server = subprocess.Popen(["ip", "netns", "exec", pod_b.name, sys.executable, "-c", SERVER],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout and server.stdout.readline().strip() == "listening"
        seen_by_client = pod_a.run(sys.executable, "-c", CLIENT, b, timeout=10).stdout.strip()
    finally:
        server.kill()
        server.wait()
    assert seen_by_client == a  # no NAT between pods on one bridge: B sees A's real IP


def test_ipam_files_survive_restart_and_round_robin(labctl: Flavour, netns_factory: Any) -> None:
    """Each call is a new process, like an agent restart: state lives only in dataDir."""
    pods = [(netns_factory(), unique("c")) for _ in range(3)]
    ips = [ip_of(labctl.add(pod, cid).out or {}) for pod, cid in pods]
    assert ips == ["10.244.1.2", "10.244.1.3", "10.244.1.4"]
    store = labctl.data_dir / "labctl"
    assert (store / "10.244.1.3").read_text() == f"{pods[1][1]}\neth0"
    assert labctl.call("DEL", container_id=pods[1][1], netns=pods[1][0].path).rc == 0
    assert not (store / "10.244.1.3").exists()
    # round robin: the freed .3 is not handed out again straight away
    assert ip_of(labctl.add(netns_factory(), unique("c")).out or {}) == "10.244.1.5"


def test_host_veth_name_is_stable_and_on_cni0(labctl: Flavour, netns_factory: Any) -> None:
    from labctl.cni.bridge import host_veth_name

    pod, cid = netns_factory(), unique("c")
    result = labctl.add(pod, cid).out or {}
    assert result["interfaces"][1]["name"] == host_veth_name(cid, "eth0")
    ports = labctl.node.run("bridge", "link").stdout
    assert re.search(rf"{host_veth_name(cid, 'eth0')}@\S+: .* master cni0 state forwarding", ports), ports


@pytest.mark.parametrize("hairpin", [True, False], ids=["hairpin-on", "hairpin-off"])
def test_pod_reaches_a_service_backed_by_itself_only_with_hairpin(labctl: Flavour, netns_factory: Any, hairpin: bool) -> None:
    """The service proxy's classic case: ClusterIP DNAT back to the caller (br_netfilter is on in a netns).

    With br_netfilter the DNAT happens while the frame is being bridged, so the
    bridge must send it back out the port it came in on: that is hairpin mode.
    The MASQUERADE stands in for kube-proxy's KUBE-MARK-MASQ of a hairpin flow.
    """
    pod = netns_factory()
    a = ip_of(labctl.add(pod, unique("c"), conf=labctl.netconf(hairpinMode=hairpin)).out or {})
    labctl.node.run("iptables", "-t", "nat", "-A", "PREROUTING", "-d", "10.96.0.50", "-p", "tcp", "--dport", "80",
                    "-j", "DNAT", "--to-destination", f"{a}:8080")
    labctl.node.run("iptables", "-t", "nat", "-A", "POSTROUTING", "-s", a, "-d", a, "-j", "MASQUERADE")
    server = subprocess.Popen(["ip", "netns", "exec", pod.name, sys.executable, "-c", SERVER],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout and server.stdout.readline().strip() == "listening"
        client = pod.run(sys.executable, "-c", CLIENT.replace("8080", "80").replace("timeout=5", "timeout=2"),
                         "10.96.0.50", check=False, timeout=10)
    finally:
        server.kill()
        server.wait()
    if hairpin:
        assert client.stdout.strip() == "10.244.1.1", client.stderr
    else:
        assert client.returncode != 0 and "timed out" in client.stderr


def test_ip_masq_rule_follows_the_pod(labctl: Flavour, netns_factory: Any) -> None:
    pod, cid = netns_factory(), unique("c")
    conf = labctl.netconf(ipMasq=True)
    a = ip_of(labctl.add(pod, cid, conf=conf).out or {})
    rules = labctl.node.run("iptables", "-t", "nat", "-S", "POSTROUTING").stdout
    assert f"-s {a}/32 ! -d 10.244.1.0/24" in rules and "MASQUERADE" in rules and cid in rules
    assert labctl.call("DEL", container_id=cid, netns=pod.path, conf=conf).rc == 0
    assert cid not in labctl.node.run("iptables", "-t", "nat", "-S", "POSTROUTING").stdout


def test_gateway_mac_survives_pods_coming_and_going(labctl: Flavour, netns_factory: Any) -> None:
    first, cid = netns_factory(), unique("c")
    bridge_mac = (labctl.add(first, cid).out or {})["interfaces"][0]["mac"]
    labctl.add(netns_factory(), unique("c"))
    assert labctl.call("DEL", container_id=cid, netns=first.path).rc == 0
    assert bridge_mac in labctl.node.run("ip", "link", "show", "cni0").stdout


def test_promisc_mode_and_mtu_reach_the_kernel(labctl: Flavour, netns_factory: Any) -> None:
    pod = netns_factory()
    labctl.add(pod, unique("c"), conf=labctl.netconf(promiscMode=True, mtu=1400))
    assert "promiscuity 1" in labctl.node.run("ip", "-d", "link", "show", "cni0").stdout
    assert "mtu 1400" in pod.run("ip", "link", "show", "eth0").stdout
