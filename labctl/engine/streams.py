"""The asyncio Docker Engine API client for streams: container logs and exec sessions.

Used by the API server (``pods/log``, ``pods/exec``), by ``labctl exec/shell/logs`` and by
the lab facade's ``Node.exec``. Why not the docker SDK here: the SDK is blocking, and the
API server is one asyncio event loop. A ``kubectl logs -f`` or an interactive ``kubectl
exec -it`` can last for hours; with the SDK each would pin a thread (the default executor
has 6 on this 2-core machine) and stall the server once a handful are open. The SDK's
hijacked exec socket also drops any output bytes that arrived together with the HTTP
headers (they sit in ``http.client``'s read buffer), which loses the output of fast
commands such as ``labctl exec worker -- ip route``. Speaking the documented Engine API
over the Unix socket with aiohttp (requests) and an asyncio stream (the hijacked exec
connection) keeps every stream cancellable and lossless.
"""

from __future__ import annotations

import asyncio
import os
import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

DEFAULT_SOCKET = "/var/run/docker.sock"
#: Docker's stream multiplexing header: stream id (0 stdin, 1 stdout, 2 stderr), 3 pad bytes, size
_FRAME_HEADER = struct.Struct(">BxxxL")


class DockerAPIError(Exception):
    """A failed Engine API call: ``status`` is the HTTP code (0 when the engine is unreachable)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class ContainerInfo:
    """One row of ``GET /containers/json``: what picking a pod's container instance needs."""

    id: str
    name: str
    state: str  # created | running | paused | restarting | removing | exited | dead
    labels: Mapping[str, str]
    created: int


class FrameDemuxer:
    """Splits Docker's multiplexed stdout/stderr stream (non-TTY containers and execs) into frames.

    Bytes arrive in arbitrary chunks; :meth:`feed` keeps a partial frame until it is complete.
    """

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        self._buf += chunk
        frames: list[tuple[int, bytes]] = []
        while len(self._buf) >= _FRAME_HEADER.size:
            stream, size = _FRAME_HEADER.unpack_from(self._buf)
            end = _FRAME_HEADER.size + size
            if len(self._buf) < end:
                break
            frames.append((stream, bytes(self._buf[_FRAME_HEADER.size:end])))
            del self._buf[:end]
        return frames


