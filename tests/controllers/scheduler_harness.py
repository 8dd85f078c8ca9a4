"""Run labctl's scheduler in-process against a real API server (tests and ``bench/scheduler_burst.py``).

The scheduler runs on its own event loop in a thread, exactly as the controller manager runs
it (shared informers, then ``Scheduler.run()``), so a test can drive the API with kubectl or
a client at the same time. Nodes are registered as Node objects the way a node agent does.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from labctl.client.rest import APIClient, Credentials, resource_path
from labctl.controllers.context import ControllerContext
from labctl.controllers.scheduler import Scheduler

CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def node_object(name: str, control_plane: bool = False, cpu: str = "2", memory: str = "4Gi") -> dict:
    labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
    if control_plane:
        labels["node-role.kubernetes.io/control-plane"] = ""
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": labels},
            "spec": {"taints": [CONTROL_PLANE_TAINT]} if control_plane else {},
            "status": {"capacity": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]}}


class SchedulerThread:
    """``with SchedulerThread(kubeconfig) as s:`` runs a Scheduler until the block ends."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self.error: BaseException | None = None

    async def _main(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        client = APIClient(Credentials.from_kubeconfig(self.kubeconfig))
        try:
            ctx = ControllerContext(client)
            scheduler = Scheduler(ctx)
            tasks = [asyncio.create_task(ctx.run_informers())]
            await ctx.wait_for_sync()
            tasks.append(asyncio.create_task(scheduler.run()))
            self._ready.set()
            await self._stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        except BaseException as err:  # surfaced by __enter__/__exit__
            self.error = err
        finally:
            self._ready.set()
            await client.close()

    def __enter__(self) -> "SchedulerThread":
        self._thread.start()
        if not self._ready.wait(30) or self.error:
            raise RuntimeError(f"failed to start the scheduler: {self.error}")
        return self

    def __exit__(self, *exc) -> None:
        if self.loop and self._stop:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


async def register_nodes(kubeconfig: Path, nodes: list[dict]) -> None:
    async with APIClient(Credentials.from_kubeconfig(kubeconfig)) as client:
        for node in nodes:
            await client.create(resource_path("nodes"), node)
