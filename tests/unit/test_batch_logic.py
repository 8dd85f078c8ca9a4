"""Jobs, CronJobs and DaemonSets: the controllers' decisions, the API's defaults, validation and columns."""

from __future__ import annotations

import datetime as dt

import pytest

from labctl.apiserver.strategies import strategy_for
from labctl.controllers import cronjob as cjc
from labctl.controllers import daemonset as dsc
from labctl.controllers import job as jc
from labctl.kube.cron import schedule_error, scheduled_times
from labctl.kube.printers import Clock, job_status, print_cronjob, print_job

NOW = dt.datetime(2026, 12, 7, 10, 0, 0, tzinfo=dt.UTC)


def stamp(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def job(**spec) -> dict:
    return {"metadata": {"name": "pi", "namespace": "default", "uid": "u1"},
            "spec": {"parallelism": 1, "completions": 1, "backoffLimit": 6, **spec,
                     "template": {"spec": {"restartPolicy": spec.pop("restartPolicy", "Never")}}}}


def pod(phase: str, restarts: int = 0, deleting: bool = False) -> dict:
    meta: dict = {"name": "p", "uid": phase}
    if deleting:
        meta["deletionTimestamp"] = stamp(NOW)
    return {"metadata": meta, "status": {"phase": phase, "containerStatuses": [{"restartCount": restarts}]}}


# -- Job controller ------------------------------------------------------------------------

@pytest.mark.parametrize(("spec", "succeeded", "active", "wanted"), [
    ({"completions": 3, "parallelism": 2}, 0, 0, 2),
    ({"completions": 3, "parallelism": 2}, 2, 1, 1),    # one completion left: never more than one pod
    ({"completions": 3, "parallelism": 2}, 3, 0, 0),
    ({"completions": None, "parallelism": 3}, 0, 0, 3),  # a work queue: parallelism pods ...
    ({"completions": None, "parallelism": 3}, 1, 2, 2),  # ... and none new once one succeeded
    ({"completions": 3, "parallelism": 2, "suspend": True}, 0, 2, 0),
])
def test_want_active(spec, succeeded, active, wanted):
    assert jc.want_active(job(**spec), succeeded, active) == wanted


def test_success_needs_completions_or_a_success_and_nothing_running():
    assert jc.success_criteria_met(job(completions=3), 3, 0)
    assert not jc.success_criteria_met(job(completions=3), 2, 1)
    assert not jc.success_criteria_met(job(completions=None, parallelism=2), 1, 1)
    assert jc.success_criteria_met(job(completions=None, parallelism=2), 1, 0)


def test_backoff_limit_counts_failures_and_on_failure_restarts():
    assert not jc.past_backoff_limit(job(backoffLimit=1), 1, [])
    assert jc.past_backoff_limit(job(backoffLimit=1), 2, [])
    on_failure = job(backoffLimit=2, restartPolicy="OnFailure")
    assert not jc.past_backoff_limit(on_failure, 0, [pod("Running", restarts=1)])
    assert jc.past_backoff_limit(on_failure, 0, [pod("Running", restarts=2)])
    assert jc.past_backoff_limit(job(backoffLimit=0, restartPolicy="OnFailure"), 0, [pod("Running", restarts=1)])


def test_a_deleted_unfinished_pod_counts_as_failed_unless_only_failed_pods_are_replaced():
    assert jc.is_pod_failed(pod("Running", deleting=True), job())
    assert not jc.is_pod_failed(pod("Succeeded", deleting=True), job())
    assert not jc.is_pod_failed(pod("Running", deleting=True), job(podReplacementPolicy="Failed"))


def test_pod_failure_backoff_doubles_from_the_last_failure():
    assert jc.pod_failure_backoff(0, None, NOW) == 0
    assert jc.pod_failure_backoff(1, NOW - dt.timedelta(seconds=4), NOW) == 6
    assert jc.pod_failure_backoff(3, NOW, NOW) == 40
    assert jc.pod_failure_backoff(20, NOW, NOW) == jc.MAX_POD_FAILURE_BACKOFF


def test_active_deadline_and_ttl():
    running = job(activeDeadlineSeconds=30)
    running["status"] = {"startTime": stamp(NOW - dt.timedelta(seconds=31))}
    assert jc.past_active_deadline(running, NOW)
    done = job(ttlSecondsAfterFinished=100)
    done["status"] = {"completionTime": stamp(NOW - dt.timedelta(seconds=40)),
                      "conditions": [{"type": "Complete", "status": "True"}]}
    assert jc.ttl_remaining(done, NOW) == 60
    assert jc.ttl_remaining(job(ttlSecondsAfterFinished=100), NOW) is None  # not finished


# -- API server: defaults, generated selector, validation ----------------------------------

def created(plural: str, obj: dict) -> tuple[dict, list]:
    strategy = strategy_for(plural)
    obj.setdefault("metadata", {}).update({"namespace": "default", "uid": "1234"})
    strategy.prepare_for_create(obj)
    return obj, strategy.validate(obj) + strategy.admit(obj, None)


def test_a_job_gets_kubes_defaults_and_a_selector_of_its_uid():
    obj, errs = created("jobs", {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
                                 "spec": {"template": {"spec": {"restartPolicy": "Never",
                                                                "containers": [{"name": "c", "image": "x"}]}}}})
    assert errs == []
    spec = obj["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"], spec["completionMode"]) == (
        1, 1, 6, "NonIndexed")
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": "1234"}}
    assert spec["template"]["metadata"]["labels"] == {
        "batch.kubernetes.io/controller-uid": "1234", "controller-uid": "1234",
        "batch.kubernetes.io/job-name": "pi", "job-name": "pi"}
    assert obj["metadata"]["labels"] == spec["template"]["metadata"]["labels"]