class DockerEngine:
    """The host's Docker engine, reached over its Unix socket (the one every lab node shares)."""

    def __init__(self, socket_path: str = DEFAULT_SOCKET) -> None:
        self.socket_path = socket_path
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> DockerEngine:
        """``DOCKER_HOST=unix:///path`` or the default socket, as the docker CLI resolves it."""
        host = environ.get("DOCKER_HOST", "")
        return cls(host[len("unix://"):] if host.startswith("unix://") else DEFAULT_SOCKET)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.UnixConnector(path=self.socket_path)
            # no total timeout: log and exec streams are as long as the user wants them
            self._session = aiohttp.ClientSession("http://docker", connector=connector,
                                                  timeout=aiohttp.ClientTimeout(total=None, connect=10))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> DockerEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _call(self, method: str, path: str, params: Mapping[str, str] | None = None,
                    body: Any = None) -> Any:
        try:
            async with self._client().request(method, path, params=params,
                                              json=body if body is not None else None) as resp:
                data = await resp.read()
                if resp.status >= 400:
                    raise DockerAPIError(resp.status, _error_message(data))
                return orjson.loads(data) if data else None
        except aiohttp.ClientError as err:
            raise DockerAPIError(0, f"failed to reach the Docker engine at {self.socket_path!r}: {err}") from err

    async def list_containers(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """Every container (running or not) carrying all of ``labels``."""
        filters = orjson.dumps({"label": [f"{k}={v}" for k, v in labels.items()]}).decode()
        rows = await self._call("GET", "/containers/json", {"all": "1", "filters": filters})
        return [ContainerInfo(r["Id"], (r.get("Names") or ["/"])[0].lstrip("/"), r.get("State", ""),
                              r.get("Labels") or {}, int(r.get("Created", 0))) for r in rows]

    async def inspect(self, container_id: str) -> dict[str, Any]:
        """``GET /containers/{id}/json``: the container's configuration and state."""
        return await self._call("GET", f"/containers/{container_id}/json")

    async def update(self, container_id: str, resources: Mapping[str, Any]) -> None:
        """``POST /containers/{id}/update``: change a running container's resources (its cgroup)."""
        await self._call("POST", f"/containers/{container_id}/update", body=dict(resources))

    async def stats(self, container_id: str) -> dict[str, Any]:
        """``GET /containers/{id}/stats?stream=false&one-shot=true``: one reading of the container's cgroup.

        ``one-shot`` answers at once with the cumulative counters (no ``precpu_stats``); without
        it Docker waits a second for a second reading. Rates are the caller's to compute from two readings.
        """
        return await self._call("GET", f"/containers/{container_id}/stats", {"stream": "false", "one-shot": "true"})

    async def container_tty(self, container_id: str) -> bool:
        info = await self.inspect(container_id)
        return bool(info.get("Config", {}).get("Tty"))

    async def logs(self, container_id: str, *, follow: bool, timestamps: bool, tail: int | None,
                   since: float | None, stdout: bool = True, stderr: bool = True) -> AsyncIterator[bytes]:
        """The container's log, as it is written (stdout and stderr interleaved), demultiplexed."""
        tty = await self.container_tty(container_id)
        params = {"stdout": _flag(stdout), "stderr": _flag(stderr), "follow": _flag(follow),
                  "timestamps": _flag(timestamps), "tail": "all" if tail is None else str(tail)}
        if since is not None:
            params["since"] = f"{since:.9f}"
        try:
            async with self._client().get(f"/containers/{container_id}/logs", params=params) as resp:
                if resp.status >= 400:
                    raise DockerAPIError(resp.status, _error_message(await resp.read()))
                demuxer = None if tty else FrameDemuxer()
                async for chunk in resp.content.iter_any():
                    if demuxer is None:
                        yield chunk
                        continue
                    # one write per network read, not per frame: a frame is often one short line
                    data = b"".join(frame for _stream, frame in demuxer.feed(chunk))
                    if data:
                        yield data
        except aiohttp.ClientError as err:
            raise DockerAPIError(0, f"failed to read the log of container {container_id[:12]!r}: {err}") from err

    async def exec_create(self, container_id: str, cmd: list[str], *, stdin: bool, stdout: bool,
                          stderr: bool, tty: bool) -> str:
        body = {"AttachStdin": stdin, "AttachStdout": stdout, "AttachStderr": stderr, "Tty": tty, "Cmd": cmd}
        return (await self._call("POST", f"/containers/{container_id}/exec", body=body))["Id"]

    async def exec_start(self, exec_id: str, tty: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Start an exec and hijack its connection: what is written goes to the process's stdin."""
        return await self._hijack(f"/exec/{exec_id}/start", orjson.dumps({"Detach": False, "Tty": tty}),
                                  f"failed to start exec {exec_id[:12]!r}")

    async def attach(self, container_id: str, *, stdin: bool, stdout: bool,
                     stderr: bool) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Attach to a running container's main process (``docker attach``), hijacking the connection.

        The stream is raw if the container was created with a TTY, multiplexed otherwise. With
        ``StdinOnce`` set on the container, closing the write side closes the process's stdin.
        """
        query = f"stream=1&stdin={_flag(stdin)}&stdout={_flag(stdout)}&stderr={_flag(stderr)}"
        return await self._hijack(f"/containers/{container_id}/attach?{query}", b"",
                                  f"failed to attach to container {container_id[:12]!r}")

    async def _hijack(self, path: str, body: bytes, failure: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """POST ``path`` asking for ``Upgrade: tcp`` and keep the connection as a byte stream.

        The Engine API answers ``101 UPGRADED`` and then carries the raw stream (TTY) or the
        multiplexed stream on the same connection, so this is plain HTTP/1.1 on an asyncio
        stream rather than aiohttp, which cannot hand an upgraded connection over.
        """
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket_path)
        except OSError as err:
            raise DockerAPIError(0, f"failed to reach the Docker engine at {self.socket_path!r}: {err}") from err
        writer.write((f"POST {path} HTTP/1.1\r\nHost: docker\r\n"
                      f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                      "Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n").encode() + body)
        try:
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as err:
            writer.close()
            raise DockerAPIError(0, f"{failure}: {err}") from err
        status = int(head.split(b" ", 2)[1])
        if status not in (101, 200):
            length = _content_length(head)
            data = await reader.read(length) if length else b""
            writer.close()
            raise DockerAPIError(status, _error_message(data))
        return reader, writer

    async def wait_stopped(self, container_id: str) -> int:
        """``POST /containers/{id}/wait?condition=not-running``: block until the container is not
        running (at once if it already stopped); its exit code."""
        answer = await self._call("POST", f"/containers/{container_id}/wait", {"condition": "not-running"})
        return int((answer or {}).get("StatusCode", -1))

    async def resize(self, container_id: str, width: int, height: int) -> None:
        """The terminal size of a container's main process (``docker attach`` follows the window)."""
        await self._call("POST", f"/containers/{container_id}/resize", {"w": str(width), "h": str(height)})

    async def exec_resize(self, exec_id: str, width: int, height: int) -> None:
        await self._call("POST", f"/exec/{exec_id}/resize", {"w": str(width), "h": str(height)})

    async def exec_exit_code(self, exec_id: str, wait: float = 5.0) -> int | None:
        """The exec's exit code; the engine may record it a moment after the stream closes."""
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            info = await self._call("GET", f"/exec/{exec_id}/json")
            if not info.get("Running") or asyncio.get_running_loop().time() > deadline:
                return info.get("ExitCode")
            await asyncio.sleep(0.05)


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _error_message(data: bytes) -> str:
    try:
        return str(orjson.loads(data).get("message", "")) or data.decode(errors="replace")
    except (orjson.JSONDecodeError, AttributeError):
        return data.decode(errors="replace").strip()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip() or 0)
    return 0
