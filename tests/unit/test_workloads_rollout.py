"""The Deployment controller's arithmetic (labctl.controllers._rollout) against Kubernetes' numbers."""

from __future__ import annotations

import datetime as dt

import pytest

from labctl.controllers import _rollout as ro
from labctl.kube import intstr
from labctl.kube.meta import timestamp

NOW = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=dt.UTC)


def ts(seconds_ago: float) -> str:
    return timestamp(NOW - dt.timedelta(seconds=seconds_ago))


def deployment(replicas=4, surge="25%", unavailable="25%", strategy="RollingUpdate", **spec) -> dict:
    strat = {"type": strategy}
    if strategy == "RollingUpdate":
        strat["rollingUpdate"] = {"maxSurge": surge, "maxUnavailable": unavailable}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "d-uid", "generation": 1, "annotations": {}},
            "spec": {"replicas": replicas, "strategy": strat, "progressDeadlineSeconds": 600,
                     "revisionHistoryLimit": 10, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx"}]}}, **spec},
            "status": {}}


def rs(name: str, replicas: int, available: int | None = None, age: float = 100, revision: int | None = None,
       max_replicas: int | None = None, desired: int | None = None, status_replicas: int | None = None) -> dict:
    ann = {}
    if revision is not None:
        ann[ro.REVISION_ANNOTATION] = str(revision)
    if max_replicas is not None:
        ann[ro.MAX_REPLICAS_ANNOTATION] = str(max_replicas)
    if desired is not None:
        ann[ro.DESIRED_REPLICAS_ANNOTATION] = str(desired)
    return {"metadata": {"name": name, "uid": f"{name}-uid", "creationTimestamp": ts(age), "annotations": ann,
                         "generation": 1},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas if status_replicas is None else status_replicas,
                       "availableReplicas": replicas if available is None else available,
                       "readyReplicas": replicas if available is None else available, "observedGeneration": 1}}


# -- maxSurge / maxUnavailable: surge rounds up, unavailable rounds down --------------------

@pytest.mark.parametrize("surge, unavailable, desired, expected", [
    ("25%", "25%", 4, (1, 1)),
    ("25%", "25%", 10, (3, 2)),
    ("25%", "25%", 1, (1, 0)),
    ("25%", "25%", 3, (1, 0)),
    ("30%", "30%", 3, (1, 0)),
    ("50%", "50%", 5, (3, 2)),
    ("1%", "1%", 50, (1, 0)),
    (0, 0, 3, (0, 1)),          # both zero would never progress: unavailable becomes 1
    ("0%", "0%", 10, (0, 1)),
    (2, "50%", 5, (2, 2)),
    ("100%", 0, 4, (4, 0)),
    (None, None, 4, (0, 1)),
])
def test_resolve_fenceposts(surge, unavailable, desired, expected):
    assert intstr.resolve_fenceposts(surge, unavailable, desired) == expected


def test_max_unavailable_is_capped_at_replicas_and_zero_for_recreate():
    assert ro.max_unavailable(deployment(replicas=3, surge=0, unavailable=10)) == 3
    assert ro.max_unavailable(deployment(replicas=0)) == 0
    assert ro.max_unavailable(deployment(strategy="Recreate")) == 0
    assert ro.max_surge(deployment(strategy="Recreate")) == 0


def test_bad_percentage_is_an_error():
    with pytest.raises(ValueError):
        intstr.scaled_value("25", 4, True)


# -- one rolling step ------------------------------------------------------------------------

def test_new_rs_grows_up_to_replicas_plus_surge():
    d = deployment(replicas=10, surge=3, unavailable=2)
    old, new = rs("old", 10), rs("new", 0)
    assert ro.new_rs_new_replicas(d, [old, new], new) == 3
    old["spec"]["replicas"] = 8
    new["spec"]["replicas"] = 3
    assert ro.new_rs_new_replicas(d, [old, new], new) == 5
    assert ro.new_rs_new_replicas(deployment(strategy="Recreate"), [old, new], new) == 4


