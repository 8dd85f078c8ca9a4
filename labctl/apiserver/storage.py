"""The object store behind the API server: SQLite on disk, a copy in memory.

Why this shape: kube-apiserver keeps etcd as the durable truth and serves reads and
watches from an in-memory cache. We do the same at lab scale. Every write is one SQLite
transaction (the object row, an event row and the revision counter), committed before
the client gets an answer, so it survives a restart of the process. Reads and watches
come from memory, which is what makes listing 1,000 pods cheap.

The :class:`Store` protocol is all the handlers see, so a distributed store (etcd) can
replace :class:`SQLiteStore` later without touching them.

Objects are plain dicts and are treated as immutable once stored: callers copy before
they change anything (:func:`clone`).
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import orjson

#: how many past events are kept for watches that resume from an older resourceVersion
DEFAULT_HISTORY = 20000
#: a watcher whose queue holds this many undelivered events is too slow and is closed,
#: as kube-apiserver does with its watch cache
WATCHER_QUEUE_LIMIT = 50000

Key = tuple[str, str, str]  # (resource key e.g. "apps/deployments", namespace, name)


def clone(obj: dict) -> dict:
    """A deep copy of a JSON object (faster than copy.deepcopy for JSON data)."""
    return orjson.loads(orjson.dumps(obj))


class ResourceVersionTooOld(Exception):
    """The requested resourceVersion is older than the retained event history."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(f"too old resource version: {requested} ({oldest})")
        self.requested = requested
        self.oldest = oldest


class PreconditionFailed(Exception):
    """The object changed since the resourceVersion the client sent (optimistic concurrency)."""


class AlreadyExists(Exception):
    pass


class NotFound(Exception):
    pass


@dataclass
class Event:
    """One change, as a watch delivers it."""

    type: str  # ADDED | MODIFIED | DELETED
    key: Key
    revision: int
    object: dict
    previous: dict | None = None
    _encoded: bytes | None = field(default=None, repr=False)

    def encoded(self) -> bytes:
        """The watch-stream line for this event, encoded once and shared by all watchers."""
        if self._encoded is None:
            self._encoded = orjson.dumps({"type": self.type, "object": self.object}) + b"\n"
        return self._encoded


class Watcher:
    """A subscription to the store's change stream for one resource key."""

    def __init__(self, store: "SQLiteStore", resource: str) -> None:
        self.store = store
        self.resource = resource
        self.queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self.loop = asyncio.get_running_loop()
        self.closed = False

    def _deliver(self, event: Event) -> None:
        if self.closed:
            return
        if self.queue.qsize() >= WATCHER_QUEUE_LIMIT:
            self.close()
            return
        self.queue.put_nowait(event)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.queue.put_nowait(None)
            self.store._unsubscribe(self)


class Store(Protocol):
    """What the API handlers need from a store."""

    @property
    def revision(self) -> int: ...
    def get(self, key: Key) -> dict | None: ...
    def list(self, resource: str, namespace: str | None = None) -> list[dict]: ...
    def create(self, key: Key, obj: dict) -> dict: ...
    def update(self, key: Key, obj: dict, expected_revision: int | None = None) -> dict: ...
    def delete(self, key: Key, expected_revision: int | None = None) -> dict: ...
    def watch(self, resource: str, since: int | None) -> tuple[Watcher, list[Event]]: ...
    def close(self) -> None: ...


