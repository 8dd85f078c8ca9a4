"""Pod readiness, the scale-down order, ReplicaSet status, GC and node lifecycle decisions (pure logic)."""

from __future__ import annotations

import datetime as dt

import pytest

from labctl.controllers import _podutil as pu
from labctl.controllers._ownership import Expectations, controller_of
from labctl.controllers._podcontrol import pod_from_template
from labctl.controllers.garbagecollector import classify_owners
from labctl.controllers.nodelifecycle import (
    NOT_READY,
    UNREACHABLE,
    eviction_delay,
    reconcile_taints,
    unknown_conditions,
    wanted_taints,
)
from labctl.controllers.replicaset import replicaset_status

NOW = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=dt.UTC)


def ts(seconds_ago: float) -> str:
    return (NOW - dt.timedelta(seconds=seconds_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, node: str = "worker", phase: str = "Running", ready_for: float | None = None,
        age: float = 1000, restarts: int = 0, labels: dict | None = None, **meta) -> dict:
    conditions = []
    if ready_for is not None:
        conditions.append({"type": "Ready", "status": "True", "lastTransitionTime": ts(ready_for)})
    elif phase == "Running":
        conditions.append({"type": "Ready", "status": "False", "lastTransitionTime": ts(5)})
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "creationTimestamp": ts(age),
                         "labels": labels if labels is not None else {"app": "web"}, **meta},
            "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "conditions": conditions,
                       "containerStatuses": [{"name": "c", "restartCount": restarts}]}}


