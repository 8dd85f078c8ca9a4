"""The SQLite store: revisions, durability across reopen, optimistic concurrency, watch history."""

from __future__ import annotations

import asyncio

import pytest

from labctl.apiserver.history import Retention
from labctl.apiserver.storage import AlreadyExists, PreconditionFailed, ResourceVersionTooOld, SQLiteStore

KEY = ("core/configmaps", "default", "a")


def cm(name: str, value: str = "1") -> dict:
    return {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": name, "namespace": "default"},
            "data": {"v": value}}


def test_one_revision_counter_for_the_whole_store(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    a = store.create(KEY, cm("a"))
    b = store.create(("core/secrets", "default", "b"), {"metadata": {"name": "b"}})
    assert int(b["metadata"]["resourceVersion"]) == int(a["metadata"]["resourceVersion"]) + 1
    assert store.revision == int(b["metadata"]["resourceVersion"])
    with pytest.raises(AlreadyExists):
        store.create(KEY, cm("a"))


def test_stale_revision_is_a_conflict_and_changes_nothing(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    first = store.create(KEY, cm("a"))
    store.update(KEY, cm("a", "2"), int(first["metadata"]["resourceVersion"]))
    revision = store.revision
    with pytest.raises(PreconditionFailed):
        store.update(KEY, cm("a", "3"), int(first["metadata"]["resourceVersion"]))
    assert store.revision == revision
    assert store.get(KEY)["data"]["v"] == "2"


def test_everything_survives_reopening(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    store.create(KEY, cm("a"))
    store.create(("core/configmaps", "default", "b"), cm("b"))
    store.delete(("core/configmaps", "default", "b"))
    revision = store.revision
    store.close()

    again = SQLiteStore(tmp_path / "s.db")
    assert again.revision == revision
    assert again.get(KEY)["data"]["v"] == "1"
    assert again.get(("core/configmaps", "default", "b")) is None
    nxt = again.create(("core/configmaps", "default", "c"), cm("c"))
    assert int(nxt["metadata"]["resourceVersion"]) == revision + 1


def test_watch_backlog_is_exactly_the_missed_events_even_after_reopen(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    store.create(KEY, cm("a"))
    since = store.revision
    store.update(KEY, cm("a", "2"))
    store.create(("core/configmaps", "default", "b"), cm("b"))
    store.create(("core/secrets", "default", "s"), {"metadata": {"name": "s"}})  # other resource
    store.delete(KEY)
    store.close()

    async def backlog():
        again = SQLiteStore(tmp_path / "s.db")
        watcher, events = again.watch("core/configmaps", since)
        watcher.close()
        return [(e.type, e.key[2]) for e in events]

    assert asyncio.run(backlog()) == [("MODIFIED", "a"), ("ADDED", "b"), ("DELETED", "a")]


def test_watch_from_before_the_history_is_too_old(tmp_path):
    store = SQLiteStore(tmp_path / "s.db", retention=Retention(max_events=3))
    for i in range(6):
        store.create(("core/configmaps", "default", f"c{i}"), cm(f"c{i}"))

    async def attempt():
        return store.watch("core/configmaps", 1)

    with pytest.raises(ResourceVersionTooOld):
        asyncio.run(attempt())


def test_live_events_reach_every_watcher(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")

    async def scenario():
        watchers = [store.watch("core/configmaps", None)[0] for _ in range(3)]
        store.create(KEY, cm("a"))
        got = [await asyncio.wait_for(w.queue.get(), 1) for w in watchers]
        for w in watchers:
            w.close()
        return got

    events = asyncio.run(scenario())
    assert [e.type for e in events] == ["ADDED"] * 3
    assert store.watcher_count() == 0