def test_unhealthy_old_replicas_go_first_without_breaking_availability():
    d = deployment(replicas=10, surge=3, unavailable=2)
    old, new = rs("old", 10, available=8), rs("new", 3, available=0, age=10)
    # all 13 - minAvailable 8 - new unavailable 3 = 2: exactly the two unhealthy old pods
    assert ro.old_rs_scale_down(d, new, [old]) == {"old": 8}


def test_no_scale_down_while_new_pods_are_unavailable():
    d = deployment()
    old, new = rs("old", 3, available=3), rs("new", 2, available=0, age=10)
    assert ro.old_rs_scale_down(d, new, [old]) == {}


def test_oldest_replica_set_is_scaled_down_first():
    d = deployment(replicas=4, surge=1, unavailable=1)
    older, old, new = rs("older", 2, age=300), rs("old", 2, age=200), rs("new", 1, available=1, age=10)
    # available 5 > minAvailable 3: two may go, both from the oldest
    assert ro.old_rs_scale_down(d, new, [old, older]) == {"older": 0}


def simulate(d: dict, old_replicas: int, steps: int = 50) -> list[tuple[int, int]]:
    """Play rolling steps with instantly available pods; return (old, new) after each write."""
    old, new = rs("old", old_replicas, age=100), rs("new", 0, age=1)
    history = []
    for _ in range(steps):
        target = ro.new_rs_new_replicas(d, [old, new], new)
        if target != ro.spec_replicas(new):
            new = rs("new", target, age=1)
        else:
            sizes = ro.old_rs_scale_down(d, new, [old])
            if not sizes:
                break
            old = rs("old", sizes["old"], age=100)
        history.append((ro.spec_replicas(old), ro.spec_replicas(new)))
    return history


def test_course_example_2_rollout_sequence():
    """4 replicas, 25%/25%: never more than 5 pods, never fewer than 3 available."""
    steps = simulate(deployment(), 4)
    assert steps == [(4, 1), (2, 1), (2, 3), (0, 3), (0, 4)]
    assert all(o + n <= 5 for o, n in steps)
    assert all(o + n >= 3 for o, n in steps)


@pytest.mark.parametrize("replicas, surge, unavailable", [
    (20, "25%", "25%"), (50, "25%", "25%"), (10, 0, 1), (10, 1, 0), (7, "50%", "0%"), (3, "0%", "34%"),
])
def test_rollout_bounds_hold_for_every_step(replicas, surge, unavailable):
    d = deployment(replicas=replicas, surge=surge, unavailable=unavailable)
    max_s, max_u = intstr.resolve_fenceposts(surge, unavailable, replicas)
    steps = simulate(d, replicas, steps=500)
    assert steps[-1] == (0, replicas)
    assert all(o + n <= replicas + max_s for o, n in steps)
    assert all(o + n >= replicas - max_u for o, n in steps)


# -- proportional scaling ----------------------------------------------------------------

def test_proportional_scaling_mid_rollout_matches_the_kubernetes_docs_example():
    """10 replicas, maxSurge 3, maxUnavailable 2, old 8 / new 5; scaled to 15 → +3 old, +2 new."""
    d = deployment(replicas=15, surge=3, unavailable=2)
    old = rs("old", 8, age=100, max_replicas=13, desired=10)
    new = rs("new", 5, available=0, age=10, max_replicas=13, desired=10)
    assert ro.is_scaling_event(d, [old, new])
    assert ro.proportional_sizes(d, new, [old]) == {"old": 11, "new": 7}


def test_proportional_scale_down_removes_from_the_larger_older_first():
    d = deployment(replicas=5, surge=3, unavailable=2)
    old = rs("old", 8, age=100, max_replicas=13, desired=10)
    new = rs("new", 5, available=0, age=10, max_replicas=13, desired=10)
    sizes = ro.proportional_sizes(d, new, [old])
    assert sum(sizes.values()) == 5 + 3
    assert sizes == {"old": 5, "new": 3}


def test_scale_with_one_active_replica_set_sets_it_to_replicas():
    d = deployment(replicas=6)
    assert ro.proportional_sizes(d, rs("new", 4, desired=4), [rs("old", 0)]) == {"new": 6}
    assert ro.proportional_sizes(deployment(replicas=4), rs("new", 4), [rs("old", 0)]) == {}


