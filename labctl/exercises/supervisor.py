"""Starting, reading and stopping the during probes of a lab, from the host.

A probe is ``python3 -m labctl.exercises.probe run SPEC`` in the control-plane node, started
through ``docker exec`` in a session of its own (``setsid``, output to its log file), so it
outlives the CLI that started it. Its spec is JSON written by the CLI — the node image holds
labctl but not the exercises. Results are read back with :class:`~.state.LabStore`; a probe
whose result has not been written for :data:`STALE_AFTER` seconds has stopped (its node
restarted, say), which grading reports as an error, not as the student's failure.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from ..errors import LabctlError
from .model import Exercise, ProbeSpec
from .state import PROBES_DIR, LabStore

__all__ = ["STALE_AFTER", "ProbeStatus", "probe_spec", "read_probe", "start_probes", "stop_probes"]

#: seconds without a result write after which a running probe counts as dead
STALE_AFTER = 10.0
#: how long a probe may take to start and sync its watches
START_TIMEOUT = 60.0
#: how long a probe runs at most
MAX_SECONDS = 3 * 3600


def _paths(probe_id: str) -> dict[str, str]:
    base = f"{PROBES_DIR}/{probe_id}"
    return {"spec": f"{base}.spec.json", "result": f"{base}.json", "pidFile": f"{base}.pid", "log": f"{base}.log"}


def probe_spec(exercise: Exercise, probe: ProbeSpec, version_switch: bool = True) -> dict[str, Any]:
    """The JSON a probe process runs from: all it needs, nothing from the exercise files."""
    paths = _paths(probe.id)
    return {"id": probe.id, "namespace": exercise.namespace,
            "workload": {"kind": probe.workload.kind, "name": probe.workload.name},
            "via": probe.via, "until": probe.until, "rate": probe.rate, "path": probe.path,
            "versionSwitch": version_switch, "maxSeconds": MAX_SECONDS, "tail": 3.0,
            "result": paths["result"], "pidFile": paths["pidFile"]}


async def start_probes(store: LabStore, exercise: Exercise) -> None:
    """Start every probe of ``exercise`` and wait until each watches the namespace."""
    for probe in exercise.probes:
        paths = _paths(probe.id)
        switch = all(c.params.get("versionSwitch", True) for c in exercise.checks
                     if c.kind == "during" and c.params.get("probe") == probe.id)
        await store.write(paths["spec"], json.dumps(probe_spec(exercise, probe, switch)).encode())
        await store.run(["sh", "-c", 'setsid python3 -m labctl.exercises.probe run "$1" >"$2" 2>&1 </dev/null &',
                         "sh", paths["spec"], paths["log"]])
    for probe in exercise.probes:
        await _wait_started(store, probe.id)


async def _wait_started(store: LabStore, probe_id: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        result = read_probe(store, probe_id)
        if result is not None:
            if result.get("state") == "failed":
                raise LabctlError(f"probe {probe_id!r} failed to start: {result.get('error')}")
            return
        await asyncio.sleep(0.3)
    log = store.read(PROBES_DIR, (f"{probe_id}.log",)).get(f"{probe_id}.log", b"").decode(errors="replace")
    raise LabctlError(f"probe {probe_id!r} did not start within {START_TIMEOUT:.0f}s",
                      hint=f"its log on the control plane:\n{log[-1500:]}" if log else None)


async def stop_probes(store: LabStore) -> None:
    """Stop every probe of the lab and remove their files (nothing is left behind)."""
    files = await store.run(["sh", "-c", f'ls "{PROBES_DIR}" 2>/dev/null || true'])
    for name in files.split():
        if name.endswith(".pid"):
            await store.run(["python3", "-m", "labctl.exercises.probe", "stop", f"{PROBES_DIR}/{name}"])
    await store.run(["rm", "-rf", PROBES_DIR])


def read_probe(store: LabStore, probe_id: str) -> dict[str, Any] | None:
    """The probe's latest result, or None when it has written none."""
    data = store.read(PROBES_DIR, (f"{probe_id}.json",)).get(f"{probe_id}.json")
    return json.loads(data) if data else None


class ProbeStatus:
    """Whether a probe's result can be trusted now: running and fresh, finished, or gone."""

    def __init__(self, result: dict[str, Any] | None, now: float | None = None) -> None:
        self.result = result
        now = time.time() if now is None else now
        state = result.get("state") if result else None
        age = now - float(result.get("updatedAt", 0)) if result else 0.0
        self.finished = state in ("done", "expired", "stopped", "failed")
        self.stale = result is not None and not self.finished and age > STALE_AFTER
        self.problem = ""
        if result is None:
            self.problem = "the probe has not written any result (it did not start, or its files are gone)"
        elif state == "failed":
            self.problem = f"the probe failed: {result.get('error')}"
        elif state == "stopped":
            self.problem = "the probe was stopped"
        elif self.stale:
            self.problem = (f"the probe stopped writing {age:.0f}s ago (its node restarted?); "
                            "events since then were not watched")

