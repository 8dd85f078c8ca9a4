"""The kubelet's streams in a real lab, with the real kubectl 1.37 (issue 14): ``port-forward`` to a pod
and to a Service, ``attach``, ``run -i --rm``, ephemeral debug containers, ``debug node/…`` and ``cp``.

One lab for the module; every test makes pods of its own, so the tests pass in any order.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from labctl.client.waiting import wait_for
from support.terminal import on_terminal, read_until

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]


def apply(lab, obj: dict) -> None:
    lab.kubectl.run("apply", "-f", "-", input=json.dumps(obj))


def pod(name: str, *, image: str = "labctl/web:v1", node: str = "", **container) -> dict:
    spec: dict = {"terminationGracePeriodSeconds": 1, "containers": [{"name": "app", "image": image, **container}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}}, "spec": spec}


def running(lab, name: str, timeout: float = 90) -> dict:
    def ready() -> dict | None:
        got = lab.kubectl.json("get", "pod", name)
        statuses = got.get("status", {}).get("containerStatuses") or []
        return got if statuses and all("running" in s.get("state", {}) for s in statuses) else None
    return wait_for(ready, timeout, 0.5, f"pod {name} running")


@contextmanager
def port_forward(lab, target: str, remote: int) -> Iterator[int]:
    """``kubectl port-forward TARGET :REMOTE`` running; yields the local port kubectl chose."""
    proc = lab.kubectl.popen("port-forward", target, f":{remote}")
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) -> (\d+)", line)
        assert match, f"kubectl port-forward said {line!r}: {proc.stderr.read() if proc.poll() is not None else ''}"
        yield int(match.group(1))
    finally:
        proc.terminate()
        proc.wait(10)


def get(port: int, path: str = "/") -> bytes:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as resp:
        return resp.read()


# -- port-forward -------------------------------------------------------------------------------
@pytest.mark.parametrize("websockets", ["true", "false"], ids=["tunnelled", "spdy-upgrade"])
def test_port_forward_to_a_pod_serves_many_and_concurrent_requests(lab, websockets, monkeypatch):
    # kubectl 1.37 tunnels SPDY in a WebSocket; without the feature it upgrades to SPDY/3.1 directly
    monkeypatch.setenv("KUBECTL_PORT_FORWARD_WEBSOCKETS", websockets)
    name = f"pf-web-{websockets}"
    apply(lab, pod(name, ports=[{"containerPort": 80}]))
    ip = running(lab, name)["status"]["podIP"]
    with port_forward(lab, f"pod/{name}", 80) as port:
        assert get(port) == f"web v1 pod={name} ip={ip}\n".encode()
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _i: get(port), range(40)))
        assert set(answers) == {f"web v1 pod={name} ip={ip}\n".encode()}


def test_port_forward_reaches_the_pods_loopback_and_carries_large_bodies(lab):
    # a server bound to 127.0.0.1 inside the pod: only reachable from the pod's own network namespace
    script = "mkdir -p /www && head -c 8388608 /dev/urandom > /www/blob && exec httpd -f -p 127.0.0.1:8080 -h /www"
    apply(lab, pod("pf-loopback", command=["sh", "-c", script]))
    running(lab, "pf-loopback")
    digest = lab.kubectl.run("exec", "pf-loopback", "--", "md5sum", "/www/blob").stdout.split()[0]
    with port_forward(lab, "pod/pf-loopback", 8080) as port:
        assert hashlib.md5(get(port, "/blob")).hexdigest() == digest


def test_port_forward_to_a_service_and_to_a_closed_port(lab):
    apply(lab, pod("pf-svc"))
    ip = running(lab, "pf-svc")["status"]["podIP"]
    lab.kubectl.run("expose", "pod", "pf-svc", "--port=8000", "--target-port=80")
    # kubectl resolves the Service to one of its pods and the service port to the target port
    with port_forward(lab, "svc/pf-svc", 8000) as port:
        assert get(port) == f"web v1 pod=pf-svc ip={ip}\n".encode()
    proc = lab.kubectl.popen("port-forward", "pod/pf-svc", ":81")
    assert proc.stdout is not None
    port = int(re.findall(r"127\.0\.0\.1:(\d+)", proc.stdout.readline())[0])
    with pytest.raises(OSError):
        get(port)
    _out, err = proc.communicate(timeout=20)  # kubectl ends the session after the error, as upstream
    assert "error forwarding port 81 to pod default/pf-svc" in err and "connect: connection refused" in err


# -- attach and run -i --------------------------------------------------------------------------
def test_attach_with_a_terminal_reaches_the_main_process(lab):
    apply(lab, pod("att", image="busybox", command=["sh"], stdin=True, tty=True))
    running(lab, "att")
    with on_terminal(lab.kubectl._argv(("attach", "-it", "att")), rows=33, cols=101) as (proc, master):
        # the shell printed its prompt before kubectl came: as upstream, Enter brings a new one
        assert b"If you don't see a command prompt, try pressing enter." in read_until(master, b"enter.")
        os.write(master, b"\n")
        read_until(master, b"# ")
        os.write(master, b"echo pid=$$; echo $((6*7)); stty size\n")
        out = read_until(master, b"33 101")
        assert b"42\r\n" in out and b"33 101" in out, out  # the terminal's size reached the container
        assert b"pid=1\r\n" in out  # the shell is the container's PID 1, not a new process
        os.write(master, b"exit\n")
        assert proc.wait(20) == 0
    # the main process ended: the kubelet restarts the container (restartPolicy Always)
    wait_for(lambda: lab.kubectl.json("get", "pod", "att")["status"]["containerStatuses"][0]["restartCount"] >= 1,
             60, 0.5, "att restarted")


def test_attach_without_a_terminal_pipes_stdin_and_output(lab):
    apply(lab, pod("att-pipe", image="busybox", command=["sh"], stdin=True))
    running(lab, "att-pipe")
    done = lab.kubectl.run("attach", "-i", "att-pipe", input="echo out; echo err >&2; exit 0\n", timeout=60)
    assert "out" in done.stdout.splitlines() and "err" in done.stderr.splitlines()


def test_run_interactive_with_piped_input_prints_exits_and_deletes_the_pod(lab):
    # the "Debug Services" guide's `kubectl run -it --rm --image=busybox -- sh`, with its input piped
    done = lab.kubectl.run("run", "t-run", "-i", "--rm", "--image=busybox", "--restart=Never", "--", "sh",
                           input="echo hi from $(hostname)\nexit\n", timeout=90)
    assert "hi from t-run" in done.stdout.splitlines()
    assert 'pod "t-run" deleted' in done.stdout
    assert lab.kubectl.run("get", "pod", "t-run", check=False).returncode != 0
    failed = lab.kubectl.run("run", "t-run-3", "-i", "--rm", "--image=busybox", "--restart=Never", "--", "sh",
                             input="exit 3\n", timeout=90, check=False)
    assert failed.returncode == 3  # kubectl exits with the container's code
    assert "couldn't attach" not in failed.stderr  # the attach carried its input: it was attached


def test_run_interactive_of_a_process_that_ends_at_once_prints_its_output_every_time(lab):
    # `kubectl run -i --rm … -- nslookup kubernetes`: kubectl reads the logs, then attaches; what the
    # process writes in between reached neither, now and then (5 of 36 nslookups, measured),
    # until an attach to a process that had already ended was refused as the kubelet refuses it
    # (kubectl then reads the logs again): the output comes back every time, at least once. The
    # answer comes a few ms to a few tens of ms after the start, as nslookup's (the gap is that wide).
    for i, delay in enumerate(("0", "0.02", "0.03", "0.04", "0.05", "0.07")):
        done = lab.kubectl.run("run", f"t-quick-{i}", "-i", "--rm", "--image=busybox", "--restart=Never", "--",
                               "sh", "-c", f"sleep {delay}; echo answer {i}", timeout=90)
        assert f"answer {i}" in done.stdout.splitlines(), done.stdout + done.stderr


def test_run_with_a_terminal_and_piped_input_prints_the_shells_output(lab):
    # the guide's exact `-it`: kubectl cannot use a TTY for a pipe, but the container has one; its
    # output must still come back (Docker ends a TTY attach's output when the client's input ends)
    done = lab.kubectl.run("run", "t-run-tty", "-it", "--rm", "--image=busybox", "--restart=Never", "--", "sh",
                           input="echo hi from $(hostname)\nexit\n", timeout=90)
    assert "hi from t-run-tty" in done.stdout  # the terminal echoes `$(hostname)` unexpanded
    assert 'pod "t-run-tty" deleted' in done.stdout
    # input that ends without `exit`, even mid-line: the shell sees the end of its input, as from a pipe
    done = lab.kubectl.run("run", "t-run-eof", "-it", "--rm", "--image=busybox", "--restart=Never", "--", "sh",
                           input="echo no exit\necho unfinished", timeout=90)
    # each twice: the terminal's echo of the input, then the shell's output (interleaved as a TTY does)
    assert done.stdout.count("no exit") == 2 and done.stdout.count("unfinished") == 2
    assert lab.kubectl.run("get", "pod", "t-run-eof", check=False).returncode != 0


# -- kubectl debug ------------------------------------------------------------------------------
def test_debug_with_a_target_sees_the_targets_processes(lab):
    apply(lab, pod("dbg"))
    before = running(lab, "dbg")
    # `-- sh` spells out what the busybox alias (labctl/toolbox) runs with a terminal anyway (tests/images)
    argv = lab.kubectl._argv(("debug", "-it", "dbg", "--image=busybox", "--target=app", "-c", "debugger", "--", "sh"))
    with on_terminal(argv) as (proc, master):
        read_until(master, b"enter.", timeout=60)  # kubectl attached to the ephemeral container
        os.write(master, b"\n")
        read_until(master, b"# ")
        os.write(master, b"ps -e -o pid,args; hostname\n")
        out = read_until(master, b"\r\ndbg\r\n")
        # the web server is the target's PID 1: the debugger joined its PID namespace (and the pod's UTS)
        assert re.search(rb"\r\n\s*1 /bin/sh /web/serve\r\n", out), out
        os.write(master, b"exit 4\n")
        proc.wait(30)
    status = wait_for(lambda: (s := lab.kubectl.json("get", "pod", "dbg")["status"]).get(
        "ephemeralContainerStatuses", [{}])[0].get("state", {}).get("terminated") and s, 60, 0.5, "debugger ended")
    ephemeral = status["ephemeralContainerStatuses"][0]
    assert ephemeral["name"] == "debugger" and ephemeral["state"]["terminated"]["exitCode"] == 4
    # an ephemeral container never restarts, and the pod's own container went on running
    assert ephemeral["restartCount"] == 0 and status["phase"] == "Running"
    assert status["containerStatuses"][0]["containerID"] == before["status"]["containerStatuses"][0]["containerID"]


def node_debugger(name: str, node: str, *, host_network: bool) -> dict:
    """The pod kubectl 1.37 creates for ``kubectl debug node/NODE --image=busybox`` (its ``general`` profile)."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "kubectl-debug"}},
            "spec": {"nodeName": node, "hostPID": True, "hostIPC": True, "restartPolicy": "Never",
                     "terminationGracePeriodSeconds": 1, **({"hostNetwork": True} if host_network else {}),
                     "volumes": [{"name": "host-root", "hostPath": {"path": "/"}}],
                     "containers": [{"name": "debugger", "image": "busybox", "command": ["sleep", "3600"],
                                     "volumeMounts": [{"name": "host-root", "mountPath": "/host"}]}]}}


