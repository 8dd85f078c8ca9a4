"""A plain HTTP/1.1 connection upgrade (``101 Switching Protocols``) handed over as a byte stream.

kubectl falls back to ``Upgrade: SPDY/3.1`` when the WebSocket upgrade of ``port-forward`` is
refused: after the 101 the TCP connection carries SPDY frames and nothing else. aiohttp hands
over upgraded connections only to its WebSocket parser, so this installs a payload parser of
its own that passes every byte through (the same hook ``WebSocketResponse`` uses).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiohttp import web


class _PassThrough:
    """What aiohttp's protocol calls with the bytes that follow the upgrade."""

    def __init__(self) -> None:
        self.chunks: asyncio.Queue[bytes] = asyncio.Queue()

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        self.chunks.put_nowait(bytes(data))
        return False, b""

    def feed_eof(self) -> None:
        self.chunks.put_nowait(b"")


class UpgradedConnection:
    """The client's connection after the 101: :meth:`receive` (``b""`` at the end) and :meth:`send`."""

    def __init__(self, request: web.Request, response: web.StreamResponse, parser: _PassThrough) -> None:
        self.request, self.response, self._parser = request, response, parser

    async def receive(self) -> bytes:
        return await self._parser.chunks.get()

    async def send(self, data: bytes) -> None:
        transport = self.request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the client closed the connection")
        await self.response.write(data)

    def close(self) -> None:
        if self.request.transport is not None:
            self.request.transport.close()


async def upgrade(request: web.Request, protocol: str, headers: Mapping[str, str]) -> UpgradedConnection:
    """Answer ``101`` with ``Upgrade: protocol`` and take the connection over."""
    response = web.StreamResponse(status=101, headers={"Connection": "Upgrade", "Upgrade": protocol, **headers})
    response.force_close()
    await response.prepare(request)
    parser = _PassThrough()
    request.protocol.set_parser(parser)  # type: ignore[arg-type]  # duck-typed like WebSocketReader
    request.protocol.keep_alive(False)
    return UpgradedConnection(request, response, parser)
