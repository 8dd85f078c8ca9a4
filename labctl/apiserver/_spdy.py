"""SPDY/3.1 framing, the server's half: what ``kubectl port-forward`` multiplexes its connections over.

kubectl forwards every local connection as a pair of *streams* on one SPDY session
(``portforward.k8s.io``): each stream opens with a ``SYN_STREAM`` whose header block says
what it is (``streamType: error|data``, ``port: 80``, ``requestID: 0``), the server accepts
it with a ``SYN_REPLY``, and then both sides send ``DATA`` frames, a frame with the FIN flag
ending one direction. kubectl 1.37 carries those bytes inside WebSocket binary messages
(sub-protocol ``SPDY/3.1+portforward.k8s.io``, client-go's tunneling dialer) and falls back
to a plain ``Upgrade: SPDY/3.1`` connection; the frames are the same either way, so this
module only turns bytes into frames and frames into bytes.

Frame layout (draft-mbelshe-httpbis-spdy-00, version 3)::

    control: |1| version(15) | type(16) |  flags(8) | length(24) | body...
    data:    |0| stream id(31)          |  flags(8) | length(24) | payload...

Header blocks (``SYN_STREAM``, ``SYN_REPLY``, ``HEADERS``) are zlib-compressed with one
compression context per direction for the whole session, primed with the spec's dictionary
below. Flow control (``WINDOW_UPDATE``, ``SETTINGS``) is read and ignored, as moby's
spdystream — the library kubectl and the kubelet use — ignores it.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS, PING, GOAWAY, HEADERS, WINDOW_UPDATE = 1, 2, 3, 4, 6, 7, 8, 9
FLAG_FIN = 0x01
#: RST_STREAM status codes used here
PROTOCOL_ERROR, REFUSED_STREAM, CANCEL = 1, 3, 5
#: largest DATA payload (24-bit length)
MAX_DATA = (1 << 24) - 1

_HEADER = struct.Struct(">LL")
_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding accept-language accept-ranges age "
    "allow authorization cache-control connection content-base content-encoding content-language content-length "
    "content-location content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location max-forwards pragma "
    "proxy-authenticate proxy-authorization range referer retry-after server te trailer transfer-encoding upgrade "
    "user-agent vary via warning www-authenticate method get status"
).split() + ["200 OK", "version", "HTTP/1.1", "url", "public", "set-cookie", "keep-alive", "origin"]
_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
    "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
    "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
    "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
    "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
    "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."
)
#: the SPDY/3 header compression dictionary (spec section 2.6.10.1): length-prefixed words, then text
DICTIONARY = b"".join(struct.pack(">L", len(w)) + w.encode() for w in _WORDS) + _TAIL.encode()


class ProtocolError(Exception):
    """The peer sent bytes that are not SPDY/3 (the session cannot go on)."""


@dataclass(frozen=True)
class SynStream:
    """A new stream opened by the client, with its (lower-cased) headers."""

    stream_id: int
    headers: dict[str, str]
    fin: bool


@dataclass(frozen=True)
class Data:
    stream_id: int
    data: bytes
    fin: bool


@dataclass(frozen=True)
class RstStream:
    stream_id: int
    status: int


@dataclass(frozen=True)
class Ping:
    ping_id: int


@dataclass(frozen=True)
class GoAway:
    last_stream_id: int


@dataclass(frozen=True)
class Ignored:
    """A frame this server takes no action on (SETTINGS, WINDOW_UPDATE, HEADERS, SYN_REPLY)."""

    frame_type: int


Frame = SynStream | Data | RstStream | Ping | GoAway | Ignored


@dataclass
class FrameReader:
    """Turns the client's bytes, in chunks of any size, into frames (:meth:`feed`)."""

    _buf: bytearray = field(default_factory=bytearray)
    _inflate: zlib._Decompress = field(default_factory=lambda: zlib.decompressobj(zdict=DICTIONARY))

    def feed(self, chunk: bytes) -> list[Frame]:
        self._buf += chunk
        frames: list[Frame] = []
        while len(self._buf) >= _HEADER.size:
            first, second = _HEADER.unpack_from(self._buf)
            end = _HEADER.size + (second & 0xFFFFFF)
            if len(self._buf) < end:
                break
            body, flags = bytes(self._buf[_HEADER.size:end]), second >> 24
            del self._buf[:end]
            frames.append(self._control(first, flags, body) if first & 0x80000000
                          else Data(first & 0x7FFFFFFF, body, bool(flags & FLAG_FIN)))
        return frames

    def _control(self, first: int, flags: int, body: bytes) -> Frame:
        version, frame_type = (first >> 16) & 0x7FFF, first & 0xFFFF
        if version != VERSION:
            raise ProtocolError(f"unsupported SPDY version {version}")
        try:
            if frame_type == SYN_STREAM:
                stream_id = struct.unpack_from(">L", body)[0] & 0x7FFFFFFF
                return SynStream(stream_id, self._headers(body[10:]), bool(flags & FLAG_FIN))
            if frame_type in (SYN_REPLY, HEADERS):
                self._headers(body[4:])  # keeps the shared decompression context in step
            elif frame_type == RST_STREAM:
                stream_id, status = struct.unpack_from(">LL", body)
                return RstStream(stream_id & 0x7FFFFFFF, status)
            elif frame_type == PING:
                return Ping(struct.unpack_from(">L", body)[0])
            elif frame_type == GOAWAY:
                return GoAway(struct.unpack_from(">L", body)[0] & 0x7FFFFFFF)
        except struct.error as err:
            raise ProtocolError(f"short SPDY control frame of type {frame_type}") from err
        return Ignored(frame_type)

    def _headers(self, compressed: bytes) -> dict[str, str]:
        try:
            block = self._inflate.decompress(compressed)
        except zlib.error as err:
            raise ProtocolError(f"bad SPDY header block: {err}") from err
        return parse_header_block(block)