def test_the_node_debugger_gets_the_nodes_root_and_processes_never_the_hosts(lab):
    # kubectl debug node's pod, less hostNetwork (the kubelet's own feature, tested with it)
    apply(lab, node_debugger("node-debugger-worker2-test1", "worker2", host_network=False))
    running(lab, "node-debugger-worker2-test1")

    def in_debugger(script: str) -> str:
        return lab.kubectl.run("exec", "node-debugger-worker2-test1", "--", "sh", "-c", script).stdout

    # the node's own files (its name, its CNI configuration); not the host's Docker socket; read-only
    assert in_debugger("cat /host/etc/hostname") == "worker2\n"
    assert "10-labctl.conflist" in in_debugger("ls /host/etc/cni/net.d")
    assert in_debugger("test -e /host/var/run/docker.sock || echo no-socket") == "no-socket\n"
    assert in_debugger("touch /host/x 2>/dev/null || echo read-only") == "read-only\n"
    # hostPID: the node's processes (its agent), none of the host's; their roots stay closed to the pod
    processes = in_debugger("ps -e -o pid=,args=")
    agent = next(line.split()[0] for line in processes.splitlines() if "labctl.agent" in line)
    assert "dockerd" not in processes
    assert in_debugger(f"ls /proc/{agent}/root/ >/dev/null 2>&1 || echo denied") == "denied\n"
    # a student's own pod may not ask for the machine's root, nor the node's namespaces
    own = pod("rooted", volumeMounts=[{"name": "root", "mountPath": "/host"}])
    own["spec"]["volumes"] = [{"name": "root", "hostPath": {"path": "/"}}]
    refused = lab.kubectl.run("apply", "-f", "-", input=json.dumps(own), check=False)
    assert refused.returncode != 0 and "spec.volumes[0].hostPath" in refused.stderr


