"""The StatefulSet's pure parts: names, ordering, partition, status, defaults, validation, printing."""

from __future__ import annotations

import copy
import datetime as dt

from labctl.apiserver._validate_statefulset import validate_statefulset, validate_statefulset_update
from labctl.apiserver.defaults import default_statefulset
from labctl.controllers.statefulset import (
    claim_name,
    claim_owner_refs,
    creation_revision,
    plan,
    split_pods,
    stateful_claims,
    stateful_pod,
    statefulset_status,
    template_hash,
)
from labctl.kube.printers import STATEFULSET_COLUMNS, Clock, print_statefulset

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)


def sts(replicas: int = 3, policy: str = "OrderedReady", partition: int | None = None, **spec) -> dict:
    obj = {"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": "web", "namespace": "default", "uid": "u1", "generation": 2},
           "spec": {"serviceName": "nginx", "replicas": replicas, "podManagementPolicy": policy,
                    "selector": {"matchLabels": {"app": "nginx"}},
                    "template": {"metadata": {"labels": {"app": "nginx"}},
                                 "spec": {"containers": [{"name": "nginx", "image": "nginx",
                                                          "volumeMounts": [{"name": "www", "mountPath": "/w"}]}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "www"},
                                              "spec": {"accessModes": ["ReadWriteOnce"],
                                                       "resources": {"requests": {"storage": "1Gi"}}}}],
                    **spec}}
    if partition is not None:
        obj["spec"]["updateStrategy"] = {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}
    default_statefulset(obj)
    return obj