def test_a_job_refuses_restart_always_a_foreign_selector_and_unsupported_fields():
    _, errs = created("jobs", {"metadata": {"name": "pi"}, "spec": {
        "selector": {"matchLabels": {"app": "x"}}, "podFailurePolicy": {"rules": []},
        "template": {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}})
    text = "\n".join(e.field + ": " + e.detail for e in errs)
    assert 'spec.template.spec.restartPolicy: supported values: "OnFailure", "Never"' in text
    assert "spec.selector: `selector` not auto-generated" in text
    assert "spec.podFailurePolicy: labctl does not support this field" in text


@pytest.mark.parametrize(("schedule", "error"), [
    ("*/1 * * * *", None),
    ("@hourly", None),
    ("0 0 * * 1-5", None),
    ("* * *", "expected exactly 5 fields, found 3: [* * *]"),
    ("* * * * * *", "expected exactly 5 fields, found 6: [* * * * * *]"),
    ("@every 1m", "labctl does not support @every schedules: use a cron expression such as */5 * * * *"),
    ("61 * * * *", "[61 * * * *] is not acceptable, out of range"),
])
def test_cron_schedules(schedule, error):
    assert schedule_error(schedule) == error


def test_scheduled_times_between_the_last_schedule_and_now():
    times, following = scheduled_times("*/5 * * * *", None, NOW - dt.timedelta(minutes=12), NOW)
    assert times == [NOW - dt.timedelta(minutes=10), NOW - dt.timedelta(minutes=5), NOW]
    assert following == NOW + dt.timedelta(minutes=5)
    times, _ = scheduled_times("0 9 * * *", "Europe/Paris", NOW - dt.timedelta(hours=3), NOW)
    assert times == [NOW.replace(hour=8)]  # 09:00 in Paris is 08:00 UTC in December


def test_a_cronjob_with_a_bad_time_zone_or_a_long_name_is_invalid():
    _, errs = created("cronjobs", {"metadata": {"name": "n" * 53}, "spec": {
        "schedule": "* * * * *", "timeZone": "Mars/Olympus", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "x"}]}}}}}})
    assert sorted(e.field for e in errs) == ["metadata.name", "spec.timeZone"]


# -- kubectl get columns -------------------------------------------------------------------

