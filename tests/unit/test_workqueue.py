"""The controllers' work queue hands a key to one worker at a time, as client-go's does."""

from __future__ import annotations

import asyncio

from labctl.controllers.base import Controller, WorkQueue


def test_a_key_added_while_processing_is_queued_again_only_when_done():
    async def scenario() -> list[str]:
        q = WorkQueue()
        q.add("default/web")
        first = await q.get()
        q.add("default/web")          # a watch event while a worker reconciles it
        q.add("default/web")          # de-duplicated
        assert q._queue.empty(), "a second worker must not get the key while the first holds it"
        q.done(first)
        second = await asyncio.wait_for(q.get(), 1)
        q.done(second)
        return [first, second]

    assert asyncio.run(scenario()) == ["default/web", "default/web"]


def test_two_workers_never_reconcile_the_same_key_at_once():
    class Probe(Controller):
        workers = 2

        def __init__(self) -> None:
            super().__init__()
            self.running: set[str] = set()
            self.overlaps = 0
            self.calls = 0

        async def reconcile(self, key: str) -> None:
            self.overlaps += key in self.running
            self.running.add(key)
            self.calls += 1
            await asyncio.sleep(0.01)
            self.running.discard(key)

    async def scenario() -> Probe:
        probe = Probe()
        task = asyncio.create_task(probe.run())
        for _ in range(20):
            probe.queue.add("default/web")
            await asyncio.sleep(0.002)
        while probe.queue._dirty or probe.queue._processing:
            await asyncio.sleep(0.005)
        task.cancel()
        return probe

    probe = asyncio.run(scenario())
    assert probe.overlaps == 0
    assert 2 <= probe.calls <= 20
