"""Per-key exponential back-off, as client-go's ``flowcontrol.Backoff`` used by the kubelet.

A crashing container is restarted at once the first time, then waits 10 s, 20 s,
40 s … up to 5 min (``CrashLoopBackOff``); a failed image pull backs off the same
way (``ImagePullBackOff``). An entry that has been quiet for twice the maximum
starts again from the initial delay. Time is passed in, so this is unit-tested.
"""

from __future__ import annotations

from dataclasses import dataclass

INITIAL_S = 10.0
MAX_S = 300.0


@dataclass
class _Entry:
    delay: float
    last_update: float


class Backoff:
    def __init__(self, initial: float = INITIAL_S, maximum: float = MAX_S) -> None:
        self.initial = initial
        self.maximum = maximum
        self._entries: dict[object, _Entry] = {}

    def delay(self, key: object) -> float:
        entry = self._entries.get(key)
        return entry.delay if entry else 0.0

    def remaining(self, key: object, since: float, now: float) -> float:
        """Seconds left of the back-off started at ``since`` (0 when free to retry)."""
        entry = self._entries.get(key)
        if entry is None:
            return 0.0
        return max(0.0, since + entry.delay - now)

    def next(self, key: object, now: float) -> float:
        """Record one more failure at ``now``; return the new delay."""
        entry = self._entries.get(key)
        if entry is None or now - entry.last_update > 2 * self.maximum:
            delay = self.initial
        else:
            delay = min(entry.delay * 2, self.maximum)
        self._entries[key] = _Entry(delay, now)
        return delay

    def reset(self, key: object) -> None:
        self._entries.pop(key, None)

    def forget_prefix(self, prefix: str) -> None:
        """Drop every entry whose key starts with ``prefix`` (a deleted pod's uid)."""
        for key in [k for k in self._entries if isinstance(k, tuple) and k and k[0] == prefix]:
            del self._entries[key]
