"""The object store behind the API server: SQLite on disk, a copy in memory.

Why this shape: kube-apiserver keeps etcd as the durable truth and serves reads and
watches from an in-memory cache. We do the same at lab scale. Every write is one SQLite
transaction (the object row, an event row and the revision counter), committed before
the client gets an answer, so it survives a restart of the process. Reads and live
watch events come from memory, which is what makes listing 1,000 pods cheap.

The event history a watch resumes from stays in SQLite only and is compacted like
etcd's (see :mod:`.history`): memory holds the current objects, never their past
versions, and :meth:`SQLiteStore.compact` gives the space of dropped events back to the
file system.

The :class:`Store` protocol is all the handlers see, so a distributed store (etcd) can
replace :class:`SQLiteStore` later without touching them.

Objects are plain dicts and are treated as immutable once stored: callers copy before
they change anything (:func:`clone`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import orjson

from .history import EventHistory, Retention

log = logging.getLogger("labctl.apiserver")

#: a watcher whose queue holds this many undelivered events is too slow and is closed,
#: as kube-apiserver does with its watch cache
WATCHER_QUEUE_LIMIT = 50000
#: compaction deletes about this many bytes of events per step (~15 ms here), then lets writes in
COMPACT_STEP_BYTES = 4 * 1024 * 1024
#: pages an incremental-vacuum step gives back (4 MiB, ~15-35 ms here)
VACUUM_STEP_PAGES = 1024
#: free space below this, and below 1/VACUUM_MIN_FREE_SHARE of the file, stays for the next writes to reuse
VACUUM_MIN_FREE_BYTES = 4 * 1024 * 1024
VACUUM_MIN_FREE_SHARE = 4

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


class Event:
    """One change, as a watch delivers it.

    An event replayed from the history arrives as the stored JSON and is decoded only
    if a watcher's selectors need to look inside: a watcher without selectors gets the
    stream line built from the stored bytes.
    """

    __slots__ = ("_data", "_encoded", "_object", "_previous", "_previous_data", "key", "revision", "type")

    def __init__(self, type: str, key: Key, revision: int, object: dict | None = None,
                 previous: dict | None = None, *, data: bytes | None = None,
                 previous_data: bytes | None = None) -> None:
        self.type = type  # ADDED | MODIFIED | DELETED
        self.key = key
        self.revision = revision
        self._object = object
        self._previous = previous
        self._data = data
        self._previous_data = previous_data
        self._encoded: bytes | None = None

    @property
    def object(self) -> dict:
        if self._object is None:
            assert self._data is not None, "an event holds its object or its stored JSON"
            self._object = orjson.loads(self._data)
        return self._object

    @property
    def previous(self) -> dict | None:
        if self._previous is None and self._previous_data is not None:
            self._previous = orjson.loads(self._previous_data)
        return self._previous

    def encoded(self) -> bytes:
        """The watch-stream line for this event, encoded once and shared by all watchers."""
        if self._encoded is None:
            data = self._data if self._data is not None else orjson.dumps(self._object)
            self._encoded = b'{"type":"%s","object":%s}\n' % (self.type.encode(), data)
        return self._encoded

    def __repr__(self) -> str:
        return f"Event({self.type}, {self.key}, {self.revision})"


#: the retained events a new watch replays first (a name, as the stores' ``list`` method hides the builtin)
Backlog = list[Event]


@dataclass(frozen=True)
class Compaction:
    """What one :meth:`SQLiteStore.compact` did."""

    events: int  # events dropped for their age
    event_bytes: int
    vacuumed_bytes: int  # file space given back
    oldest: int  # the oldest revision still retained


class Watcher:
    """A subscription to the store's change stream for one resource key."""

    def __init__(self, store: SQLiteStore, resource: str) -> None:
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
    def watch(self, resource: str, since: int | None) -> tuple[Watcher, Backlog]: ...
    def compact(self) -> Compaction: ...
    def close(self) -> None: ...


