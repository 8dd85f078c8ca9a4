"""The library facade (``labctl.cluster.Lab``) and the CLI commands that enter a node, on a real lab.

One lab for the module (the ``lab`` fixture, created with ``labctl up``): the facade opens it
by name, lists its nodes, runs commands in them with exit codes, stdin and stderr, and reaches
its API as the admin; ``labctl exec``, ``labctl shell`` (on a pseudo-terminal: window size,
resizes, Ctrl-C, the exit code) and ``labctl logs`` go through the same facade.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time

import pytest

from labctl.client.rest import resource_path
from labctl.client.waiting import wait_for
from labctl.cluster import Lab
from labctl.errors import LabctlError
from support.lab import labctl

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]


@pytest.fixture(scope="module")
def opened(lab):
    with Lab.open(lab.name) as handle:
        yield handle


def test_open_by_name_lists_the_nodes(lab, opened):
    nodes = opened.nodes()
    assert [(n.name, n.role, n.container, n.state) for n in nodes] == [
        ("control-plane", "control-plane", f"{lab.name}-control-plane", "running"),
        ("worker", "worker", f"{lab.name}-worker", "running"),
        ("worker2", "worker", f"{lab.name}-worker2", "running")]
    assert all(n.internal_ip.startswith("172.") for n in nodes)
    assert opened.server and opened.server.startswith("https://127.0.0.1:")
    with pytest.raises(LabctlError, match=f"no lab named 'nope-{lab.name}'"):
        Lab.open(f"nope-{lab.name}")
    with pytest.raises(LabctlError, match="has no node 'worker9'") as err:
        opened.node("worker9")
    assert err.value.hint == "its nodes: control-plane, worker, worker2"


def test_exec_in_a_node_returns_exit_code_stdout_stderr_and_takes_stdin(opened):
    routes = asyncio.run(opened.node("worker").exec(["ip", "route"]))
    assert routes.ok and b"proto labctl" in routes.stdout and routes.stderr == b""
    failed = asyncio.run(opened.node("worker").exec(["sh", "-c", "echo out; echo err >&2; exit 7"]))
    assert (failed.exit_code, failed.stdout, failed.stderr) == (7, b"out\n", b"err\n")
    fed = asyncio.run(opened.node("worker2").exec(["sh", "-c", "wc -c; cat /etc/hostname"], stdin=b"x" * 300_000))
    assert fed.stdout == b"300000\nworker2\n"


def test_the_api_as_the_labs_admin_sees_the_same_nodes(lab, opened):
    async def internal_ips() -> dict[str, str]:
        async with opened.api() as api:
            nodes = (await api.get(resource_path("nodes")))["items"]
        return {n["metadata"]["name"]: next(a["address"] for a in n["status"]["addresses"]
                                            if a["type"] == "InternalIP") for n in nodes}

    assert asyncio.run(internal_ips()) == {n.name: n.internal_ip for n in opened.nodes()}
    assert opened.kubeconfig()["current-context"] == f"labctl-{lab.name}"
    names = opened.kubectl(lab.kubeconfig).run("get", "nodes", "-o", "name").stdout.split()
    assert names == ["node/control-plane", "node/worker", "node/worker2"]


def test_cli_exec_passes_stdin_output_and_the_exit_code(lab):
    proc = subprocess.run([sys.executable, "-m", "labctl", "exec", "--name", lab.name, "worker", "--",
                           "sh", "-c", "cat; echo to-stderr >&2; exit 3"],
                          input="from stdin\n", capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (3, "from stdin\n", "to-stderr\n")
    assert labctl("exec", "--name", lab.name, "control-plane", "--", "true").returncode == 0
    missing = labctl("exec", "--name", lab.name, "worker9", "--", "true")
    assert missing.returncode == 1 and "ERROR: lab" in missing.stderr and "Traceback" not in missing.stderr


def test_cli_logs_show_the_node_components(lab):
    assert "[labctl-agent]" in labctl("logs", "--name", lab.name, "worker", check=True).stdout


def _read_until(fd: int, token: bytes, timeout: float = 15, data: bytes = b"") -> bytes:
    """What the terminal shows until ``token`` appears (in ``data`` read so far, or after it)."""
    deadline = time.monotonic() + timeout
    while token not in data and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.2)[0]:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO once the child side is gone
                break
            if not chunk:
                break
            data += chunk
    return data


def _set_size(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


def test_cli_shell_is_a_terminal_with_its_size_ctrl_c_and_exit_code(lab, opened):
    master, slave = pty.openpty()
    _set_size(slave, 33, 101)
    proc = subprocess.Popen([sys.executable, "-m", "labctl", "shell", "--name", lab.name, "worker"],
                            stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    try:
        assert b"@worker:" in _read_until(master, b"# ")  # bash's prompt: the session is up
        os.write(master, b"stty size\r")
        assert b"33 101" in _read_until(master, b"33 101")
        _set_size(master, 40, 120)
        os.killpg(proc.pid, signal.SIGWINCH)  # what the terminal does when its window changes
        deadline = time.monotonic() + 15
        seen = b""
        while b"40 120" not in seen and time.monotonic() < deadline:  # the resize travels asynchronously
            os.write(master, b"stty size\r")
            seen += _read_until(master, b"40 120", timeout=1)
        assert b"40 120" in seen
        _read_until(master, b"never printed", timeout=1)  # let the extra prompts pass
        os.write(master, b"sleep 60; echo after-$((1+1))\r")
        _read_until(master, b"after-$((1+1))")  # the terminal's echo
        worker = opened.node("worker")
        wait_for(lambda: asyncio.run(worker.exec(["pgrep", "-fx", "sleep 60"])).ok, timeout=15,
                 what="sleep to run in the foreground")
        started = time.monotonic()
        os.write(master, b"\x03")  # Ctrl-C: a byte for the remote terminal, which interrupts sleep
        interrupted = _read_until(master, b"^C")
        assert b"^C" in interrupted
        after = _read_until(master, b"# ", data=interrupted.split(b"^C", 1)[1])  # the next prompt
        assert b"# " in after and b"after-2" not in after and time.monotonic() - started < 10
        assert proc.poll() is None, "Ctrl-C must reach the shell in the node, not stop labctl"
        os.write(master, b"exit 5\r")
        assert proc.wait(20) == 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(master)


def test_pod_sandbox_is_the_pods_network_namespace_on_its_node(opened):
    async def dns_pods() -> list[dict]:
        async with opened.api() as api:
            pods = await api.get(resource_path("pods", "kube-system"), labelSelector="k8s-app=kube-dns")
        return [p for p in pods["items"] if (p.get("status") or {}).get("podIP")]

    pod = asyncio.run(dns_pods())[0]
    meta = pod["metadata"]
    sandbox = opened.pod_sandbox(meta["namespace"], meta["name"], meta["uid"])
    assert sandbox is not None
    node = opened.node(pod["spec"]["nodeName"])
    addresses = asyncio.run(node.exec(["nsenter", f"--net={sandbox['NetworkSettings']['SandboxKey']}",
                                       "ip", "-4", "-o", "addr", "show", "eth0"]))
    assert f"inet {pod['status']['podIP']}/" in addresses.stdout.decode()
    assert opened.pod_sandbox(meta["namespace"], meta["name"], uid="not-this-pod") is None
    assert opened.pod_sandbox("kube-system", "no-such-pod") is None


def test_a_host_network_pods_namespace_is_its_nodes(lab, opened):
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "on-the-node", "namespace": "default"},
           "spec": {"hostNetwork": True, "nodeName": "worker2",
                    "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "3600"]}]}}
    lab.kubectl.run("apply", "-f", "-", input=json.dumps(pod))
    try:
        sandbox = wait_for(lambda: opened.pod_sandbox("default", "on-the-node"), timeout=120, what="its sandbox")
        node = opened.docker.api.inspect_container(f"{lab.name}-worker2")
        assert opened.pod_netns(sandbox) == node["NetworkSettings"]["SandboxKey"] != sandbox["NetworkSettings"]["SandboxKey"]
    finally:
        lab.kubectl.run("delete", "pod", "on-the-node", "--wait=false")
