"""Watch streams: the store's change events, filtered per watcher and written as chunked JSON.

Semantics follow kube-apiserver: events strictly after the requested resourceVersion;
with no resourceVersion (or "0"), synthetic ADDED events for the current state first;
an object that stops matching the watcher's selectors arrives as DELETED and one that
starts matching as ADDED; a resourceVersion older than the retained history gets an
ERROR event carrying a 410 Expired Status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import orjson

from .storage import Event

Matcher = Callable[[dict], bool]


@dataclass
class WatchFilter:
    """Which events a watcher wants: a namespace, a name and selectors."""

    namespace: str | None
    matcher: Matcher | None

    def _matches(self, obj: dict | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj.get("metadata", {}).get("namespace") != self.namespace:
            return False
        return self.matcher is None or self.matcher(obj)

    def translate(self, event: Event) -> str | None:
        """The event type this watcher sees for ``event``, or None to skip it."""
        if self.namespace is None and self.matcher is None:
            return event.type
        now = self._matches(event.object)
        if event.type == "ADDED":
            return "ADDED" if now else None
        if event.type == "DELETED":
            return "DELETED" if now else None
        before = self._matches(event.previous) if event.previous is not None else now
        if now and before:
            return "MODIFIED"
        if now:
            return "ADDED"
        if before:
            return "DELETED"
        return None


def encode_event(event_type: str, obj: dict) -> bytes:
    return orjson.dumps({"type": event_type, "object": obj}) + b"\n"


def bookmark(kind: str, api_version: str, revision: int, initial_events_end: bool = False) -> bytes:
    meta: dict = {"resourceVersion": str(revision)}
    if initial_events_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return encode_event("BOOKMARK", {"kind": kind, "apiVersion": api_version, "metadata": meta})


def expired(requested: int, oldest: int) -> bytes:
    status = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
              "message": f"too old resource version: {requested} ({oldest - 1})", "reason": "Expired",
              "code": 410}
    return encode_event("ERROR", status)


async def next_event(queue: asyncio.Queue, timeout: float) -> Event | Literal[False] | None:
    """The next queued event; None when the watcher was closed; False on timeout."""
    try:
        return await asyncio.wait_for(queue.get(), timeout)
    except TimeoutError:
        return False