def test_saturated_new_replica_set_scales_old_ones_to_zero():
    d = deployment(replicas=4)
    new = rs("new", 4, available=4, desired=4)
    assert ro.proportional_sizes(d, new, [rs("old", 1)]) == {"old": 0}


def test_scale_to_zero_mid_rollout():
    d = deployment(replicas=0)
    sizes = ro.proportional_sizes(d, rs("new", 2, max_replicas=5), [rs("old", 3, max_replicas=5)])
    assert sizes == {"old": 0, "new": 0}


# -- hashing, naming, revisions -----------------------------------------------------------

def test_fnv32a_vectors_and_safe_encoding():
    assert ro.fnv32a(b"") == 0x811C9DC5
    assert ro.fnv32a(b"a") == 0xE40C292C
    assert ro.fnv32a(b"foobar") == 0xBF9CF968
    assert ro.safe_encode_string("0123456789") == "456789bcdf"


def test_pod_template_hash_is_stable_and_changes_with_template_and_collisions():
    d = deployment()
    h = ro.compute_hash(d["spec"]["template"])
    assert h == ro.compute_hash(d["spec"]["template"])
    assert set(h) <= set("456789bcdf") and 1 <= len(h) <= 10
    assert ro.compute_hash(d["spec"]["template"], 1) != h
    changed = deployment()
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.16.1"
    assert ro.compute_hash(changed["spec"]["template"]) != h
    # key order and empty maps do not matter (semantic equality)
    reordered = {"spec": d["spec"]["template"]["spec"], "metadata": {"labels": {"app": "web"}, "annotations": {}}}
    assert ro.compute_hash(reordered) == h


def test_new_replica_set_object():
    d = deployment()
    new = ro.new_rs_object(d, None)
    h = ro.compute_hash(d["spec"]["template"])
    assert new["metadata"]["name"] == f"web-{h}"
    assert new["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
    assert new["spec"]["template"]["metadata"]["labels"]["pod-template-hash"] == h
    assert new["metadata"]["ownerReferences"][0] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web",
                                                     "uid": "d-uid", "controller": True, "blockOwnerDeletion": True}
    assert ro.equal_ignore_hash(new["spec"]["template"], d["spec"]["template"])
    assert ro.find_new_rs(d, [rs("other", 1), new]) is new


def test_annotations_copied_revision_bumped_and_history_kept():
    d = deployment()
    d["metadata"]["annotations"] = {ro.CHANGE_CAUSE_ANNOTATION: "kubectl set image", ro.LAST_APPLIED_ANNOTATION: "{}",
                                    ro.REVISION_ANNOTATION: "2"}
    new = rs("new", 0, revision=None)
    assert ro.set_new_rs_annotations(d, new, 3, exists=False)
    ann = new["metadata"]["annotations"]
    assert ann[ro.CHANGE_CAUSE_ANNOTATION] == "kubectl set image"
    assert ro.LAST_APPLIED_ANNOTATION not in ann
    assert ann[ro.REVISION_ANNOTATION] == "3"
    assert ann[ro.DESIRED_REPLICAS_ANNOTATION] == "4" and ann[ro.MAX_REPLICAS_ANNOTATION] == "5"
    # rolled back to: the old revision number goes into the history
    back = rs("back", 0, revision=1)
    ro.set_new_rs_annotations(d, back, 4, exists=True)
    assert back["metadata"]["annotations"][ro.REVISION_ANNOTATION] == "4"
    assert back["metadata"]["annotations"][ro.REVISION_HISTORY_ANNOTATION] == "1"
    ro.set_new_rs_annotations(d, back, 6, exists=True)
    assert back["metadata"]["annotations"][ro.REVISION_HISTORY_ANNOTATION] == "1,4"
    assert not ro.set_new_rs_annotations(d, back, 6, exists=True)


