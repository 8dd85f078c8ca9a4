"""A bounded-frequency runner: coalesce bursts of sync requests, retry failures with back-off.

kube-proxy's ``BoundedFrequencyRunner``: a Deployment rollout fires dozens of Endpoints
events within a second; running ``iptables-restore`` for each would burn CPU and lag
behind. Requests only set a flag; one thread runs the function at most once per
``min_interval`` (so a burst costs one or two syncs), at least once per ``max_interval``
(a periodic full resync), and after a failure again after a growing back-off.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger("labctl.proxy.runner")


class BoundedFrequencyRunner:
    """Runs ``fn`` on its own thread, no more often than ``min_interval`` seconds."""

    def __init__(
        self,
        fn: Callable[[], object],  # its result is ignored: only an exception (retry with back-off) counts
        min_interval: float = 0.1,
        max_interval: float = 30.0,
        retry_initial: float = 0.5,
        retry_max: float = 30.0,
        name: str = "proxy-sync",
    ) -> None:
        self.fn = fn
        self.min_interval = min_interval
        self.max_interval = max_interval
        self.retry_initial = retry_initial
        self.retry_max = retry_max
        self.name = name
        self._cond = threading.Condition()
        self._pending = False
        self._stopped = False
        self._last_run = float("-inf")
        self._retry_at: float | None = None
        self._backoff = retry_initial
        self._thread: threading.Thread | None = None
        self.runs = 0
        self.failures = 0

    def start(self) -> None:
        """Start the loop thread (a daemon: the agent's exit must not wait for it).

        Nothing runs until the first ``run()`` (or ``max_interval`` from now).
        """
        self._last_run = time.monotonic() - self.min_interval
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and wait for a running ``fn`` to finish."""
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread:
            self._thread.join(timeout)

    def run(self) -> None:
        """Request a run; many requests before the next run collapse into one."""
        with self._cond:
            self._pending = True
            self._cond.notify_all()

    def _next_due(self, now: float) -> float:
        due = self._last_run + self.max_interval
        if self._pending:
            due = min(due, self._last_run + self.min_interval)
        if self._retry_at is not None:
            due = min(due, max(self._retry_at, self._last_run + self.min_interval))
        return due

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._stopped:
                    now = time.monotonic()
                    due = self._next_due(now)
                    if now >= due:
                        break
                    self._cond.wait(due - now)
                if self._stopped:
                    return
                self._pending = False
                self._last_run = time.monotonic()
            self._run_once()

    def _run_once(self) -> None:
        try:
            self.fn()
        except Exception as err:
            self.failures += 1
            with self._cond:
                self._retry_at = time.monotonic() + self._backoff
                log.warning("%s failed, retrying in %.1fs: %s", self.name, self._backoff, err)
                self._backoff = min(self._backoff * 2, self.retry_max)
            return
        self.runs += 1
        with self._cond:
            self._retry_at = None
            self._backoff = self.retry_initial