class SQLiteStore:
    """Embedded store: SQLite in WAL mode, all current objects also held in memory.

    The API server calls it on its event loop thread, which serialises writes the way
    etcd's single raft log does. Only :meth:`compact` is meant for a worker thread: it
    works in short steps under the store's lock, so a write waits at most one step.
    """

    def __init__(self, path: str | Path, retention: Retention = Retention(), fsync: bool = False,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.retention = retention
        self._clock = clock
        self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        # INCREMENTAL auto-vacuum lets compaction give freed pages back in small steps; it must
        # be chosen before the first table exists (older stores: _ensure_incremental_vacuum)
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
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
                namespace TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL, previous BLOB,
                at REAL);
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
            """
        )
        self._page_size: int = self._db.execute("PRAGMA page_size").fetchone()[0]
        self._lock = threading.Lock()
        self._closed = False
        self._objects: dict[str, dict[tuple[str, str], dict]] = collections.defaultdict(dict)
        self._history = EventHistory()
        self._watchers: dict[str, set[Watcher]] = collections.defaultdict(set)
        self._revision = 0
        self._migrate_schema()
        self._load()
        self._ensure_incremental_vacuum()

    # -- loading -----------------------------------------------------------------------
    def _migrate_schema(self) -> None:
        """Add what an older labctl's store lacks: the events' write times."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
        if "at" not in columns:
            self._db.execute("ALTER TABLE events ADD COLUMN at REAL")

    def _ensure_incremental_vacuum(self) -> None:
        """Switch an older labctl's store to incremental auto-vacuum: one rewrite of the file, at start-up.

        It runs after :meth:`_load` has trimmed the history to its limits, so the rewrite
        copies only what stays.
        """
        if self._db.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            self._db.execute("VACUUM")

    def _load(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key='revision'").fetchone()
        self._revision = row[0] if row else 0
        for resource, namespace, name, data in self._db.execute(
            "SELECT resource, namespace, name, data FROM objects"
        ):
            self._objects[resource][(namespace, name)] = orjson.loads(data)
        # length() of a BLOB reads the record header, not the body: the index loads fast
        loaded_at = self._clock()
        for revision, size, at in self._db.execute(
            "SELECT revision, length(data) + ifnull(length(previous), 0), at FROM events ORDER BY revision"
        ):
            self._history.append(revision, size, loaded_at if at is None else at)
        excess = self._history.excess_through(self.retention)
        if excess is not None:
            self._drop_events_through(excess)

    # -- reads -------------------------------------------------------------------------
    @property
    def revision(self) -> int:
        return self._revision

    @property
    def oldest(self) -> int:
        """The oldest retained revision: a watch can resume from ``oldest - 1`` or later."""
        oldest = self._history.oldest
        return self._revision + 1 if oldest is None else oldest

    def history_size(self) -> tuple[int, int]:
        """How many events are retained and their bytes."""
        return len(self._history), self._history.bytes

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
            size = len(data) + (len(prev_data) if prev_data is not None else 0)
            at = self._clock()
            # the count and byte limits hold at every write, not only at compaction
            excess = self._history.excess_through(self.retention, size)
            resource, ns, name = key
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                if typ == "DELETED":
                    cur.execute("DELETE FROM objects WHERE resource=? AND namespace=? AND name=?", key)
                else:
                    cur.execute("INSERT OR REPLACE INTO objects VALUES (?,?,?,?,?)",
                                (resource, ns, name, revision, data))
                cur.execute("INSERT INTO events (revision, type, resource, namespace, name, data, previous, at) "
                            "VALUES (?,?,?,?,?,?,?,?)", (revision, typ, resource, ns, name, data, prev_data, at))
                cur.execute("INSERT OR REPLACE INTO meta VALUES ('revision', ?)", (revision,))
                if excess is not None:
                    cur.execute("DELETE FROM events WHERE revision <= ?", (excess,))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            self._revision = revision
            if typ == "DELETED":
                self._objects[resource].pop((ns, name), None)
            else:
                self._objects[resource][(ns, name)] = stored
            if excess is not None:
                self._history.drop_through(excess)
            self._history.append(revision, size, at)
            event = Event(typ, key, revision, stored, previous, data=data)
        for watcher in list(self._watchers.get(resource, ())):
            watcher.loop.call_soon_threadsafe(watcher._deliver, event)
        return stored

    # -- watch -------------------------------------------------------------------------
    def watch(self, resource: str, since: int | None) -> tuple[Watcher, Backlog]:
        """Subscribe to a resource; return the watcher and the retained events after ``since``.

        ``since=None`` means "from now". Raises :class:`ResourceVersionTooOld` when events
        after ``since`` have already been compacted away.
        """
        with self._lock:
            backlog: Backlog = []
            if since is not None and since < self._revision:
                if since + 1 < self.oldest:
                    raise ResourceVersionTooOld(since, self.oldest)
                backlog = [Event(typ, (resource, ns, name), rev, data=data, previous_data=prev)
                           for rev, typ, ns, name, data, prev in self._db.execute(
                               "SELECT revision, type, namespace, name, data, previous FROM events "
                               "WHERE revision > ? AND resource = ? ORDER BY revision", (since, resource))]
            watcher = Watcher(self, resource)
            self._watchers[resource].add(watcher)
        return watcher, backlog

    def _unsubscribe(self, watcher: Watcher) -> None:
        self._watchers.get(watcher.resource, set()).discard(watcher)

    def watcher_count(self) -> int:
        return sum(len(w) for w in self._watchers.values())

    def watcher_counts(self) -> dict[str, int]:
        """Open watches per resource key (the API server's ``/metrics``)."""
        return {resource: len(w) for resource, w in self._watchers.items() if w}

    # -- compaction --------------------------------------------------------------------
    def compact(self) -> Compaction:
        """Drop the history older than ``retention.max_age`` and give the freed space back.

        Blocking and meant for a worker thread (:func:`compact_periodically`): it deletes
        and vacuums in steps of a few MB, each under the store's lock, so writes and new
        watches wait for at most one step while reads never wait.
        """
        cutoff = self._clock() - self.retention.max_age
        events = event_bytes = 0
        while True:
            with self._lock:
                if self._closed:
                    break
                last = self._history.expired_through(cutoff, COMPACT_STEP_BYTES)
                if last is None:
                    break
                count, size = self._drop_events_through(last)
                events, event_bytes = events + count, event_bytes + size
        return Compaction(events, event_bytes, self._vacuum(), self.oldest)

    def _drop_events_through(self, revision: int) -> tuple[int, int]:
        self._db.execute("DELETE FROM events WHERE revision <= ?", (revision,))
        return self._history.drop_through(revision)

    def _vacuum(self) -> int:
        """Give free pages back to the file system, a step at a time; the bytes given back."""
        freed = 0
        while True:
            with self._lock:
                if self._closed:
                    return freed
                free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
                if free == 0 or (freed == 0 and not self._worth_vacuuming(free)):
                    break
                # executescript steps the pragma to the end (execute() would free one page)
                self._db.executescript(f"PRAGMA incremental_vacuum({VACUUM_STEP_PAGES})")
                left = self._db.execute("PRAGMA freelist_count").fetchone()[0]
                freed += (free - left) * self._page_size
                if left >= free:
                    break
        if freed:
            with self._lock:
                if not self._closed:
                    # in WAL mode the file shrinks when the log is checkpointed
                    self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return freed

    def _worth_vacuuming(self, free_pages: int) -> bool:
        """Enough free space to give back, rather than leave for the next writes to reuse."""
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        return free_pages * self._page_size >= VACUUM_MIN_FREE_BYTES or free_pages * VACUUM_MIN_FREE_SHARE >= pages

    def close(self) -> None:
        for watchers in list(self._watchers.values()):
            for w in list(watchers):
                w.close()
        with self._lock:
            self._closed = True
            self._db.close()


async def compact_periodically(store: SQLiteStore, interval: float) -> None:
    """Compact ``store`` every ``interval`` seconds, off the event loop, until cancelled.

    kube-apiserver compacts etcd every 5 minutes; compacting more often than the history
    lasts keeps the retained history close to ``retention.max_age``.
    """
    while True:
        await asyncio.sleep(interval)
        started = time.monotonic()
        try:
            done = await asyncio.to_thread(store.compact)
        except sqlite3.Error:
            log.exception("compaction failed; retrying in %.0f s", interval)
            continue
        if done.events or done.vacuumed_bytes:
            log.info("compacted %d events (%.1f MB) up to revision %d, %.1f MB given back, in %.2f s",
                     done.events, done.event_bytes / 2**20, done.oldest - 1, done.vacuumed_bytes / 2**20,
                     time.monotonic() - started)


def _revision_of(obj: dict) -> int:
    return int(obj.get("metadata", {}).get("resourceVersion") or 0)
