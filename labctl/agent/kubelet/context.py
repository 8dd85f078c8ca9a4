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
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from ...client.events import EventRecorder
from ...client.informer import Informer
from ...client.rest import APIClient
from ...clusterconfig import NodeConfig
from ..node_status import memory_capacity_kib
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
#: Concurrent CNI ADD/DEL: each execs a plugin process (a thin client of the agent's CNI
#: daemon); 6 at once was slower than 2 in a 50-pod burst (docs/benchmarks-kubelet.md).
CNI_PARALLEL = 2
#: The kubelet's ``--resolv-conf``: the node's resolver, the base of ``dnsPolicy: Default``.
RESOLV_CONF = Path("/etc/resolv.conf")
#: The node's hosts file, the base of a ``hostNetwork`` pod's (``nodeHostsFileContent``).
HOSTS_FILE = Path("/etc/hosts")
#: A container whose ConfigMap or Secret is missing is tried again after 1 s, 2 s, 4 s …
#: then every 10 s (the kubelet's pod worker back-off period), so it starts soon after the
#: object is created.
CONFIG_RETRY_S = (1.0, 10.0)


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
    config_backoff: Backoff = field(default_factory=lambda: Backoff(*CONFIG_RETRY_S))
    resolv_conf: Path = RESOLV_CONF
    hosts_file: Path = HOSTS_FILE
    services: Informer | None = None   # set once the kubelet's informers exist
    nodes: Informer | None = None
    #: whether any NetworkPolicy exists: a new pod's IP is then in its status before its containers start
    policies_exist: Callable[[], bool] = lambda: False
    _tasks: set[asyncio.Task] = field(default_factory=set)

    def allocatable(self) -> dict[str, str]:
        """This node's ``status.allocatable`` (what an unset limit means to ``resourceFieldRef``)."""
        node = self.nodes.get("", self.cfg.node_name) if self.nodes is not None else None
        allocatable = ((node or {}).get("status") or {}).get("allocatable")
        if allocatable:
            return dict(allocatable)
        return {"cpu": str(os.cpu_count() or 1), "memory": f"{memory_capacity_kib()}Ki"}

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
