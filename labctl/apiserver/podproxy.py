"""``pods/log`` and ``pods/exec``: ``kubectl logs`` and ``kubectl exec`` through labctl's API server.

What a real cluster does: kube-apiserver holds no containers. For ``GET .../pods/web/log``
it validates the options and the container name, looks up the pod's node and proxies the
request to that node's kubelet (``https://<node>:10250/containerLogs/<ns>/<pod>/<container>``);
the kubelet asks the container runtime over CRI where the log is and streams it. ``exec``
goes the same way (``/exec/...``): the apiserver upgrades the client's WebSocket and
translates it to SPDY towards the kubelet, whose CRI streaming server runs the process.

What labctl does: every lab node is a container on the host's one Docker engine, and the
control-plane node has ``/var/run/docker.sock`` mounted. So the API server skips the
kubelet hop and asks the engine directly, finding the pod's containers by the labels the
node agent puts on them (pod uid, container name, restart attempt) — the same labels a
student can filter on with ``docker ps --filter label=io.kubernetes.pod.name=web``.
Matching on the pod's *uid* means a pod recreated under the same name never shows the
previous pod's logs. The validation and the error wording are kube-apiserver's
(``LogLocation``/``streamLocation``) and the kubelet's (``validateContainerLogStatus``).

The handlers are plain aiohttp coroutines; ``server.py`` calls them after authentication
and after fetching the pod (a missing pod is its ordinary 404).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import logging
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import cast

import orjson
from aiohttp import WSMsgType, web

from ..client.streams import CLOSE, ERROR, RESIZE, STDERR, STDIN, STDOUT
from ..engine.streams import ContainerInfo, DockerAPIError, DockerEngine, FrameDemuxer
from ..kube.containers import CONTAINER_ATTEMPT_LABEL, CONTAINER_NAME_LABEL, CONTAINER_TYPE_LABEL, POD_UID_LABEL
from ..kube.meta import parse_time
from . import _channels as ch
from . import errors, queryparams

log = logging.getLogger("labctl.apiserver.podproxy")

__all__ = [
    "DockerEngine",
    "ExecOptions",
    "LogOptions",
    "select_container",
    "select_log_instance",
    "serve_attach",
    "serve_exec",
    "serve_log",
]

#: how often a quiet ``logs -f`` checks that its client is still connected
_DISCONNECT_POLL_SECONDS = 1.0
#: how long a stream may take to close once its process is known to have ended
_DRAIN_SECONDS = 2.0
#: Docker answers an attach's upgrade before it joins the container's streams: what the process
#: writes, and ends with, in this time after the answer, the attach does not carry
_ATTACH_SETUP_SECONDS = 0.5
#: container id → (bytes, monotonic time) of the last read of its whole log (both streams, no
#: tail, since, limit or timestamps): ``kubectl run -i`` reads the log so just before it
#: attaches, and an attach that missed the process's end sends what came after
#: (:class:`_AttachSession`). The oldest entries go first past :data:`_READ_THROUGH_MAX`.
_READ_THROUGH: OrderedDict[str, tuple[int, float]] = OrderedDict()
_READ_THROUGH_MAX = 1024
#: an attach this soon after such a read is ``kubectl run -i``'s (it attaches within milliseconds)
_READ_THEN_ATTACH_SECONDS = 2.0


# -- which container ------------------------------------------------------------------------
def _names(containers: list | None) -> list[str]:
    return [c.get("name", "") for c in containers or []]


def select_container(pod: dict, requested: str) -> str:
    """The container a request addresses, with kube-apiserver's defaulting and 400s."""
    spec, name = pod.get("spec", {}), pod["metadata"]["name"]
    containers, inits = _names(spec.get("containers")), _names(spec.get("initContainers"))
    if not requested:
        if len(containers) == 1:
            return containers[0]
        if not containers:
            raise errors.bad_request(f"a container name must be specified for pod {name}")
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(containers)}]"
        if inits:
            message += f" or one of the init containers: [{' '.join(inits)}]"
        raise errors.bad_request(message)
    if requested not in containers + inits + _names(spec.get("ephemeralContainers")):
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def _attempt(info: ContainerInfo) -> int:
    try:
        return int(info.labels.get(CONTAINER_ATTEMPT_LABEL, "0"))
    except ValueError:
        return 0