def test_job_row_as_kubectl_prints_it():
    obj = job(completions=3)
    obj["metadata"]["creationTimestamp"] = stamp(NOW - dt.timedelta(minutes=2))
    obj["status"] = {"succeeded": 1, "startTime": stamp(NOW - dt.timedelta(seconds=90))}
    assert print_job(obj, Clock(NOW))[:5] == ["pi", "Running", "1/3", "90s", "2m"]
    obj["spec"].update(completions=None, parallelism=2)
    assert print_job(obj, Clock(NOW))[2] == "1/1 of 2"
    obj["status"]["conditions"] = [{"type": "FailureTarget", "status": "True"}]
    assert job_status(obj) == "FailureTarget"
    obj["status"]["conditions"].append({"type": "Failed", "status": "True"})
    assert job_status(obj) == "Failed"


def test_cronjob_row_as_kubectl_prints_it():
    cj = {"metadata": {"name": "tick", "creationTimestamp": stamp(NOW - dt.timedelta(minutes=5))},
          "spec": {"schedule": "*/1 * * * *", "suspend": False, "jobTemplate": {"spec": {"template": {"spec": {
              "containers": [{"name": "c", "image": "busybox"}]}}}}},
          "status": {"active": [{"name": "tick-1"}], "lastScheduleTime": stamp(NOW - dt.timedelta(seconds=20))}}
    assert print_cronjob(cj, Clock(NOW)) == ["tick", "*/1 * * * *", "<none>", "False", 1, "20s", "5m", "c", "busybox",
                                             "<none>"]


# -- CronJob controller ---------------------------------------------------------------------

def cronjob(**spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "tick", "namespace": "default", "uid": "c1",
                         "creationTimestamp": stamp(NOW - dt.timedelta(minutes=30))},
            "spec": {"schedule": "*/10 * * * *", "concurrencyPolicy": "Allow", **spec,
                     "jobTemplate": {"metadata": {"labels": {"app": "tick"}},
                                     "spec": {"template": {"spec": {"restartPolicy": "OnFailure"}}}}}}


def test_the_most_recent_unmet_time_since_the_last_schedule():
    times, following = cjc.unmet_schedule_times(cronjob(), NOW)
    assert times == [NOW - dt.timedelta(minutes=20), NOW - dt.timedelta(minutes=10), NOW]
    assert following == NOW + dt.timedelta(minutes=10)
    acted = {**cronjob(), "status": {"lastScheduleTime": stamp(NOW)}}
    assert cjc.unmet_schedule_times(acted, NOW + dt.timedelta(minutes=5))[0] == []
    late = cronjob(startingDeadlineSeconds=60)
    assert cjc.unmet_schedule_times(late, NOW + dt.timedelta(minutes=5))[0] == []  # 10:00 is 5 min past its deadline
    assert cjc.too_late(late, NOW, NOW + dt.timedelta(seconds=61))


def test_a_scheduled_job_is_named_after_the_minute_and_owned_by_the_cronjob():
    j = cjc.job_from_template(cronjob(timeZone="Europe/Paris"), NOW)
    assert j["metadata"]["name"] == f"tick-{int(NOW.timestamp()) // 60}"
    assert j["metadata"]["labels"] == {"app": "tick"}
    assert j["metadata"]["annotations"] == {"batch.kubernetes.io/cronjob-scheduled-timestamp": "2026-12-07T11:00:00+01:00"}
    assert j["metadata"]["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "CronJob", "name": "tick", "uid": "c1",
                                                 "controller": True, "blockOwnerDeletion": True}]


def test_history_limits_keep_the_newest_finished_jobs():
    def finished(name: str, minutes: int, kind: str) -> dict:
        return {"metadata": {"name": name, "creationTimestamp": stamp(NOW - dt.timedelta(minutes=minutes))},
                "status": {"conditions": [{"type": kind, "status": "True"}]}}
    jobs = [finished("a", 40, "Complete"), finished("b", 30, "Complete"), finished("c", 20, "Failed"),
            finished("d", 10, "Failed"), {"metadata": {"name": "running"}}]
    assert [j["metadata"]["name"] for j in cjc.jobs_to_clean_up(jobs, 1, 1)] == ["a", "c"]
    assert cjc.jobs_to_clean_up(jobs, None, 5) == []


# -- DaemonSet controller ------------------------------------------------------------------

def node(name: str, taints: list | None = None, **labels) -> dict:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints or []},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


