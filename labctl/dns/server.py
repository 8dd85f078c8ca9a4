"""The DNS wire side: UDP and TCP listeners, dnslib encoding, and forwarding upstream.

Questions about ``cluster.local`` (and PTRs of cluster IPs) are answered from memory by
:class:`~labctl.dns.records.ClusterZone` without leaving the event loop's callback (no
task, no await), which is what keeps a busy pod's lookups cheap. Every other name is
forwarded byte for byte to the node's resolver, as CoreDNS's ``forward . /etc/resolv.conf``
does; an ExternalName's CNAME target is resolved the same way and appended, so a stub
resolver that does not chase CNAMEs (glibc's) still gets an address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dnslib import AAAA, CNAME, EDNS0, NS, PTR, QTYPE, RCODE, RR, SOA, SRV, TXT, A, DNSError, DNSHeader, DNSQuestion, DNSRecord

from .records import Answer, ClusterZone, Record

log = logging.getLogger("labctl.dns")

UDP_DEFAULT_SIZE = 512      # RFC 1035 limit without EDNS
EDNS_SIZE = 1232            # the DNS flag day 2020 recommendation
MAX_CNAME_CHAIN = 8
TCP_IDLE_SECONDS = 10
WIRE_CACHE_SIZE = 10_000

_RDATA = {
    "A": lambda d: A(d), "AAAA": lambda d: AAAA(d), "TXT": lambda d: TXT(d),
    "CNAME": lambda d: CNAME(d + "."), "PTR": lambda d: PTR(d + "."), "NS": lambda d: NS(d + "."),
    "SRV": lambda d: SRV(d[0], d[1], d[2], d[3] + "."),
    "SOA": lambda d: SOA(d[0] + ".", d[1] + ".", d[2:]),
}


@dataclass(frozen=True)
class Upstream:
    host: str
    port: int = 53

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_hostport(text: str, default_port: int) -> tuple[str, int]:
    """``1.2.3.4``, ``1.2.3.4:53``, ``[::1]:53`` or ``::1`` → (host, port)."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest.lstrip(":") or default_port)
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, default_port


def upstreams_from_resolv_conf(path: Path) -> list[Upstream]:
    """The ``nameserver`` lines of a resolv.conf, minus loopback ones.

    A loopback nameserver inside the DNS pod is the pod itself (or nothing): forwarding to
    it would loop, the failure CoreDNS's ``loop`` plugin exists to catch.
    """
    found: list[Upstream] = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == "nameserver":
            try:
                if ipaddress.ip_address(parts[1].split("%")[0]).is_loopback:
                    log.warning("ignoring loopback nameserver %s in %s: forwarding to it would loop", parts[1], path)
                    continue
            except ValueError:
                continue
            found.append(Upstream(parts[1]))
    return found


def to_rr(record: Record, owner: str | None = None) -> RR:
    return RR(owner or record.name + ".", getattr(QTYPE, record.rtype), rdata=_RDATA[record.rtype](record.data),
              ttl=record.ttl)


def build_reply(request: DNSRecord, answer: Answer) -> DNSRecord:
    """A dnslib reply for a local answer: authoritative, the question's own spelling kept
    (resolvers using 0x20 case randomisation compare it)."""
    reply = request.reply(ra=1, aa=1)
    reply.header.rcode = int(answer.rcode)
    asked = str(request.q.qname)
    normalized = asked.lower().rstrip(".")
    for record in answer.answers:
        reply.add_answer(to_rr(record, asked if record.name == normalized else None))
    for record in answer.authority:
        reply.add_auth(to_rr(record))
    for record in answer.additional:
        reply.add_ar(to_rr(record))
    if any(rr.rtype == QTYPE.OPT for rr in request.ar):
        reply.add_ar(EDNS0(udp_len=EDNS_SIZE))
    return reply


def error_reply(request: DNSRecord, rcode: int) -> DNSRecord:
    reply = request.reply(ra=1, aa=0)
    reply.header.rcode = rcode
    return reply


def udp_limit(request: DNSRecord) -> int:
    """The largest UDP reply the client accepts: 512, or its EDNS buffer size."""
    for rr in request.ar:
        if rr.rtype == QTYPE.OPT:
            return max(UDP_DEFAULT_SIZE, min(int(rr.rclass), 4096))
    return UDP_DEFAULT_SIZE


def pack(reply: DNSRecord, limit: int | None) -> bytes:
    """Wire bytes; over the limit, just the header and question with TC set (retry over TCP)."""
    data = reply.pack()
    if limit is not None and len(data) > limit:
        header = DNSHeader(id=reply.header.id, bitmap=reply.header.bitmap, tc=1)
        data = DNSRecord(header, q=reply.q).pack()
    return data


