"""``kubectl logs`` and ``kubectl exec`` through labctl's API server, against real Docker containers,
and the same streams through labctl's own client (``labctl.client.streams``).

The node agent is not involved: each test creates the pod object with kubectl, then starts
the Docker containers the node agent would start for it (same labels, the pod's uid) and
sets the pod's status the way the agent would. Only that bookkeeping is simulated; the
streams under test are real (the real kubectl 1.37, the API server process, the engine).
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import struct
import subprocess
import time
import uuid

import orjson
import pytest

from labctl.apiserver import _channels, podproxy
from labctl.apiserver.errors import APIError
from labctl.apiserver.podproxy import LogOptions, select_container, select_log_instance
from labctl.client.rest import APIClient, APIStatusError, Credentials
from labctl.client.streams import ExecResult, exec_in_pod, open_exec, read_log
from labctl.client.waiting import wait_for
from labctl.cluster.kubectl import Kubectl
from labctl.engine.streams import ContainerInfo, DockerEngine, FrameDemuxer
from labctl.kube.containers import (
    CONTAINER_ATTEMPT_LABEL,
    CONTAINER_NAME_LABEL,
    CONTAINER_TYPE_LABEL,
    POD_NAME_LABEL,
    POD_NAMESPACE_LABEL,
    POD_UID_LABEL,
)
from support.terminal import on_terminal, read_until

IMAGE = "labctl/web:v1"  # busybox sh inside; the entrypoint is replaced per container
TEST_LABEL = "io.labctl.test"


# -- pure logic (no Docker, no kubectl) -----------------------------------------------------
def _pod(containers=("a", "b"), inits=(), statuses=()):
    return {"metadata": {"name": "web", "uid": "u1"},
            "spec": {"nodeName": "worker", "containers": [{"name": c} for c in containers],
                     "initContainers": [{"name": c} for c in inits]},
            "status": {"containerStatuses": list(statuses)}}


def _instance(attempt: int) -> ContainerInfo:
    return ContainerInfo(f"id{attempt}", f"c{attempt}", "exited", {CONTAINER_ATTEMPT_LABEL: str(attempt)}, attempt)


def test_select_container_defaults_and_wording():
    assert select_container(_pod(("only",)), "") == "only"
    assert select_container(_pod(inits=("init",)), "init") == "init"
    with pytest.raises(APIError, match=r"^a container name must be specified for pod web, choose one of: "
                                       r"\[a b\] or one of the init containers: \[init\]$"):
        select_container(_pod(inits=("init",)), "")
    with pytest.raises(APIError, match="^container x is not valid for pod web$") as err:
        select_container(_pod(), "x")
    assert err.value.code == 400 and err.value.reason == "BadRequest"


def test_select_log_instance_previous_and_waiting():
    pod = _pod(statuses=[{"name": "b", "state": {"waiting": {"reason": "ErrImagePull"}}}])
    assert select_log_instance(pod, "a", False, [_instance(0), _instance(1)]).id == "id1"
    assert select_log_instance(pod, "a", True, [_instance(0), _instance(1), _instance(2)]).id == "id1"
    with pytest.raises(APIError, match='^previous terminated container "a" in pod "web" not found$'):
        select_log_instance(pod, "a", True, [_instance(0)])
    with pytest.raises(APIError, match='^container "a" in pod "web" is waiting to start: ContainerCreating$'):
        select_log_instance(pod, "a", False, [])
    with pytest.raises(APIError, match='^container "b" in pod "web" is waiting to start: ErrImagePull$'):
        select_log_instance(pod, "b", False, [])


def test_log_options_validation_is_one_422():
    with pytest.raises(APIError) as err:
        LogOptions.from_query({"tailLines": "-1", "limitBytes": "0"}, "web")
    assert err.value.code == 422
    assert err.value.message == ('PodLogOptions "web" is invalid: [tailLines: Invalid value: -1: must be greater '
                                 "than or equal to 0, limitBytes: Invalid value: 0: must be greater than 0]")
    with pytest.raises(APIError, match="invalid value for follow"):
        LogOptions.from_query({"follow": "yes"}, "web")


def test_frame_demuxer_reassembles_split_frames():
    stream = struct.pack(">BxxxL", 1, 3) + b"out" + struct.pack(">BxxxL", 2, 4) + b"err!"
    demuxer = FrameDemuxer()
    frames = [f for i in range(len(stream)) for f in demuxer.feed(stream[i:i + 1])]
    assert frames == [(1, b"out"), (2, b"err!")]


def test_channel_protocol_helpers():
    assert _channels.negotiate(["v5.channel.k8s.io", "v4.channel.k8s.io"]) == "v5.channel.k8s.io"
    assert _channels.negotiate(["v3.channel.k8s.io", "v4.channel.k8s.io"]) == "v4.channel.k8s.io"
    assert _channels.negotiate(["channel.k8s.io"]) is None
    assert _channels.parse_resize(b'{"Width":80,"Height":24}{"Width":100,"Height":30}') == (100, 30)
    status = _channels.exit_code_status(3)
    assert status["reason"] == "NonZeroExitCode" and status["details"]["causes"] == [{"reason": "ExitCode",
                                                                                      "message": "3"}]


# -- against the API server process and Docker ----------------------------------------------
class PodContainers:
    """Starts the containers a node agent would start for a pod (same labels); removes them all."""

    def __init__(self) -> None:
        self.prefix = f"pp{uuid.uuid4().hex[:6]}"
        self.names: list[str] = []

    def run(self, pod: dict, container: str, script: str, attempt: int = 0, wait: bool = False,
            uid: str | None = None) -> str:
        meta = pod["metadata"]
        name = f"{self.prefix}-{meta['name']}-{container}-{attempt}"
        labels = {POD_NAME_LABEL: meta["name"], POD_NAMESPACE_LABEL: meta["namespace"],
                  POD_UID_LABEL: uid or meta["uid"], CONTAINER_NAME_LABEL: container,
                  CONTAINER_ATTEMPT_LABEL: str(attempt), CONTAINER_TYPE_LABEL: "container", TEST_LABEL: self.prefix}
        args = ["docker", "run", "-d", "--name", name, "--network", "none", "--entrypoint", "sh"]
        args += [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]
        self.names.append(name)
        subprocess.run([*args, IMAGE, "-c", script], check=True, capture_output=True, timeout=60)
        if wait:
            subprocess.run(["docker", "wait", name], check=True, capture_output=True, timeout=60)
        return name

    def remove_all(self) -> None:
        if self.names:
            subprocess.run(["docker", "rm", "-f", *self.names], capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def k(shared_apiserver, kubectl_binary, docker_engine) -> Kubectl:
    return Kubectl(kubectl_binary, shared_apiserver.kubeconfig)


@pytest.fixture(scope="module")
def docker_pods(docker_engine):
    pods = PodContainers()
    try:
        yield pods
    finally:
        pods.remove_all()


def create_pod(k: Kubectl, name: str, containers: tuple[str, ...] = ("web",)) -> dict:
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"nodeName": "worker", "containers": [{"name": c, "image": "nginx"} for c in containers]}}
    k.run("apply", "-f", "-", input=json.dumps(manifest))
    return k.json("get", "pod", name)


def set_status(k: Kubectl, name: str, running: tuple[str, ...] = (), waiting: dict[str, str] | None = None,
               restarts: int = 0) -> None:
    """What the node agent reports: Running, with a status per container."""
    statuses = [{"name": c, "ready": True, "restartCount": restarts, "image": IMAGE, "imageID": "",
                 "state": {"running": {"startedAt": "2026-11-30T00:00:00Z"}}} for c in running]
    statuses += [{"name": c, "ready": False, "restartCount": 0, "image": IMAGE, "imageID": "",
                  "state": {"waiting": {"reason": reason}}} for c, reason in (waiting or {}).items()]
    k.run("patch", "pod", name, "--subresource=status", "--type=merge",
          "-p", json.dumps({"status": {"phase": "Running", "containerStatuses": statuses}}))


def engine_log(container: str) -> str:
    """What a container printed so far, as the engine holds it (``docker logs``, both streams)."""
    proc = subprocess.run(["docker", "logs", container], capture_output=True, text=True, check=True, timeout=30)
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def logs_pod(k, docker_pods) -> dict:
    """Pod ``logs`` with two containers: ``a`` printed five lines (one to stderr), ``b`` one."""
    pod = create_pod(k, "logs", ("a", "b"))
    # stdout and stderr are separate pipes the engine reads concurrently: pause around the
    # stderr line so the log's order is the order of writing
    a = docker_pods.run(pod, "a", "for i in 1 2 3; do echo line$i; done; sleep 0.3; echo line4 >&2; sleep 0.3; "
                                  "echo line5; exec sleep 3600")
    b = docker_pods.run(pod, "b", "echo from-b; exec sleep 3600")
    set_status(k, "logs", running=("a", "b"))
    wait_for(lambda: "line5" in engine_log(a) and "from-b" in engine_log(b), timeout=30, interval=0.1,
             what="both shells to print their lines")
    return pod


def test_logs_of_each_container_tail_timestamps_limit(k, logs_pod):
    assert k.run("logs", "logs", "-c", "a").stdout == "line1\nline2\nline3\nline4\nline5\n"
    assert k.run("logs", "logs", "-c", "b").stdout == "from-b\n"
    assert k.run("logs", "logs", "-c", "a", "--tail", "2").stdout == "line4\nline5\n"
    assert k.run("logs", "logs", "-c", "a", "--limit-bytes", "8").stdout == "line1\nli"
    assert k.run("logs", "logs", "-c", "a", "--since", "1h").stdout.count("\n") == 5
    stamped = k.run("logs", "logs", "-c", "b", "--timestamps").stdout
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z from-b\n", stamped), stamped


def test_logs_errors_are_kube_status_objects(k, logs_pod):
    raw = "/api/v1/namespaces/default/pods/logs/log"
    no_container = k.run("get", "--raw", raw, check=False)
    assert no_container.returncode == 1
    assert ("Error from server (BadRequest): a container name must be specified for pod logs, "
            "choose one of: [a b]") in no_container.stderr
    unknown = k.run("get", "--raw", raw + "?container=x", check=False)
    assert "Error from server (BadRequest): container x is not valid for pod logs" in unknown.stderr
    invalid = k.run("get", "--raw", raw + "?container=a&tailLines=-1", check=False)
    assert 'PodLogOptions "logs" is invalid: tailLines: Invalid value: -1' in invalid.stderr
    previous = k.run("logs", "logs", "-c", "a", "--previous", check=False)
    assert previous.returncode == 1
    assert previous.stderr == ('Error from server (BadRequest): previous terminated container "a" in pod "logs" '
                               "not found\n")
    missing = k.run("logs", "nosuchpod", check=False)
    assert 'pods "nosuchpod" not found' in missing.stderr

    create_pod(k, "pending")
    set_status(k, "pending", waiting={"web": "ContainerCreating"})
    waiting = k.run("logs", "pending", check=False)
    assert waiting.stderr == ('Error from server (BadRequest): container "web" in pod "pending" is waiting to '
                              "start: ContainerCreating\n")


def test_logs_follow_streams_new_lines_until_stopped(k, docker_pods):
    pod = create_pod(k, "follow")
    name = docker_pods.run(pod, "web", "echo started; exec sleep 3600")
    set_status(k, "follow", running=("web",))
    proc = subprocess.Popen([k.binary, "--kubeconfig", str(k.kubeconfig), "logs", "-f", "follow"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert b"started\n" in read_until(proc.stdout.fileno(), b"started\n")
        # a line written after kubectl started must arrive while it is still running
        subprocess.run(["docker", "exec", name, "sh", "-c", "echo written-later > /proc/1/fd/1"], check=True,
                       timeout=30)
        assert b"written-later\n" in read_until(proc.stdout.fileno(), b"written-later\n")
        assert proc.poll() is None
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()
    assert k.run("logs", "follow").stdout == "started\nwritten-later\n"


def test_logs_previous_shows_the_exited_attempt_of_this_pod_only(k, docker_pods):
    pod = create_pod(k, "restarted")
    # a pod of the same name deleted earlier (another uid) with a higher attempt must never show
    docker_pods.run(pod, "web", "echo old-pod; exec sleep 3600", attempt=7, uid=str(uuid.uuid4()))
    docker_pods.run(pod, "web", "echo first-run; exit 1", attempt=0, wait=True)
    second = docker_pods.run(pod, "web", "echo second-run; exec sleep 3600", attempt=1)
    set_status(k, "restarted", running=("web",), restarts=1)
    wait_for(lambda: "second-run" in engine_log(second), timeout=30, interval=0.1, what="the second run's line")
    assert k.run("logs", "restarted", "--previous").stdout == "first-run\n"
    assert k.run("logs", "restarted").stdout == "second-run\n"


@pytest.fixture(scope="module")
def shell_pod(k, docker_pods) -> dict:
    pod = create_pod(k, "shell")
    docker_pods.run(pod, "web", "exec sleep 3600")
    set_status(k, "shell", running=("web",))
    return pod


def test_exec_prints_output_and_exits_with_the_command_code(k, shell_pod):
    proc = k.run("exec", "shell", "--", "sh", "-c", "echo hi; echo oops >&2; exit 3", check=False)
    assert proc.returncode == 3
    assert proc.stdout == "hi\n"
    assert "oops\n" in proc.stderr and "command terminated with exit code 3" in proc.stderr
    assert k.run("exec", "shell", "--", "true").returncode == 0


def test_exec_with_stdin_closes_it_at_eof(k, shell_pod):
    proc = k.run("exec", "-i", "shell", "--", "sh", "-c", "cat; echo done", input="data\nmore\n", timeout=30)
    assert proc.stdout == "data\nmore\ndone\n"


def test_exec_interactive_tty_with_terminal_size(k, shell_pod):
    argv = [k.binary, "--kubeconfig", str(k.kubeconfig), "exec", "-it", "shell", "--", "sh"]
    with on_terminal(argv, rows=33, cols=101) as (proc, master):
        read_until(master, b"# ")  # the shell's prompt: the session is up
        os.write(master, b"echo $((6*7)); stty size\n")
        out = read_until(master, b"33 101")
        assert b"42\r\n" in out and b"33 101" in out, out  # the pty's size reached the container's terminal
        os.write(master, b"exit 5\n")
        assert proc.wait(20) == 5


def test_exec_into_a_container_that_is_not_running(k, docker_pods):
    pod = create_pod(k, "gone")
    docker_pods.run(pod, "web", "exit 0", wait=True)
    proc = k.run("exec", "gone", "--", "true", check=False)
    assert proc.returncode == 1
    assert 'unable to upgrade connection: container not found ("web")' in proc.stderr


# -- the WebSocket protocol itself, as kubectl's transport sees it ----------------------------
async def _exec_ws(server, kubeconfig, query: str, protocols: list[str]) -> tuple[int, list[bytes] | dict, str]:
    """Open an exec WebSocket with the given subprotocols; return (status, frames or Status, protocol)."""
    import aiohttp

    ctx = Credentials.from_kubeconfig(kubeconfig).ssl_context()
    url = f"{server.url}/api/v1/namespaces/default/pods/shell/exec?{query}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ctx)) as session:
        try:
            async with session.ws_connect(url, protocols=protocols) as ws:
                frames = [msg.data async for msg in ws]
                return 101, frames, ws.protocol or ""
        except aiohttp.WSServerHandshakeError:
            pass
        # refused: read the Status the server answered the upgrade request with
        headers = {"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                   "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
                   "Sec-WebSocket-Protocol": ", ".join(protocols)}
        async with session.get(url, headers=headers) as resp:
            return resp.status, orjson.loads(await resp.read()), ""


def test_exec_websocket_handshake_and_frames(shared_apiserver, shell_pod):
    run = lambda query, protocols: asyncio.run(_exec_ws(shared_apiserver, shared_apiserver.kubeconfig, query,
                                                        protocols))
    status, frames, protocol = run("command=sh&command=-c&command=echo%20v4&stdout=true", ["v4.channel.k8s.io"])
    assert (status, protocol) == (101, "v4.channel.k8s.io")
    assert frames[0] == b"\x01"  # the empty "streams are up" message on the lowest writable channel
    assert b"".join(f[1:] for f in frames if f[:1] == b"\x01") == b"v4\n"
    assert orjson.loads(frames[-1][1:]) == {"metadata": {}, "status": "Success"} and frames[-1][:1] == b"\x03"

    status, body, _ = run("command=true&stdout=true", ["v3.channel.k8s.io", "channel.k8s.io"])
    assert status == 400 and "unable to negotiate protocol" in body["message"]
    status, body, _ = run("command=true&stdout=true&container=zz", ["v5.channel.k8s.io"])
    assert (status, body["reason"], body["message"]) == (400, "BadRequest", "container zz is not valid for pod shell")


# -- the client side: labctl.client.streams, as the grader and the terminal UI use it ----------
def _client(server) -> APIClient:
    return APIClient(Credentials.from_kubeconfig(server.kubeconfig))


async def _read_log(server, pod: str, **options) -> bytes:
    async with _client(server) as api:
        return b"".join([chunk async for chunk in read_log(api, "default", pod, **options)])


def test_client_reads_logs_with_kubectls_options(shared_apiserver, logs_pod):
    run = lambda **options: asyncio.run(_read_log(shared_apiserver, "logs", **options))
    assert run(container="a") == b"line1\nline2\nline3\nline4\nline5\n"
    assert run(container="a", tail_lines=2) == b"line4\nline5\n"
    assert run(container="a", limit_bytes=8) == b"line1\nli"
    assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\S+Z from-b\n", run(container="b", timestamps=True))
    with pytest.raises(APIStatusError) as err:
        run()
    assert err.value.code == 400 and "choose one of: [a b]" in err.value.status["message"]


def test_client_follows_a_log_until_it_stops_reading(shared_apiserver, k, docker_pods):
    pod = create_pod(k, "client-follow")
    name = docker_pods.run(pod, "web", "echo started; exec sleep 3600")
    set_status(k, "client-follow", running=("web",))

    async def follow() -> bytes:
        seen = b""
        async with _client(shared_apiserver) as api:
            async for chunk in read_log(api, "default", "client-follow", follow=True):
                seen += chunk
                if seen == b"started\n":  # a line written after the stream opened must arrive on it
                    await asyncio.to_thread(subprocess.run, ["docker", "exec", name, "sh", "-c",
                                                             "echo written-later > /proc/1/fd/1"], check=True)
                if b"written-later\n" in seen:
                    return seen  # leaving the loop closes the stream
        return seen

    assert asyncio.run(asyncio.wait_for(follow(), 30)) == b"started\nwritten-later\n"


async def _exec(server, command: list[str], pod: str = "shell", **options) -> ExecResult:
    async with _client(server) as api:
        return await exec_in_pod(api, "default", pod, command, **options)


def test_client_exec_collects_exit_code_stdout_stderr_and_feeds_stdin(shared_apiserver, shell_pod):
    result = asyncio.run(_exec(shared_apiserver, ["sh", "-c", "echo hi; echo oops >&2; exit 3"]))
    assert (result.exit_code, result.stdout, result.stderr) == (3, b"hi\n", b"oops\n")
    assert asyncio.run(_exec(shared_apiserver, ["true"])).ok
    fed = asyncio.run(_exec(shared_apiserver, ["sh", "-c", "cat; echo done"], stdin=b"data\nmore\n"))
    assert (fed.exit_code, fed.stdout) == (0, b"data\nmore\ndone\n")
    missing = asyncio.run(_exec(shared_apiserver, ["no-such-command"]))
    assert missing.exit_code == 126 and b"executable file not found" in missing.stdout  # as `docker exec`


def test_client_exec_refusals_carry_the_servers_status(shared_apiserver, k, shell_pod, docker_pods):
    with pytest.raises(APIStatusError) as refused:
        asyncio.run(_exec(shared_apiserver, ["true"], container="zz"))
    assert (refused.value.code, refused.value.status["message"]) == (400, "container zz is not valid for pod shell")
    pod = create_pod(k, "client-gone")
    docker_pods.run(pod, "web", "exit 0", wait=True)
    with pytest.raises(APIStatusError) as gone:
        asyncio.run(_exec(shared_apiserver, ["true"], pod="client-gone"))
    assert gone.value.code == 500 and 'container not found ("web")' in gone.value.status["message"]


def test_client_exec_session_with_a_terminal_and_the_v4_protocol(shared_apiserver, shell_pod):
    async def terminal() -> tuple[str, bytes, int]:
        async with _client(shared_apiserver) as api, \
                open_exec(api, "default", "shell", ["sh"], stdin=True, tty=True) as session:
            await session.resize(101, 33)
            await session.write(b"stty size; exit 5\n")
            output = b"".join([data async for _channel, data in session.output()])
            return session.protocol, output, session.exit_code()

    protocol, output, code = asyncio.run(terminal())
    assert (protocol, code) == ("v5.channel.k8s.io", 5)
    assert b"33 101" in output

    async def v4() -> tuple[str, bytes, int]:
        async with _client(shared_apiserver) as api, \
                open_exec(api, "default", "shell", ["echo", "v4"], protocols=["v4.channel.k8s.io"]) as session:
            output = b"".join([data async for _channel, data in session.output()])
            with pytest.raises(ValueError, match="cannot close stdin"):
                await session.close_stdin()
            return session.protocol, output, session.exit_code()

    assert asyncio.run(v4()) == ("v4.channel.k8s.io", b"v4\n", 0)


class _SilentClient:
    """The client's side of an attach WebSocket that sends nothing and stays open (kubectl run -i
    before the student types): what the session sends is kept."""

    def __init__(self) -> None:
        self.closed = False
        self.sent: list[tuple[int, bytes]] = []

    async def send_bytes(self, data: bytes) -> None:
        self.sent.append((data[0], data[1:]))

    def __aiter__(self):
        return self

    async def __anext__(self):
        await asyncio.Event().wait()  # never a message


@pytest.mark.docker
def test_an_attach_to_a_container_that_stopped_as_it_was_attached_ends_with_its_output(docker_pods, monkeypatch):
    """`kubectl run -i --rm … -- nslookup …`: the process may end between the check that the
    container runs and Docker's attach, and Docker's attach to a stopped container never ends.
    The session ends anyway, with the output the stream did not carry, and Success."""
    pod = {"metadata": {"name": "quick", "namespace": "default", "uid": str(uuid.uuid4())},
           "spec": {"nodeName": "worker", "containers": [{"name": "c", "stdin": True, "stdinOnce": True}]}}
    name = docker_pods.run(pod, "c", "echo answered", wait=True)
    opts = podproxy.ExecOptions("c", (), True, True, True, False)

    async def was_running(*_args) -> list[ContainerInfo]:  # the check passed a moment before the process ended
        return [ContainerInfo(name, name, "running", {}, 0)]

    monkeypatch.setattr(podproxy, "list_instances", was_running)

    async def attach_as_the_container_stops() -> _SilentClient:
        async with DockerEngine() as engine:
            session = podproxy._AttachSession(engine, opts, "c", pod)
            client = _SilentClient()
            await asyncio.wait_for(session.run(client), 60)  # type: ignore[arg-type]
            return client

    client = asyncio.run(attach_as_the_container_stops())
    output = b"".join(data for channel, data in client.sent if channel == 1)
    assert output == b"answered\n"
    assert json.loads(client.sent[-1][1]) == {"metadata": {}, "status": "Success"} and client.sent[-1][0] == 3


class _EndedEngine:
    """Docker as an attach finds a container whose process ends around it: the attach stream closes
    with nothing on it; the container's State says when the process ended; its log holds two lines."""

    LOG = (b"Server: 10.96.0.10\n", b"Address: 10.96.0.1\n")

    def __init__(self, finished_at: str) -> None:
        self.finished_at = finished_at

    async def inspect(self, _cid: str) -> dict:
        return {"Config": {"Tty": False, "StdinOnce": True}, "State": {"Running": False, "FinishedAt": self.finished_at}}

    async def attach(self, _cid: str, **_streams: bool):
        reader = asyncio.StreamReader()
        reader.feed_eof()
        return reader, _ClosedWriter()

    async def wait_stopped(self, _cid: str) -> int:
        return 0

    async def logs(self, _cid: str, **_options):
        for chunk in self.LOG:
            yield chunk