async def list_instances(engine: DockerEngine, pod: dict, container: str) -> list[ContainerInfo]:
    """The Docker containers that ran ``container`` of this pod (this uid), oldest attempt first."""
    labels = {POD_UID_LABEL: pod["metadata"].get("uid", ""), CONTAINER_NAME_LABEL: container,
              CONTAINER_TYPE_LABEL: "container"}
    try:
        found = await engine.list_containers(labels)
    except DockerAPIError as err:
        raise errors.APIError(500, "InternalError", f"Internal error occurred: failed to list the containers "
                              f"of pod {pod['metadata']['name']!r}: {err.message}") from err
    return sorted(found, key=lambda c: (_attempt(c), c.created))


def _status_of(pod: dict, container: str) -> dict:
    status = pod.get("status", {})
    for key in ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"):
        for cs in status.get(key) or []:
            if cs.get("name") == container:
                return cs
    return {}


def select_log_instance(pod: dict, container: str, previous: bool,
                        instances: list[ContainerInfo]) -> ContainerInfo:
    """The instance whose log to serve: the newest attempt, or with ``previous`` the one before it.

    The node agent keeps the last exited instance of a restarted container until the next
    restart, so "previous" is the highest attempt below the current one. Errors use the
    kubelet's wording, which kubectl shows as ``Error from server (BadRequest): ...``.
    """
    pod_name = pod["metadata"]["name"]
    if previous:
        if len(instances) < 2:
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{pod_name}" not found')
        return instances[-2]
    if instances:
        return instances[-1]
    state = _status_of(pod, container).get("state", {})
    if "terminated" in state:
        raise errors.bad_request(f'container "{container}" in pod "{pod_name}" is terminated')
    reason = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
    raise errors.bad_request(f'container "{container}" in pod "{pod_name}" is waiting to start: {reason}')


# -- query parameters -----------------------------------------------------------------------
def _bool(q: Mapping[str, str], name: str) -> bool:
    """Go's ``strconv.ParseBool``, which kube's query decoding uses."""
    value = q.get(name, "")
    if value in ("", "0", "f", "F", "false", "FALSE", "False"):
        return False
    if value in ("1", "t", "T", "true", "TRUE", "True"):
        return True
    raise errors.bad_request(f'invalid value for {name}: strconv.ParseBool: parsing "{value}": invalid syntax')


def _int(q: Mapping[str, str], name: str) -> int | None:
    if name not in q:
        return None
    try:
        return int(q[name])
    except ValueError:
        raise errors.bad_request(f'invalid value for {name}: strconv.ParseInt: parsing "{q[name]}": '
                                 "invalid syntax") from None


