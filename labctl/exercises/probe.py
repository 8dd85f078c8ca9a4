"""The during probe: a process in the control-plane node that sends requests while the student works.

``start`` launches it with ``docker exec`` (detached, its own session), so it survives the CLI,
runs where no student pod can reach it, and dies with the lab: ``down`` removes the node and
its state volume, ``reset`` stops it (``python -m labctl.exercises.probe stop PIDFILE``). It
gets its whole spec as JSON from the CLI (the node image has labctl, not the exercises) and
writes what it saw to a JSON file on the control plane's state volume every second, which
the grader on the host reads. It watches the namespace through informers, finds the way in
by relation as soon as the student creates it, sends ``rate`` requests a second (a new
connection each) and records events until one passes or ``maxSeconds`` run out.

    python -m labctl.exercises.probe run SPEC.json
    python -m labctl.exercises.probe stop PIDFILE
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ..client.informer import Informer
from ..client.rest import APIClient, Credentials
from .model import ServiceRef, WorkloadRef
from .recorder import Recorder
from .relations import (
    Snapshot,
    current_replicaset,
    endpoint_ips,
    entry_points,
    find_services,
    find_workload,
    pods_of,
    revision,
    rollout_complete,
    serving_pods,
    worker_entry_points,
)
from .traffic import Answer, get

__all__ = ["ProbeRun", "main"]

log = logging.getLogger("labctl.probe")

#: the admin kubeconfig the control plane's own components use
ADMIN_KUBECONFIG = "/var/lib/labctl/apiserver/admin.kubeconfig"
#: how often the probe looks at its caches for events, and writes its result
TICK = 0.1
WRITE_EVERY = 1.0


class ProbeRun:
    """One probe: informers → snapshot → events, a request loop, a writer. Driven by :meth:`run`."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self.workload_ref = WorkloadRef.parse(spec["workload"])
        self.via: str = spec["via"]
        self.until: str = spec["until"]
        self.rate: int = spec.get("rate", 25)
        self.tail: float = spec.get("tail", 3.0)
        self.recorder = Recorder(spec["id"], self.until, time.time(), spec.get("versionSwitch", True))
        self.entry: list[tuple[str, int]] = []
        self.templates: dict[str, tuple[str, int]] = {}    # workload uid → (template JSON, revision)
        self.pods: dict[str, dict[str, str]] = {}          # pod uid → {name, ip} of serving pods last seen
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        creds = Credentials.from_kubeconfig(self.spec.get("kubeconfig", ADMIN_KUBECONFIG))
        namespace = self.spec["namespace"]
        async with APIClient(creds) as api:
            informers = {plural: Informer(api, plural, namespace=None if plural == "nodes" else namespace)
                         for plural in ("deployments", "replicasets", "pods", "services", "endpoints", "nodes")}
            tasks = [asyncio.create_task(i.run()) for i in informers.values()]
            try:
                await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in informers.values())), 60)
                await asyncio.gather(self._observe(informers), self._send(), self._write())
            except Exception as err:
                self.recorder.state, self.recorder.error = "failed", f"{type(err).__name__}: {err}"
                log.exception("probe failed")
                self.write_result()
            finally:
                for task in tasks:
                    task.cancel()

    def _snapshot(self, informers: dict[str, Informer]) -> Snapshot:
        lists = {k: sorted(i.list(), key=lambda o: o["metadata"]["name"]) for k, i in informers.items()}
        return Snapshot(self.spec["namespace"], lists["deployments"], lists["replicasets"], lists["pods"],
                        lists["services"], lists["endpoints"], lists["nodes"])

    async def _observe(self, informers: dict[str, Informer]) -> None:
        deadline = self.recorder.started + self.spec.get("maxSeconds", 3 * 3600)
        while not self.stopping.is_set():
            now = time.time()
            if now > deadline and self.recorder.state != "done":
                self.recorder.state = "expired"
            if self.recorder.state in ("done", "expired"):
                self.recorder.target(now, None, self.via, [])
                self.stopping.set()
                return
            self.observe(self._snapshot(informers), now)
            await asyncio.sleep(TICK)

    def observe(self, snap: Snapshot, now: float) -> None:
        """One look at the namespace: the way in, the endpoints, events beginning and completing."""
        workload, _ = find_workload(snap, self.workload_ref)
        service = None
        if workload is not None:
            found = find_services(snap, workload, self.workload_ref.kind, ServiceRef(type=self.via))
            service = found[0] if found else None
        points = entry_points(snap, service, self.via) if service else []
        self.entry = worker_entry_points(snap, points) if self.via == "NodePort" else points
        name = service["metadata"]["name"] if service and self.entry else None
        self.recorder.target(now, name, self.via, [f"{h}:{p}" for h, p in self.entry])
        if service is not None:
            ready, not_ready = endpoint_ips(snap, service)
            self.recorder.endpoint_counts(now, len(ready), len(not_ready))
        if workload is not None:
            if self.until == "rollout":
                self._rollouts(snap, workload, now)
            else:
                self._replacements(snap, workload, now)
        self.recorder.close_due(now, self.tail)

    def _rollouts(self, snap: Snapshot, deployment: dict[str, Any], now: float) -> None:
        uid, name = deployment["metadata"]["uid"], deployment["metadata"]["name"]
        template = json.dumps((deployment.get("spec") or {}).get("template"), sort_keys=True)
        seen = self.templates.get(uid)
        if seen is None:
            self.templates[uid] = (template, revision(deployment))
            if revision(deployment) > 1:  # rolled out before this probe saw the Deployment
                event = self.recorder.begin(now, "rollout", name, {"toRevision": revision(deployment)})
                event.watched, event.unwatched_reason = False, "it happened before the probe saw the Deployment"
                self.recorder.complete(event, now)
            return
        if template != seen[0]:
            self.templates[uid] = (template, seen[1])
            self.recorder.begin(now, "rollout", name, {"fromRevision": seen[1], "images": _images(deployment)})
        elif revision(deployment) != seen[1] and not self.recorder.open_events(name):
            self.templates[uid] = (template, revision(deployment))  # the controller annotated it
        for event in self.recorder.open_events(name):
            current = current_replicaset(snap, deployment)
            if event.completed is None and current is not None and revision(current) > event.detail.get(
                    "fromRevision", 0) and rollout_complete(snap, deployment):
                self.templates[uid] = (template, revision(deployment))
                self.recorder.complete(event, now, {"toRevision": revision(deployment)})

    def _replacements(self, snap: Snapshot, workload: dict[str, Any], now: float) -> None:
        """A serving pod of the workload left (deleted, or no longer Ready): a replacement event,
        complete once a pod that was not there before serves with a new IP and the count is back."""
        name = workload["metadata"]["name"]
        serving = {p["metadata"]["uid"]: {"name": p["metadata"]["name"], "ip": p["status"]["podIP"]}
                   for p in serving_pods(pods_of(snap, workload, self.workload_ref.kind))}
        gone = [pod for uid, pod in self.pods.items() if uid not in serving]
        if gone and not self.recorder.open_events(name):
            self.recorder.begin(now, "pod-replaced", name,
                                {"deleted": gone, "before": sorted(p["name"] for p in self.pods.values())})
        for event in self.recorder.open_events(name):
            before, old_ips = set(event.detail["before"]), {p["ip"] for p in event.detail["deleted"]}
            new = [p for p in serving.values() if p["name"] not in before and p["ip"] not in old_ips]
            want = (workload.get("spec") or {}).get("replicas", 1)
            if event.completed is None and new and len(serving) >= want:
                self.recorder.complete(event, now, {"replacements": new})
        self.pods = serving

    async def _send(self) -> None:
        """``rate`` requests a second through the way in, each on its own connection, never waiting
        for one to finish before starting the next (a hung backend does not slow the probe)."""
        pending: set[asyncio.Task] = set()
        interval, i, next_at = 1.0 / self.rate, 0, time.monotonic()
        while not self.stopping.is_set():
            if self.entry:
                host, port = self.entry[i % len(self.entry)]
                i += 1
                task = asyncio.create_task(get(host, port, self.spec.get("path", "/")))
                task.add_done_callback(self._record)
                pending.add(task)
                task.add_done_callback(pending.discard)
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if next_at < time.monotonic() - 1:  # fell behind (a busy machine): do not burst to catch up
                next_at = time.monotonic()
        if pending:
            await asyncio.wait(pending, timeout=5)

    def _record(self, task: asyncio.Task[Answer]) -> None:
        if not task.cancelled():
            self.recorder.record(task.result())

    async def _write(self) -> None:
        while not self.stopping.is_set():
            self.write_result()
            try:
                await asyncio.wait_for(self.stopping.wait(), WRITE_EVERY)
            except TimeoutError:
                pass
        await asyncio.sleep(3.5)  # the last requests' answers
        self.write_result()

    def write_result(self) -> None:
        path = Path(self.spec["result"])
        tmp = path.with_suffix(".tmp")
        result = self.recorder.result(time.time())
        result["pid"] = os.getpid()
        tmp.write_text(json.dumps(result))
        os.replace(tmp, path)


def _images(deployment: dict[str, Any]) -> list[str]:
    containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return [str(c.get("image", "")) for c in containers]


def stop(pid_file: Path, timeout: float = 5.0) -> bool:
    """End the probe whose pid ``pid_file`` holds — only if that process is still a probe (a node
    restart may have given the pid to another process). True when none is left running."""
    try:
        pid = int(pid_file.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return True
    if b"labctl.exercises.probe" not in cmdline:
        return True
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path(f"/proc/{pid}").exists():
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("run", "stop"):
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "stop":
        return 0 if stop(Path(argv[1])) else 1
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    spec = json.loads(Path(argv[1]).read_text())
    Path(spec["pidFile"]).write_text(str(os.getpid()))
    probe = ProbeRun(spec)

    async def run() -> None:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
        try:
            await probe.run()
        except asyncio.CancelledError:
            if probe.recorder.state not in ("done", "expired"):
                probe.recorder.state = "stopped"
            probe.write_result()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
