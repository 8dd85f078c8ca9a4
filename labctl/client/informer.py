"""List + watch into a local cache, like client-go's informer.

Every labctl component that reacts to the cluster (node agent, service proxy, controllers)
uses this: list once, then watch from the list's resourceVersion; on a dropped stream
resume from the last seen version; on ``410 Gone`` list again and report the difference
as add/update/delete, so handlers never miss a change and never need to poll.

An informer also says whether its cache is *current*: ``failing_since`` is when its list or
watch started failing (None while they work) and ``last_error`` why. A component can then
report itself not ready when its watch is refused (``401``: an expired token) instead of
serving a stale cache as if it were fresh, and the LoadBalancer announcer withdraws its
addresses when it has been cut off from the API for too long.

An object whose fields are not of the types components read (one stored before the API
server checked types, see :mod:`labctl.kube.wellformed`) is left out of the cache with
one log line, so it cannot fail a handler or a controller for the objects next to it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol, TypedDict

import aiohttp

from ..kube.wellformed import problem
from .rest import APIClient, APIStatusError, resource_path

log = logging.getLogger("labctl.informer")


class Handler(Protocol):
    def on_add(self, obj: dict) -> None: ...
    def on_update(self, old: dict, new: dict) -> None: ...
    def on_delete(self, obj: dict) -> None: ...


class FuncHandler:
    """A handler from plain functions; any may be omitted."""

    def __init__(self, on_add: Callable | None = None, on_update: Callable | None = None,
                 on_delete: Callable | None = None) -> None:
        self._add, self._update, self._delete = on_add, on_update, on_delete

    def on_add(self, obj: dict) -> None:
        if self._add:
            self._add(obj)

    def on_update(self, old: dict, new: dict) -> None:
        if self._update:
            self._update(old, new)

    def on_delete(self, obj: dict) -> None:
        if self._delete:
            self._delete(obj)


def object_key(obj: dict) -> tuple[str, str]:
    meta = obj.get("metadata", {})
    return meta.get("namespace", ""), meta["name"]


def _key_or_none(obj: object) -> tuple[str, str] | None:
    """The cache key of an object that may be malformed, when it has one."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict) or not isinstance(meta.get("name"), str):
        return None
    namespace = meta.get("namespace", "")
    return (namespace if isinstance(namespace, str) else "", meta["name"])


class Selectors(TypedDict, total=False):
    """The selectors of a filtered list and watch (``ListOptions``).

    Named keys, not ``dict[str, str]``: passed as ``**params`` they cannot be mistaken for
    :meth:`~.rest.APIClient.watch`'s own keyword arguments.
    """

    labelSelector: str
    fieldSelector: str


class Informer:
    """Keeps ``cache`` equal to the server's view of one resource (optionally filtered)."""

    def __init__(self, client: APIClient, plural: str, handlers: list[Handler] | None = None,
                 namespace: str | None = None, label_selector: str = "", field_selector: str = "") -> None:
        self.client = client
        self.plural = plural
        self.path = resource_path(plural, namespace)
        self.handlers = list(handlers or [])
        self.params: Selectors = {}
        if label_selector:
            self.params["labelSelector"] = label_selector
        if field_selector:
            self.params["fieldSelector"] = field_selector
        self.cache: dict[tuple[str, str], dict] = {}
        self.synced = asyncio.Event()
        self.failing_since: float | None = None   # time.monotonic() of the first failure in a row
        self.last_error: Exception | None = None
        self._rv = ""
        self._malformed: dict[tuple[str, str], str] = {}  # key -> the resourceVersion already logged

    def add_handler(self, handler: Handler) -> None:
        self.handlers.append(handler)

    def get(self, namespace: str, name: str) -> dict | None:
        return self.cache.get((namespace, name))

    def list(self) -> list[dict]:
        return list(self.cache.values())

    @property
    def refused(self) -> bool:
        """The server refuses our credentials (401) or rights (403): the cache is going stale."""
        return isinstance(self.last_error, APIStatusError) and self.last_error.code in (401, 403)

    def failing_for(self, now: float | None = None) -> float:
        """Seconds the list/watch has been failing without a success in between (0 when healthy)."""
        if self.failing_since is None:
            return 0.0
        return (time.monotonic() if now is None else now) - self.failing_since

    def _working(self) -> None:
        if self.failing_since is not None:
            log.info("watch of %s works again after %.1fs", self.plural, self.failing_for())
        self.failing_since, self.last_error = None, None

    def _failing(self, err: Exception) -> None:
        self.last_error = err
        if self.failing_since is None:
            self.failing_since = time.monotonic()

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                if not self._rv:
                    await self._relist()
                async for event in self.client.watch(self.path, self._rv, on_open=self._working, **self.params):
                    self._apply(event)
                    backoff = 0.2
            except APIStatusError as err:
                if err.code == 410:
                    self._rv = ""  # expired: list again
                    continue
                self._failing(err)
                log.warning("watch of %s failed: %s", self.plural, err)
            except (TimeoutError, aiohttp.ClientError, OSError) as err:
                self._failing(err)
                log.debug("watch of %s interrupted: %s", self.plural, err)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def _relist(self) -> None:
        listed = await self.client.get(self.path, **self.params)
        fresh = {object_key(o): o for o in listed.get("items", []) if self._wellformed(o)}
        for key, cached in list(self.cache.items()):
            if key not in fresh:
                del self.cache[key]
                self._emit("on_delete", cached)
        for key, obj in fresh.items():
            old = self.cache.get(key)
            self.cache[key] = obj
            if old is None:
                self._emit("on_add", obj)
            elif old["metadata"].get("resourceVersion") != obj["metadata"].get("resourceVersion"):
                self._emit("on_update", old, obj)
        self._rv = listed["metadata"]["resourceVersion"]
        self._working()
        self.synced.set()

    def _apply(self, event: dict) -> None:
        typ, obj = event["type"], event["object"]
        self._rv = obj.get("metadata", {}).get("resourceVersion", self._rv)
        if typ == "BOOKMARK":
            return
        if not self._wellformed(obj):
            # what the cache held is outdated; for the handlers the object is gone
            stale = _key_or_none(obj)
            if stale is not None and stale in self.cache:
                self._emit("on_delete", self.cache.pop(stale))
            return
        key = object_key(obj)
        old = self.cache.get(key)
        if typ == "DELETED":
            self.cache.pop(key, None)
            self._emit("on_delete", obj)
        elif old is None:
            self.cache[key] = obj
            self._emit("on_add", obj)
        else:
            self.cache[key] = obj
            self._emit("on_update", old, obj)

    def _wellformed(self, obj: dict) -> bool:
        """False (logged once per version) for an object components cannot read safely."""
        where = problem(self.plural, obj)
        if where is None:
            return True
        key = _key_or_none(obj) or ("", "?")
        version = str((obj.get("metadata") or {}).get("resourceVersion", "")) if isinstance(obj, dict) else ""
        if self._malformed.get(key) != version:
            self._malformed[key] = version
            log.warning("skipping %s %s: malformed field %s", self.plural, "/".join(k for k in key if k), where)
        return False

    def _emit(self, method: str, *args: dict) -> None:
        for handler in self.handlers:
            try:
                getattr(handler, method)(*args)
            except Exception:  # a handler bug must not stop the informer
                log.exception("%s handler for %s failed", method, self.plural)
