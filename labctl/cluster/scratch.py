"""Throwaway labs for tests, benchmarks and the grader: a unique name and a topology that fits
beside anything else on the machine.

A scratch topology publishes the API server on a free port (``apiServerPort: 0``) and no
host port mappings, so several scratch labs and a student's own ``lab`` coexist; its node
lifecycle timings are short, so node-failure checks finish in seconds; its images run as in
every topology (:data:`labctl.topology.aliases.DEFAULT_ALIASES`: ``nginx`` is ``labctl/nginx:v1``).
Create it with :func:`labctl.cluster.up` (or ``labctl up -t FILE``) and remove it with ``down(name)``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..engine.sdk import connect
from ..kubeconfig import context_name
from ..topology import API_VERSION, KIND
from .constants import bridge_name
from .docker import leftovers

__all__ = ["Interrupted", "interrupt_up", "scratch_topology", "traces", "unique_name", "write_topology"]


def unique_name(prefix: str = "t") -> str:
    """A lab name no other run uses: ``t3f9a2c``."""
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def scratch_topology(name: str, workers: int = 2, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The topology document of a scratch lab (``extra`` replaces whole top-level sections)."""
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION, "kind": KIND, "name": name,
        "nodes": [{"role": "control-plane"}] + [{"role": "worker"}] * workers,
        "networking": {"apiServerPort": 0},
        "nodeLifecycle": {"nodeMonitorGracePeriod": "8s", "podEvictionTimeout": "10s",
                          "leaseDurationSeconds": 8, "leaseRenewInterval": "2s"},
        # no ingress controller unless a test asks (``extra={"addons": {"ingress": True}}``): one pod less
        # per lab on a machine that runs several
        "addons": {"ingress": False},
    }
    doc.update(extra or {})
    return doc


def write_topology(path: Path, name: str, workers: int = 2, extra: dict[str, Any] | None = None) -> Path:
    """Write :func:`scratch_topology` to ``path`` (for ``labctl up -t PATH``) and return ``path``."""
    path.write_text(yaml.safe_dump(scratch_topology(name, workers, extra), sort_keys=False))
    return path


def traces(name: str, kubeconfig: Path) -> list[str]:
    """What is left of lab ``name`` on this host: Docker objects labelled with it (nodes, pods,
    network, volume), its host bridge, its context in ``kubeconfig``. Empty after a clean
    ``down`` or a rolled-back ``up``."""
    with closing(connect()) as client:
        found = leftovers(client, name)
    if Path("/sys/class/net", bridge_name(name)).exists():
        found.append(f"bridge {bridge_name(name)}")
    if kubeconfig.exists():
        config = yaml.safe_load(kubeconfig.read_text()) or {}
        if any(c.get("name") == context_name(name) for c in config.get("contexts") or []):
            found.append(f"kubeconfig context {context_name(name)}")
    return found


@dataclass(frozen=True)
class Interrupted:
    """What ``labctl up`` did when sent ``signal`` ``delay`` seconds after it started creating its lab."""

    signal: str
    delay: float
    returncode: int | None     # None: it did not exit within the time-out (killed)
    seconds: float             # from the signal to the exit
    stderr: str
    left: list[str]            # traces() after the exit: the whole lab when ``up`` had finished first

    @property
    def completed(self) -> bool:
        """``up`` had finished (the signal came too late to matter). A signal that lands after
        ``up`` has said the lab is ready, while the process exits, meets the default handlers
        again and may end it with that signal: the lab is whole and stays, as it should."""
        return self.returncode == 0 or " is ready in " in self.stderr

    @property
    def rolled_back(self) -> bool:
        """Stopped by the signal, with its exit code, nothing left and no traceback."""
        code = 128 + signal.Signals[self.signal].value
        return self.returncode == code and not self.left and "Traceback" not in self.stderr


def interrupt_up(name: str, workdir: Path, sig: signal.Signals, delay: float, workers: int = 1,
                 timeout: float = 120.0) -> Interrupted:
    """Run ``labctl up`` for a scratch lab ``name`` and send it ``sig`` ``delay`` seconds after its
    first line (from then on its signal handlers are in place); wait at most ``timeout`` seconds
    for it to exit. The lab, if ``up`` finished, is the caller's to remove."""
    topology = write_topology(workdir / f"{name}.yaml", name, workers)
    kubeconfig = workdir / "kubeconfig"
    proc = subprocess.Popen([sys.executable, "-m", "labctl", "up", "-t", str(topology)], text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "KUBECONFIG": str(kubeconfig)})
    lines: list[str] = []
    began = threading.Event()

    def read() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            lines.append(line)
            began.set()
        began.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    began.wait(timeout)
    time.sleep(delay)
    sent = time.monotonic()
    proc.send_signal(sig)
    try:
        returncode: int | None = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        returncode = None
    seconds = time.monotonic() - sent
    reader.join(5)
    return Interrupted(sig.name, delay, returncode, seconds, "".join(lines), traces(name, kubeconfig))
