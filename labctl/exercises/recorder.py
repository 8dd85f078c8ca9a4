"""What a during probe saw, kept as evidence: every request, the events it watched, the verdicts.

Pure bookkeeping (the probe process in :mod:`.probe` feeds it; unit tests feed it by hand):

* every request's outcome goes into one-second buckets (requests, failures, answers per
  version: the versions over time) and every failure is kept with its time and error;
* the Service's ready/not-ready endpoint counts are kept when they change, so a failure
  window can be explained ("the Service had 0 ready endpoints");
* an *event* — a rollout (a new pod template) or a pod replaced — opens when the probe sees
  it begin and closes ``tail`` seconds after it completed. It is *watched* only when requests
  had been flowing through the Service for :data:`LEAD` seconds before it began; its verdict
  counts the requests from :data:`LEAD` seconds before it began to the end of the tail.

:meth:`Recorder.result` is the JSON the probe writes and the ``during`` check reads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .traffic import Answer

__all__ = ["LEAD", "Event", "Recorder"]

#: seconds of requests an event needs before it began to count as watched (and that it is graded on)
LEAD = 1.0
#: failures kept with their detail (the count is always exact)
MAX_FAILURES = 500


@dataclass
class Event:
    """A rollout or a pod replacement, as the probe watched it."""

    type: str                       # "rollout" | "pod-replaced"
    workload: str
    began: float
    watched: bool
    unwatched_reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)   # revisions, images, pods and IPs
    completed: float | None = None
    closed: float | None = None
    outcome: str = ""                # "passed" | "failed" | "superseded"
    summary: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"type": self.type, "workload": self.workload, "began": self.began, "watched": self.watched,
                "unwatchedReason": self.unwatched_reason, "detail": self.detail, "completed": self.completed,
                "closed": self.closed, "outcome": self.outcome, "summary": self.summary}


class Recorder:
    """The probe's memory; :meth:`result` is what it writes out every second."""

    def __init__(self, probe_id: str, until: str, started: float, version_switch: bool = True) -> None:
        self.probe_id = probe_id
        self.until = until
        self.started = started
        self.version_switch = version_switch
        self.buckets: dict[int, list[Any]] = {}          # second → [requests, failed, {version: n}]
        self.failures: list[dict[str, Any]] = []
        self.requests = 0
        self.failed = 0
        self.endpoints: list[list[float]] = []           # [time, ready, not ready] on change
        self.targets: list[dict[str, Any]] = []          # {service, via, entryPoints, since}
        self.flowing_since: float | None = None          # requests sent continuously since
        self.events: list[Event] = []
        self.state = "waiting"
        self.error = ""

    # -- feeding ---------------------------------------------------------------------------

    def record(self, answer: Answer) -> None:
        self.requests += 1
        bucket = self.buckets.setdefault(math.floor(answer.at), [0, 0, {}])
        bucket[0] += 1
        if answer.ok:
            bucket[2][answer.version] = bucket[2].get(answer.version, 0) + 1
        else:
            self.failed += 1
            bucket[1] += 1
            if len(self.failures) < MAX_FAILURES:
                self.failures.append({"at": answer.at, "target": answer.target, "error": answer.error})

    def target(self, now: float, service: str | None, via: str, entry_points: list[str]) -> None:
        """The way in changed (found, moved, lost): requests flow only while there is one."""
        current = self.targets[-1] if self.targets else None
        if current and current["service"] == service and current["entryPoints"] == entry_points:
            return
        self.targets.append({"service": service, "via": via, "entryPoints": entry_points, "since": now})
        if service is None:
            self.flowing_since = None
        elif current is None or current["service"] is None:
            self.flowing_since = now
        if self.state == "waiting" and service is not None:
            self.state = "probing"

    def endpoint_counts(self, now: float, ready: int, not_ready: int) -> None:
        if not self.endpoints or self.endpoints[-1][1:] != [ready, not_ready]:
            self.endpoints.append([now, ready, not_ready])

    def begin(self, now: float, typ: str, workload: str, detail: dict[str, Any]) -> Event:
        """An event began now; an open one of the same workload is superseded."""
        for open_event in self.open_events(workload):
            self._close(open_event, now, "superseded")
        watched = self.flowing_since is not None and now - self.flowing_since >= LEAD
        reason = ""
        if not watched:
            reason = ("no Service of the expected type selected the pods, so no request could be sent"
                      if self.flowing_since is None else
                      f"requests had flowed for only {now - self.flowing_since:.1f}s (less than {LEAD:g}s)")
        event = Event(typ, workload, now, watched, reason, dict(detail))
        self.events.append(event)
        return event

    def complete(self, event: Event, now: float, detail: dict[str, Any] | None = None) -> None:
        if event.completed is None:
            event.completed = now
            event.detail.update(detail or {})

    def close_due(self, now: float, tail: float) -> list[Event]:
        """Close events whose tail has passed; returns them (a passed one ends the probe's work)."""
        closed = []
        for event in self.events:
            if event.closed is None and event.completed is not None and now >= event.completed + tail:
                self._close(event, now, "")
                closed.append(event)
        return closed

    def open_events(self, workload: str | None = None) -> list[Event]:
        return [e for e in self.events if e.closed is None and workload in (None, e.workload)]

    # -- verdicts --------------------------------------------------------------------------

    def window(self, start: float, end: float) -> dict[str, Any]:
        """Requests, failures and versions between ``start`` and ``end`` (whole seconds)."""
        seconds = [s for s in self.buckets if math.floor(start) <= s <= math.floor(end)]
        versions: dict[str, int] = {}
        for s in seconds:
            for v, n in self.buckets[s][2].items():
                versions[v] = versions.get(v, 0) + n
        failures = [f for f in self.failures if start <= f["at"] <= end]
        return {"requests": sum(self.buckets[s][0] for s in seconds),
                "failed": sum(self.buckets[s][1] for s in seconds), "versions": versions,
                "firstFailure": failures[0]["at"] if failures else None,
                "lastFailure": failures[-1]["at"] if failures else None,
                "errors": sorted({f["error"] for f in failures})}

    def _versions(self, start: float, end: float) -> list[str]:
        found: dict[str, int] = {}
        for s in range(math.floor(start), math.floor(end) + 1):
            for v, n in self.buckets.get(s, [0, 0, {}])[2].items():
                found[v] = found.get(v, 0) + n
        return sorted(found, key=lambda v: -found[v])

    def _close(self, event: Event, now: float, outcome: str) -> None:
        event.closed = now
        start = event.began - LEAD
        end = now
        summary = self.window(start, end)
        summary["from"], summary["to"] = start, end
        # the whole second before the one it began in (buckets are whole seconds; a surge pod may
        # answer within the second the rollout began)
        summary["versionsBefore"] = self._versions(event.began - 1, event.began - 1)
        # what answered in the tail's last second, when the old pods are surely out of every node's rules
        after_from = max(event.completed if event.completed is not None else now, end - 1)
        summary["versionsAfter"] = self._versions(after_from, end)
        summary["endpoints"] = [e for e in self.endpoints if start - 5 <= e[0] <= end]
        summary["noEndpoints"] = self._empty_periods(start, end)
        problems = []
        if outcome == "superseded":
            problems.append("another change began before it completed")
        if not event.watched:
            problems.append(f"it was not watched: {event.unwatched_reason}")
        if summary["failed"]:
            problems.append(f"{summary['failed']} of {summary['requests']} requests failed")
        if summary["requests"] == 0:
            problems.append("no request was answered or sent during it")
        if event.type == "rollout" and self.version_switch and not problems:
            before, after = summary["versionsBefore"], summary["versionsAfter"]
            if not before or not after or len(after) != 1 or after[0] in before:
                problems.append(f"the answers did not switch version (before: {', '.join(before) or 'none'}; "
                                f"after: {', '.join(after) or 'none'})")
        summary["problems"] = problems
        event.summary = summary
        event.outcome = outcome or ("passed" if not problems else "failed")
        if event.outcome == "passed":
            self.state = "done"

    def _empty_periods(self, start: float, end: float) -> list[list[float]]:
        """The periods within [start, end] when the Service had no ready endpoint."""
        periods: list[list[float]] = []
        for i, (at, ready, _) in enumerate(self.endpoints):
            until = self.endpoints[i + 1][0] if i + 1 < len(self.endpoints) else end
            if ready == 0 and until >= start and at <= end:
                periods.append([max(at, start), min(until, end)])
        return periods

    def result(self, now: float) -> dict[str, Any]:
        return {
            "probe": self.probe_id, "until": self.until, "startedAt": self.started, "updatedAt": now,
            "state": self.state, "error": self.error, "requests": self.requests, "failed": self.failed,
            "failures": self.failures, "failuresKept": len(self.failures),
            "seconds": [[s, *self.buckets[s]] for s in sorted(self.buckets)],
            "endpoints": self.endpoints, "targets": self.targets,
            "events": [e.as_json() for e in self.events],
        }