class _UDPExchange(asyncio.DatagramProtocol):
    """One query, one answer on a fresh socket: the source port is the only correlation
    we need, and a stray answer cannot be mistaken for another client's."""

    def __init__(self, query_id: bytes, done: asyncio.Future) -> None:
        self.query_id, self.done = query_id, done

    def datagram_received(self, data: bytes, addr) -> None:
        if data[:2] == self.query_id and not self.done.done():
            self.done.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


class Forwarder:
    """Relays raw queries to the upstream resolvers in order, first answer wins."""

    def __init__(self, upstreams: list[Upstream], timeout: float = 2.0) -> None:
        self.upstreams = upstreams
        self.timeout = timeout

    async def forward(self, packet: bytes, tcp: bool) -> bytes | None:
        for upstream in self.upstreams:
            try:
                exchange = self._tcp(packet, upstream) if tcp else self._udp(packet, upstream)
                return await asyncio.wait_for(exchange, self.timeout)
            except (TimeoutError, OSError, asyncio.IncompleteReadError) as err:
                log.warning("failed to forward a query to %s: %s", upstream, err or type(err).__name__)
        return None

    async def _udp(self, packet: bytes, upstream: Upstream) -> bytes:
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()
        transport, _ = await loop.create_datagram_endpoint(lambda: _UDPExchange(packet[:2], done),
                                                           remote_addr=(upstream.host, upstream.port))
        try:
            transport.sendto(packet)
            return await done
        finally:
            transport.close()

    async def _tcp(self, packet: bytes, upstream: Upstream) -> bytes:
        reader, writer = await asyncio.open_connection(upstream.host, upstream.port)
        try:
            writer.write(len(packet).to_bytes(2, "big") + packet)
            await writer.drain()
            size = int.from_bytes(await reader.readexactly(2), "big")
            return await reader.readexactly(size)
        finally:
            writer.close()


