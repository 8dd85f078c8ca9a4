"""The lab images, built through ensure_images and run for real on the host's Docker engine."""

from __future__ import annotations

import subprocess
import time
import urllib.request
from typing import Any

import pytest

from labctl import images

pytestmark = pytest.mark.docker


def _exec(container: Any, *argv: str) -> str:
    code, output = container.exec_run(list(argv))
    text = output.decode(errors="replace")
    assert code == 0, f"{' '.join(argv)!r} failed with {code}: {text}"
    return text


def _get(url: str) -> str:
    """GET ``url``, retrying briefly while the server starts (it takes milliseconds)."""
    deadline = time.monotonic() + 5
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                assert response.headers["Content-Type"].startswith("text/plain")
                return response.read().decode()
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def test_all_images_present_and_second_ensure_builds_nothing(images_docker, lab_images):
    assert [s.state for s in lab_images] == ["ok"] * len(images.IMAGES)
    steps: list[str] = []
    statuses = images.ensure_images(images_docker, progress=lambda step, d, t: steps.append(step))
    if [s.ref for s in statuses] != [s.ref for s in lab_images]:
        pytest.skip("labctl's sources changed during the test run: the node image was stale again")
    assert not [s for s in steps if s.startswith("building")], steps
    for status in statuses:
        alias = images_docker.images.get(status.alias_ref)
        assert alias.id == status.image_id, f"{status.alias_ref} must point at {status.ref}"
        assert status.size and status.size > 0


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_web_answers_version_pod_name_and_ip(lab_images, run_container, version):
    web = run_container(f"labctl/web:{version}", hostname=f"web-{version}-pod")
    ip = web.attrs["NetworkSettings"]["IPAddress"]
    for path in ("/", "/any/path?x=1"):
        assert _get(f"http://{ip}{path}") == f"web {version} pod=web-{version}-pod ip={ip}\n"
    assert _get(f"http://{ip}/healthz") == "ok\n"


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_nginx_answers_version_pod_name_and_ip_and_logs_the_request(lab_images, run_container, version):
    nginx = run_container(f"labctl/nginx:{version}", hostname=f"nginx-{version}-pod")
    ip = nginx.attrs["NetworkSettings"]["IPAddress"]
    assert _get(f"http://{ip}/any/path?x=1") == f"nginx {version} pod=nginx-{version}-pod ip={ip}\n"
    assert _get(f"http://{ip}/healthz") == "ok\n"
    assert '"GET /any/path?x=1 HTTP/1.1" 200' in nginx.logs().decode()  # what `kubectl logs` shows


def test_pause_blocks_and_stops_promptly(lab_images, run_container):
    pause = run_container("labctl/pause:latest", network_mode="none")
    time.sleep(0.3)
    pause.reload()
    assert pause.status == "running"
    started = time.monotonic()
    pause.stop(timeout=10)  # Docker would SIGKILL after 10 s: we must exit on SIGTERM
    elapsed = time.monotonic() - started
    assert elapsed < 2, f"pause took {elapsed:.1f}s to stop: SIGTERM is not handled"
    pause.reload()
    assert pause.attrs["State"]["ExitCode"] == 0


def test_toolbox_has_the_network_tools(lab_images, run_container):
    toolbox = run_container("labctl/toolbox:latest")
    for tool in ("curl", "nslookup", "dig", "ip", "ping", "nc"):
        _exec(toolbox, "sh", "-c", f"command -v {tool}")
    assert "127.0.0.1" in _exec(toolbox, "ping", "-c", "1", "127.0.0.1")


def test_toolbox_runs_a_shell_when_given_input_and_waits_otherwise(lab_images, run_container):
    # topologies alias `busybox` to the toolbox: `kubectl run -i`/`kubectl debug -it` expect busybox's `sh`
    ref = next(s.ref for s in lab_images if s.key == "toolbox")  # this build, whatever `latest` names now
    shell = subprocess.run(["docker", "run", "--rm", "-i", ref], input="echo shell-$((20+22))\n",
                           capture_output=True, text=True, timeout=60)
    assert shell.stdout.strip() == "shell-42", shell.stderr
    idle = run_container(ref)  # stdin is /dev/null: a toolbox pod stays up to be exec'd into
    assert "sleep infinity" in _exec(idle, "ps", "-e", "-o", "args")


def test_node_has_labctl_venv_and_network_tools(lab_images, run_container):
    node = run_container("labctl/node:latest")
    version = _exec(node, "/opt/labctl/bin/python", "-c",
                    "import labctl, aiohttp, pyroute2, docker; print(labctl.__version__)")
    assert version.strip() == __import__("labctl").__version__
    assert "nf_tables" in _exec(node, "iptables", "--version")
    assert "conntrack" in _exec(node, "conntrack", "--version")
    assert "iproute2" in _exec(node, "ip", "-V")
    assert _exec(node, "sh", "-c", "command -v python3").strip() == "/opt/labctl/bin/python3"
    # tini is PID 1, so zombies are reaped and `docker stop` is prompt.
    assert "tini" in _exec(node, "cat", "/proc/1/cmdline")
