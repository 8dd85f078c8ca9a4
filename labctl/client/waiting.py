"""Waiting for what a cluster does eventually: pods Ready, chains gone, nodes back.

Observed state, not time: a check is polled until it holds, and a timeout says what never
happened and what was seen last, so a failed grader check or test reads as a sentence.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from ..errors import LabctlError

__all__ = ["WaitTimeout", "wait_for"]

T = TypeVar("T")


class WaitTimeout(LabctlError, AssertionError):
    """The awaited state did not come. An ``AssertionError`` too, so a test fails, not errors."""


def wait_for(check: Callable[[], T], timeout: float = 90, interval: float = 0.5, what: str = "") -> T:
    """Call ``check`` until it returns something truthy and return that; raise :class:`WaitTimeout`
    after ``timeout`` seconds naming ``what`` and the last value seen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what or check.__name__}; last: {last!r}")
