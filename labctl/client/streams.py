"""``pods/log`` and ``pods/exec`` from the client's side: what ``kubectl logs -f`` and ``kubectl exec`` do.

**Logs** are a plain ``GET …/pods/NAME/log`` whose body is the log as the container wrote
it; with ``follow`` the server keeps the response open and sends new output as it comes.

**Exec** is a WebSocket (``GET …/pods/NAME/exec?command=…&stdin=…&tty=…``) speaking the
``channel.k8s.io`` sub-protocol: every binary message is one channel byte, then that
channel's bytes —

====  =======  ==========  =========================================================
byte  channel  direction   payload
====  =======  ==========  =========================================================
0     stdin    client →    bytes for the process
1     stdout   ← server    output (the first message, empty, says the streams are up)
2     stderr   ← server    error output (none with a TTY: the terminal merges it)
3     error    ← server    one ``meta/v1 Status`` at the end: Success, or Failure with
                           reason ``NonZeroExitCode`` and the code in a cause ``ExitCode``
4     resize   client →    ``{"Width": 80, "Height": 24}``
255   close    client →    ``[255, 0]``: stdin is finished (v5 only)
====  =======  ==========  =========================================================

The client offers ``v5.channel.k8s.io`` then ``v4.channel.k8s.io`` (v4 has no close
signal, so it cannot end a command's input without ending the session), as kubectl 1.37
does, so it works against labctl's API server and a real kube-apiserver ≥ 1.30. A request
the server refuses before the upgrade (unknown container, no node yet) raises
:class:`~labctl.client.rest.APIStatusError` with the server's own message; a failure after
it (the container is gone) arrives as the final Status.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from ..engine.exec import ExecResult
from .rest import APIClient, APIStatusError, resource_path

__all__ = ["PROTOCOLS", "ExecResult", "ExecSession", "exec_in_pod", "open_exec", "read_log"]

STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
CLOSE = 255
V5_PROTOCOL = "v5.channel.k8s.io"
V4_PROTOCOL = "v4.channel.k8s.io"
#: offered in this order of preference
PROTOCOLS = (V5_PROTOCOL, V4_PROTOCOL)
_CHUNK = 64 * 1024


def _session(api: APIClient) -> aiohttp.ClientSession:
    # the API client's own session: same server, CA, client certificate or token, connection pool
    return api._session


async def read_log(api: APIClient, namespace: str, pod: str, *, container: str | None = None,
                   follow: bool = False, previous: bool = False, timestamps: bool = False,
                   tail_lines: int | None = None, since_seconds: int | None = None,
                   limit_bytes: int | None = None) -> AsyncIterator[bytes]:
    """The log of a pod's container, in chunks as they arrive (``kubectl logs`` with the same flags).

    With ``follow`` it runs until the caller stops iterating (or the container's log ends).
    """
    params = {"follow": follow, "previous": previous, "timestamps": timestamps, "container": container,
              "tailLines": tail_lines, "sinceSeconds": since_seconds, "limitBytes": limit_bytes}
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items()
             if v is not None and v is not False}
    path = resource_path("pods", namespace, pod, "log")
    # no total timeout: a followed log lasts as long as the caller wants it
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
    async with _session(api).get(path, params=query, timeout=timeout) as resp:
        if resp.status >= 300:
            raise APIStatusError(resp.status, _status_of(await resp.read()))
        async for chunk in resp.content.iter_any():
            yield chunk


class ExecSession:
    """A running command in a pod's container, over its WebSocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        #: the final ``Status`` (error channel), once the command has ended
        self.status: dict[str, Any] | None = None

    @property
    def protocol(self) -> str:
        return self._ws.protocol or ""

    async def write(self, data: bytes) -> None:
        """Send ``data`` to the command's stdin (the session must be opened with ``stdin=True``)."""
        for start in range(0, len(data), _CHUNK):
            await self._ws.send_bytes(bytes((STDIN,)) + data[start:start + _CHUNK])

    async def close_stdin(self) -> None:
        """Tell the command its input is finished (``cat`` ends); needs ``v5.channel.k8s.io``."""
        if self.protocol != V5_PROTOCOL:
            raise ValueError(f"{self.protocol or 'this protocol'} cannot close stdin; the server must speak "
                             f"{V5_PROTOCOL}")
        await self._ws.send_bytes(bytes((CLOSE, STDIN)))

    async def resize(self, width: int, height: int) -> None:
        """Set the command's terminal size (sessions opened with ``tty=True``)."""
        await self._ws.send_bytes(bytes((RESIZE,)) + json.dumps({"Width": width, "Height": height}).encode())

    async def output(self) -> AsyncIterator[tuple[int, bytes]]:
        """``(STDOUT or STDERR, bytes)`` as the command writes them, until it ends; then :attr:`status` is set."""
        async for msg in self._ws:
            if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            if channel == ERROR and data:
                self.status = orjson.loads(data)
            elif channel in (STDOUT, STDERR) and data:
                yield channel, data

    def exit_code(self) -> int:
        """The command's exit code from the final Status; a Status that is not the command's raises."""
        status = self.status
        if status is None:
            raise APIStatusError(500, {"reason": "InternalError",
                                       "message": "the exec stream ended without a status"})
        if status.get("status") == "Success":
            return 0
        if status.get("reason") == "NonZeroExitCode":
            for cause in (status.get("details") or {}).get("causes") or []:
                if cause.get("reason") == "ExitCode":
                    return int(cause["message"])
        raise APIStatusError(int(status.get("code") or 500), status)


@asynccontextmanager
async def open_exec(api: APIClient, namespace: str, pod: str, command: Sequence[str], *,
                    container: str | None = None, stdin: bool = False, tty: bool = False,
                    protocols: Sequence[str] = PROTOCOLS) -> AsyncIterator[ExecSession]:
    """Start ``command`` in a pod's container (``kubectl exec [-i] [-t]``); the session until the block ends."""
    query = [("command", arg) for arg in command] + [
        ("stdin", _flag(stdin)), ("stdout", "true"), ("stderr", "true"), ("tty", _flag(tty))]
    if container:
        query.append(("container", container))
    path = resource_path("pods", namespace, pod, "exec")
    session = _session(api)
    try:
        ws = await session.ws_connect(path, params=query, protocols=tuple(protocols), max_msg_size=0)
    except aiohttp.WSServerHandshakeError as err:
        raise await _refusal(session, path, query, err) from None
    try:
        yield ExecSession(ws)
    finally:
        await ws.close()


async def exec_in_pod(api: APIClient, namespace: str, pod: str, command: Sequence[str], *,
                      container: str | None = None, stdin: bytes | None = None) -> ExecResult:
    """Run ``command`` in a pod's container and collect its exit code, stdout and stderr.

    ``stdin`` is fed to the command and then closed. A command that cannot start (``not
    found``) is an ordinary result with the runtime's exit code (126, 127), as with kubectl.
    """
    out, err = bytearray(), bytearray()
    async with open_exec(api, namespace, pod, command, container=container, stdin=stdin is not None) as session:
        if stdin is not None:
            await session.write(stdin)
            await session.close_stdin()
        async for channel, data in session.output():
            (err if channel == STDERR else out).extend(data)
    return ExecResult(session.exit_code(), bytes(out), bytes(err))


async def _refusal(session: aiohttp.ClientSession, path: str, query: list[tuple[str, str]],
                   err: aiohttp.WSServerHandshakeError) -> APIStatusError:
    """The server's reason for refusing the upgrade.

    The handshake error carries only the HTTP status, so the same request is repeated
    without ``Upgrade``: the server checks the pod, container and options first and answers
    with the same Status — and never runs anything, because nothing was upgraded.
    """
    async with session.get(path, params=query) as resp:
        status = _status_of(await resp.read())
    if resp.status >= 400 and status.get("message") and "Upgrade request required" not in status["message"]:
        return APIStatusError(resp.status, status)
    return APIStatusError(err.status, {"reason": err.message,
                                       "message": f"failed to upgrade the exec request: {err.message}"})


def _status_of(body: bytes) -> dict[str, Any]:
    try:
        status = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {"message": body.decode(errors="replace").strip()}
    return status if isinstance(status, dict) else {}


def _flag(value: bool) -> str:
    return "true" if value else "false"