def test_debug_node_lands_in_a_shell_on_the_node(lab):
    argv = lab.kubectl._argv(("debug", "node/worker2", "-it", "--image=busybox", "--", "sh"))
    with on_terminal(argv) as (proc, master):
        read_until(master, b"enter.", timeout=60)
        os.write(master, b"\n")
        read_until(master, b"# ")
        os.write(master, b"cat /host/etc/hostname; echo done\n")
        out = read_until(master, b"\r\ndone\r\n")
        os.write(master, b"exit\n")
        proc.wait(30)
    assert b"\r\nworker2\r\n" in out, out


def test_cp_copies_into_and_out_of_a_pod(lab, tmp_path):
    apply(lab, pod("cp-target", image="busybox", command=["sleep", "3600"]))
    running(lab, "cp-target")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "notes.txt").write_text("hello from the host\n")
    lab.kubectl.run("cp", str(tmp_path / "in"), "cp-target:/tmp/in")
    assert lab.kubectl.run("exec", "cp-target", "--", "cat", "/tmp/in/notes.txt").stdout == "hello from the host\n"
    lab.kubectl.run("exec", "cp-target", "--", "sh", "-c", "head -c 300000 /dev/urandom > /tmp/blob")
    digest = lab.kubectl.run("exec", "cp-target", "--", "md5sum", "/tmp/blob").stdout.split()[0]
    lab.kubectl.run("cp", "cp-target:/tmp/blob", str(tmp_path / "blob"))
    assert hashlib.md5((tmp_path / "blob").read_bytes()).hexdigest() == digest
