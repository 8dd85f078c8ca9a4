"""The controller pattern: informers feed a work queue of keys; ``reconcile(key)`` converges.

As in Kubernetes, a controller never acts on the event itself: handlers only enqueue the
``namespace/name`` of the object to look at, and ``reconcile`` reads the current state
from the informers' caches and writes what is missing. A failed reconcile is retried with
exponential back-off; a periodic resync catches anything a watch missed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable

log = logging.getLogger("labctl.controllers")


class WorkQueue:
    """A de-duplicating queue of keys with delayed re-adds (client-go's rate-limited queue).

    As client-go's ``workqueue.Type``: a key is never handed to two workers at once. A key
    added while a worker processes it is marked dirty and queued again only when that worker
    calls :meth:`done`, so the next reconcile sees the newer state and two reconciles of one
    object never race each other's writes (a status patch without a resourceVersion from
    the older one could otherwise land last).
    """

    def __init__(self, sort_key: Callable[[str], int] | None = None) -> None:
        """``sort_key``: keys with a lower value are handed out first (FIFO among equals), as
        kube-scheduler's activeQ pops the pod of highest priority first; None: plain FIFO."""
        self._queue: asyncio.Queue[tuple[int, int, str]] = (asyncio.PriorityQueue() if sort_key
                                                            else asyncio.Queue())
        self._sort_key = sort_key
        self._seq = itertools.count()
        self._dirty: set[str] = set()        # wanted: queued, or to re-queue once processed
        self._processing: set[str] = set()   # handed to a worker, not done yet
        self._failures: dict[str, int] = {}

    def add(self, key: str) -> None:
        if key in self._dirty:
            return
        self._dirty.add(key)
        if key not in self._processing:
            self._put(key)

    def done(self, key: str) -> None:
        """A worker finished ``key``; queue it again if it was added meanwhile."""
        self._processing.discard(key)
        if key in self._dirty:
            self._put(key)

    def _put(self, key: str) -> None:
        self._queue.put_nowait((self._sort_key(key) if self._sort_key else 0, next(self._seq), key))

    def add_after(self, key: str, delay: float) -> None:
        asyncio.get_running_loop().call_later(max(delay, 0.0), self.add, key)

    def retry(self, key: str) -> None:
        failures = self._failures.get(key, 0) + 1
        self._failures[key] = failures
        self.add_after(key, min(0.05 * 2 ** failures, 30.0))

    def forget(self, key: str) -> None:
        self._failures.pop(key, None)

    async def get(self) -> str:
        *_, key = await self._queue.get()
        self._processing.add(key)
        self._dirty.discard(key)
        return key


class Controller:
    """Subclasses set ``name`` and implement :meth:`reconcile`; they enqueue from handlers."""

    name = "controller"
    workers = 1
    resync_seconds = 30.0

    def __init__(self) -> None:
        self.queue = WorkQueue()

    async def reconcile(self, key: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def keys_for_resync(self) -> list[str]:
        """Keys to re-check periodically (default: none)."""
        return []

    async def run(self) -> None:
        await asyncio.gather(*(self._worker() for _ in range(self.workers)), self._resync())

    async def _worker(self) -> None:
        while True:
            key = await self.queue.get()
            started = time.monotonic()
            try:
                await self.reconcile(key)
                self.queue.forget(key)
            except Exception as err:  # retried with back-off
                log.warning("%s: failed to sync %s: %s", self.name, key, err, exc_info=log.isEnabledFor(logging.DEBUG))
                self.queue.retry(key)
            finally:
                self.queue.done(key)
                log.debug("%s: synced %s in %.1f ms", self.name, key, (time.monotonic() - started) * 1000)

    async def _resync(self) -> None:
        while True:
            await asyncio.sleep(self.resync_seconds)
            for key in self.keys_for_resync():
                self.queue.add(key)


def key_of(obj: dict) -> str:
    meta = obj["metadata"]
    return f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]


def split_key(key: str) -> tuple[str, str]:
    namespace, _, name = key.rpartition("/")
    return namespace, name
