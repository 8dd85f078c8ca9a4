"""The CNI daemon's netlink messages, read back with pyroute2's decoders.

rtnl builds them with pyroute2's message classes; these pin what it asks those classes to
encode (fields, attributes, nesting, the header), so a wrong field or attribute name is
caught here, without root, with a clear diff. The kernel tests (spec, daemon layout)
show the requests work.
"""

from __future__ import annotations

from typing import Any

from pyroute2.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST
from pyroute2.netlink.rtnl import RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import IFF_PROMISC, IFF_UP, ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from labctl.cni import rtnl


def _decode(cls: Any, kind: int, msg: Any) -> Any:
    msg["header"].update({"type": kind, "flags": NLM_F_REQUEST, "sequence_number": 1})
    msg.encode()
    decoded = cls(bytes(msg.data))
    decoded.decode()
    assert (decoded["header"]["type"], decoded["header"]["length"]) == (kind, len(msg.data))
    return decoded


def test_create_asks_to_fail_if_it_exists() -> None:
    assert rtnl.CREATE == NLM_F_CREATE | NLM_F_EXCL and not rtnl.CREATE & NLM_F_ACK


def test_veth_pair_request_carries_both_ends() -> None:
    peer = rtnl.veth_peer(name="eth0", mtu=1400, netns_fd=9, address="02:11:22:33:44:55")
    msg = _decode(ifinfmsg, RTM_NEWLINK, rtnl.link_msg(0, IFF_UP, IFF_UP, name="veth0123abcd", mtu=1400, master=7,
                                                       address="02:aa:bb:cc:dd:ee", kind="veth", info_data=peer))
    assert (msg["index"], msg["flags"], msg["change"]) == (0, 1, 1)
    assert [(k, msg.get_attr(k)) for k in ("IFLA_IFNAME", "IFLA_MTU", "IFLA_MASTER", "IFLA_ADDRESS")] == [
        ("IFLA_IFNAME", "veth0123abcd"), ("IFLA_MTU", 1400), ("IFLA_MASTER", 7), ("IFLA_ADDRESS", "02:aa:bb:cc:dd:ee")]
    assert msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") == "veth"
    decoded_peer = msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_DATA", "VETH_INFO_PEER")
    assert dict(decoded_peer["attrs"]) == {"IFLA_IFNAME": "eth0", "IFLA_MTU": 1400, "IFLA_NET_NS_FD": 9,
                                           "IFLA_ADDRESS": "02:11:22:33:44:55"}


def test_hairpin_is_bridge_port_data_addressed_by_name() -> None:
    msg = _decode(ifinfmsg, RTM_NEWLINK, rtnl.link_msg(name="veth0123abcd", bridge_port={"IFLA_BRPORT_MODE": 1}))
    assert (msg["index"], msg.get_attr("IFLA_IFNAME")) == (0, "veth0123abcd")
    assert msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") is None  # no "bridge_slave" kind: see link_msg
    assert msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_SLAVE_DATA", "IFLA_BRPORT_MODE") == 1


def test_address_and_route_requests_match_iproute2() -> None:
    addr = _decode(ifaddrmsg, RTM_NEWADDR, rtnl.addr_msg(3, "fd00::5", 64, 6))
    assert (addr["family"], addr["prefixlen"], addr["scope"], addr["index"]) == (10, 64, 0, 3)
    assert (addr.get_attr("IFA_LOCAL"), addr.get_attr("IFA_ADDRESS")) == ("fd00::5", "fd00::5")
    via = _decode(rtmsg, RTM_NEWROUTE, rtnl.route_msg("0.0.0.0", 0, "10.244.1.1", 3, 4))
    assert (via["family"], via["dst_len"], via["table"], via["proto"], via["scope"], via["type"]) == (2, 0, 254, 3, 0, 1)
    assert [(k, via.get_attr(k)) for k in ("RTA_DST", "RTA_GATEWAY", "RTA_OIF")] == [
        ("RTA_DST", "0.0.0.0"), ("RTA_GATEWAY", "10.244.1.1"), ("RTA_OIF", 3)]
    onlink = _decode(rtmsg, RTM_NEWROUTE, rtnl.route_msg("10.96.0.0", 12, "", 3, 4))
    assert (onlink["scope"], onlink.get_attr("RTA_GATEWAY")) == (253, None)  # `ip route add` without via: scope link


def test_parse_link_reads_index_flags_mac_and_kind() -> None:
    msg = ifinfmsg()
    msg["index"], msg["flags"] = 42, IFF_UP | IFF_PROMISC
    msg["attrs"] = [("IFLA_IFNAME", "cni0"), ("IFLA_MTU", 1500), ("IFLA_ADDRESS", "0a:58:0a:f4:01:01"),
                    ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]}), ("IFLA_TXQLEN", 1000)]
    msg.encode()
    link = rtnl.parse_link(bytes(msg.data))
    assert link == rtnl.Link(42, IFF_UP | IFF_PROMISC, "0a:58:0a:f4:01:01", "bridge")
