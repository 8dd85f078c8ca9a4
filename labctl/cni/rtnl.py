"""rtnetlink on a plain blocking socket: the few requests the CNI daemon sends, built with pyroute2's messages.

Why not pyroute2's ``IPRoute``: in 0.9 the synchronous ``IPRoute`` runs every request
through an asyncio loop of its own, ~0.6 ms of CPU per request (74 % of a daemon ADD,
a dozen requests). Its message classes cost far less: they build each request
here (``ifinfmsg``, ``ifaddrmsg``, ``rtmsg`` and their nested attributes, ``.encode()``,
50-250 µs a message) and read each answer (``nlmsgerr``, ``ifinfmsg``, ``.decode()``,
~200 µs for a link), so no layout or attribute number of the kernel's ABI is written out
here; that is ~1.6 of the daemon's ~3 ms of CPU per ADD (``docs/benchmarks-cni.md``). What this
module adds is the socket: one blocking ``AF_NETLINK`` socket, one request and its one
answer at a time, and of the answers only what an ADD needs (the ack's error; a link's
index, flags, MAC and kind). pyroute2 decodes an attribute only when it is read.

The node agent's host-gw routes (:mod:`labctl.cni.routes`) and load balancer addresses
(:mod:`labctl.agent.lbannounce`) use the same socket, with :meth:`Socket.dump` for the
routes and addresses they read: pyroute2's ``IPRoute`` would import 73 more of its modules
(about 8 MiB and 0.06 s of CPU in every node agent at start) for the same few requests.

The messages are the ones iproute2 sends for the same ``ip`` commands (:mod:`labctl.cni.links`;
hairpin's kind aside, see :func:`link_msg`), so the kernel ends in the same state either way
(``tests/cni/test_cni_rtnl_unit.py`` pins them). A :class:`Socket` belongs to the netns of
the thread that opened it, and to one thread at a time.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
from typing import Any, TypedDict, Unpack

from pyroute2.netlink import (
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_EXCL,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    nlmsg,
    nlmsgerr,
)
from pyroute2.netlink.rtnl import RTM_DELADDR, RTM_GETADDR, RTM_GETLINK, RTM_GETROUTE, RTM_NEWADDR, rtprotos, rtypes
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
from pyroute2.netlink.rtnl.rtmsg import RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, rtmsg

from labctl.cni.types import Record

#: what ``ip link add`` / ``ip addr add`` / ``ip route add`` ask for: create, and fail if it exists
CREATE = NLM_F_CREATE | NLM_F_EXCL
#: the main routing table (<linux/rtnetlink.h> RT_TABLE_MAIN): pyroute2 names no table constant
RT_TABLE_MAIN = 254
#: struct nlmsghdr: length, type, flags, sequence number, port id
_HEADER = struct.Struct("=IHHII")


class NetlinkError(OSError):
    """The kernel refused a request; ``errno`` is its code."""

    def __init__(self, code: int) -> None:
        super().__init__(code, os.strerror(code))


class Link(Record):
    """What the daemon reads of a link."""

    __slots__ = ("flags", "index", "kind", "mac")

    def __init__(self, index: int, flags: int, mac: str, kind: str) -> None:
        self.index, self.flags, self.mac, self.kind = index, flags, mac, kind


class LinkAttrs(TypedDict, total=False):
    """The attributes a link request may set, for a link and a veth's peer alike (``""``, ``0``
    and a ``netns_fd`` below 0 mean "not set")."""

    name: str       # IFLA_IFNAME
    mtu: int        # IFLA_MTU
    master: int     # IFLA_MASTER: the bridge's index
    address: str    # IFLA_ADDRESS: the MAC
    netns_fd: int   # IFLA_NET_NS_FD: move the link into this network namespace


#: LinkAttrs' keys and their netlink attributes, in the order iproute2 sends them
_LINK_NLAS = (("name", "IFLA_IFNAME"), ("mtu", "IFLA_MTU"), ("master", "IFLA_MASTER"), ("address", "IFLA_ADDRESS"))


def _link_fields(index: int = 0, flags: int = 0, change: int = 0, **link: Unpack[LinkAttrs]) -> dict[str, Any]:
    """An ifinfomsg's fields and attributes, as pyroute2 takes them (a link or a veth's peer)."""
    attrs: list[tuple[str, Any]] = [(nla, value) for key, nla in _LINK_NLAS if (value := link.get(key))]
    netns_fd = link.get("netns_fd", -1)
    if netns_fd >= 0:  # 0 is a file descriptor like any other
        attrs.append(("IFLA_NET_NS_FD", netns_fd))
    return {"index": index, "flags": flags, "change": change, "attrs": attrs}


def link_msg(index: int = 0, flags: int = 0, change: int = 0, *, kind: str = "",
             info_data: dict[str, Any] | None = None, bridge_port: dict[str, int] | None = None,
             **link: Unpack[LinkAttrs]) -> ifinfmsg:
    """An ifinfmsg: the link by ``index`` or else by ``name``; ``flags`` under mask ``change``.

    ``info_data`` is ``IFLA_INFO_DATA`` of ``kind`` (:func:`veth_peer`); ``bridge_port`` the
    link's ``IFLA_BRPORT_*`` settings as a port of its bridge (``IFLA_INFO_SLAVE_DATA``).
    """
    msg = ifinfmsg()
    msg.update(_link_fields(index, flags, change, **link))
    info: list[tuple[str, Any]] = []
    if kind:
        info.append(("IFLA_INFO_KIND", kind))
    if info_data:
        info.append(("IFLA_INFO_DATA", info_data))
    if bridge_port:
        # iproute2 names the port's type with IFLA_INFO_KIND "bridge_slave" (``type bridge_slave``);
        # that kind is no link type, and since Linux 6.13 rtnetlink tries to load a module for an
        # unknown kind (request_module) before it looks at the link. IFLA_INFO_SLAVE_KIND "bridge"
        # (how the kernel itself reports a port) tells pyroute2 the data's layout, and the kernel,
        # which reads the port settings by the link's master, ignores it.
        info += [("IFLA_INFO_SLAVE_KIND", "bridge"), ("IFLA_INFO_SLAVE_DATA", {"attrs": list(bridge_port.items())})]
    if info:
        msg["attrs"].append(("IFLA_LINKINFO", {"attrs": info}))
    return msg


def veth_peer(**link: Unpack[LinkAttrs]) -> dict[str, Any]:
    """``IFLA_INFO_DATA`` of a veth: its peer, described like a link."""
    return {"attrs": [("VETH_INFO_PEER", _link_fields(**link))]}


def addr_msg(index: int, address: str, prefixlen: int, version: int, *, label: str = "") -> ifaddrmsg:
    """``ip addr add ADDRESS/PREFIXLEN dev INDEX [label LABEL]``: local and address both set, as iproute2 does."""
    attrs: list[tuple[str, Any]] = [("IFA_LOCAL", address), ("IFA_ADDRESS", address)]
    if label:
        attrs.append(("IFA_LABEL", label))
    msg = ifaddrmsg()
    msg.update({"family": socket.AF_INET if version == 4 else socket.AF_INET6, "prefixlen": prefixlen,
                "scope": RT_SCOPE_UNIVERSE, "index": index, "attrs": attrs})
    return msg


def route_msg(dst: str, dst_len: int, gateway: str, oif: int, version: int, *,
              proto: int = rtprotos["RTPROT_BOOT"]) -> rtmsg:
    """``ip route add DST/LEN [via GATEWAY] [dev OIF] [proto PROTO]`` in the main table.

    Protocol boot is what ``ip route add`` sets by default; link scope without a gateway.
    No ``oif`` (0): the kernel picks the device that reaches the gateway.
    """
    attrs: list[tuple[str, Any]] = [("RTA_DST", dst)]
    if gateway:
        attrs.append(("RTA_GATEWAY", gateway))
    if oif:
        attrs.append(("RTA_OIF", oif))
    msg = rtmsg()
    msg.update({"family": socket.AF_INET if version == 4 else socket.AF_INET6, "dst_len": dst_len,
                "table": RT_TABLE_MAIN, "proto": proto,
                "scope": RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK, "type": rtypes["RTN_UNICAST"],
                "attrs": attrs})
    return msg


def _family_msg(cls: Any, family: int) -> Any:
    """The request of a dump of one address family (``ip -4 route``): ``cls`` with only its family set."""
    msg = cls()
    msg["family"] = family
    return msg


def _decoded(cls: Any, data: bytes) -> Any:
    msg = cls(data)
    msg.decode()
    return msg


def parse_link(data: bytes) -> Link:
    """The index, flags, MAC and kind of an RTM_NEWLINK message; no other attribute is decoded."""
    msg = ifinfmsg(data)
    msg.decode()
    return Link(msg["index"], msg["flags"], msg.get_attr("IFLA_ADDRESS") or "",
                msg.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") or "")


class Socket:
    """A NETLINK_ROUTE socket in the netns of the thread that opens it (it stays bound there)."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE)
        self._sock.bind((0, 0))  # no multicast groups: only answers to our own requests arrive
        self._seq = 0

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> Socket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _answer(self, kind: int, flags: int, msg: nlmsg) -> bytes | None:
        """Send one request; return the message answering it (None for an ack), raising the kernel's error.

        Each answer is a datagram of its own (these are no dumps), so one ``recv`` reads one message.
        """
        self._seq += 1
        seq = self._seq
        msg["header"].update({"type": kind, "flags": flags | NLM_F_REQUEST, "sequence_number": seq, "pid": 0})
        msg.encode()
        self._sock.send(msg.data)
        while True:
            data = self._sock.recv(65536)
            header = nlmsg(data)
            header.decode()  # the header alone: nlmsg has no fields or attributes
            if header["header"]["sequence_number"] != seq:  # an answer to an earlier request that raised
                continue
            if header["header"]["type"] != NLMSG_ERROR:
                return data
            ack = nlmsgerr(data)
            ack.decode()
            if ack["error"]:
                raise NetlinkError(-ack["error"])
            return None

    def dump(self, kind: int, msg: Any) -> list[bytes]:
        """A dump (``RTM_GET*`` with ``NLM_F_DUMP``): every message of the answer, undecoded.

        A dump's answer spans datagrams of several messages each, up to ``NLMSG_DONE``.
        """
        self._seq += 1
        seq = self._seq
        msg["header"].update({"type": kind, "flags": NLM_F_REQUEST | NLM_F_DUMP, "sequence_number": seq, "pid": 0})
        msg.encode()
        self._sock.send(msg.data)
        out: list[bytes] = []
        while True:
            data = self._sock.recv(1 << 16)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, typ, _flags, number, _pid = _HEADER.unpack_from(data, offset)
                part = data[offset:offset + length]
                offset += max((length + 3) & ~3, _HEADER.size)
                if number != seq:  # an answer to an earlier request that raised
                    continue
                if typ == NLMSG_DONE:
                    return out
                if typ == NLMSG_ERROR:
                    ack = nlmsgerr(part)
                    ack.decode()
                    if ack["error"]:
                        raise NetlinkError(-ack["error"])
                    continue
                out.append(part)

    def addresses(self, family: int) -> list[ifaddrmsg]:
        """Every address of ``family`` on every link (``ip -4 addr``), decoded."""
        return [_decoded(ifaddrmsg, d) for d in self.dump(RTM_GETADDR, _family_msg(ifaddrmsg, family))]

    def routes(self, family: int) -> list[rtmsg]:
        """Every route of ``family`` in every table (``ip -4 route show table all``), decoded."""
        return [_decoded(rtmsg, d) for d in self.dump(RTM_GETROUTE, _family_msg(rtmsg, family))]

    def add_address(self, index: int, address: str, prefixlen: int, version: int, *, label: str = "") -> None:
        """``ip addr add ADDRESS/PREFIXLEN dev INDEX [label LABEL]``."""
        self.request(RTM_NEWADDR, addr_msg(index, address, prefixlen, version, label=label), CREATE)

    def delete_address(self, index: int, address: str, prefixlen: int, version: int) -> None:
        """``ip addr del ADDRESS/PREFIXLEN dev INDEX``."""
        self.request(RTM_DELADDR, addr_msg(index, address, prefixlen, version))

    def request(self, kind: int, msg: nlmsg, flags: int = 0) -> None:
        """A change (``RTM_NEW*``/``RTM_DEL*``), acknowledged by the kernel."""
        self._answer(kind, flags | NLM_F_ACK, msg)

    def link(self, name: str) -> Link | None:
        """Link ``name`` (one RTM_GETLINK, not a dump), or None."""
        try:
            data = self._answer(RTM_GETLINK, 0, link_msg(name=name))
        except NetlinkError as err:
            if err.errno == errno.ENODEV:
                return None
            raise
        if data is None:  # the kernel answers a GETLINK with the link or an error, never an ack
            raise NetlinkError(errno.EPROTO)
        return parse_link(data)
