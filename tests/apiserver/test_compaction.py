"""The watch history is compacted by age and size, and the space comes back (issue 10's repro, smaller).

The store tests inject the clock, so "five minutes later" takes no time; the last test runs
the real server process with a 1 s history.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import ssl
import threading
import urllib.request
from pathlib import Path

import pytest

from labctl.apiserver.history import Retention
from labctl.apiserver.storage import ResourceVersionTooOld, SQLiteStore
from labctl.client.waiting import wait_for
from support.apiserver import APIServerProcess

KB = 1024
MB = 1024 * KB
BIG = ("core/configmaps", "default", "big")


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def configmap(name: str, value: str) -> dict:
    return {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": name, "namespace": "default"},
            "data": {"v": value}}


def file_bytes(db: Path) -> int:
    return sum(os.path.getsize(p) for p in (db, Path(f"{db}-wal")) if p.exists())


def churn(store: SQLiteStore, updates: int, size: int) -> None:
    """The issue's repro: a big ConfigMap updated again and again, then deleted."""
    store.create(BIG, configmap("big", "x" * size))
    for i in range(updates):
        store.update(BIG, configmap("big", f"{i:06d}" + "x" * size))
    store.delete(BIG)


def test_compaction_gives_back_the_space_of_a_deleted_object_history(tmp_path):
    clock = Clock()
    store = SQLiteStore(tmp_path / "store.db", clock=clock)
    for i in range(20):
        store.create(("core/configmaps", "default", f"small{i}"), configmap(f"small{i}", "1"))
    start = file_bytes(store.path)

    churn(store, updates=200, size=200 * KB)
    assert file_bytes(store.path) > 40 * MB

    clock.now += store.retention.max_age + 1
    done = store.compact()

    assert done.oldest == store.revision + 1
    assert store.history_size() == (0, 0)
    assert file_bytes(store.path) < start + 1 * MB
    assert store.count("core/configmaps") == 20
    store.close()


def test_the_history_is_bounded_by_bytes_between_compactions(tmp_path):
    retention = Retention(max_bytes=8 * MB)
    store = SQLiteStore(tmp_path / "store.db", retention)
    churn(store, updates=100, size=200 * KB)
    events, size = store.history_size()
    assert size <= 8 * MB and events >= 8 * MB // (2 * 201 * KB)
    # freed pages are reused by the next writes, so the file stays near the bound
    assert file_bytes(store.path) < 16 * MB
    store.close()


def test_the_history_is_bounded_by_count(tmp_path):
    store = SQLiteStore(tmp_path / "store.db", Retention(max_events=10))
    for i in range(25):
        store.create(("core/configmaps", "default", f"c{i}"), configmap(f"c{i}", "1"))
    assert store.history_size()[0] == 10
    assert store.oldest == store.revision - 9
    store.close()


def test_a_watch_from_a_compacted_revision_is_expired_and_from_a_retained_one_gets_every_event(tmp_path):
    clock = Clock()
    store = SQLiteStore(tmp_path / "store.db", Retention(max_age=300), clock=clock)
    store.create(("core/configmaps", "default", "old"), configmap("old", "1"))
    compacted = store.revision
    store.update(("core/configmaps", "default", "old"), configmap("old", "2"))
    clock.now += 200
    store.create(("core/configmaps", "default", "kept"), configmap("kept", "1"))
    retained = store.revision - 1
    store.create(("core/secrets", "default", "other"), {"metadata": {"name": "other"}})
    store.delete(("core/configmaps", "default", "old"))
    clock.now += 150  # the first two events are 350 s old now, the others 150 s

    assert store.compact().events == 2

    async def watch(since: int):
        watcher, backlog = store.watch("core/configmaps", since)
        watcher.close()
        return [(e.type, e.key[2], e.object["metadata"]["resourceVersion"]) for e in backlog]

    with pytest.raises(ResourceVersionTooOld):
        asyncio.run(watch(compacted))
    assert asyncio.run(watch(retained)) == [("ADDED", "kept", str(retained + 1)),
                                            ("DELETED", "old", str(retained + 3))]
    store.close()


def test_the_history_and_its_age_survive_a_restart(tmp_path):
    clock = Clock()
    store = SQLiteStore(tmp_path / "store.db", clock=clock)
    store.create(("core/configmaps", "default", "a"), configmap("a", "1"))
    store.update(("core/configmaps", "default", "a"), configmap("a", "2"))
    store.close()

    clock.now += 100
    again = SQLiteStore(tmp_path / "store.db", clock=clock)
    assert again.history_size()[0] == 2
    clock.now += again.retention.max_age - 50  # 250 s after the restart: the events are 350 s old
    assert again.compact().events == 2
    assert again.oldest == again.revision + 1
    again.close()


