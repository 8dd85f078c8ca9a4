"""rtnetlink on a plain blocking socket: the few requests the CNI daemon sends, packed with ``struct``.

Why not pyroute2 for these: pyroute2 0.9's synchronous ``IPRoute`` runs every request
through an asyncio loop of its own and decodes every attribute of every reply, ~0.6 ms
of CPU per request and most of what a daemon ADD cost (a dozen requests); its message
classes alone take 40-200 µs to encode one message. An ADD sends requests of five
shapes and needs, of all the replies, a link's index, flags, MAC and kind: that is all
this module does, in ~20 µs a request. pyroute2 remains the agent's library for the
node's routes (:mod:`labctl.cni.routes`), where nothing is on a pod's path.

The messages are the ones iproute2 sends for the same ``ip`` commands (:mod:`labctl.cni.links`),
so the kernel ends in the same state either way. A :class:`Socket` belongs to the netns of
the thread that opened it, and to one thread at a time.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

from labctl.cni.types import Record

# Kernel ABI (<linux/netlink.h>, <linux/rtnetlink.h>, <linux/if_link.h>, <linux/veth.h>)
NLMSG_ERROR = 2
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_NEWROUTE = 20, 24
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
#: what ``ip link add`` / ``ip addr add`` / ``ip route add`` ask for: create, and fail if it exists
CREATE = NLM_F_CREATE | NLM_F_EXCL
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER, IFLA_LINKINFO, IFLA_NET_NS_FD = 1, 3, 4, 10, 18, 28
IFLA_INFO_KIND, IFLA_INFO_DATA, IFLA_INFO_SLAVE_DATA = 1, 2, 5
VETH_INFO_PEER = 1
IFLA_BRPORT_MODE = 4  # the bridge port's hairpin mode
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
RT_TABLE_MAIN, RTN_UNICAST, RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 254, 1, 0, 253
RTPROT_BOOT = 3  # what `ip route add` sets when no protocol is given
IFF_UP, IFF_PROMISC = 0x1, 0x100
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER

_HEADER = struct.Struct("=IHHII")  # nlmsghdr: length, type, flags, sequence, port
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type, flags
_ATTR = struct.Struct("=HH")  # nlattr: length, type
_U32 = struct.Struct("=I")
_ERROR = struct.Struct("=i")


class NetlinkError(OSError):
    """The kernel refused a request; ``errno`` is its code."""

    def __init__(self, code: int) -> None:
        super().__init__(code, os.strerror(code))


class Link(Record):
    """What the daemon reads of a link."""

    __slots__ = ("flags", "index", "kind", "mac")

    def __init__(self, index: int, flags: int, mac: str, kind: str) -> None:
        self.index, self.flags, self.mac, self.kind = index, flags, mac, kind


def attr(kind: int, payload: bytes) -> bytes:
    """One attribute (nested ones are attributes of attributes), padded to 4 bytes."""
    size = 4 + len(payload)
    return _ATTR.pack(size, kind) + payload + bytes(-size % 4)


def _string(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def _mac(value: str) -> bytes:
    return bytes.fromhex(value.replace(":", ""))


def link_msg(index: int = 0, flags: int = 0, change: int = 0, *, name: str = "", mtu: int = 0, master: int = 0,
             address: str = "", netns_fd: int = -1, kind: str = "", info_data: bytes = b"",
             slave_data: bytes = b"") -> bytes:
    """An ifinfomsg and its attributes: the link by ``index`` or else by ``name``; ``flags`` under mask ``change``."""
    parts = [_IFINFO.pack(0, 0, index, flags, change)]
    if name:
        parts.append(_string(IFLA_IFNAME, name))
    if mtu:
        parts.append(attr(IFLA_MTU, _U32.pack(mtu)))
    if master:
        parts.append(attr(IFLA_MASTER, _U32.pack(master)))
    if address:
        parts.append(attr(IFLA_ADDRESS, _mac(address)))
    if netns_fd >= 0:
        parts.append(attr(IFLA_NET_NS_FD, _U32.pack(netns_fd)))
    info = (_string(IFLA_INFO_KIND, kind) if kind else b"") + (attr(IFLA_INFO_DATA, info_data) if info_data else b"")
    if slave_data:
        info += attr(IFLA_INFO_SLAVE_DATA, slave_data)
    if info:
        parts.append(attr(IFLA_LINKINFO, info))
    return b"".join(parts)


def veth_peer(**link: object) -> bytes:
    """``IFLA_INFO_DATA`` of a veth: its peer, described like a link (:func:`link_msg`'s keywords)."""
    return attr(VETH_INFO_PEER, link_msg(**link))  # type: ignore[arg-type]


def addr_msg(index: int, address: str, prefixlen: int, version: int) -> bytes:
    """``ip addr add ADDRESS/PREFIXLEN dev INDEX``: local and address both set, as iproute2 does."""
    raw = socket.inet_pton(socket.AF_INET if version == 4 else socket.AF_INET6, address)
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    return _IFADDR.pack(family, prefixlen, 0, RT_SCOPE_UNIVERSE, index) + attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw)


