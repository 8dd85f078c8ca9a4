"""``python -m labctl.nodeinit``: the process tree of a lab node (under tini).

It starts the node's components and restarts any that exit, like systemd units on a
kubeadm node: on the control plane the API server and the controller manager (with the
scheduler), and on every node the node agent. Each component's output
goes to the container's log with its name in front, so ``docker logs <node>`` (or
``labctl logs``) reads like a journal.

Threads and blocking calls rather than asyncio: this process lives as long as the node and
only starts, watches and stops the others, and asyncio (with the ssl module it loads) would
double its memory (16 MiB resident instead of 35 MiB with the API client it also no longer
loads, on every node of every lab).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

import yaml

from .clusterconfig import MIN_SERVICE_ACCOUNT_TOKEN_SECONDS, NodeConfig
from .clusterconfig import NODE_CONFIG_PATH as CONFIG_PATH
from .kubeconfig import current_entries

log = logging.getLogger("labctl.nodeinit")
STATE_DIR = Path("/var/lib/labctl")
RESTART_BACKOFF_MAX = 10.0
#: The components' environment besides the node's. ``SSL_CERT_FILE`` names the cluster CA, the
#: only CA a component has use for: each talks TLS to the API server only, with the CA of its
#: kubeconfig (probes and the API proxy do not verify). Importing aiohttp builds two default TLS
#: contexts, which load the system store (about 140 certificates, parsed twice): 50–60 ms of CPU
#: in every component's start, all at once at ``labctl up`` on the same two cores.
COMPONENT_ENV = {"SSL_CERT_FILE": "/etc/labctl/ca.crt"}


def components(cfg: NodeConfig) -> dict[str, list[str]]:
    """Component name -> command line, in start order."""
    py = sys.executable
    out: dict[str, list[str]] = {}
    if cfg.role == "control-plane":
        out["kube-apiserver"] = [
            py, "-m", "labctl.apiserver", "--data-dir", str(STATE_DIR / "apiserver"),
            "--listen", "0.0.0.0:6443", "--advertise-address", cfg.internal_ip,
            "--external-url", f"https://{cfg.internal_ip}:6443", "--config", str(CONFIG_PATH),
        ]
        token_seconds = cfg.cluster.service_account_token_seconds
        if token_seconds < MIN_SERVICE_ACCOUNT_TOKEN_SECONDS:  # a lab testing token rotation: say so
            out["kube-apiserver"] += ["--service-account-min-token-seconds", str(token_seconds)]
        out["kube-controller-manager"] = [
            py, "-m", "labctl.controllers", "--kubeconfig", str(STATE_DIR / "apiserver" / "admin.kubeconfig"),
            "--config", str(CONFIG_PATH),
        ]
    out["labctl-agent"] = [py, "-m", "labctl.agent", "--config", str(CONFIG_PATH)]
    return out


def api_server_address(cfg: NodeConfig) -> tuple[str, int]:
    """Where this node's components reach the API server (from its kubeconfig)."""
    # the kubeconfig read directly: the API client would load aiohttp (20 MiB) into a process
    # that lives as long as the node and only starts and watches the others
    cluster, _user = current_entries(yaml.safe_load(Path(cfg.kubeconfig).read_text()))
    url = urllib.parse.urlsplit(cluster["server"])
    return url.hostname or "127.0.0.1", url.port or 6443


def wait_for_api_server(address: tuple[str, int], stopping: threading.Event) -> None:
    """Like a systemd ``After=``: wait until the API server accepts connections."""
    while not stopping.is_set():
        try:
            with socket.create_connection(address, timeout=1):
                return
        except OSError:
            stopping.wait(0.05)


class Supervisor:
    """Runs each component in a loop, restarting it with back-off; :meth:`stop` ends them all."""

    def __init__(self) -> None:
        self.stopping = threading.Event()
        self._lock = threading.Lock()  # a component is never started after stop() took the list
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._output_lock = threading.Lock()

    def run(self, name: str, argv: list[str], after: tuple[str, int] | None = None) -> None:
        if after is not None:
            wait_for_api_server(after, self.stopping)
        backoff = 0.5
        while True:
            with self._lock:
                if self.stopping.is_set():
                    return
                proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        env={**os.environ, **COMPONENT_ENV})
                self._procs[name] = proc
            log.info("started %s (pid %d)", name, proc.pid)
            reader = threading.Thread(target=self._prefix_output, args=(name, proc), name=f"{name}-output",
                                      daemon=True)
            reader.start()
            proc.wait()
            reader.join()
            if self.stopping.is_set():
                return
            log.warning("%s exited with code %s; restarting in %.1fs", name, proc.returncode, backoff)
            self.stopping.wait(backoff)
            backoff = min(backoff * 2, RESTART_BACKOFF_MAX)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM to every component, SIGKILL to those still running after ``grace`` seconds."""
        with self._lock:
            self.stopping.set()
            procs = list(self._procs.values())
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        deadline = time.monotonic() + grace
        for proc in procs:
            try:
                proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()

    def _prefix_output(self, name: str, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            with self._output_lock:  # whole lines, never two components' halves on one line
                sys.stdout.write(f"[{name}] {line.decode(errors='replace')}")
                sys.stdout.flush()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="[nodeinit] %(asctime)s %(message)s", stream=sys.stdout)
    cfg = NodeConfig.load()
    requested = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda _signum, _frame: requested.set())
    supervisor = Supervisor()
    api = api_server_address(cfg)
    # the controller manager has nothing to do before the API server listens; starting it
    # later leaves the CPU to the API server and the node agents, which `labctl up` waits for
    threads = [threading.Thread(target=supervisor.run, name=name, daemon=True,
                                args=(name, argv, api if name == "kube-controller-manager" else None))
               for name, argv in components(cfg).items()]
    for thread in threads:
        thread.start()
    requested.wait()  # the handler runs in this thread, and sets the event it waits for
    supervisor.stop()
    for thread in threads:
        thread.join(15)
    return 0


if __name__ == "__main__":
    sys.exit(main())
