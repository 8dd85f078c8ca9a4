"""EventRecorder.emit: client-go's non-blocking Eventf — the caller goes on, events land in order."""

from __future__ import annotations

import asyncio

from labctl.client.events import EventRecorder


class SlowClient:
    """Records each Event create after a round trip the caller must not wait for."""

    def __init__(self) -> None:
        self.created: list[dict] = []

    async def create(self, path: str, body: dict) -> dict:
        await asyncio.sleep(0.01)
        self.created.append(body)
        return {**body, "metadata": {**body["metadata"], "name": f"e{len(self.created)}"}}


def test_emit_returns_before_the_write_and_writes_in_order_what_the_object_was():
    async def go() -> tuple[list[dict], list[dict]]:
        client = SlowClient()
        recorder = EventRecorder(client, "replicaset-controller")  # type: ignore[arg-type]
        owner = {"kind": "ReplicaSet", "apiVersion": "apps/v1",
                 "metadata": {"name": "web-1", "namespace": "default", "uid": "u1", "resourceVersion": "7"}}
        for i in range(3):
            recorder.emit(owner, "Normal", "SuccessfulCreate", f"Created pod: web-1-{i}")
        owner["metadata"]["resourceVersion"] = "8"   # the caller's next step changes its copy
        before = list(client.created)
        while len(client.created) < 3:
            await asyncio.sleep(0.01)
        return before, client.created

    before, created = asyncio.run(go())
    assert before == []
    assert [e["message"] for e in created] == [f"Created pod: web-1-{i}" for i in range(3)]
    assert {e["involvedObject"]["resourceVersion"] for e in created} == {"7"}
    assert created[0]["involvedObject"]["kind"] == "ReplicaSet" and created[0]["source"]["component"] == "replicaset-controller"
