"""A watch the API server refuses (an expired token) is seen, and kube-dns stops saying Ready.

The informer runs against a tiny fake client: lists answer, watches fail with the status
the test chooses, or open and stay quiet (a healthy, idle watch).
"""

from __future__ import annotations

import asyncio
import logging
from types import SimpleNamespace

from labctl.client.informer import Informer
from labctl.client.rest import APIStatusError
from labctl.dns.__main__ import Readiness

UNAUTHORIZED = APIStatusError(401, {"reason": "Unauthorized", "message": "Unauthorized"})


class Client:
    """Lists succeed; each watch attempt takes the next outcome: an error to raise, or "open"."""

    def __init__(self, outcomes: list) -> None:
        self.outcomes = outcomes
        self.opened = asyncio.Event()

    async def get(self, path: str, **params: str) -> dict:
        return {"metadata": {"resourceVersion": "1"}, "items": []}

    async def watch(self, path: str, rv: str, on_open=None, **params: str):
        outcome = self.outcomes.pop(0) if self.outcomes else "open"
        if isinstance(outcome, Exception):
            raise outcome
        if on_open:
            on_open()
        self.opened.set()
        await asyncio.Event().wait()  # quiet forever
        yield {}


async def _until(check, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.01)


def test_a_refused_watch_marks_the_informer_until_a_watch_opens_again():
    async def scenario():
        informer = Informer(Client([UNAUTHORIZED]), "endpoints")
        task = asyncio.create_task(informer.run())
        try:
            await _until(lambda: informer.refused)
            assert informer.failing_for() >= 0 and informer.synced.is_set()
            await _until(lambda: not informer.refused)  # the retry's watch opened (no event needed)
            assert informer.failing_since is None and informer.failing_for() == 0.0
        finally:
            task.cancel()
    asyncio.run(scenario())


def test_a_dropped_connection_is_failing_but_not_refused():
    async def scenario():
        informer = Informer(Client([OSError("connection reset"), OSError("connection reset")]), "services")
        task = asyncio.create_task(informer.run())
        try:
            await _until(lambda: informer.failing_since is not None)
            assert not informer.refused
        finally:
            task.cancel()
    asyncio.run(scenario())


def _informer(plural: str, synced: bool = True, error: Exception | None = None) -> SimpleNamespace:
    event = asyncio.Event()
    if synced:
        event.set()
    refused = isinstance(error, APIStatusError) and error.code in (401, 403)
    return SimpleNamespace(plural=plural, synced=event, refused=refused, last_error=error)


def test_kube_dns_is_not_ready_while_a_watch_is_refused_and_says_so_once(caplog):
    services, endpoints = _informer("services"), _informer("endpoints", synced=False)
    readiness = Readiness([services, endpoints])
    assert readiness.why_not() == "caches not synced"
    endpoints.synced.set()
    with caplog.at_level(logging.INFO, logger="labctl.dns"):
        assert readiness.why_not() == ""
        endpoints.refused, endpoints.last_error = True, UNAUTHORIZED
        assert readiness.why_not() == "watch of endpoints failed: 401 Unauthorized: Unauthorized"
        readiness.why_not()
        endpoints.refused, endpoints.last_error = False, None
        assert readiness.why_not() == ""
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["ready: the caches follow the API server",
                        "not ready: watch of endpoints failed: 401 Unauthorized: Unauthorized",
                        "ready: the caches follow the API server"]


def test_a_forbidden_watch_counts_as_refused_too():
    informer = _informer("namespaces", error=APIStatusError(403, {"reason": "Forbidden"}))
    assert Readiness([informer]).why_not().startswith("watch of namespaces failed: 403 Forbidden")