def test_revision_history_limit_deletes_oldest_empty_replica_sets():
    d = deployment(revisionHistoryLimit=2)
    olds = [rs(f"r{i}", 0, revision=i, age=100 - i) for i in range(1, 5)]
    assert [r["metadata"]["name"] for r in ro.rss_to_clean_up(d, olds)] == ["r1", "r2"]
    olds[0]["spec"]["replicas"] = 1  # still has pods: kept
    assert [r["metadata"]["name"] for r in ro.rss_to_clean_up(d, olds)] == ["r2"]
    assert ro.rss_to_clean_up(deployment(revisionHistoryLimit=10), olds) == []


# -- status and conditions ---------------------------------------------------------------

def test_status_counts_and_available_condition():
    d = deployment()
    old, new = rs("old", 3, available=3), rs("new", 2, available=0, age=1)
    status = ro.calculate_status(d, [old, new], new, NOW)
    assert {k: status[k] for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas",
                                   "unavailableReplicas", "observedGeneration")} == {
        "replicas": 5, "updatedReplicas": 2, "readyReplicas": 3, "availableReplicas": 3,
        "unavailableReplicas": 2, "observedGeneration": 1}
    assert ro.get_condition(status, "Available")["reason"] == "MinimumReplicasAvailable"
    low = ro.calculate_status(d, [rs("old", 3, available=2), new], new, NOW)
    assert ro.get_condition(low, "Available")["status"] == "False"


def test_progressing_condition_lifecycle():
    d = deployment()
    new = rs("web-abc", 4, available=4)
    done = ro.rollout_status(d, [new], new, NOW)
    cond = ro.get_condition(done, "Progressing")
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "True", "NewReplicaSetAvailable", 'ReplicaSet "web-abc" has successfully progressed.')

    d["status"] = {"updatedReplicas": 1, "replicas": 5, "availableReplicas": 3, "readyReplicas": 3,
                   "conditions": [ro.new_condition("Progressing", "True", ro.RS_UPDATED, "x", NOW - dt.timedelta(seconds=30))]}
    moving = ro.rollout_status(d, [rs("old", 3), rs("web-abc", 2, available=0)], rs("web-abc", 2, available=0), NOW)
    cond = ro.get_condition(moving, "Progressing")
    assert cond["reason"] == ro.RS_UPDATED and cond["lastUpdateTime"] == timestamp(NOW)
    assert cond["lastTransitionTime"] == ts(30)


def test_progress_deadline_exceeded_only_after_the_deadline():
    d = deployment(progressDeadlineSeconds=10)
    stuck_new = rs("web-abc", 1, available=0)
    stuck = [rs("old", 3), stuck_new]
    d["status"] = {"updatedReplicas": 1, "replicas": 4, "availableReplicas": 3, "readyReplicas": 3,
                   "conditions": [ro.new_condition("Progressing", "True", ro.RS_UPDATED, "x", NOW - dt.timedelta(seconds=5))]}
    early = ro.rollout_status(d, stuck, stuck_new, NOW)
    assert ro.get_condition(early, "Progressing")["reason"] == ro.RS_UPDATED
    assert 5 <= ro.requeue_after(d, early, NOW) <= 7
    late = ro.rollout_status(d, stuck, stuck_new, NOW + dt.timedelta(seconds=6))
    cond = ro.get_condition(late, "Progressing")
    assert (cond["status"], cond["reason"], cond["message"]) == (
        "False", "ProgressDeadlineExceeded", 'ReplicaSet "web-abc" has timed out progressing.')


def test_paused_and_resumed_conditions():
    d = deployment(paused=True)
    cond = ro.paused_condition(d, NOW)
    assert (cond["status"], cond["reason"], cond["message"]) == ("Unknown", "DeploymentPaused", "Deployment is paused")
    d["status"] = {"conditions": [cond]}
    assert ro.paused_condition(d, NOW) is None
    d["spec"]["paused"] = False
    assert ro.paused_condition(d, NOW)["reason"] == "DeploymentResumed"
    d["status"] = {"conditions": [ro.new_condition("Progressing", "False", ro.TIMED_OUT, "x", NOW)]}
    d["spec"]["paused"] = True
    assert ro.paused_condition(d, NOW) is None  # a timeout is not overwritten