def route_msg(dst: str, dst_len: int, gateway: str, oif: int, version: int) -> bytes:
    """``ip route add DST/LEN [via GATEWAY] dev OIF`` (main table, protocol boot; link scope without a gateway)."""
    family = socket.AF_INET if version == 4 else socket.AF_INET6
    scope = RT_SCOPE_UNIVERSE if gateway else RT_SCOPE_LINK
    parts = [_RTMSG.pack(family, dst_len, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST, 0),
             attr(RTA_DST, socket.inet_pton(family, dst))]
    if gateway:
        parts.append(attr(RTA_GATEWAY, socket.inet_pton(family, gateway)))
    parts.append(attr(RTA_OIF, _U32.pack(oif)))
    return b"".join(parts)


def _attrs(data: bytes, offset: int) -> list[tuple[int, bytes]]:
    found = []
    end = len(data)
    while offset + 4 <= end:
        size, kind = _ATTR.unpack_from(data, offset)
        if size < 4:
            break
        found.append((kind & NLA_TYPE_MASK, data[offset + 4:offset + size]))
        offset += (size + 3) & ~3
    return found


def parse_link(payload: bytes) -> Link:
    """The index, flags, MAC and kind of an RTM_NEWLINK message; every other attribute is skipped."""
    _, _, index, flags, _ = _IFINFO.unpack_from(payload)
    mac = kind = ""
    for key, value in _attrs(payload, _IFINFO.size):
        if key == IFLA_ADDRESS:
            mac = value.hex(":")
        elif key == IFLA_LINKINFO:
            kind = next((v.rstrip(b"\0").decode() for k, v in _attrs(value, 0) if k == IFLA_INFO_KIND), "")
    return Link(index, flags, mac, kind)


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

    def _answer(self, kind: int, flags: int, body: bytes) -> tuple[int, bytes]:
        """Send one request; return the (type, payload) answering it, raising the kernel's error."""
        self._seq += 1
        seq = self._seq
        self._sock.send(_HEADER.pack(_HEADER.size + len(body), kind, flags | NLM_F_REQUEST, seq, 0) + body)
        while True:
            data = self._sock.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                length, got, _, got_seq, _ = _HEADER.unpack_from(data, offset)
                if length < _HEADER.size:
                    break
                payload = data[offset + _HEADER.size:offset + length]
                offset += (length + 3) & ~3
                if got_seq != seq:  # an answer to an earlier request that raised before reading it
                    continue
                if got == NLMSG_ERROR:
                    code = -_ERROR.unpack_from(payload)[0]
                    if code:
                        raise NetlinkError(code)
                return got, payload

    def request(self, kind: int, body: bytes, flags: int = 0) -> None:
        """A change (``RTM_NEW*``/``RTM_DEL*``), acknowledged by the kernel."""
        self._answer(kind, flags | NLM_F_ACK, body)

    def link(self, name: str) -> Link | None:
        """Link ``name`` (one RTM_GETLINK, not a dump), or None."""
        try:
            _, payload = self._answer(RTM_GETLINK, 0, link_msg(name=name))
        except NetlinkError as err:
            if err.errno == errno.ENODEV:
                return None
            raise
        return parse_link(payload)
