"""SPDY/3.1 framing and the port-forward session, playing kubectl's part against a local TCP server."""

from __future__ import annotations

import asyncio
import zlib

import pytest

from labctl.apiserver import _spdy
from labctl.apiserver.portforward import PortForwardSession


def test_dictionary_is_the_spdy3_one():
    # the spec's dictionary is 1423 bytes and begins with the length-prefixed "options"
    assert len(_spdy.DICTIONARY) == 1423
    assert _spdy.DICTIONARY.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert _spdy.DICTIONARY.endswith(b"enq=0.")


def test_frames_round_trip_in_arbitrary_chunks():
    client, reader = _spdy.FrameWriter(), _spdy.FrameReader()
    wire = (client.syn_stream(1, {"streamType": "error", "port": "80", "requestID": "0"}, fin=True)
            + client.syn_stream(3, {"streamType": "data", "port": "80", "requestID": "0"})
            + client.data(3, b"GET / HTTP/1.0\r\n\r\n") + client.data(3, fin=True)
            + client.ping(1) + client.rst_stream(3, _spdy.CANCEL) + client.goaway(3))
    frames = [f for i in range(0, len(wire), 7) for f in reader.feed(wire[i:i + 7])]
    assert frames == [
        _spdy.SynStream(1, {"streamtype": "error", "port": "80", "requestid": "0"}, True),
        _spdy.SynStream(3, {"streamtype": "data", "port": "80", "requestid": "0"}, False),
        _spdy.Data(3, b"GET / HTTP/1.0\r\n\r\n", False), _spdy.Data(3, b"", True),
        _spdy.Ping(1), _spdy.RstStream(3, _spdy.CANCEL), _spdy.GoAway(3)]


def test_header_blocks_share_one_compression_context():
    writer = _spdy.FrameWriter()
    first, second = writer.syn_reply(1), writer.syn_reply(3)
    inflate = zlib.decompressobj(zdict=_spdy.DICTIONARY)
    # the second block only decompresses after the first: one zlib stream per direction
    assert _spdy.parse_header_block(inflate.decompress(first[12:])) == {}
    assert _spdy.parse_header_block(inflate.decompress(second[12:])) == {}


def test_other_versions_are_refused():
    frame = bytearray(_spdy.FrameWriter().ping(1))
    frame[1] = 2  # SPDY/2
    with pytest.raises(_spdy.ProtocolError, match="unsupported SPDY version 2"):
        _spdy.FrameReader().feed(bytes(frame))


class _Kubectl:
    """The client side of one session: what kubectl sends, and the frames the server answers."""

    def __init__(self, dial) -> None:
        self.out = _spdy.FrameWriter()
        self.inbox = _spdy.FrameReader()
        self.received: list[_spdy.Frame] = []
        self.session = PortForwardSession(self._receive, dial, "default/web, uid u1")

    async def _receive(self, data: bytes) -> None:
        for frame in self.inbox.feed(data):
            # the server's own frames read back with a reader: SYN_REPLY is "ignored" there
            self.received.append(frame)

    async def open_pair(self, request_id: int, port: int) -> tuple[int, int]:
        error_id, data_id = 4 * request_id + 1, 4 * request_id + 3
        headers = {"port": str(port), "requestID": str(request_id)}
        await self.session.feed(self.out.syn_stream(error_id, {"streamType": "error", **headers}, fin=True))
        await self.session.feed(self.out.syn_stream(data_id, {"streamType": "data", **headers}))
        return error_id, data_id

    def data_of(self, stream_id: int) -> tuple[bytes, bool]:
        frames = [f for f in self.received if isinstance(f, _spdy.Data) and f.stream_id == stream_id]
        return b"".join(f.data for f in frames), any(f.fin for f in frames)


async def _wait(predicate, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_each_pair_is_one_connection_to_the_pods_port():
    async def scenario() -> None:
        async def echo_upper(reader, writer):
            data = await reader.read()  # until kubectl's FIN half-closes the connection
            writer.write(data.upper())
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(echo_upper, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        dialed = []

        async def dial(p):
            dialed.append(p)
            return await asyncio.open_connection("127.0.0.1", port)

        k = _Kubectl(dial)
        pairs = [await k.open_pair(n, 80) for n in range(3)]  # three concurrent local connections
        for n, (_err, data) in enumerate(pairs):
            await k.session.feed(k.out.data(data, f"hello {n}".encode()) + k.out.data(data, fin=True))
        await _wait(lambda: all(k.data_of(e)[1] for e, _d in pairs))
        assert [k.data_of(d) for _e, d in pairs] == [(f"HELLO {n}".encode(), True) for n in range(3)]
        assert [k.data_of(e) for e, _d in pairs] == [(b"", True)] * 3  # no error message
        replies = [f for f in k.received if isinstance(f, _spdy.Ignored) and f.frame_type == _spdy.SYN_REPLY]
        assert len(replies) == 6 and dialed == [80, 80, 80]
        await k.session.feed(k.out.ping(7))
        assert _spdy.Ping(7) in k.received
        await k.session.close()
        server.close()

    asyncio.run(scenario())


def test_a_refused_port_is_reported_on_the_error_stream():
    async def scenario() -> None:
        async def dial(port):
            raise ConnectionRefusedError(111, "Connection refused")

        k = _Kubectl(dial)
        error_id, data_id = await k.open_pair(0, 81)
        await _wait(lambda: k.data_of(error_id)[1])
        assert k.data_of(error_id) == (b"error forwarding port 81 to pod default/web, uid u1: "
                                       b"dial tcp4 127.0.0.1:81: connect: connection refused", True)
        assert k.data_of(data_id) == (b"", True)
        await k.session.close()

    asyncio.run(scenario())


def test_a_reset_from_kubectl_ends_the_connection():
    async def scenario() -> None:
        accepted, closed = asyncio.Event(), asyncio.Event()

        async def hold(reader, writer):
            accepted.set()
            await reader.read()
            closed.set()

        server = await asyncio.start_server(hold, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        k = _Kubectl(lambda _p: asyncio.open_connection("127.0.0.1", port))
        error_id, data_id = await k.open_pair(0, 80)
        await k.session.feed(k.out.data(data_id, b"x"))
        await asyncio.wait_for(accepted.wait(), 5)
        await k.session.feed(k.out.rst_stream(data_id, _spdy.CANCEL) + k.out.rst_stream(error_id, _spdy.CANCEL))
        await asyncio.wait_for(closed.wait(), 5)
        await k.session.close()
        server.close()

    asyncio.run(scenario())
