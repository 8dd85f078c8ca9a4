"""How much watch history the store keeps, and which events compaction drops.

kube-apiserver compacts etcd every 5 minutes, so a watch can resume from any
resourceVersion of roughly the last 5 minutes; an older one gets ``410 Expired`` and the
client lists again. labctl keeps the same promise by age, and also bounds the history by
count and by bytes so a burst of large writes cannot fill the disk before the 5 minutes
pass.

:class:`EventHistory` is only the index of the retained events (revision, size, time):
their bodies live in SQLite, so the API server's memory holds the current objects and
nothing of their past versions.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import NamedTuple

#: kube-apiserver's default --etcd-compaction-interval: the history a watch can resume from
DEFAULT_MAX_AGE = 300.0
#: enough for every informer of a busy lab to resume after a dropped watch
DEFAULT_MAX_EVENTS = 20000
#: a bound on the bytes of retained event rows (each row holds the object and its previous state)
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Retention:
    """The limits of the retained history; whichever is reached first drops the oldest events."""

    max_age: float = DEFAULT_MAX_AGE
    max_events: int = DEFAULT_MAX_EVENTS
    max_bytes: int = DEFAULT_MAX_BYTES


class _Entry(NamedTuple):
    revision: int
    size: int
    at: float  # wall-clock time of the write, seconds since the epoch


class EventHistory:
    """The retained events' revisions, sizes and times, oldest first."""

    def __init__(self) -> None:
        self._entries: collections.deque[_Entry] = collections.deque()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def oldest(self) -> int | None:
        """The oldest retained revision, or None when no event is retained."""
        return self._entries[0].revision if self._entries else None

    def append(self, revision: int, size: int, at: float) -> None:
        self._entries.append(_Entry(revision, size, at))
        self.bytes += size

    def drop_through(self, revision: int) -> tuple[int, int]:
        """Forget every event up to ``revision``; return how many and their bytes."""
        count = size = 0
        while self._entries and self._entries[0].revision <= revision:
            entry = self._entries.popleft()
            count += 1
            size += entry.size
        self.bytes -= size
        return count, size

    def excess_through(self, retention: Retention, incoming: int = 0) -> int | None:
        """The last revision to drop so that one more event of ``incoming`` bytes fits the count and byte limits.

        The newest event is always kept, so a watch from just before it can resume.
        """
        count, size = len(self._entries) + 1, self.bytes + incoming
        if count <= retention.max_events and size <= retention.max_bytes:
            return None
        last = None
        for entry in self._entries:
            if count <= retention.max_events and size <= retention.max_bytes:
                break
            count -= 1
            size -= entry.size
            last = entry.revision
        return last

    def expired_through(self, before: float, step_bytes: int) -> int | None:
        """The last revision of one compaction step: events older than ``before``, about ``step_bytes`` of them.

        Deleting large rows from SQLite takes time (about 3 ms per MB here), so compaction
        deletes in steps and lets writes in between.
        """
        last, size = None, 0
        for entry in self._entries:
            if entry.at >= before or (last is not None and size + entry.size > step_bytes):
                break
            last, size = entry.revision, size + entry.size
        return last