class _ClosedWriter:
    def close(self) -> None:
        pass


def _attach_to_an_ended_process(ended: str, read_through: int | None = None, state: str = "running") -> _SilentClient:
    pod = {"metadata": {"name": "quick", "namespace": "default", "uid": "u"},
           "spec": {"nodeName": "worker", "containers": [{"name": "c", "stdin": True, "stdinOnce": True}]}}
    opts = podproxy.ExecOptions("c", (), True, True, True, False)
    cid = uuid.uuid4().hex
    if read_through is not None:  # what kubectl's read of the whole log sent just before
        podproxy._READ_THROUGH[cid] = (read_through, time.monotonic())

    async def listed(*_args) -> list[ContainerInfo]:  # running: the check passed a moment before
        return [ContainerInfo(cid, "name", state, {}, 0)]

    async def attach() -> _SilentClient:
        session = podproxy._AttachSession(_EndedEngine(ended), opts, "c", pod)  # type: ignore[arg-type]
        client = _SilentClient()
        await asyncio.wait_for(session.run(client), 10)  # type: ignore[arg-type]
        return client

    original = podproxy.list_instances
    podproxy.list_instances = listed  # type: ignore[assignment]
    try:
        return asyncio.run(attach())
    finally:
        podproxy.list_instances = original