def test_writes_and_watches_while_compacting_lose_nothing(tmp_path):
    clock = Clock()
    store = SQLiteStore(tmp_path / "store.db", clock=clock)
    churn(store, updates=150, size=200 * KB)  # ~60 MB of history to compact and vacuum
    clock.now += store.retention.max_age + 1
    since = store.revision

    async def scenario():
        watcher, backlog = store.watch("core/configmaps", since)
        compaction = threading.Thread(target=store.compact)
        compaction.start()
        created = []
        while compaction.is_alive() or len(created) < 50:
            name = f"during{len(created)}"
            store.create(("core/configmaps", "default", name), configmap(name, "x" * 1000))
            created.append(name)
            await asyncio.sleep(0)
        compaction.join()
        seen = [(await watcher.queue.get()).key[2] for _ in created]
        watcher.close()
        return backlog, created, seen

    backlog, created, seen = asyncio.run(scenario())
    assert backlog == [] and seen == created
    revision = store.revision
    store.close()

    again = SQLiteStore(tmp_path / "store.db", clock=clock)
    assert again.revision == revision
    assert [o["metadata"]["name"] for o in again.list("core/configmaps")] == sorted(created)
    assert file_bytes(again.path) < 10 * MB
    again.close()


def test_a_store_from_an_older_labctl_is_converted(tmp_path):
    path = tmp_path / "store.db"
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript("""
        CREATE TABLE objects (resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
            revision INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (resource, namespace, name));
        CREATE TABLE events (revision INTEGER PRIMARY KEY, type TEXT NOT NULL, resource TEXT NOT NULL,
            namespace TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL, previous BLOB);
        CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
    """)
    obj = configmap("a", "1") | {"metadata": {"name": "a", "namespace": "default", "resourceVersion": "1"}}
    db.execute("INSERT INTO objects VALUES ('core/configmaps','default','a',1,?)", (json.dumps(obj),))
    db.execute("INSERT INTO events VALUES (1,'ADDED','core/configmaps','default','a',?,NULL)", (json.dumps(obj),))
    db.execute("INSERT INTO meta VALUES ('revision', 1)")
    db.close()

    store = SQLiteStore(path)
    assert store._db.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    assert store.get(("core/configmaps", "default", "a"))["data"] == {"v": "1"}

    async def backlog():
        watcher, events = store.watch("core/configmaps", 0)
        watcher.close()
        return [(e.type, e.key[2]) for e in events]

    assert asyncio.run(backlog()) == [("ADDED", "a")]
    store.close()


def _rss_mb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    raise AssertionError("no VmRSS")


def test_the_server_shrinks_back_after_the_issue_repro(tmp_path):
    server = APIServerProcess(tmp_path / "apiserver", extra_args=["--history-max-age", "1",
                                                                  "--compaction-interval", "0.5"])
    server.data_dir.mkdir()
    server.start()
    try:
        pki = server.data_dir / "pki"
        ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
        ctx.load_cert_chain(pki / "admin.crt", pki / "admin.key")
        url = f"{server.url}/api/v1/namespaces/default/configmaps"

        def call(method: str, path: str = "", body: dict | None = None) -> dict:
            data = json.dumps(body).encode() if body is not None else None
            req = urllib.request.Request(url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, context=ctx, timeout=30) as resp:
                return json.loads(resp.read())

        db = server.data_dir / "store.db"
        start_bytes, start_rss = file_bytes(db), _rss_mb(server.proc.pid)
        first = call("POST", body={"metadata": {"name": "big"}, "data": {"v": "x" * 200 * KB}})
        for i in range(200):
            call("PUT", "/big", {"metadata": {"name": "big"}, "data": {"v": f"{i:06d}" + "x" * 200 * KB}})
        grown = file_bytes(db)
        call("DELETE", "/big")

        wait_for(lambda: file_bytes(db) < start_bytes + 1 * MB, timeout=30, interval=0.2,
                 what=f"store.db back near {start_bytes} bytes (it grew to {grown})")
        # the history is not held in memory: 200 versions of 200 KB would be 40 MB and more
        assert _rss_mb(server.proc.pid) < start_rss + 30

        # the informer's case: a watch from before the compaction is told to list again
        since = first["metadata"]["resourceVersion"]
        req = urllib.request.Request(f"{url}?watch=true&resourceVersion={since}&timeoutSeconds=1")
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            event = json.loads(resp.readline())
        assert (event["type"], event["object"]["code"], event["object"]["reason"]) == ("ERROR", 410, "Expired")
    finally:
        server.stop()