class DNSServer:
    """Answers DNS messages: the cluster zone locally, everything else upstream."""

    def __init__(self, zone: ClusterZone, forwarder: Forwarder, ready: Callable[[], bool] = lambda: True) -> None:
        self.zone = zone
        self.forwarder = forwarder
        self.ready = ready  # False until the informers listed: answer SERVFAIL, never a false NXDOMAIN
        self.udp_transport: asyncio.DatagramTransport | None = None
        self.tcp_server: asyncio.base_events.Server | None = None
        self._wire: dict[bytes, bytes] = {}
        self._wire_generation = -1

    def cached_reply(self, data: bytes) -> bytes | None:
        """A local UDP reply sent before for the same message (all but its id) with the
        caches unchanged since: skips dnslib's decode/encode, most of a query's cost."""
        if self._wire_generation != self.zone.generation:
            self._wire.clear()
            self._wire_generation = self.zone.generation
            return None
        rest = self._wire.get(data[2:])
        return data[:2] + rest if rest is not None else None

    def remember_reply(self, data: bytes, reply: bytes) -> None:
        if self._wire_generation == self.zone.generation and self.ready():
            if len(self._wire) >= WIRE_CACHE_SIZE:
                self._wire.clear()
            self._wire[data[2:]] = reply[2:]

    def parse(self, data: bytes) -> DNSRecord | bytes | None:
        """The request, or the bytes of an error reply to send back, or None to drop."""
        try:
            request = DNSRecord.parse(data)
        except (DNSError, ValueError, IndexError):
            if len(data) < 12:
                return None
            return DNSRecord(DNSHeader(id=int.from_bytes(data[:2], "big"), qr=1, rcode=RCODE.FORMERR)).pack()
        if request.header.qr:
            return None  # an answer sent to us: never reply to replies
        if request.header.opcode != 0:
            return error_reply(request, RCODE.NOTIMP).pack()
        if len(request.questions) != 1:
            return error_reply(request, RCODE.FORMERR).pack()
        return request

    def local_reply(self, request: DNSRecord) -> DNSRecord | None:
        """The reply if it needs no upstream, else None: the synchronous fast path."""
        qname, qtype = str(request.q.qname), QTYPE.get(request.q.qtype)
        if not self.ready() and self.zone.in_zone(qname):
            return error_reply(request, RCODE.SERVFAIL)
        answer = self.zone.answer(qname, qtype)
        if answer is None or self._cname_to_chase(answer, qtype):
            return None
        return build_reply(request, answer)

    async def resolve(self, request: DNSRecord, raw: bytes, tcp: bool) -> DNSRecord | bytes:
        reply = self.local_reply(request)
        if reply is not None:
            return reply
        answer = self.zone.answer(str(request.q.qname), QTYPE.get(request.q.qtype))
        if answer is None:
            forwarded = await self.forwarder.forward(raw, tcp)
            return forwarded if forwarded is not None else error_reply(request, RCODE.SERVFAIL)
        return await self._chase(request, answer, tcp)

    @staticmethod
    def _cname_to_chase(answer: Answer, qtype: str) -> bool:
        return bool(answer.answers) and answer.answers[-1].rtype == "CNAME" and qtype not in ("CNAME", "ANY")

    async def _chase(self, request: DNSRecord, answer: Answer, tcp: bool) -> DNSRecord:
        """Follow an ExternalName's CNAME: in the zone from memory, elsewhere upstream."""
        reply = build_reply(request, answer)
        qtype = QTYPE.get(request.q.qtype)
        target = answer.answers[-1].data
        for _ in range(MAX_CNAME_CHAIN):
            local = self.zone.answer(target, qtype)
            if local is not None:
                for record in local.answers:
                    reply.add_answer(to_rr(record))
                reply.header.rcode = int(local.rcode)
                if not self._cname_to_chase(local, qtype):
                    break
                target = local.answers[-1].data
                continue
            query = DNSRecord(DNSHeader(rd=1), q=DNSQuestion(target + ".", request.q.qtype))
            raw = await self.forwarder.forward(query.pack(), tcp)
            try:
                upstream = DNSRecord.parse(raw) if raw is not None else None
            except DNSError:
                upstream = None
            if upstream is not None:  # else: the CNAME alone; the client may chase it itself
                for rr in upstream.rr:
                    reply.add_answer(rr)
                reply.header.rcode = upstream.header.rcode
            break
        return reply

    async def handle(self, data: bytes, tcp: bool) -> bytes | None:
        """One DNS message in, the reply's bytes out (None: send nothing)."""
        parsed = self.parse(data)
        if not isinstance(parsed, DNSRecord):
            return parsed
        try:
            result = await self.resolve(parsed, data, tcp)
        except Exception:  # a bug must cost one query, not the server
            log.exception("failed to answer %s", parsed.q.qname)
            result = error_reply(parsed, RCODE.SERVFAIL)
        return result if isinstance(result, bytes) else pack(result, None if tcp else udp_limit(parsed))

    async def listen(self, host: str, port: int) -> int:
        """Bind UDP and TCP on the same port (port 0: a free one) and return the port."""
        loop = asyncio.get_running_loop()
        for attempt in range(5):
            transport, _ = await loop.create_datagram_endpoint(lambda: _UDPServerProtocol(self),
                                                               local_addr=(host, port))
            bound = transport.get_extra_info("sockname")[1]
            try:
                self.tcp_server = await asyncio.start_server(self._serve_tcp, host, bound, reuse_address=True)
            except OSError as err:
                transport.close()
                if port != 0 or attempt == 4:
                    raise OSError(err.errno, f"failed to listen on TCP {host}:{bound}: {err.strerror}") from err
                continue
            self.udp_transport = transport
            return bound
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.udp_transport:
            self.udp_transport.close()
        if self.tcp_server:
            self.tcp_server.close()

    async def _serve_tcp(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """RFC 7766: length-prefixed messages, several per connection, idle timeout."""
        try:
            while True:
                size = int.from_bytes(await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_SECONDS), "big")
                data = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE_SECONDS)
                out = await self.handle(data, tcp=True)
                if out is None:
                    break
                writer.write(len(out).to_bytes(2, "big") + out)
                await writer.drain()
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


class _UDPServerProtocol(asyncio.DatagramProtocol):
    def __init__(self, server: DNSServer) -> None:
        self.server = server
        self.transport: asyncio.DatagramTransport | None = None
        self._pending: set[asyncio.Task] = set()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr) -> None:
        transport = self.transport
        assert transport is not None  # asyncio calls connection_made before any datagram
        cached = self.server.cached_reply(data)
        if cached is not None:
            transport.sendto(cached, addr)
            return
        parsed = self.server.parse(data)
        if isinstance(parsed, bytes):
            transport.sendto(parsed, addr)
        if not isinstance(parsed, DNSRecord):
            return
        try:
            reply = self.server.local_reply(parsed)
        except Exception:  # a bug must cost one query, not the server
            log.exception("failed to answer %s", parsed.q.qname)
            transport.sendto(error_reply(parsed, RCODE.SERVFAIL).pack(), addr)
            return
        if reply is not None:
            out = pack(reply, udp_limit(parsed))
            self.server.remember_reply(data, out)
            transport.sendto(out, addr)
            return
        task = asyncio.ensure_future(self._answer_later(data, addr))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _answer_later(self, data: bytes, addr) -> None:
        out = await self.server.handle(data, tcp=False)
        if out is not None and self.transport and not self.transport.is_closing():
            self.transport.sendto(out, addr)

    def error_received(self, exc: Exception) -> None:
        log.debug("UDP error: %s", exc)
