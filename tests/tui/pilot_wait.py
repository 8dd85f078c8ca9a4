"""Waiting in Pilot tests: the app keeps running while the test waits for what the student would see."""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.pilot import Pilot


async def until(pilot: Pilot, check: Callable[[], object], what: str, timeout: float = 90, every: float = 0.2) -> object:
    """Let the app run until ``check()`` holds and return its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        await pilot.pause(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
