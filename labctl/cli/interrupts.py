"""Ctrl-C, ``kill`` and a closed terminal during ``labctl up``: stop at a safe point and roll back.

Python's default SIGINT handler raises ``KeyboardInterrupt`` wherever the main thread is —
possibly inside the Docker SDK with a urllib3 lock held, which left labs half-made, printed
``RuntimeError: release unlocked lock`` or hung; SIGTERM and SIGHUP killed the process with
the nodes still running. Here all three only ask the
:class:`~labctl.cluster.cancel.Cancellation` to stop: ``up`` honours it between Docker calls,
removes what it made, and the CLI exits with 128 + the signal's number, as a shell expects.

Commands that run an event loop to the end (``labctl trace``) use :func:`signals_interrupt`
instead: Ctrl-C and ``kill`` raise ``KeyboardInterrupt`` as usual, and are remembered.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from ..cluster import Cancellation

#: what a user or a system sends to stop a command: Ctrl-C, `kill`, the terminal closing
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextmanager
def signals_cancel(cancellation: Cancellation) -> Iterator[None]:
    """While the block runs, SIGINT, SIGTERM and SIGHUP cancel ``cancellation`` and do nothing else."""
    def handler(signum: int, frame: FrameType | None) -> None:
        cancellation.cancel(signal.Signals(signum).name, 128 + signum)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@contextmanager
def signals_interrupt() -> Iterator[list[int]]:
    """While the block runs, SIGINT and SIGTERM raise ``KeyboardInterrupt`` (``kill`` cleans up like
    Ctrl-C) and are recorded in the list yielded: an interrupt that some await swallowed (it landed
    as the work finished) is still seen there, so the command can end with 130 rather than as if
    nobody had interrupted it."""
    received: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