def names(pods: list[dict]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


def test_available_needs_ready_for_min_ready_seconds():
    assert pu.is_pod_available(pod("a", ready_for=10), 5, NOW)
    assert not pu.is_pod_available(pod("a", ready_for=3), 5, NOW)
    assert pu.is_pod_available(pod("a", ready_for=0), 0, NOW)
    assert not pu.is_pod_available(pod("a"), 0, NOW)


def test_next_available_is_the_exact_moment_the_first_ready_pod_counts():
    pods = [pod("a", ready_for=1), pod("b", ready_for=3), pod("c", ready_for=10), pod("d")]
    after = pu.next_available_in(pods, 5, NOW)
    assert after == pytest.approx(2 + pu.AVAILABLE_MARGIN_S)  # b: Ready 3 s ago, available 2 s from now
    assert pu.next_available_in([pod("c", ready_for=10), pod("d")], 5, NOW) is None  # nothing to wait for
    assert pu.next_available_in(pods, 0, NOW) is None


def test_active_pods_exclude_finished_and_terminating():
    pods = [pod("run"), pod("done", phase="Succeeded"), pod("failed", phase="Failed"),
            pod("bye", deletionTimestamp=ts(0))]
    assert names(pu.filter_active_pods(pods)) == ["run"]


def test_scale_down_order_unscheduled_pending_not_ready_then_most_recently_ready():
    pods = [pod("ready-old", ready_for=5000), pod("ready-new", ready_for=10), pod("not-ready"),
            pod("pending", phase="Pending"), pod("unscheduled", node="", phase="Pending")]
    ordered = pu.rank_pods_for_deletion(pods, pods, NOW)
    assert names(ordered) == ["unscheduled", "pending", "not-ready", "ready-new", "ready-old"]


def test_scale_down_prefers_doubled_up_nodes_then_restarts_then_newest():
    a1, a2 = pod("a1", node="a", ready_for=5000), pod("a2", node="a", ready_for=5000)
    b1 = pod("b1", node="b", ready_for=5000)
    assert names(pu.pods_to_delete([b1, a1, a2], [b1, a1, a2], 1, NOW))[0] in ("a1", "a2")
    crashy, calm = pod("crashy", ready_for=5000, restarts=3), pod("calm", ready_for=5000)
    assert names(pu.rank_pods_for_deletion([calm, crashy], [], NOW)) == ["crashy", "calm"]
    old, new = pod("old", ready_for=10_000, age=100_000), pod("new", ready_for=10_000, age=10)
    assert names(pu.rank_pods_for_deletion([old, new], [], NOW)) == ["new", "old"]


def test_deletion_cost_annotation_is_honoured():
    cheap = pod("cheap", ready_for=5000, annotations={pu.DELETION_COST_ANNOTATION: "-10"})
    dear = pod("dear", ready_for=10)
    assert names(pu.rank_pods_for_deletion([dear, cheap], [], NOW)) == ["cheap", "dear"]


def test_pods_to_delete_takes_exactly_count():
    pods = [pod(f"p{i}", ready_for=100 * i + 1) for i in range(6)]
    assert len(pu.pods_to_delete(pods, pods, 4, NOW)) == 4


# -- ReplicaSet pods and status ------------------------------------------------------------

def replicaset(replicas: int = 3, min_ready: int = 0) -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": "example-1", "namespace": "default", "uid": "rs-uid", "generation": 2},
            "spec": {"replicas": replicas, "minReadySeconds": min_ready, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web", "env": "dev"}, "annotations": {"a": "b"}},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}}


def test_pod_from_template_is_owned_and_named_after_the_replicaset():
    p = pod_from_template(replicaset())
    assert p["metadata"]["generateName"] == "example-1-"
    assert p["metadata"]["labels"] == {"app": "web", "env": "dev"}
    assert p["metadata"]["annotations"] == {"a": "b"}
    assert controller_of(p) == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "example-1",
                                "uid": "rs-uid", "controller": True, "blockOwnerDeletion": True}
    assert p["spec"]["containers"][0]["image"] == "nginx"


def test_replicaset_status_fields():
    rs = replicaset(min_ready=5)
    pods = [pod("full-avail", ready_for=60, labels={"app": "web", "env": "dev"}),
            pod("full-young", ready_for=2, labels={"app": "web", "env": "dev"}),
            pod("partial", labels={"app": "web"})]
    status = replicaset_status(rs, pods, None, NOW)
    assert status == {"replicas": 3, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 1}
    failed = replicaset_status(rs, pods[:1], "quota exceeded", NOW)
    assert failed["conditions"][0]["reason"] == "FailedCreate"
    assert "conditions" not in replicaset_status({**rs, "status": failed}, pods, None, NOW)


def test_expectations_block_until_observed_or_expired():
    clock = [0.0]
    exp = Expectations(ttl=300, clock=lambda: clock[0])
    assert exp.satisfied("ns/rs")
    exp.expect_creations("ns/rs", 2)
    exp.creation_observed("ns/rs")
    assert not exp.satisfied("ns/rs")
    exp.creation_observed("ns/rs")
    assert exp.satisfied("ns/rs")
    exp.expect_deletions("ns/rs", ["ns/a"])
    assert not exp.satisfied("ns/rs")
    clock[0] = 301
    assert exp.satisfied("ns/rs")


# -- garbage collector -----------------------------------------------------------------------

def test_owner_classification():
    refs = [{"uid": "alive"}, {"uid": "gone"}, {"uid": "fg"}]
    owners = {"alive": {"metadata": {}}, "gone": None,
              "fg": {"metadata": {"deletionTimestamp": ts(0), "finalizers": ["foregroundDeletion"]}}}
    solid, dangling, waiting = classify_owners(refs, owners)
    assert (solid, dangling, waiting) == ([{"uid": "alive"}], [{"uid": "gone"}], [{"uid": "fg"}])


# -- node lifecycle ------------------------------------------------------------------------

def test_taints_follow_the_ready_condition():
    assert wanted_taints("Unknown") == {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    assert wanted_taints("False") == {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}
    cp = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    tainted = reconcile_taints([cp], "Unknown", ts(0))
    assert cp in tainted and {(t["key"], t["effect"]) for t in tainted} >= wanted_taints("Unknown")
    assert all("timeAdded" in t for t in tainted if t["effect"] == "NoExecute")
    assert reconcile_taints(tainted, "Unknown", ts(0)) is None
    assert reconcile_taints(tainted, "True", ts(0)) == [cp]


def test_unknown_conditions_keep_heartbeat():
    node = {"status": {"conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                       "lastHeartbeatTime": ts(60), "lastTransitionTime": ts(600)}]}}
    conds = {c["type"]: c for c in unknown_conditions(node, ts(0))}
    ready = conds["Ready"]
    assert (ready["status"], ready["reason"], ready["message"]) == (
        "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
    assert ready["lastHeartbeatTime"] == ts(60) and ready["lastTransitionTime"] == ts(0)
    assert conds["MemoryPressure"]["reason"] == "NodeStatusNeverUpdated"


@pytest.mark.parametrize("tolerations, expected", [
    ([], 0.0),                                                                         # evicted at once
    ([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}], 10.0),
    ([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}], 60.0),
    ([{"key": UNREACHABLE, "operator": "Exists", "effect": "NoExecute"}], None),        # forever
    ([{"operator": "Exists"}], None),
])
def test_eviction_delay(tolerations, expected):
    taints = [{"key": UNREACHABLE, "effect": "NoExecute"}, {"key": UNREACHABLE, "effect": "NoSchedule"}]
    assert eviction_delay({"spec": {"tolerations": tolerations}}, taints, eviction_timeout=10.0) == expected
