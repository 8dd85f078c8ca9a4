"""The during probe's bookkeeping: which events count as watched, what fails them, and the
sentences the ``during`` check makes of them — driven by hand with made-up answers."""

from __future__ import annotations

from labctl.exercises.checks.during import describe_event
from labctl.exercises.recorder import LEAD, Recorder
from labctl.exercises.traffic import Answer

T0 = 1_800_000_000.0
TAIL = 3.0


def traffic(rec: Recorder, start: float, end: float, version=lambda t: "v1", fail=lambda t: False,
            rate: int = 25) -> None:
    """Answers every 1/rate seconds in [start, end)."""
    for i in range(round((end - start) * rate)):
        t = start + i / rate
        if fail(t):
            rec.record(Answer(t, "172.30.0.2:30000", False, error="Connection refused"))
        else:
            rec.record(Answer(t, "172.30.0.2:30000", True, 200, f"web {version(t)} pod=p ip=10.244.1.2"))


def started(until: str = "rollout") -> Recorder:
    rec = Recorder("rollout", until, T0)
    rec.target(T0, "web", "NodePort", ["172.30.0.2:30000"])
    rec.endpoint_counts(T0, 4, 0)
    return rec


def rollout(rec: Recorder, begin: float, complete: float, **kw) -> None:
    traffic(rec, T0, complete + TAIL + 1, **kw)
    event = rec.begin(begin, "rollout", "web", {"fromRevision": 1})
    rec.complete(event, complete, {"toRevision": 2})
    rec.close_due(complete + TAIL, TAIL)


def test_a_watched_rollout_without_failures_that_switches_version_passes_and_ends_the_probe():
    rec = started()
    rollout(rec, T0 + 5, T0 + 15, version=lambda t: "v1" if t < T0 + 10 else "v2")
    (event,) = rec.events
    assert event.outcome == "passed" and rec.state == "done"
    assert event.summary["versionsBefore"] == ["v1"] and event.summary["versionsAfter"] == ["v2"]
    assert event.summary["requests"] >= 25 * 14 and event.summary["failed"] == 0
    text = describe_event(event.as_json())
    assert "watched from before it began: 0 of" in text and "switched from v1 to v2" in text


def test_failed_requests_fail_the_rollout_with_their_window_and_the_empty_endpoints():
    rec = started()
    down = (T0 + 6, T0 + 8)
    rec.endpoint_counts(down[0], 0, 0)
    rec.endpoint_counts(down[1], 4, 0)
    rollout(rec, T0 + 5, T0 + 12, version=lambda t: "v1" if t < T0 + 7 else "v2",
            fail=lambda t: down[0] <= t < down[1])
    (event,) = rec.events
    assert event.outcome == "failed" and rec.state == "probing"
    assert event.summary["failed"] == 50 and event.summary["errors"] == ["Connection refused"]
    assert down[0] <= event.summary["firstFailure"] < event.summary["lastFailure"] < down[1]
    assert event.summary["noEndpoints"] == [[down[0], down[1]]]
    text = describe_event(event.as_json())
    assert "50 of" in text and "requests failed between" in text and "no ready endpoint" in text


def test_a_rollout_that_began_before_requests_flowed_is_not_watched():
    rec = Recorder("rollout", "rollout", T0)
    event = rec.begin(T0 + 1, "rollout", "web", {"fromRevision": 1})  # no Service yet
    assert not event.watched and "no Service" in event.unwatched_reason
    rec.target(T0 + 2, "web", "NodePort", ["172.30.0.2:30000"])
    traffic(rec, T0 + 2, T0 + 9, version=lambda t: "v2")
    rec.complete(event, T0 + 5)
    rec.close_due(T0 + 8, TAIL)
    assert event.outcome == "failed"
    assert any("not watched" in p for p in event.summary["problems"])


def test_requests_must_flow_for_the_lead_time_before_the_event():
    rec = started()
    event = rec.begin(T0 + LEAD / 2, "rollout", "web", {})
    assert not event.watched and "only" in event.unwatched_reason


def test_a_rollout_without_a_version_switch_fails():
    rec = started()
    rollout(rec, T0 + 5, T0 + 12)  # v1 all along (say, only an env var changed)
    assert rec.events[0].outcome == "failed"
    assert "did not switch version" in rec.events[0].summary["problems"][0]


def test_a_new_change_before_completion_supersedes_the_open_rollout():
    rec = started()
    traffic(rec, T0, T0 + 30)
    first = rec.begin(T0 + 5, "rollout", "web", {"fromRevision": 1})
    second = rec.begin(T0 + 8, "rollout", "web", {"fromRevision": 1})
    assert first.outcome == "superseded" and second.closed is None
    assert rec.open_events("web") == [second]


def test_a_pod_replacement_is_graded_on_the_requests_around_it():
    rec = started("pod-replaced")
    traffic(rec, T0, T0 + 12)
    event = rec.begin(T0 + 3, "pod-replaced", "web", {"deleted": [{"name": "web-a", "ip": "10.244.1.5"}]})
    rec.complete(event, T0 + 6, {"replacements": [{"name": "web-d", "ip": "10.244.2.9"}]})
    rec.close_due(T0 + 9, TAIL)
    assert event.outcome == "passed"
    assert "web-a (10.244.1.5)" in describe_event(event.as_json()) and "web-d (10.244.2.9)" in describe_event(
        event.as_json())


def test_the_result_holds_versions_over_time_and_every_failure():
    rec = started()
    traffic(rec, T0, T0 + 3, fail=lambda t: t < T0 + 1)
    result = rec.result(T0 + 3)
    assert result["requests"] == 75 and result["failed"] == 25 and len(result["failures"]) == 25
    assert [s[0] for s in result["seconds"]] == [int(T0), int(T0) + 1, int(T0) + 2]
    assert result["seconds"][1][1:] == [25, 0, {"v1": 25}]