def parse_header_block(block: bytes) -> dict[str, str]:
    """``count, (len, name, len, value)*`` → a dict; several values (NUL-separated) keep the first."""
    try:
        (count,), pos = struct.unpack_from(">L", block), 4
        headers: dict[str, str] = {}
        for _ in range(count):
            (size,) = struct.unpack_from(">L", block, pos)
            name = block[pos + 4:pos + 4 + size].decode().lower()
            pos += 4 + size
            (size,) = struct.unpack_from(">L", block, pos)
            value = block[pos + 4:pos + 4 + size].decode()
            pos += 4 + size
            headers.setdefault(name, value.split("\x00")[0])
        return headers
    except (struct.error, UnicodeDecodeError) as err:
        raise ProtocolError(f"bad SPDY header block: {err}") from err


def build_header_block(headers: dict[str, str]) -> bytes:
    out = [struct.pack(">L", len(headers))]
    for name, value in headers.items():
        for text in (name.lower(), value):
            raw = text.encode()
            out.append(struct.pack(">L", len(raw)) + raw)
    return b"".join(out)


@dataclass
class FrameWriter:
    """Builds the server's frames; header blocks share one compression context, as the spec requires."""

    _deflate: zlib._Compress = field(default_factory=lambda: zlib.compressobj(9, zdict=DICTIONARY))

    def _control(self, frame_type: int, flags: int, body: bytes) -> bytes:
        return _HEADER.pack(0x80000000 | VERSION << 16 | frame_type, flags << 24 | len(body)) + body

    def _compress(self, headers: dict[str, str]) -> bytes:
        return self._deflate.compress(build_header_block(headers)) + self._deflate.flush(zlib.Z_SYNC_FLUSH)

    def syn_reply(self, stream_id: int, headers: dict[str, str] | None = None, fin: bool = False) -> bytes:
        body = struct.pack(">L", stream_id) + self._compress(headers or {})
        return self._control(SYN_REPLY, FLAG_FIN if fin else 0, body)

    def syn_stream(self, stream_id: int, headers: dict[str, str], fin: bool = False) -> bytes:
        """A stream opened by this side (used by tests playing kubectl's part)."""
        body = struct.pack(">LLBB", stream_id, 0, 0, 0) + self._compress(headers)
        return self._control(SYN_STREAM, FLAG_FIN if fin else 0, body)

    def data(self, stream_id: int, data: bytes = b"", fin: bool = False) -> bytes:
        return _HEADER.pack(stream_id & 0x7FFFFFFF, (FLAG_FIN if fin else 0) << 24 | len(data)) + data

    def rst_stream(self, stream_id: int, status: int) -> bytes:
        return self._control(RST_STREAM, 0, struct.pack(">LL", stream_id, status))

    def ping(self, ping_id: int) -> bytes:
        return self._control(PING, 0, struct.pack(">L", ping_id))

    def goaway(self, last_stream_id: int) -> bytes:
        return self._control(GOAWAY, 0, struct.pack(">LL", last_stream_id, 0))
