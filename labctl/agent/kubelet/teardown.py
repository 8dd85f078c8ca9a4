"""Stopping pods: graceful termination, sandbox teardown and orphan removal.

The order is the kubelet's: ``Killing`` event, (drain delay,) each app container's
preStop hook then SIGTERM, wait ``terminationGracePeriodSeconds``, SIGKILL — the app
containers first, the sidecars (restartable init containers) after them, in reverse
order, with what is left of the grace period — then CNI DEL while the sandbox's namespace still exists (the veth and the IP
go), then the containers.
"""

from __future__ import annotations

import asyncio
import logging
import time

from .context import KubeletContext
from .hooks import container_spec, stop_container
from .network import teardown_pod_network
from .runtime import SANDBOX, ContainerRecord

log = logging.getLogger("labctl.kubelet")
DEFAULT_GRACE_S = 30


def grace_seconds(pod: dict) -> int:
    """``deletionGracePeriodSeconds`` if being deleted, else the spec's, else 30."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    for value in (meta.get("deletionGracePeriodSeconds"), spec.get("terminationGracePeriodSeconds")):
        if value is not None:
            return max(0, int(value))
    return DEFAULT_GRACE_S


async def stop_containers(ctx: KubeletContext, records: list[ContainerRecord], grace: int,
                          pod: dict | None = None, pod_ip: str = "") -> None:
    """Stop every running container of a pod: preStop hooks and the grace period when the pod is known.

    Without the pod (an orphan found by the garbage collector) there is no spec, so no
    hook: just ``docker stop --time=grace``.
    """
    running = [r for r in records if r.name != SANDBOX and r.running]
    if pod is not None:
        for record in running:
            ctx.event(pod, "Normal", "Killing", f"Stopping container {record.name}")
        if running and ctx.drain_seconds > 0:
            await asyncio.sleep(ctx.drain_seconds)
    sidecars = [c["name"] for c in ((pod or {}).get("spec") or {}).get("initContainers") or []
                if c.get("restartPolicy") == "Always"]
    apps = [r for r in running if r.name not in sidecars]
    started = time.monotonic()
    await asyncio.gather(*(_stop(ctx, pod, r, grace, pod_ip) for r in apps))
    for name in reversed(sidecars):  # what is left of the grace period, as the kubelet's termination ordering
        for record in (r for r in running if r.name == name):
            await _stop(ctx, pod, record, max(0, grace - int(time.monotonic() - started)), pod_ip)


async def _stop(ctx: KubeletContext, pod: dict | None, record: ContainerRecord, grace: int, pod_ip: str) -> None:
    await stop_container(ctx, pod, container_spec(pod, record.name) if pod else None, record, grace, pod_ip)


async def release_sandboxes(ctx: KubeletContext, records: list[ContainerRecord], stop: bool = True) -> None:
    """CNI DEL for every sandbox instance (namespace still there), then stop them.

    A hostNetwork pod's sandbox was never given to CNI, so it gets no DEL either.
    """
    for sandbox in (r for r in records if r.name == SANDBOX):
        try:
            if not sandbox.host_network:
                async with ctx.cni_slots:
                    await ctx.blocking(teardown_pod_network, ctx.netconf, sandbox.id,
                                       sandbox.netns if sandbox.running else "")
        except Exception as err:
            log.warning("failed to tear down the network of sandbox %s: %s", sandbox.id[:12], err)
        if stop and sandbox.running:
            await ctx.blocking(ctx.runtime.stop, sandbox.id, 0)


async def remove_containers(ctx: KubeletContext, records: list[ContainerRecord]) -> None:
    await asyncio.gather(*(ctx.blocking(ctx.runtime.remove, r.id) for r in records), return_exceptions=True)


async def kill_pod(ctx: KubeletContext, records: list[ContainerRecord], grace: int, pod: dict | None = None,
                   pod_ip: str = "") -> None:
    """Stop gracefully, release the network, remove every container of the pod."""
    await stop_containers(ctx, records, grace, pod, pod_ip)
    await release_sandboxes(ctx, records, stop=False)
    await remove_containers(ctx, records)
    if pod is not None and ctx.tokens is not None:
        ctx.tokens.forget(pod["metadata"]["uid"])