CONTROL_PLANE_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def ds(**pod_spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "namespace": "default", "uid": "d1", "generation": 1},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {**pod_spec, "containers": [{"name": "c", "image": "x"}]}}}}


def test_a_daemon_pod_runs_where_it_fits_and_tolerates():
    assert dsc.should_run(ds(), node("worker")) == (True, True)
    assert dsc.should_run(ds(), node("cp", [CONTROL_PLANE_TAINT])) == (False, True)  # a NoSchedule taint
    tolerant = ds(tolerations=[{"key": CONTROL_PLANE_TAINT["key"], "operator": "Exists"}])
    assert dsc.should_run(tolerant, node("cp", [CONTROL_PLANE_TAINT])) == (True, True)
    assert dsc.should_run(ds(nodeSelector={"disk": "ssd"}), node("w")) == (False, False)
    assert dsc.should_run(ds(nodeSelector={"disk": "ssd"}), node("w", disk="ssd")) == (True, True)
    evicting = node("w", [{"key": "maintenance", "effect": "NoExecute"}])
    assert dsc.should_run(ds(), evicting) == (False, False)
    not_ready = node("w")  # daemon pods tolerate not-ready and unreachable NoExecute
    not_ready["spec"]["taints"] = [{"key": "node.kubernetes.io/unreachable", "effect": "NoExecute"}]
    assert dsc.should_run(ds(), not_ready)[1]


def test_a_daemon_pod_is_pinned_to_its_node_and_labelled_with_the_revision():
    pod = dsc.daemon_pod(ds(), "worker2", "abc")
    assert dsc.target_node(pod) == "worker2"
    assert pod["metadata"]["labels"] == {"app": "agent", "controller-revision-hash": "abc"}
    assert {t["key"] for t in pod["spec"]["tolerations"]} >= {"node.kubernetes.io/not-ready",
                                                              "node.kubernetes.io/unschedulable"}


def daemon(node_name: str, hash_: str, ready: bool = True) -> dict:
    return {"metadata": {"name": f"{node_name}-{hash_}", "labels": {"controller-revision-hash": hash_},
                         "creationTimestamp": stamp(NOW - dt.timedelta(minutes=5))},
            "spec": {"nodeName": node_name},
            "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False",
                                       "lastTransitionTime": stamp(NOW - dt.timedelta(minutes=4))}]}}


def test_rolling_update_replaces_max_unavailable_old_pods_at_a_time():
    nodes = {"a": [daemon("a", "old")], "b": [daemon("b", "old")], "c": [daemon("c", "old")]}
    delete, surge = dsc.rolling_update(ds(), nodes, {"a", "b", "c"}, "new", NOW)
    assert [p["metadata"]["name"] for p in delete] == ["a-old"] and surge == []
    nodes["a"] = [daemon("a", "new", ready=False)]  # its replacement is not available yet: wait
    assert dsc.rolling_update(ds(), nodes, {"a", "b", "c"}, "new", NOW) == ([], [])


def test_rolling_update_with_surge_starts_new_pods_beside_the_old():
    surging = ds()
    surging["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    nodes = {"a": [daemon("a", "old")], "b": [daemon("b", "old")]}
    assert dsc.rolling_update(surging, nodes, {"a", "b"}, "new", NOW) == ([], ["a"])
    nodes["a"].append(daemon("a", "new"))  # available: the old one goes, the next node surges
    delete, surge = dsc.rolling_update(surging, nodes, {"a", "b"}, "new", NOW)
    assert [p["metadata"]["name"] for p in delete] == ["a-old"] and surge == ["b"]


def test_daemonset_status_counts_nodes():
    nodes = [node("cp", [CONTROL_PLANE_TAINT]), node("w1"), node("w2")]
    status = dsc.daemonset_status(ds(), nodes, {"w1": [daemon("w1", "h")], "cp": [daemon("cp", "h")]}, "h", NOW)
    assert status == {"desiredNumberScheduled": 2, "currentNumberScheduled": 1, "numberMisscheduled": 1,
                      "numberReady": 1, "updatedNumberScheduled": 1, "numberAvailable": 1, "numberUnavailable": 1,
                      "observedGeneration": 1}