@dataclass(frozen=True)
class LogOptions:
    """``PodLogOptions`` as query parameters (``kubectl logs`` flags in brackets)."""

    container: str = ""         # -c
    follow: bool = False        # -f
    previous: bool = False      # -p / --previous
    timestamps: bool = False    # --timestamps
    tail_lines: int | None = None   # --tail
    since_seconds: int | None = None  # --since
    since_time: dt.datetime | None = None  # --since-time
    limit_bytes: int | None = None  # --limit-bytes
    stream: str = "All"         # Stdout | Stderr | All (PodLogsQuerySplitStreams)

    @classmethod
    def from_query(cls, q: Mapping[str, str], pod_name: str) -> LogOptions:
        since_time = None
        if q.get("sinceTime"):
            try:
                since_time = dt.datetime.fromisoformat(q["sinceTime"].replace("Z", "+00:00"))
            except ValueError:
                raise errors.bad_request(f'invalid value for sinceTime: parsing time "{q["sinceTime"]}" '
                                         'as "2006-01-02T15:04:05Z07:00": cannot parse') from None
        opts = cls(q.get("container", ""), _bool(q, "follow"), _bool(q, "previous"), _bool(q, "timestamps"),
                   _int(q, "tailLines"), _int(q, "sinceSeconds"), since_time, _int(q, "limitBytes"),
                   q.get("stream", "All") or "All")
        opts.validate(pod_name)
        return opts

    def whole_log(self) -> bool:
        """The container's whole log as it is (what ``kubectl run -i`` reads before it attaches)."""
        return (not (self.follow or self.previous or self.timestamps) and self.stream == "All"
                and self.tail_lines is self.since_seconds is self.since_time is self.limit_bytes is None)

    def validate(self, pod_name: str) -> None:
        """kube's ``ValidatePodLogOptions``: a 422 naming every bad field."""
        errs: list[errors.FieldError] = []
        if self.tail_lines is not None and self.tail_lines < 0:
            errs.append(errors.invalid("tailLines", self.tail_lines, "must be greater than or equal to 0"))
        if self.limit_bytes is not None and self.limit_bytes < 1:
            errs.append(errors.invalid("limitBytes", self.limit_bytes, "must be greater than 0"))
        if self.since_seconds is not None and self.since_time is not None:
            errs.append(errors.forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
        elif self.since_seconds is not None and self.since_seconds < 1:
            errs.append(errors.invalid("sinceSeconds", self.since_seconds, "must be greater than 0"))
        if self.stream not in ("All", "Stdout", "Stderr"):
            errs.append(errors.not_supported("stream", self.stream, ["All", "Stdout", "Stderr"]))
        if errs:
            raise errors.invalid_object("PodLogOptions", "", pod_name, errs)

    def since(self, now: float) -> float | None:
        """The engine's ``since`` (Unix seconds) for ``sinceSeconds``/``sinceTime``."""
        if self.since_seconds is not None:
            return now - self.since_seconds
        if self.since_time is not None:
            return self.since_time.timestamp()
        return None


@dataclass(frozen=True)
class ExecOptions:
    """``PodExecOptions`` as query parameters: ``command`` repeats, one argv element each.

    ``PodAttachOptions`` are the same without a command (:meth:`attach_from_query`).
    """

    container: str
    command: tuple[str, ...]
    stdin: bool
    stdout: bool
    stderr: bool
    tty: bool

    @classmethod
    def from_query(cls, q) -> ExecOptions:
        command = tuple(q.getall("command", []))
        if not command:
            raise errors.bad_request("you must specify at least one command for the container")
        return cls._streams(q, command)

    @classmethod
    def attach_from_query(cls, q) -> ExecOptions:
        return cls._streams(q, ())

    @classmethod
    def _streams(cls, q, command: tuple[str, ...]) -> ExecOptions:
        tty = _bool(q, "tty")
        opts = cls(q.get("container", ""), command, _bool(q, "stdin"), _bool(q, "stdout"),
                   # with a TTY the terminal merges stderr into stdout, as the kubelet does
                   _bool(q, "stderr") and not tty, tty)
        if not (opts.stdin or opts.stdout or _bool(q, "stderr")):
            raise errors.bad_request("you must specify at least 1 of stdin, stdout, stderr")
        return opts


# -- logs -----------------------------------------------------------------------------------
async def serve_log(request: web.Request, pod: dict, engine: DockerEngine) -> web.StreamResponse:
    """``GET /api/v1/namespaces/NS/pods/NAME/log``: the container's log as ``text/plain``, streamed."""
    name = pod["metadata"]["name"]
    queryparams.check_pod_log_query(request.query)  # int64 parameters, as kube parses them
    opts = LogOptions.from_query(request.query, name)
    container = select_container(pod, opts.container)
    resp = web.StreamResponse(headers={"Content-Type": "text/plain", "Cache-Control": "no-cache"})
    if not pod.get("spec", {}).get("nodeName"):
        # kube answers an unscheduled pod's log with an empty body (no node to ask)
        await resp.prepare(request)
        return resp
    instance = select_log_instance(pod, container, opts.previous, await list_instances(engine, pod, container))
    chunks = engine.logs(instance.id, follow=opts.follow and not opts.previous, timestamps=opts.timestamps,
                         tail=opts.tail_lines, since=opts.since(dt.datetime.now().timestamp()),
                         stdout=opts.stream != "Stderr", stderr=opts.stream != "Stdout")
    resp.enable_chunked_encoding()
    await resp.prepare(request)
    pump: asyncio.Future[int] = asyncio.ensure_future(_copy_log(chunks, resp, opts.limit_bytes))
    try:
        while not pump.done():
            await asyncio.wait({pump}, timeout=_DISCONNECT_POLL_SECONDS)
            if request.transport is None or request.transport.is_closing():
                break  # the client went away (kubectl logs -f was stopped): free the engine stream
    finally:
        pump.cancel()
        await asyncio.gather(pump, return_exceptions=True)
    if pump.done() and not pump.cancelled() and isinstance(pump.exception(), DockerAPIError):
        log.warning("failed to stream the log of %s/%s container %r: %s", pod["metadata"].get("namespace"),
                    name, container, pump.exception())
    elif pump.done() and not pump.cancelled() and opts.whole_log():
        _READ_THROUGH[instance.id] = (pump.result(), time.monotonic())
        _READ_THROUGH.move_to_end(instance.id)
        if len(_READ_THROUGH) > _READ_THROUGH_MAX:
            _READ_THROUGH.popitem(last=False)
    return resp


async def _copy_log(chunks, resp: web.StreamResponse, limit: int | None) -> int:
    """Send the log's chunks (up to ``limit`` bytes); the bytes sent."""
    sent = 0
    try:
        async for chunk in chunks:
            if limit is not None:
                chunk = chunk[:limit - sent]
            await resp.write(chunk)
            sent += len(chunk)
            if limit is not None and sent >= limit:
                break
    except (ConnectionResetError, ConnectionError):
        pass
    finally:
        await chunks.aclose()
    return sent


# -- exec and attach ---------------------------------------------------------------------------
async def serve_exec(request: web.Request, pod: dict, engine: DockerEngine) -> web.StreamResponse:
    """``GET|POST .../pods/NAME/exec``: run a command in a container over a ``channel.k8s.io`` WebSocket."""
    opts = ExecOptions.from_query(request.query)
    return await _serve_channels(request, pod, _ExecSession(engine, opts, select_container(pod, opts.container), pod))


async def serve_attach(request: web.Request, pod: dict, engine: DockerEngine) -> web.StreamResponse:
    """``GET|POST .../pods/NAME/attach``: the container's main process over a ``channel.k8s.io`` WebSocket.

    The same protocol as exec (``kubectl attach`` and ``kubectl run -i`` speak it); the
    process's stdin is only open if the container has ``stdin: true``.
    """
    opts = ExecOptions.attach_from_query(request.query)
    session = _AttachSession(engine, opts, select_container(pod, opts.container), pod)
    return await _serve_channels(request, pod, session)


async def _serve_channels(request: web.Request, pod: dict, session: _ExecSession) -> web.StreamResponse:
    """Upgrade to a ``channel.k8s.io`` WebSocket and run ``session`` over it.

    Everything that can be refused is refused before the upgrade, as an HTTP Status (kubectl
    then prints ``Error from server (BadRequest): ...``); failures after it travel on the
    error channel, as kube-apiserver's stream translator sends them.
    """
    name = pod["metadata"]["name"]
    if not pod.get("spec", {}).get("nodeName"):
        raise errors.bad_request(f"pod {name} does not have a host assigned")
    upgrade = request.headers.get("Upgrade", "").lower()
    if upgrade != "websocket":
        if upgrade.startswith("spdy"):
            # kubectl only falls back to SPDY when the WebSocket upgrade failed
            raise errors.bad_request("labctl's API server streams exec and attach over WebSockets only "
                                     f"({ch.V5_PROTOCOL}); SPDY/3.1 is not supported")
        raise errors.bad_request("Upgrade request required")
    requested = ch.requested_protocols(request.headers.get("Sec-WebSocket-Protocol", ""))
    protocol = ch.negotiate(requested)
    if protocol is None:
        raise ch.no_common_protocol(requested)
    ws = web.WebSocketResponse(protocols=(protocol,), autoping=True, max_msg_size=0)
    await ws.prepare(request)
    try:
        await session.run(ws)
    except ConnectionError as err:  # the client went away mid-session: nothing left to tell it
        log.debug("stream to %s/%s ended by the client: %s", pod["metadata"].get("namespace"), name, err)
    finally:
        if not ws.closed:
            await ws.close()
    return ws


class _ExecSession:
    """One running ``kubectl exec``: a Docker exec bridged to the client's WebSocket."""

    ws: web.WebSocketResponse

    def __init__(self, engine: DockerEngine, opts: ExecOptions, container: str, pod: dict) -> None:
        self.engine, self.opts, self.container, self.pod = engine, opts, container, pod
        self.exec_id = ""
        self.forwarded = 0  # bytes of the process's output passed to the client
        self.delivered = 0  # bytes of the client's input passed to the process
        self.raw_output = opts.tty  # Docker's stream is raw with a TTY, multiplexed without
        self.forward_stdin_close = True  # the client's end of input ends the process's input
        self.input_at_line_start = True  # no partial line typed into a TTY

    async def _send_status(self, status: dict) -> None:
        if not self.ws.closed:
            await self.ws.send_bytes(ch.frame(ERROR, orjson.dumps(status)))

    async def run(self, ws: web.WebSocketResponse) -> None:
        self.ws = ws
        try:
            reader, writer = await self._start()
        except (DockerAPIError, errors.APIError) as err:
            await self._send_status(ch.internal_error_status(err.message))
            return
        # tell the client the streams are up (kubelet/kube-apiserver do the same)
        first = STDOUT if self.opts.stdout else STDERR if self.opts.stderr else ERROR
        await self.ws.send_bytes(ch.frame(first))
        output = asyncio.ensure_future(self._copy_output(reader))
        client = asyncio.ensure_future(self._copy_input(writer))
        gone = asyncio.ensure_future(self._process_gone())
        try:
            await asyncio.wait({output, client, gone}, return_when=asyncio.FIRST_COMPLETED)
            if gone.done() and not (output.done() or client.done()):
                # the process ended: its stream closes within moments, once drained ...
                await asyncio.wait({output, client}, timeout=_DRAIN_SECONDS, return_when=asyncio.FIRST_COMPLETED)
                if not (output.done() or client.done()):
                    # ... but for a container that stopped as Docker attached to it, never
                    output.cancel()
                    await self._replay_missed_output()
                    await self._send_status(await self._final_status())
                    return
            if output.done() and not output.cancelled() and output.exception() is None:
                await self._output_ended()
                await self._send_status(await self._final_status())
        finally:
            for task in (output, client, gone):
                task.cancel()
            await asyncio.gather(output, client, gone, return_exceptions=True)
            writer.close()

    async def _process_gone(self) -> None:
        """Returns once the process has ended, when that is known apart from its stream (an exec's
        stream always closes with it: never)."""
        await asyncio.Event().wait()

    async def _replay_missed_output(self) -> None:
        """Send what the process wrote that the stream did not carry (nothing for an exec)."""

    async def _output_ended(self) -> None:
        """The process's stream ended: send what it missed, if anything (nothing for an exec)."""

    async def _running_instance(self) -> ContainerInfo:
        return self._running(await list_instances(self.engine, self.pod, self.container))

    def _running(self, instances: list[ContainerInfo]) -> ContainerInfo:
        if not instances or instances[-1].state != "running":
            raise DockerAPIError(404, f'unable to upgrade connection: container not found ("{self.container}")')
        return instances[-1]

    async def _start(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        instance = await self._running_instance()
        o = self.opts
        self.exec_id = await self.engine.exec_create(instance.id, list(o.command), stdin=o.stdin,
                                                     stdout=o.stdout, stderr=o.stderr, tty=o.tty)
        log.debug("exec %s in %s: %s", self.exec_id[:12], instance.name, o.command)
        return await self.engine.exec_start(self.exec_id, o.tty)

    async def _resize(self, width: int, height: int) -> None:
        await self.engine.exec_resize(self.exec_id, width, height)

    async def _copy_output(self, reader: asyncio.StreamReader) -> None:
        """Docker's stream (raw with a TTY, multiplexed without) → stdout/stderr channels."""
        demuxer = None if self.raw_output else FrameDemuxer()
        while chunk := await reader.read(64 * 1024):
            self.forwarded += len(chunk)
            frames = [(1, chunk)] if demuxer is None else demuxer.feed(chunk)
            # one message per run of same-stream frames, not per frame (often one line each)
            for stream, group in itertools.groupby(frames, key=lambda f: f[0]):
                data = b"".join(d for _s, d in group)
                await self.ws.send_bytes(ch.frame(STDERR if stream == 2 else STDOUT, data))

    async def _copy_input(self, writer: asyncio.StreamWriter) -> None:
        """Client channels → the process: stdin bytes, stdin half-close (v5), terminal resizes."""
        async for msg in self.ws:
            if msg.type != WSMsgType.BINARY:
                continue
            channel, data = ch.split_frame(msg.data)
            if channel == STDIN and self.opts.stdin:
                writer.write(data)
                await writer.drain()
                self.delivered += len(data)
                if data:
                    self.input_at_line_start = data.endswith(b"\n")
            elif channel == CLOSE and data[:1] == bytes((STDIN,)) and self.opts.stdin and self.forward_stdin_close:
                await self._end_input(writer)
            elif channel == RESIZE and self.opts.tty:
                size = ch.parse_resize(data)
                if size:
                    try:
                        await self._resize(*size)
                    except DockerAPIError as err:
                        log.debug("failed to resize the terminal of %s: %s", self.container, err)

    async def _end_input(self, writer: asyncio.StreamWriter) -> None:
        """The client's end of input (``[255, 0]``), passed on as the process can see it.

        Without a TTY the stream's write side closes and Docker closes the process's stdin
        (`cat` ends). With a TTY Docker would end the session's *output* instead (its attach
        code closes stdout when stdin ends), and `kubectl run -it` with its input piped printed
        nothing: a terminal's end of input is Ctrl-D at the start of a line, so that is what the
        terminal gets (after a newline if a line was left unfinished, which a shell runs then).
        """
        if not self.raw_output:
            if writer.can_write_eof():
                writer.write_eof()
            return
        writer.write(b"\x04" if self.input_at_line_start else b"\n\x04")
        await writer.drain()

    async def _final_status(self) -> dict:
        try:
            code = await self.engine.exec_exit_code(self.exec_id)
        except DockerAPIError as err:
            return ch.internal_error_status(f"failed to read the exit code: {err.message}")
        if code is None:
            return ch.internal_error_status("failed to read the exit code: the engine did not report one")
        return ch.success_status() if code == 0 else ch.exit_code_status(code)


class _AttachSession(_ExecSession):
    """One ``kubectl attach`` (or ``kubectl run -i``): Docker's attach to the container's main process.

    The stream is raw or multiplexed as the *container* was created (``tty: true`` in its
    spec), whatever the client asked. Ending stdin (``[255, 0]``) ends the process's input
    (``_end_input``) only when the container has ``stdinOnce: true``; otherwise its stdin stays
    open for the next client, and the end of this client's input is not passed on (Docker would
    close this attach's output with it, losing what the process still writes). The session
    ends when the process exits (then ``Success``, as the kubelet reports an attach).
    """

    container_id = ""
    attached_at = 0.0  # the host's clock once Docker answered the attach

    async def _start(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        instances = await list_instances(self.engine, self.pod, self.container)
        if instances and instances[-1].state != "running" and _read_just_now(instances[-1].id):
            # `kubectl run -i` read this instance's whole log an instant ago, saw the pod running,
            # and attaches: its process ended in between. Refused (as the kubelet refuses a stopped
            # container), kubectl would read the log again from the second of its first read and
            # print the answer twice after a warning (kubernetes/kubectl#1848, more often here
            # than on a cluster whose status moves slower); the attach sends what came after that
            # read instead (_output_ended), as for an attach that missed the process's end.
            self.container_id, self.attached_at = instances[-1].id, time.time()
            return _ended_output(), cast(asyncio.StreamWriter, _NoInput())
        instance = self._running(instances)
        self.container_id = instance.id
        config = (await self.engine.inspect(instance.id)).get("Config") or {}
        self.raw_output, self.forward_stdin_close = bool(config.get("Tty")), bool(config.get("StdinOnce"))
        o = self.opts
        streams = await self.engine.attach(instance.id, stdin=o.stdin, stdout=o.stdout, stderr=o.stderr)
        self.attached_at = time.time()
        return streams

    async def _resize(self, width: int, height: int) -> None:
        await self.engine.resize(self.container_id, width, height)

    async def _process_gone(self) -> None:
        # Docker's attach checks nothing: joined to a container that stopped between the check in
        # _running_instance and the attach, it waits forever (`kubectl run -i --rm … -- nslookup`,
        # a process that ends at once, hung so). The container's own end is the sure sign.
        with contextlib.suppress(DockerAPIError):
            await self.engine.wait_stopped(self.container_id)

    async def _output_ended(self) -> None:
        # a stream that carried nothing either way, of a process that ended while Docker joined it
        if not (self.forwarded or self.delivered) and await self._ended_while_attaching():
            await self._replay_missed_output()

    async def _ended_while_attaching(self) -> bool:
        try:
            state = (await self.engine.inspect(self.container_id)).get("State") or {}
        except DockerAPIError:
            return False
        finished = parse_time(state.get("FinishedAt"))
        return (not state.get("Running") and finished is not None
                and finished.timestamp() <= self.attached_at + _ATTACH_SETUP_SECONDS)

    async def _replay_missed_output(self) -> None:
        """What the process wrote that no stream carried to the client: its log after what the
        client's last read of the whole log sent (``kubectl run -i`` reads the log, then attaches,
        and what came between reached neither: ``kubectl run -i --rm … -- nslookup kubernetes``
        printed nothing, now and then), or all of it without such a read."""
        if self.forwarded or not self.opts.stdout:
            return  # the stream carried output: it saw the process, and replaying would repeat it
        skip = _READ_THROUGH.get(self.container_id, (0, 0.0))[0]
        try:
            async for chunk in self.engine.logs(self.container_id, follow=False, timestamps=False, tail=None,
                                                since=None):
                chunk, skip = chunk[skip:], max(0, skip - len(chunk))
                if chunk:
                    self.forwarded += len(chunk)
                    await self.ws.send_bytes(ch.frame(STDOUT, chunk))
        except DockerAPIError as err:
            log.debug("failed to replay the output of %s: %s", self.container, err)

    async def _final_status(self) -> dict:
        return ch.success_status()


def _read_just_now(container_id: str) -> bool:
    read = _READ_THROUGH.get(container_id)
    return read is not None and time.monotonic() - read[1] <= _READ_THEN_ATTACH_SECONDS


def _ended_output() -> asyncio.StreamReader:
    """The output stream of a process that has ended: nothing more."""
    reader = asyncio.StreamReader()
    reader.feed_eof()
    return reader


class _NoInput:
    """The input side of a process that has ended: what the client sends goes nowhere."""

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False

    def write_eof(self) -> None:
        pass

    def close(self) -> None:
        pass