@pytest.mark.parametrize(("read_through", "shown"), [
    (None, b"Server: 10.96.0.10\nAddress: 10.96.0.1\n"),  # no read before: all of it
    (19, b"Address: 10.96.0.1\n"),                          # kubectl printed the first line already
    (38, b""),                                               # ... and the second: nothing twice
])
def test_an_attach_that_missed_a_process_ending_as_it_was_made_sends_what_the_client_has_not_read(
        read_through, shown):
    # `kubectl run -i` reads the whole log, then attaches: what the process wrote between the two
    # (its answer, and its end) reached neither, and `kubectl run -i --rm … -- nslookup` printed nothing
    client = _attach_to_an_ended_process("2000-01-01T00:00:00.123456789Z", read_through)
    assert b"".join(data for channel, data in client.sent if channel == 1) == shown
    assert client.sent[-1] == (3, b'{"metadata":{},"status":"Success"}')


def test_an_attach_to_a_process_that_ended_after_it_was_made_sends_only_what_it_carried():
    # the attach was joined to the process's streams before it ended: they carried all it wrote
    client = _attach_to_an_ended_process("2999-01-01T00:00:00Z")
    assert not [data for channel, data in client.sent if channel == 1 and data]
    assert client.sent[-1] == (3, b'{"metadata":{},"status":"Success"}')


def test_only_a_read_of_the_whole_log_is_what_an_attach_continues_after():
    assert LogOptions.from_query({"container": "c"}, "p").whole_log()  # kubectl run -i's read before it attaches
    for query in ({"follow": "true"}, {"tailLines": "1"}, {"sinceTime": "2026-12-07T18:46:47Z"}, {"limitBytes": "5"},
                  {"timestamps": "true"}, {"previous": "true"}, {"stream": "Stdout"}):
        assert not LogOptions.from_query(query, "p").whole_log(), query


def test_kubectl_run_attaching_to_a_process_that_ended_since_its_read_gets_the_rest_not_a_refusal():
    # `kubectl run -i` read the whole log (the first line), saw the pod running, and attaches after
    # the process ended: refused, kubectl would print the log again after a warning
    client = _attach_to_an_ended_process("2000-01-01T00:00:00Z", read_through=19, state="exited")
    assert b"".join(data for channel, data in client.sent if channel == 1) == b"Address: 10.96.0.1\n"
    assert client.sent[-1] == (3, b'{"metadata":{},"status":"Success"}')
