"""Polling for what a real cluster does eventually (pods Ready, chains gone, nodes back)."""

from __future__ import annotations

import time
from typing import Any, Callable


def wait_for(check: Callable[[], Any], timeout: float = 90, interval: float = 0.5, what: str = "") -> Any:
    """Call ``check`` until it returns something truthy and return that; fail after ``timeout``
    naming ``what`` and the last value seen, so a red test says what never happened."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what or check.__name__}; last: {last!r}")
