"""Stopping ``labctl up`` part-way without breaking anything: a flag, checked between steps.

An exception raised at an arbitrary moment (what Python's ``KeyboardInterrupt`` is) can land
inside the Docker SDK while urllib3 holds a lock: ``RuntimeError: release unlocked lock``, a
connection pool that hangs the roll-back, objects left behind. So a signal handler (the
CLI's) only calls :meth:`Cancellation.cancel`; the work calls :meth:`~Cancellation.check`
between Docker calls, where stopping is safe, and asyncio work runs under
:meth:`~Cancellation.guard`, which cancels the task (asyncio's own clean unwinding). Then
``up`` removes what it made, as after any other failure.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import TypeVar

from ..errors import LabctlError

__all__ = ["Cancellation", "Cancelled"]

T = TypeVar("T")
POLL_SECONDS = 0.05


class Cancelled(LabctlError):
    """The work was asked to stop (``reason``: e.g. ``SIGTERM``); ``exit_code`` is what the CLI exits with."""

    def __init__(self, reason: str, exit_code: int) -> None:
        super().__init__(f"interrupted by {reason}")
        self.reason = reason
        self.exit_code = exit_code


class Cancellation:
    """A request to stop, made from a signal handler or another thread and honoured at safe points."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""
        self.exit_code = 130

    def cancel(self, reason: str, exit_code: int = 130) -> None:
        """Ask the work to stop; the first reason counts. Safe in a signal handler (no lock, no I/O)."""
        if not self._event.is_set():
            self.reason, self.exit_code = reason, exit_code
            self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` if a stop was asked for (call it between steps)."""
        if self._event.is_set():
            raise Cancelled(self.reason, self.exit_code)

    async def guard(self, work: Awaitable[T]) -> T:
        """Await ``work``, cancelling it (and raising :class:`Cancelled`) as soon as a stop is asked for."""
        task = asyncio.ensure_future(work)
        while not task.done():
            await asyncio.wait({task}, timeout=POLL_SECONDS)
            if self._event.is_set() and not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
                self.check()
        return task.result()
