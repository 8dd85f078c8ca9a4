"""``pods/portforward``: ``kubectl port-forward`` through labctl's API server.

What a real cluster does: kube-apiserver proxies the upgraded request to the pod's kubelet,
whose streaming server accepts one SPDY session (``portforward.k8s.io``) and, for every
connection kubectl accepted locally, a *pair* of streams with the same ``requestID``: an
``error`` stream (a message if forwarding failed) and a ``data`` stream (the bytes). The
kubelet dials ``localhost:<port>`` *inside the pod's network namespace* and copies both
ways. kubectl 1.37 first asks for a WebSocket carrying the SPDY bytes (sub-protocol
``SPDY/3.1+portforward.k8s.io``, the PortForwardWebsockets feature) and falls back to a
plain ``Upgrade: SPDY/3.1`` when that upgrade is refused.

What labctl does: the API server runs in the control-plane node, which has the host's Docker
socket and the sandboxes' network namespaces (``/var/run/docker/netns``, the same mount the
CNI plugin uses), so it plays the kubelet's part itself: it finds the pod's sandbox by its
labels, opens a socket *in the sandbox's network namespace* (``setns`` in a short-lived
thread: a socket keeps the namespace it was created in) and connects to ``127.0.0.1:<port>``
there, exactly as the kubelet does — a server listening only on the pod's loopback is
reached too, and no route between nodes is involved. Both transports are served: the
WebSocket tunnel and the SPDY upgrade.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web

from ..engine.streams import DockerAPIError, DockerEngine
from ..kube.containers import CONTAINER_TYPE_LABEL, POD_NODE_LABEL, POD_UID_LABEL
from ..kube.dialerrors import dial_error
from . import _spdy, errors, rawupgrade

log = logging.getLogger("labctl.apiserver.portforward")

__all__ = ["TUNNEL_PROTOCOL", "serve_portforward"]

#: the WebSocket sub-protocol of kubectl's tunneling dialer (SPDY frames in binary messages)
TUNNEL_PROTOCOL = "SPDY/3.1+portforward.k8s.io"
#: the stream protocol of the SPDY upgrade (``X-Stream-Protocol-Version``)
STREAM_PROTOCOL = "portforward.k8s.io"
#: the kubelet's ``streamCreationTimeout``: how long half a pair may wait for the other half
_PAIR_TIMEOUT = 30.0
_CHUNK = 256 * 1024
_CLONE_NEWNET = 0x40000000
#: connects to a port of the pod
Dial = Callable[[int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


# -- the pod's network namespace -------------------------------------------------------------
async def sandbox_netns(engine: DockerEngine, pod: dict) -> str:
    """The path of the pod's network namespace: its sandbox's ``SandboxKey``, a hostNetwork pod's node's."""
    name = pod["metadata"]["name"]
    labels = {POD_UID_LABEL: pod["metadata"].get("uid", ""), CONTAINER_TYPE_LABEL: "podsandbox"}
    try:
        sandboxes = [c for c in await engine.list_containers(labels) if c.state == "running"]
        if not sandboxes:
            raise errors.bad_request(f"unable to upgrade connection: pod {name} has no running sandbox")
        sandbox = sandboxes[-1]
        if pod.get("spec", {}).get("hostNetwork") and sandbox.labels.get(POD_NODE_LABEL):
            info = await engine.inspect(sandbox.labels[POD_NODE_LABEL])  # the node's own network namespace
        else:
            info = await engine.inspect(sandbox.id)
    except DockerAPIError as err:
        raise errors.APIError(500, "InternalError", f"Internal error occurred: {err.message}") from err
    path = (info.get("NetworkSettings") or {}).get("SandboxKey") or ""
    if not path:
        raise errors.bad_request(f"unable to upgrade connection: pod {name} has no network namespace")
    return path


def _socket_in(netns: str) -> socket.socket:
    """A TCP socket created inside ``netns``; runs in a thread of its own, which ``setns`` moves."""
    libc = ctypes.CDLL(None, use_errno=True)
    target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(target, _CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns({netns}): {os.strerror(ctypes.get_errno())}")
        return socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    finally:
        os.close(target)  # the thread ends here, so it never serves anything else from the pod's namespace


async def dial_in_netns(netns: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to ``127.0.0.1:port`` inside the pod's network namespace, as the kubelet does."""
    loop = asyncio.get_running_loop()
    made: asyncio.Future[socket.socket] = loop.create_future()

    def make() -> None:
        try:
            sock = _socket_in(netns)
        except OSError as err:
            loop.call_soon_threadsafe(made.set_exception, err)
        else:
            loop.call_soon_threadsafe(made.set_result, sock)

    threading.Thread(target=make, name="netns-dial", daemon=True).start()
    sock = await made
    sock.setblocking(False)
    try:
        await loop.sock_connect(sock, ("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    return await asyncio.open_connection(sock=sock)


# -- the SPDY session -------------------------------------------------------------------------
@dataclass
class _Stream:
    stream_id: int
    headers: dict[str, str]
    inbound: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)
    local_closed: bool = False  # this server sent its FIN (or a reset)


@dataclass
class _Pair:
    request_id: str
    error: _Stream | None = None
    data: _Stream | None = None
    task: asyncio.Task | None = None


class PortForwardSession:
    """One ``kubectl port-forward``: SPDY streams in pairs, each pair one TCP connection into the pod.

    ``send`` writes bytes to the client (one WebSocket message, or the raw connection);
    ``dial(port)`` connects to the pod's port; :meth:`feed` takes the client's bytes as they arrive.
    """

    def __init__(self, send: Callable[[bytes], Awaitable[None]], dial: Dial, pod_label: str) -> None:
        self._send, self._dial, self.pod_label = send, dial, pod_label
        self._reader, self._writer = _spdy.FrameReader(), _spdy.FrameWriter()
        self._streams: dict[int, _Stream] = {}
        self._pairs: dict[str, _Pair] = {}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self.ended = False

    async def _write(self, frame: bytes) -> None:
        async with self._lock:  # a frame is never interleaved with another
            await self._send(frame)

    async def feed(self, chunk: bytes) -> None:
        for frame in self._reader.feed(chunk):
            await self._on_frame(frame)

    async def _on_frame(self, frame: _spdy.Frame) -> None:
        if isinstance(frame, _spdy.SynStream):
            await self._on_new_stream(frame)
        elif isinstance(frame, _spdy.Data):
            stream = self._streams.get(frame.stream_id)
            if stream is not None:
                if frame.data:
                    stream.inbound.put_nowait(frame.data)
                if frame.fin:
                    stream.inbound.put_nowait(None)
        elif isinstance(frame, _spdy.RstStream):
            self._reset(frame.stream_id)
        elif isinstance(frame, _spdy.Ping):
            await self._write(self._writer.ping(frame.ping_id))
        elif isinstance(frame, _spdy.GoAway):
            self.ended = True

    async def _on_new_stream(self, frame: _spdy.SynStream) -> None:
        stream = _Stream(frame.stream_id, frame.headers)
        self._streams[frame.stream_id] = stream
        await self._write(self._writer.syn_reply(frame.stream_id))
        if frame.fin:
            stream.inbound.put_nowait(None)
        request_id = frame.headers.get("requestid", "")
        kind = frame.headers.get("streamtype", "")
        if not request_id:  # clients before request IDs: consecutive stream ids (the kubelet's guess)
            request_id = str(frame.stream_id - 2 if kind == "data" else frame.stream_id)
        pair = self._pairs.get(request_id)
        if pair is None:
            pair = self._pairs[request_id] = _Pair(request_id)
            self._spawn(self._expire(pair))
        problem = (f"invalid stream type {kind!r}" if kind not in ("error", "data")
                   else f"{kind} stream already assigned" if getattr(pair, kind) is not None else "")
        if problem:
            await self._close(stream, f"error processing stream for request {request_id}: {problem}")
            return
        setattr(pair, kind, stream)
        if pair.error is not None and pair.data is not None:
            pair.task = self._spawn(self._forward(pair))

    def _spawn(self, coro) -> asyncio.Task:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _expire(self, pair: _Pair) -> None:
        await asyncio.sleep(_PAIR_TIMEOUT)
        if pair.task is None and self._pairs.get(pair.request_id) is pair:
            if pair.error is not None:
                await self._close(pair.error, f"timed out waiting for streams of request {pair.request_id}")
            self._forget(pair)

    def _reset(self, stream_id: int) -> None:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return
        stream.local_closed = True
        stream.inbound.put_nowait(None)
        for pair in list(self._pairs.values()):
            if stream in (pair.data, pair.error) and pair.task is not None:
                pair.task.cancel()  # kubectl resets a pair once its local connection is done

    def _forget(self, pair: _Pair) -> None:
        self._pairs.pop(pair.request_id, None)
        for stream in (pair.error, pair.data):
            if stream is not None:
                self._streams.pop(stream.stream_id, None)

    async def _close(self, stream: _Stream, message: str = "") -> None:
        """Send ``message`` (if any) and this side's FIN on ``stream``."""
        if stream.local_closed:
            return
        stream.local_closed = True
        if message:
            await self._write(self._writer.data(stream.stream_id, message.encode()))
        await self._write(self._writer.data(stream.stream_id, fin=True))

    async def _forward(self, pair: _Pair) -> None:
        assert pair.error is not None and pair.data is not None
        port_text = pair.data.headers.get("port", "")
        try:
            port = int(port_text)
            if not 0 < port < 65536:
                raise ValueError(port_text)
            reader, writer = await self._dial(port)
        except (ValueError, OSError) as err:
            reason = (f"invalid port {port_text!r}" if isinstance(err, ValueError) else
                      dial_error("127.0.0.1", port_text, err, network="tcp4") if err.errno else str(err))
            await self._close(pair.data)
            await self._close(pair.error, f"error forwarding port {port_text} to pod {self.pod_label}: {reason}")
            self._forget(pair)
            return
        inbound = asyncio.ensure_future(self._copy_in(pair.data, writer))
        try:
            while chunk := await reader.read(_CHUNK):
                if pair.data.local_closed:
                    break
                await self._write(self._writer.data(pair.data.stream_id, chunk))
            await self._close(pair.data)
            await self._close(pair.error)
        except (ConnectionError, OSError) as err:
            log.debug("port-forward to %s:%s ended: %s", self.pod_label, port, err)
        finally:
            inbound.cancel()
            writer.close()
            await asyncio.gather(inbound, return_exceptions=True)
            self._forget(pair)

    async def _copy_in(self, stream: _Stream, writer: asyncio.StreamWriter) -> None:
        """The client's bytes → the pod; the client's FIN half-closes the pod connection."""
        while (chunk := await stream.inbound.get()) is not None:
            writer.write(chunk)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()

    async def close(self) -> None:
        """The client is gone: stop every forwarded connection."""
        self.ended = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


# -- the handler ------------------------------------------------------------------------------
async def serve_portforward(request: web.Request, pod: dict, engine: DockerEngine) -> web.StreamResponse:
    """``GET|POST .../pods/NAME/portforward``: a SPDY session, tunnelled in a WebSocket or upgraded to."""
    meta = pod["metadata"]
    if not pod.get("spec", {}).get("nodeName"):
        raise errors.bad_request(f"pod {meta['name']} does not have a host assigned")
    upgrade = request.headers.get("Upgrade", "").lower()
    tunnel = upgrade == "websocket"
    if tunnel:
        offered = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
        if TUNNEL_PROTOCOL not in offered:
            raise errors.bad_request(f"unable to upgrade: unable to negotiate protocol: client supports "
                                     f"[{' '.join(offered)}], server supports [{TUNNEL_PROTOCOL}]")
    elif upgrade.startswith("spdy/3.1"):
        offered = [p.strip() for p in request.headers.getall("X-Stream-Protocol-Version", []) for p in p.split(",")]
        if STREAM_PROTOCOL not in offered:
            raise errors.bad_request(f"unable to upgrade: unable to negotiate protocol: client supports "
                                     f"[{' '.join(offered)}], server supports [{STREAM_PROTOCOL}]")
    else:
        raise errors.bad_request("Upgrade request required")
    netns = await sandbox_netns(engine, pod)
    label = f"{meta.get('namespace', '')}/{meta['name']}, uid {meta.get('uid', '')}"
    if tunnel:
        return await _serve_tunnel(request, netns, label)
    return await _serve_spdy(request, netns, label)


async def _serve_tunnel(request: web.Request, netns: str, label: str) -> web.StreamResponse:
    ws = web.WebSocketResponse(protocols=(TUNNEL_PROTOCOL,), autoping=True, max_msg_size=0)
    await ws.prepare(request)
    session = PortForwardSession(ws.send_bytes, functools.partial(dial_in_netns, netns), label)
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await session.feed(msg.data)
            if session.ended:
                break
    except (_spdy.ProtocolError, ConnectionError) as err:
        log.debug("port-forward to %s ended: %s", label, err)
    finally:
        await session.close()
        if not ws.closed:
            await ws.close()
    return ws


async def _serve_spdy(request: web.Request, netns: str, label: str) -> web.StreamResponse:
    conn = await rawupgrade.upgrade(request, "SPDY/3.1", {"X-Stream-Protocol-Version": STREAM_PROTOCOL})
    session = PortForwardSession(conn.send, functools.partial(dial_in_netns, netns), label)
    try:
        while not session.ended and (chunk := await conn.receive()):
            await session.feed(chunk)
    except (_spdy.ProtocolError, ConnectionError) as err:
        log.debug("port-forward to %s ended: %s", label, err)
    finally:
        await session.close()
        conn.close()
    return conn.response
