"""Run labctl's scheduler in-process against a real API server (tests and ``bench/scheduler_burst.py``).

The scheduler runs on its own event loop in a thread, exactly as the controller manager runs
it (shared informers, then ``Scheduler.run()``), so a test can drive the API with kubectl or
a client at the same time. Nodes are registered as Node objects the way a node agent does.
"""

from __future__ import annotations

from pathlib import Path

from labctl.client.rest import APIClient, Credentials, resource_path
from labctl.controllers.scheduler import Scheduler
from support.controllers import ControllersThread

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


class SchedulerThread(ControllersThread):
    """``with SchedulerThread(kubeconfig) as s:`` runs a Scheduler until the block ends."""

    def __init__(self, kubeconfig: Path) -> None:
        super().__init__(kubeconfig, [Scheduler])


async def register_nodes(kubeconfig: Path, nodes: list[dict]) -> None:
    async with APIClient(Credentials.from_kubeconfig(kubeconfig)) as client:
        for node in nodes:
            await client.create(resource_path("nodes"), node)