class SQLiteStore:
    """Embedded store: SQLite in WAL mode, all objects also held in memory.

    Not thread-safe by design: the API server runs it on its event loop thread, which
    serialises writes the way etcd's single raft log does.
    """

    def __init__(self, path: str | Path, history: int = DEFAULT_HISTORY, fsync: bool = False) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.history = history
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a crash or restart of this process (the WAL
        # is written before we answer); FULL also fsyncs it, surviving power loss, at a cost.
        self._db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
        self._db.executescript(
            """
            CREATE TABLE IF NOT EXISTS objects (
                resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
                revision INTEGER NOT NULL, data BLOB NOT NULL,
                PRIMARY KEY (resource, namespace, name));
            CREATE TABLE IF NOT EXISTS events (
                revision INTEGER PRIMARY KEY, type TEXT NOT NULL, resource TEXT NOT NULL,
                namespace TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL, previous BLOB);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
            """
        )
        self._lock = threading.Lock()
        self._objects: dict[str, dict[tuple[str, str], dict]] = collections.defaultdict(dict)
        self._events: collections.deque[Event] = collections.deque()
        self._watchers: dict[str, set[Watcher]] = collections.defaultdict(set)
        self._revision = 0
        self._oldest = 1  # events with revision >= this are retained
        self._load()

    # -- loading -----------------------------------------------------------------------
    def _load(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='revision'").fetchone()
        self._revision = row[0] if row else 0
        for resource, namespace, name, data in self._db.execute(
            "SELECT resource, namespace, name, data FROM objects"
        ):
            self._objects[resource][(namespace, name)] = orjson.loads(data)
        rows = self._db.execute(
            "SELECT revision, type, resource, namespace, name, data, previous FROM events "
            "ORDER BY revision DESC LIMIT ?", (self.history,)
        ).fetchall()
        for rev, typ, resource, ns, name, data, prev in reversed(rows):
            self._events.append(Event(typ, (resource, ns, name), rev, orjson.loads(data),
                                      orjson.loads(prev) if prev else None))
        self._oldest = self._events[0].revision if self._events else self._revision + 1

    # -- reads -------------------------------------------------------------------------
    @property
    def revision(self) -> int:
        return self._revision

    def get(self, key: Key) -> dict | None:
        return self._objects.get(key[0], {}).get((key[1], key[2]))

    def list(self, resource: str, namespace: str | None = None) -> list[dict]:
        """Objects of a resource, sorted by namespace then name like etcd's key order."""
        items = self._objects.get(resource, {})
        keys = sorted(k for k in items if namespace is None or k[0] == namespace)
        return [items[k] for k in keys]

    def count(self, resource: str) -> int:
        return len(self._objects.get(resource, {}))

    # -- writes ------------------------------------------------------------------------
    def create(self, key: Key, obj: dict) -> dict:
        if self.get(key) is not None:
            raise AlreadyExists(key)
        return self._write("ADDED", key, obj, None)

    def update(self, key: Key, obj: dict, expected_revision: int | None = None) -> dict:
        current = self.get(key)
        if current is None:
            raise NotFound(key)
        if expected_revision is not None and _revision_of(current) != expected_revision:
            raise PreconditionFailed(key)
        return self._write("MODIFIED", key, obj, current)

    def delete(self, key: Key, expected_revision: int | None = None) -> dict:
        current = self.get(key)
        if current is None:
            raise NotFound(key)
        if expected_revision is not None and _revision_of(current) != expected_revision:
            raise PreconditionFailed(key)
        return self._write("DELETED", key, current, current)

    def _write(self, typ: str, key: Key, obj: dict, previous: dict | None) -> dict:
        with self._lock:
            revision = self._revision + 1
            if typ == "DELETED":
                # a DELETED event carries the object's last state at the deletion revision
                stored = clone(obj)
            else:
                stored = obj
            stored.setdefault("metadata", {})["resourceVersion"] = str(revision)
            data = orjson.dumps(stored)
            prev_data = orjson.dumps(previous) if previous is not None else None
            resource, ns, name = key
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                if typ == "DELETED":
                    cur.execute("DELETE FROM objects WHERE resource=? AND namespace=? AND name=?", key)
                else:
                    cur.execute("INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?)",
                                (resource, ns, name, revision, data))
                cur.execute("INSERT INTO events VALUES (?,?,?,?,?,?,?)",
                            (revision, typ, resource, ns, name, data, prev_data))
                cur.execute("INSERT OR REPLACE INTO meta VALUES ('revision', ?)", (revision,))
                if revision % 1000 == 0:
                    cur.execute("DELETE FROM events WHERE revision <= ?", (revision - self.history,))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self._revision = revision
            if typ == "DELETED":
                self._objects[resource].pop((ns, name), None)
            else:
                self._objects[resource][(ns, name)] = stored
            event = Event(typ, key, revision, stored, previous)
            self._events.append(event)
            while len(self._events) > self.history:
                self._events.popleft()
            self._oldest = self._events[0].revision
        for watcher in list(self._watchers.get(resource, ())):
            watcher.loop.call_soon_threadsafe(watcher._deliver, event)
        return stored

    # -- watch -------------------------------------------------------------------------
    def watch(self, resource: str, since: int | None) -> tuple[Watcher, list[Event]]:
        """Subscribe to a resource; return the watcher and the retained events after ``since``.

        ``since=None`` means "from now". Raises :class:`ResourceVersionTooOld` when events
        after ``since`` have already been dropped from the history.
        """
        with self._lock:
            backlog: list[Event] = []
            if since is not None and since < self._revision:
                if since + 1 < self._oldest:
                    raise ResourceVersionTooOld(since, self._oldest)
                backlog = [e for e in self._events if e.revision > since and e.key[0] == resource]
            watcher = Watcher(self, resource)
            self._watchers[resource].add(watcher)
        return watcher, backlog

    def _unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.resource, set()).discard(watcher)

    def watcher_count(self) -> int:
        return sum(len(w) for w in self._watchers.values())

    def close(self) -> None:
        for watchers in list(self._watchers.values()):
            for w in list(watchers):
                w.close()
        self._db.close()


def _revision_of(obj: dict) -> int:
    return int(obj.get("metadata", {}).get("resourceVersion") or 0)

