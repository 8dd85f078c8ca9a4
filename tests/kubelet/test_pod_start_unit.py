"""A new pod's first sync reads Docker's list of the pod once: its first status reuses that list,
and its status after the start reads the containers it made, not the pod's list again. A worker
resyncs on its own clock, after its last sync."""

from __future__ import annotations

import asyncio
import copy
from types import SimpleNamespace
from typing import Any

import pytest

from labctl.agent.kubelet import podworker
from labctl.agent.kubelet.podworker import PodWorker
from labctl.agent.kubelet.runtime import ContainerRecord
from labctl.agent.kubelet.volumes import NodeVolumes, PreparedVolumes
from labctl.clusterconfig import ClusterConfig

POD = {"metadata": {"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "5"},
       "spec": {"nodeName": "worker", "containers": [{"name": "nginx", "image": "nginx"}]},
       "status": {"phase": "Pending"}}
APP = ContainerRecord("a1", "nginx", 0, True, started_at="2026-12-07T12:00:00Z")


class Engine:
    """The runtime calls of a pod's start, recorded."""

    node_container = "lab-worker"

    def __init__(self, listed: list[ContainerRecord]) -> None:
        self.listed = listed
        self.calls: list[Any] = []

    def list_pod(self, uid: str, sandboxes: bool = True) -> list[ContainerRecord]:
        self.calls.append("list")
        return list(self.listed)

    def create(self, spec: Any) -> str:
        self.calls.append("create")
        return "s1"

    def inspect_all(self, ids: list[str]) -> list[ContainerRecord]:
        self.calls.append(("inspect", list(ids)))
        return [APP]


def started_worker(monkeypatch: pytest.MonkeyPatch, listed: list[ContainerRecord]) -> tuple[PodWorker, Engine, list]:
    engine, statuses = Engine(listed), []

    async def blocking(fn: Any, *args: Any) -> Any:
        return fn(*args)

    ctx = SimpleNamespace(runtime=engine, blocking=blocking, volumes=NodeVolumes(),
                          cfg=SimpleNamespace(cluster=ClusterConfig()))
    w = PodWorker(ctx, copy.deepcopy(POD))  # type: ignore[arg-type]

    async def setup_volumes() -> bool:
        w.volumes.prepared = PreparedVolumes()
        return True

    async def nothing(*_args: Any) -> None:
        return None

    async def network(_sandbox: str) -> bool:
        return True

    async def create(container: dict, sandbox: str, attempt: int) -> str:
        return "a1"

    async def write_status(records: list[ContainerRecord] | None = None) -> None:
        statuses.append(records)
        w.last_status = {"phase": "Pending"}

    monkeypatch.setattr(podworker, "write_pod_files", nothing)
    monkeypatch.setattr(w, "setup_volumes", setup_volumes)
    monkeypatch.setattr(w, "start_network", network)
    monkeypatch.setattr(w, "create_container", create)
    monkeypatch.setattr(w, "start_container", nothing)
    monkeypatch.setattr(w, "write_status", write_status)
    asyncio.run(w.sync())
    return w, engine, statuses


def test_a_new_pods_sync_lists_it_once_and_reads_what_it_made_for_the_status(monkeypatch):
    _w, engine, statuses = started_worker(monkeypatch, [])
    assert engine.calls == ["list", "create", ("inspect", ["a1"])]
    assert statuses == [[], [APP]]  # ContainerCreating from the sync's list, then the started container


def test_a_pod_whose_containers_outlived_their_sandbox_is_listed_again_for_its_status(monkeypatch):
    """Not only the containers made here are the pod's: the status after the start lists them all."""
    old = ContainerRecord("a0", "nginx", 0, False, exit_code=137, finished_at="2026-12-07T11:00:00Z")
    _w, engine, statuses = started_worker(monkeypatch, [old])
    assert engine.calls == ["list", "create"]
    assert statuses == [[old], None]  # None: write_status lists the pod


def test_a_worker_resyncs_itself_after_its_last_sync(monkeypatch):
    """No event, no node-wide tick: the worker's own timer, armed when a sync ends, brings the next sync."""
    monkeypatch.setattr(podworker, "RESYNC_S", 0.02)
    w = PodWorker(SimpleNamespace(volumes=NodeVolumes()), copy.deepcopy(POD))  # type: ignore[arg-type]
    syncs = 0

    async def sync() -> bool:
        nonlocal syncs
        syncs += 1
        return syncs == 3  # the pod is gone after the third

    monkeypatch.setattr(w, "sync", sync)
    asyncio.run(asyncio.wait_for(w.run(), 10))
    assert syncs == 3 and w._resync is not None and w._resync.cancelled()  # no timer left behind