def pod(ordinal: int, revision: str = "web-new", ready: bool = True, phase: str = "Running",
        terminating: bool = False) -> dict:
    meta: dict = {"name": f"web-{ordinal}", "namespace": "default", "uid": f"p{ordinal}",
                  "labels": {"app": "nginx", "controller-revision-hash": revision}}
    if terminating:
        meta["deletionTimestamp"] = "2026-12-07T11:59:00Z"
    return {"metadata": meta, "status": {"phase": phase, "conditions": [
        {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": "2026-12-07T11:00:00Z"}]}}


def names(pods: list[dict]) -> list[str]:
    return [p["metadata"]["name"] for p in pods]


# -- identity ---------------------------------------------------------------------------------
def test_a_pod_has_its_ordinal_name_labels_hostname_subdomain_and_claim():
    s = sts()
    p = stateful_pod(s, 1, s["spec"]["template"], "web-abc")
    assert p["metadata"]["name"] == "web-1" and "generateName" not in p["metadata"]
    assert p["metadata"]["labels"] == {"app": "nginx", "controller-revision-hash": "web-abc",
                                       "statefulset.kubernetes.io/pod-name": "web-1",
                                       "apps.kubernetes.io/pod-index": "1"}
    assert (p["spec"]["hostname"], p["spec"]["subdomain"]) == ("web-1", "nginx")
    assert p["spec"]["volumes"] == [{"name": "www", "persistentVolumeClaim": {"claimName": "www-web-1"}}]
    assert p["metadata"]["ownerReferences"][0]["kind"] == "StatefulSet"


def test_the_revision_does_not_change_when_the_status_first_sets_collision_count():
    s = sts()
    before = template_hash(s)
    s["status"] = {"collisionCount": 0}
    assert template_hash(s) == before
    s["status"] = {"collisionCount": 1}
    assert template_hash(s) != before


def test_claims_are_named_template_set_ordinal_and_carry_the_selector_labels():
    assert claim_name("www", sts(), 0) == "www-web-0"
    (claim,) = stateful_claims(sts(), 2)
    assert claim["metadata"]["name"] == "www-web-2" and claim["metadata"]["labels"] == {"app": "nginx"}
    assert claim["spec"]["resources"] == {"requests": {"storage": "1Gi"}}


def retention(when_deleted: str, when_scaled: str) -> dict:
    return sts(persistentVolumeClaimRetentionPolicy={"whenDeleted": when_deleted, "whenScaled": when_scaled})


def test_claims_are_owned_as_the_retention_policy_says():
    other = {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "cm"}
    (claim,) = stateful_claims(sts(), 1)
    claim["metadata"]["ownerReferences"] = [other]
    owners = {(a, b): [r["uid"] for r in claim_owner_refs(retention(a, b), claim, pod(1), condemned=False)]
              for a in ("Retain", "Delete") for b in ("Retain", "Delete")}
    assert owners == {("Retain", "Retain"): ["cm"], ("Retain", "Delete"): ["cm"], ("Delete", "Retain"): ["cm", "u1"],
                      ("Delete", "Delete"): ["cm", "u1"]}
    scaled = {(a, b): [r["uid"] for r in claim_owner_refs(retention(a, b), claim, pod(1), condemned=True)]
              for a in ("Retain", "Delete") for b in ("Retain", "Delete")}
    assert scaled == {("Retain", "Retain"): ["cm"], ("Retain", "Delete"): ["cm", "p1"],
                      ("Delete", "Retain"): ["cm", "u1"], ("Delete", "Delete"): ["cm", "p1"]}
    (created,) = stateful_claims(retention("Delete", "Retain"), 0)
    assert created["metadata"]["ownerReferences"] == [{"apiVersion": "apps/v1", "kind": "StatefulSet",
                                                       "name": "web", "uid": "u1"}]


def test_pods_split_into_replicas_and_condemned_highest_first():
    replicas, condemned = split_pods(sts(replicas=2), [pod(0), pod(3), pod(1), pod(2)] + [
        {"metadata": {"name": "other-1"}}])
    assert sorted(replicas) == [0, 1] and names(condemned) == ["web-3", "web-2"]


# -- ordering -----------------------------------------------------------------------------------
def test_ordered_ready_creates_one_pod_after_the_previous_is_ready():
    assert plan(sts(), [], "web-new", NOW).create == [0]
    assert plan(sts(), [pod(0, ready=False)], "web-new", NOW).create == []
    assert plan(sts(), [pod(0)], "web-new", NOW).create == [1]
    assert plan(sts(), [pod(0), pod(1, terminating=True)], "web-new", NOW).create == []


def test_parallel_creates_every_missing_pod_at_once():
    assert plan(sts(policy="Parallel"), [pod(1, ready=False)], "web-new", NOW).create == [0, 2]


def test_scale_down_deletes_the_highest_ordinal_first_one_at_a_time():
    s = sts(replicas=1)
    assert names(plan(s, [pod(0), pod(1), pod(2)], "web-new", NOW).delete) == ["web-2"]
    assert plan(s, [pod(0), pod(1), pod(2, terminating=True)], "web-new", NOW).delete == []
    assert names(plan(sts(replicas=1, policy="Parallel"), [pod(0), pod(1), pod(2)], "web-new", NOW).delete) == [
        "web-2", "web-1"]


def test_a_failed_pod_is_deleted_to_be_made_again():
    assert names(plan(sts(), [pod(0), pod(1, phase="Failed")], "web-new", NOW).delete) == ["web-1"]


# -- rolling update ---------------------------------------------------------------------------
def test_rolling_update_goes_from_the_highest_ordinal_down_one_at_a_time():
    old = [pod(0, "web-old"), pod(1, "web-old"), pod(2, "web-old")]
    assert names(plan(sts(), old, "web-new", NOW).delete) == ["web-2"]
    waiting = [pod(0, "web-old"), pod(1, "web-old"), pod(2, ready=False)]
    assert plan(sts(), waiting, "web-new", NOW).delete == [] and plan(sts(), waiting, "web-new", NOW).create == []
    assert names(plan(sts(), [pod(0, "web-old"), pod(1, "web-old"), pod(2)], "web-new", NOW).delete) == ["web-1"]


def test_max_unavailable_replaces_several_pods_at_once_counting_every_unavailable_replica():
    s = sts(replicas=4, policy="Parallel", partition=1)
    s["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = "50%"
    old = [pod(i, "web-old") for i in range(4)]
    assert names(plan(s, old, "web-new", NOW).delete) == ["web-3", "web-2"]
    below_partition_down = [pod(0, "web-old", ready=False)] + old[1:]
    assert names(plan(s, below_partition_down, "web-new", NOW).delete) == ["web-3"]


def test_partition_leaves_lower_ordinals_at_the_current_revision():
    s = sts(partition=2)
    assert plan(s, [pod(0, "web-old"), pod(1, "web-old"), pod(2)], "web-new", NOW).delete == []
    assert names(plan(s, [pod(0, "web-old"), pod(1, "web-old"), pod(2, "web-old")], "web-new", NOW).delete) == ["web-2"]
    assert creation_revision(s, 1, "web-old", "web-new") == "web-old"
    assert creation_revision(s, 2, "web-old", "web-new") == "web-new"


def test_on_delete_never_deletes_for_an_update():
    s = sts()
    s["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert plan(s, [pod(0, "web-old"), pod(1, "web-old"), pod(2, "web-old")], "web-new", NOW).delete == []
    assert creation_revision(s, 0, "web-old", "web-new") == "web-new"


# -- status -------------------------------------------------------------------------------------
def test_status_counts_and_completes_the_rollout_when_all_are_updated_and_ready():
    s = sts()
    mid = statefulset_status(s, [pod(0, "web-old"), pod(1, "web-old"), pod(2, ready=False)], "web-old", "web-new", NOW)
    assert mid == {"observedGeneration": 2, "replicas": 3, "readyReplicas": 2, "availableReplicas": 2,
                   "currentReplicas": 2, "updatedReplicas": 1, "currentRevision": "web-old",
                   "updateRevision": "web-new", "collisionCount": 0}
    done = statefulset_status(s, [pod(0), pod(1), pod(2)], "web-old", "web-new", NOW)
    assert (done["currentRevision"], done["currentReplicas"], done["updatedReplicas"]) == ("web-new", 3, 3)


def test_get_sts_prints_ready_over_desired():
    s = sts()
    s["status"] = {"readyReplicas": 1}
    assert [c["name"] for c in STATEFULSET_COLUMNS if c["priority"] == 0] == ["Name", "Ready", "Age"]
    assert print_statefulset(s, Clock(NOW))[:2] == ["web", "1/3"]


# -- defaults and validation --------------------------------------------------------------------
def test_defaults_are_kubes():
    spec = sts()["spec"]
    assert spec["updateStrategy"] == {"type": "RollingUpdate", "rollingUpdate": {"partition": 0, "maxUnavailable": 1}}
    assert spec["persistentVolumeClaimRetentionPolicy"] == {"whenDeleted": "Retain", "whenScaled": "Retain"}
    assert spec["revisionHistoryLimit"] == 10
    claim = spec["volumeClaimTemplates"][0]
    assert (claim["spec"]["volumeMode"], claim["status"]["phase"]) == ("Filesystem", "Pending")


def test_a_valid_set_mounting_its_claim_template_validates():
    assert validate_statefulset(sts()) == []


def test_invalid_sets_are_refused_with_kubes_field_paths():
    bad = sts(policy="Sometimes")
    bad["spec"]["updateStrategy"] = {"type": "OnDelete", "rollingUpdate": {"partition": 1}}
    bad["spec"]["persistentVolumeClaimRetentionPolicy"]["whenScaled"] = "Keep"
    fields = {e.field for e in validate_statefulset(bad)}
    assert fields == {"spec.podManagementPolicy", "spec.updateStrategy.rollingUpdate",
                      "spec.persistentVolumeClaimRetentionPolicy.whenScaled"}
    unmatched = sts()
    unmatched["spec"]["selector"] = {"matchLabels": {"app": "other"}}
    assert [e.field for e in validate_statefulset(unmatched)] == ["spec.template.metadata.labels"]


def test_only_replicas_template_strategy_retention_ordinals_min_ready_may_change():
    old = sts()
    new = copy.deepcopy(old)
    new["spec"].update(replicas=5, minReadySeconds=3, ordinals={"start": 1})
    new["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:2"
    new["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = 2
    assert validate_statefulset_update(old, new) == []
    new["spec"]["serviceName"] = "other"
    (err,) = validate_statefulset_update(old, new)
    assert err.field == "spec" and "updates to statefulset spec for fields other than" in err.detail
