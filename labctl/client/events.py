"""Recording core/v1 Events, as client-go's EventRecorder does.

Events are how a student learns *why* (``kubectl describe pod`` → ``FailedScheduling``,
``Pulled``, ``BackOff``). Repeats of the same event on the same object are folded into one
Event whose ``count`` grows, so a crash loop does not flood the namespace.

:meth:`EventRecorder.emit` is client-go's ``Eventf``: it returns at once and the write happens
behind the caller (client-go's broadcaster goroutine), so a controller's next step does not
wait for an Event's round trip — a ReplicaSet creating 25 pods otherwise waited for 15
``SuccessfulCreate`` writes, one after the other, before its last batch.

Events still queued when the process stops are dropped, not flushed, as client-go drops them:
its broadcaster's ``Shutdown`` cancels the sink writer, which gives up on what it holds
("Unable to write event (broadcaster is shut down)"), and the kubelet never even calls it — it
exits. labctl's components stop the same way: the node's init (:mod:`labctl.nodeinit`) ends a
node agent or the controller manager with SIGTERM, left at its default (the process ends at
once), while on the control-plane node the API server that would take the writes stops with
them; an Event is best effort by contract.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time

from ..kube.meta import generate_name, timestamp
from .rest import APIClient, APIStatusError, resource_path

log = logging.getLogger("labctl.events")


class EventRecorder:
    def __init__(self, client: APIClient, component: str, host: str = "") -> None:
        self.client = client
        self.component = component
        self.host = host
        # (uid, type, reason, message) -> (namespace, event name, count)
        self._seen: dict[tuple[str, str, str, str], tuple[str, str, int]] = {}
        self._pending: collections.deque[tuple[dict, str, str, str]] = collections.deque()
        self._writer: asyncio.Task | None = None

    def emit(self, obj: dict, event_type: str, reason: str, message: str) -> None:
        """Record an event about ``obj`` without waiting for it: written in order by one
        background task on the running loop (best effort, like client-go's broadcaster: what is
        still queued when the loop stops is dropped, see the module's docstring)."""
        meta = obj.get("metadata", {})
        about = {"kind": obj.get("kind"), "apiVersion": obj.get("apiVersion"),  # as it is now: callers mutate
                 "metadata": {k: meta.get(k) for k in ("name", "namespace", "uid", "resourceVersion")}}
        self._pending.append((about, event_type, reason, message))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_pending())

    async def _write_pending(self) -> None:
        while self._pending:
            await self.record(*self._pending.popleft())

    async def record(self, obj: dict, event_type: str, reason: str, message: str) -> None:
        """Record an event about ``obj``; never raises (events are best effort, like client-go)."""
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace") or "default"
        key = (meta.get("uid", ""), event_type, reason, message)
        now = timestamp()
        try:
            if key in self._seen:
                ns, name, count = self._seen[key]
                await self.client.patch(resource_path("events", ns, name),
                                        {"count": count + 1, "lastTimestamp": now})
                self._seen[key] = (ns, name, count + 1)
                return
            event = {
                "apiVersion": "v1", "kind": "Event",
                "metadata": {"name": generate_name(f"{meta.get('name', 'object')}.{int(time.time() * 1000):x}."),
                             "namespace": namespace},
                "involvedObject": {"kind": obj.get("kind"), "apiVersion": obj.get("apiVersion"),
                                   "name": meta.get("name"), "namespace": meta.get("namespace"),
                                   "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")},
                "reason": reason, "message": message, "type": event_type,
                "source": {"component": self.component, **({"host": self.host} if self.host else {})},
                "reportingComponent": self.component, "reportingInstance": self.host,
                "firstTimestamp": now, "lastTimestamp": now, "count": 1,
            }
            created = await self.client.create(resource_path("events", namespace), event)
            self._seen[key] = (namespace, created["metadata"]["name"], 1)
            if len(self._seen) > 5000:
                self._seen.clear()
        except (APIStatusError, OSError, Exception) as err:
            log.debug("failed to record event %s on %s: %s", reason, meta.get("name"), err)
