"""Ephemeral containers: what ``kubectl debug -it POD --image=… [--target=app]`` adds to a running pod.

The API server stores them in ``spec.ephemeralContainers`` (subresource
``pods/ephemeralcontainers``); the kubelet starts each one **once** in the pod's sandbox —
the pod's network and IPC namespaces, like any container of the pod — and never restarts
it. With ``targetContainerName`` it also joins that container's PID namespace (Docker's
``pid_mode: container:<id>``, what containerd does with the target's namespace), so ``ps``
in the debugger shows the target's processes. Their states are reported in
``status.ephemeralContainerStatuses``; they never make the pod ready or change its phase.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .runtime import ContainerRecord
from .status import ContainerView, container_status

if TYPE_CHECKING:
    from .podworker import PodWorker


def ephemeral_containers(pod: dict) -> list[dict]:
    return [c for c in (pod.get("spec") or {}).get("ephemeralContainers") or [] if isinstance(c, dict)]


def target_id(container: dict, by_name: dict[str, list[ContainerRecord]]) -> str | None:
    """The Docker id of the running target whose PID namespace to join; '' for none; None: wait for it."""
    target = container.get("targetContainerName")
    if not target:
        return ""
    instances = by_name.get(target, [])
    return instances[-1].id if instances and instances[-1].running else None


async def sync_ephemeral_containers(worker: PodWorker, by_name: dict[str, list[ContainerRecord]],
                                    sandbox_id: str) -> None:
    """Create and start every ephemeral container that has no instance yet; exited ones stay exited."""
    for container in ephemeral_containers(worker.pod):
        instances = by_name.get(container["name"], [])
        if instances:
            if not instances[-1].running and not instances[-1].exited:
                await worker.start_container(container, instances[-1].id)  # created, never started
            continue
        pid_container = target_id(container, by_name)
        if pid_container is None:
            worker.waiting[container["name"]] = ("ContainerCreating", f"waiting for the target container "
                                                                      f"{container['targetContainerName']!r}")
            worker.wake_after(1.0)
            continue
        cid = await worker.create_container(container, sandbox_id, 0, pid_container=pid_container)
        if cid:
            await worker.start_container(container, cid)


def ephemeral_statuses(pod: dict, by_name: dict[str, list[ContainerRecord]],
                       waiting: dict[str, tuple[str, str]]) -> list[dict]:
    """``status.ephemeralContainerStatuses``: one entry per ephemeral container, never ready."""
    statuses = []
    for container in ephemeral_containers(pod):
        instances = by_name.get(container["name"], [])
        latest = instances[-1] if instances else None
        reason, message = ("", "") if latest is not None and latest.running else waiting.get(container["name"], ("", ""))
        statuses.append(container_status(ContainerView(container["name"], container.get("image", ""), latest,
                                                       None, reason, message, False)))
    return statuses
