"""What every pod worker shares: the API client, Docker, the CNI config, back-offs, events.

Docker's SDK and the CNI plugins block, so they run in one thread pool
(:meth:`KubeletContext.blocking`) sized for many pods starting at once; the event
loop only waits. Events are recorded in the background: a slow API server must not
delay a container's start.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from ...client.events import EventRecorder
from ...client.rest import APIClient
from ...clusterconfig import NodeConfig
from .backoff import Backoff
from .images import ImageResolver
from .runtime import Runtime
from .serviceaccount import ServiceAccountTokens
from .volumes import NodeVolumes

log = logging.getLogger("labctl.kubelet")
T = TypeVar("T")

#: Seconds between a pod's deletion and the SIGTERM of its containers: the Endpoints
#: controller drops a terminating pod at once, and every node's proxy must have rewritten
#: its rules before the pod stops answering, or a rollout loses requests (docs/services.md).
PRE_STOP_DRAIN_SECONDS = 2.0
#: Worker threads for Docker and CNI calls: enough for ~16 pods to progress at once.
BLOCKING_THREADS = 16
#: Concurrent CNI ADD/DEL: each is two fresh Python processes (plugin + IPAM) that mostly
#: burn CPU importing; more than the cores just thrashes (ADDs hit the 60 s plugin timeout).
CNI_PARALLEL = 2


@dataclass
class KubeletContext:
    client: APIClient
    cfg: NodeConfig
    runtime: Runtime
    images: ImageResolver
    recorder: EventRecorder
    netconf: dict[str, Any]
    http: aiohttp.ClientSession
    executor: ThreadPoolExecutor
    crash_backoff: Backoff = field(default_factory=Backoff)
    pull_backoff: Backoff = field(default_factory=Backoff)
    drain_seconds: float = PRE_STOP_DRAIN_SECONDS
    cni_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(CNI_PARALLEL))
    tokens: ServiceAccountTokens | None = None
    volumes: NodeVolumes = field(default_factory=NodeVolumes)
    _tasks: set[asyncio.Task] = field(default_factory=set)

    async def blocking(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking call (Docker, CNI, netlink) in the thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args, **kwargs))

    def spawn(self, coro: Any) -> asyncio.Task:
        """A background task that is kept referenced until it ends."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def event(self, pod: dict, event_type: str, reason: str, message: str) -> None:
        """Record an Event about ``pod`` without waiting for the API server."""
        obj = {"kind": "Pod", "apiVersion": "v1", **pod}
        self.spawn(self.recorder.record(obj, event_type, reason, message))
