"""The ``during`` check: what a during probe saw while the student worked.

It passes when the probe watched an event (a rollout, a pod replaced) from before it began
and not one request failed through the Service from then until the event completed — and,
for a rollout, the answers switched version. Everything else fails and says what the probe
saw: how many requests failed and when, how long the Service had no ready endpoint, a
rollout done while nothing watched. A probe that is not running (or never wrote) is an
*error*: the grader cannot judge what it did not see.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..model import CheckSpec
from ..supervisor import ProbeStatus, read_probe
from . import CannotJudge, Context, Verdict, kind

__all__ = ["clock", "describe_event"]


def clock(epoch: float | None) -> str:
    """``10:02:03`` in local time (what a student's own clock shows)."""
    return dt.datetime.fromtimestamp(epoch).strftime("%H:%M:%S") if epoch else "?"


def _failures_text(summary: dict[str, Any]) -> str:
    text = f"{summary['failed']} of {summary['requests']} requests failed"
    if summary.get("firstFailure"):
        text += f" between {clock(summary['firstFailure'])} and {clock(summary['lastFailure'])}"
    if summary.get("errors"):
        text += f" ({'; '.join(summary['errors'][:3])})"
    empty = summary.get("noEndpoints") or []
    if empty:
        spans = ", ".join(f"{clock(a)}–{clock(b)}" for a, b in empty[:3])
        text += f"; the Service had no ready endpoint {spans}"
    return text


def describe_event(event: dict[str, Any]) -> str:
    """One sentence for a closed or open event."""
    detail, summary = event.get("detail") or {}, event.get("summary") or {}
    if event["type"] == "rollout":
        what = (f"rollout of Deployment {event['workload']} (revision {detail.get('fromRevision', '?')} → "
                f"{detail.get('toRevision', '?')}) began {clock(event['began'])}")
    else:
        deleted = ", ".join(f"{p['name']} ({p['ip']})" for p in detail.get("deleted") or [])
        new = ", ".join(f"{p['name']} ({p['ip']})" for p in detail.get("replacements") or [])
        what = f"pod {deleted} left {event['workload']} at {clock(event['began'])}"
        if new:
            what += f", replaced by {new}"
    if event.get("closed") is None:
        return what + (" and is in progress" if event.get("completed") is None else " and just completed")
    if event["outcome"] == "passed":
        took = (event["completed"] - event["began"]) if event.get("completed") else 0
        text = f"{what}, took {took:.1f}s, watched from before it began: 0 of {summary['requests']} requests failed"
        if event["type"] == "rollout" and summary.get("versionsAfter"):
            text += f"; answers switched from {', '.join(summary['versionsBefore'])} to {summary['versionsAfter'][0]}"
        return text
    problems = [p for p in summary.get("problems") or [] if "requests failed" not in p]
    text = what + ": "
    if summary.get("failed"):
        problems.insert(0, _failures_text(summary))
    return text + "; ".join(problems or ["did not pass"])


@kind("during")
async def check_during(ctx: Context, spec: CheckSpec) -> Verdict:
    probe_id = spec.params["probe"]
    result = read_probe(ctx.store, probe_id)
    status = ProbeStatus(result)
    if result is None:
        raise CannotJudge(status.problem)
    events = result.get("events") or []
    evidence = {"probe": probe_id, "state": result.get("state"), "requests": result.get("requests", 0),
                "failed": result.get("failed", 0), "events": events, "targets": result.get("targets"),
                "failures": result.get("failures", [])[:50], "seconds": result.get("seconds", [])[-600:]}
    passed = [e for e in events if e.get("outcome") == "passed"]
    if passed:
        return Verdict.passed(describe_event(passed[-1]), **evidence)
    if status.problem:
        raise CannotJudge(status.problem + "; `labctl exercise reset` starts it again")
    open_events = [e for e in events if e.get("closed") is None]
    if open_events:
        return Verdict.failed(describe_event(open_events[-1]) + "; check again when it is done", **evidence)
    closed = [e for e in events if e.get("closed") is not None]
    if closed:
        return Verdict.failed(describe_event(closed[-1]), **evidence)
    return Verdict.failed(_nothing_watched(result, ctx.exercise.probe(probe_id).until), **evidence)


def _nothing_watched(result: dict[str, Any], until: str) -> str:
    event = "rollout" if until == "rollout" else "pod replacement"
    targets = [t for t in result.get("targets") or [] if t.get("service")]
    if not targets:
        via = (result.get("targets") or [{}])[-1].get("via", "")
        return (f"no {event} watched yet: the probe has found no {via} Service whose selector matches the "
                f"workload's pods, so it has sent no request")
    text = (f"no {event} watched yet; the probe sends requests through Service {targets[-1]['service']} "
            f"since {clock(targets[-1]['since'])}")
    if result.get("failed"):
        failures = result.get("failures") or []
        text += (f"; {result['failed']} of {result['requests']} requests failed "
                 f"between {clock(failures[0]['at'])} and {clock(failures[-1]['at'])}" if failures else "")
    if result.get("state") == "expired":
        text += "; the probe has stopped after its time limit (`labctl exercise reset` starts it again)"
    return text
