"""PodDisruptionBudgets and eviction: validation, ``kubectl get pdb`` columns, the disruption
controller's status math and the eviction subresource's decisions, as upstream computes them."""

from __future__ import annotations

import datetime as dt
from datetime import UTC, datetime

import pytest

from labctl.apiserver import decode, eviction, queryparams
from labctl.apiserver.errors import APIError
from labctl.apiserver.rest import RestAPI
from labctl.apiserver.scope import RequestScope
from labctl.apiserver.storage import SQLiteStore
from labctl.apiserver.strategies import strategy_for
from labctl.controllers.disruption import (
    ControllerMissing,
    count_healthy_pods,
    disrupted_pod_map,
    expected_pod_count,
    fail_safe_status,
    pdb_status,
)
from labctl.kube.meta import timestamp
from labctl.kube.printers import build_table
from labctl.kube.resources import resource_for

NOW = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)


def pdb(name: str = "web", status: dict | None = None, generation: int = 1, **spec) -> dict:
    spec.setdefault("selector", {"matchLabels": {"app": "web"}})
    obj = {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
           "metadata": {"name": name, "namespace": "default", "generation": generation}, "spec": spec}
    if status is not None:
        obj["status"] = status
    return obj


def pod(name: str, ready: bool = True, phase: str = "Running", owner: str | None = "web-rs", **meta) -> dict:
    refs = [{"kind": "ReplicaSet", "name": owner, "uid": f"uid-{owner}", "controller": True}] if owner else []
    return {"metadata": {"name": name, "namespace": "default", "labels": {"app": "web"}, "ownerReferences": refs,
                         "resourceVersion": "7", **meta},
            "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def errors(obj: dict) -> list[str]:
    return [str(e) for e in strategy_for("poddisruptionbudgets").validate(obj)]


# -- validation and printing -----------------------------------------------------------------
def test_a_budget_with_either_bound_is_valid():
    assert errors(pdb(minAvailable=2)) == []
    assert errors(pdb(maxUnavailable="25%", unhealthyPodEvictionPolicy="AlwaysAllow")) == []


@pytest.mark.parametrize("spec, expected", [
    ({"minAvailable": 1, "maxUnavailable": 1}, "spec: Invalid value: "),
    ({"minAvailable": -1}, "spec.minAvailable: Invalid value: -1: must be greater than or equal to 0"),
    ({"maxUnavailable": "50"}, 'spec.maxUnavailable: Invalid value: "50": must be an integer or percentage (e.g \'5%\')'),
    ({"minAvailable": "120%"}, 'spec.minAvailable: Invalid value: "120%": must not be greater than 100%'),
    ({"minAvailable": 1, "unhealthyPodEvictionPolicy": "Never"},
     'spec.unhealthyPodEvictionPolicy: Unsupported value: "Never": supported values: "AlwaysAllow", "IfHealthyBudget"'),
    ({"minAvailable": 1, "selector": {"matchExpressions": [{"key": "app", "operator": "Near"}]}},
     'spec.selector.matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator'),
])
def test_invalid_budgets_report_upstreams_errors(spec, expected):
    found = errors(pdb(**spec))
    assert any(e.startswith(expected) for e in found), found
    if "maxUnavailable" in spec and "minAvailable" in spec:
        assert found[0].endswith("minAvailable and maxUnavailable cannot be both set")


def test_get_pdb_prints_min_available_max_unavailable_allowed_disruptions():
    objects = [pdb("a", {"disruptionsAllowed": 1}, minAvailable=2), pdb("b", maxUnavailable="25%")]
    for o in objects:
        o["metadata"]["creationTimestamp"] = "2026-12-07T09:58:00Z"
    table = build_table(strategy_for("poddisruptionbudgets").printer, objects, now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == [
        "Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"]
    assert [r["cells"] for r in table["rows"]] == [["a", "2", "N/A", 1, "2m"], ["b", "N/A", "25%", 0, "2m"]]


# -- the disruption controller's status -----------------------------------------------------
def scales(**replicas: int):
    """A ``scale_of`` over ReplicaSets named in ``replicas``."""
    def scale_of(namespace: str, ref: dict):
        return (ref["uid"], replicas[ref["name"]]) if ref["name"] in replicas else None
    return scale_of


def test_integer_min_available_counts_the_matched_pods():
    pods = [pod("a"), pod("b"), pod("c", ready=False)]
    expected, desired, unmanaged = expected_pod_count(pdb(minAvailable=2), pods, scales())
    assert (expected, desired, unmanaged) == (3, 2, [])
    status = pdb_status(pdb(minAvailable=2), count_healthy_pods(pods, {}, NOW), desired, expected, {})
    assert status["currentHealthy"] == 2 and status["disruptionsAllowed"] == 0
    assert status["conditions"][0]["reason"] == "InsufficientPods"


def test_percentages_and_max_unavailable_use_the_controllers_scale():
    pods = [pod("a"), pod("b")]  # the ReplicaSet wants 4: two pods are still missing
    assert expected_pod_count(pdb(minAvailable="50%"), pods, scales(**{"web-rs": 4}))[:2] == (4, 2)
    assert expected_pod_count(pdb(maxUnavailable=1), pods, scales(**{"web-rs": 4}))[:2] == (4, 3)
    assert expected_pod_count(pdb(maxUnavailable="30%"), pods, scales(**{"web-rs": 4}))[:2] == (4, 2)  # rounds up


def test_unmanaged_pods_are_reported_and_missing_controllers_fail():
    pods = [pod("a"), pod("bare", owner=None)]
    assert expected_pod_count(pdb(maxUnavailable=1), pods, scales(**{"web-rs": 1}))[2] == ["bare"]
    with pytest.raises(ControllerMissing, match='found no controllers for pod "a"'):
        expected_pod_count(pdb(minAvailable="50%"), pods, scales())


def test_disruptions_allowed_is_healthy_minus_desired_and_never_negative():
    allowed = pdb_status(pdb(minAvailable=2), 3, 2, 3, {})
    assert allowed["disruptionsAllowed"] == 1
    assert allowed["conditions"][0] | {"lastTransitionTime": ""} == {
        "type": "DisruptionAllowed", "status": "True", "reason": "SufficientPods", "message": "",
        "observedGeneration": 1, "lastTransitionTime": ""}
    assert pdb_status(pdb(minAvailable=2), 1, 2, 3, {})["disruptionsAllowed"] == 0
    assert pdb_status(pdb(minAvailable=0), 0, 0, 0, {})["disruptionsAllowed"] == 0  # no pod expected yet


def test_an_evicted_pod_stops_counting_until_it_goes_or_two_minutes_pass():
    recent, stale = timestamp(NOW - dt.timedelta(seconds=10)), timestamp(NOW - dt.timedelta(minutes=3))
    pods = [pod("a"), pod("b"), pod("c"), pod("d", deletionTimestamp=timestamp(NOW))]
    budget = pdb(minAvailable=2, status={"disruptedPods": {"a": recent, "b": stale, "d": recent, "gone": recent}})
    disrupted, recheck, late = disrupted_pod_map(budget, pods, NOW)
    assert disrupted == {"a": recent} and late == ["b"]
    assert recheck == NOW - dt.timedelta(seconds=10) + dt.timedelta(minutes=2)
    assert count_healthy_pods(pods, disrupted, NOW) == 2  # b and c: a awaits its eviction, d is terminating


def test_a_failed_sync_allows_no_disruption():
    status = fail_safe_status(pdb(minAvailable=1, status={"disruptionsAllowed": 2}), "found no controllers")
    assert status["disruptionsAllowed"] == 0
    assert status["conditions"][0]["reason"] == "SyncFailed"


# -- eviction decisions ---------------------------------------------------------------------
def test_terminal_pending_and_terminating_pods_skip_the_budget():
    assert eviction.can_ignore_budget(pod("a", phase="Pending"))
    assert eviction.can_ignore_budget(pod("a", phase="Succeeded"))
    assert eviction.can_ignore_budget(pod("a", deletionTimestamp="2026-12-07T10:00:00Z"))
    assert not eviction.can_ignore_budget(pod("a"))


def test_budgets_with_an_empty_selector_select_no_pod_to_evict():
    budgets = [pdb("all", selector={}), pdb("web", minAvailable=1), pdb("db", selector={"matchLabels": {"app": "db"}})]
    assert [b["metadata"]["name"] for b in eviction.budgets_for(pod("a"), budgets)] == ["web"]


def test_no_disruption_allowed_is_429_with_the_disruption_budget_cause():
    budget = pdb(minAvailable=2, status={"disruptionsAllowed": 0, "currentHealthy": 2, "desiredHealthy": 2,
                                         "observedGeneration": 1})
    with pytest.raises(APIError) as err:
        eviction.budget_decision(pod("a"), budget)
    status = err.value.status()
    assert (status["code"], status["reason"], status["message"]) == (
        429, "TooManyRequests", "Cannot evict pod as it would violate the pod's disruption budget.")
    assert status["details"]["causes"] == [{"reason": "DisruptionBudget",
                                            "message": "The disruption budget web needs 2 healthy pods and has 2 currently"}]


def test_a_budget_not_computed_for_its_spec_yet_is_429_retry_after_10s():
    budget = pdb(minAvailable=1, generation=2, status={"disruptionsAllowed": 3, "observedGeneration": 1})
    with pytest.raises(APIError) as err:
        eviction.budget_decision(pod("a"), budget)
    assert err.value.details["retryAfterSeconds"] == 10
    assert "is still being processed by the server" in err.value.details["causes"][0]["message"]


def test_an_allowed_eviction_decrements_and_records_the_pod():
    budget = pdb(minAvailable=2, status={"disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2,
                                         "observedGeneration": 1})
    assert eviction.budget_decision(pod("a"), budget) == eviction.Decision(decrement=True)
    after = eviction.decremented(budget, "a", "2026-12-07T10:00:00Z")
    assert after["status"]["disruptionsAllowed"] == 0
    assert after["status"]["disruptedPods"] == {"a": "2026-12-07T10:00:00Z"}
    assert after["status"]["conditions"][0]["status"] == "False"


@pytest.mark.parametrize("policy, healthy, allowed", [
    ("AlwaysAllow", 0, True),       # an unhealthy pod may always go
    (None, 2, True),                # IfHealthyBudget (default): the budget holds without it
    ("IfHealthyBudget", 1, False),  # the budget is not met: the pod must become healthy first
])
def test_not_ready_pods_follow_the_unhealthy_pod_eviction_policy(policy, healthy, allowed):
    spec = {"minAvailable": 2} | ({"unhealthyPodEvictionPolicy": policy} if policy else {})
    budget = pdb(status={"disruptionsAllowed": 0, "currentHealthy": healthy, "desiredHealthy": 2,
                         "observedGeneration": 1}, **spec)
    if allowed:
        assert eviction.budget_decision(pod("a", ready=False), budget) == eviction.Decision(False, True)
    else:
        with pytest.raises(APIError, match="violate the pod's disruption budget"):
            eviction.budget_decision(pod("a", ready=False), budget)


def test_delete_options_carry_the_requests_dry_run():
    assert eviction.delete_options_of({"deleteOptions": {"gracePeriodSeconds": 5}}, ["All"]) == {
        "gracePeriodSeconds": 5, "dryRun": ["All"]}
    with pytest.raises(APIError, match="Non-matching dry-run options"):
        eviction.delete_options_of({"deleteOptions": {"dryRun": ["Other"]}}, ["All"])


def test_kubectl_drain_disable_eviction_protobuf_delete_options_decode():
    """The exact body kubectl 1.37's ``drain --disable-eviction`` sends with its DELETE."""
    body = b"k8s\x00" + bytes.fromhex("0a130a027631120d") + b"DeleteOptions" + bytes.fromhex("12001a002200")
    doc, _ = decode.typed_object(body, "application/vnd.kubernetes.protobuf", "v1", "DeleteOptions", "Ignore")
    assert queryparams.delete_options({}, doc) == {"kind": "DeleteOptions", "apiVersion": "v1"}


# -- evict() against the REST layer ------------------------------------------------------------
@pytest.fixture
def api(tmp_path):
    store = SQLiteStore(tmp_path / "store.db")
    api = RestAPI(store)
    api.create(RequestScope(resource_for("namespaces")), {"metadata": {"name": "default"}})
    yield api
    store.close()


def running_pod(api: RestAPI, name: str) -> None:
    pods = resource_for("pods")
    api.create(RequestScope(pods, "default"), {"metadata": {"name": name, "labels": {"app": "web"}},
                                               "spec": {"nodeName": "worker", "containers": [{"name": "c", "image": "web"}]}})
    current = api.get(RequestScope(pods, "default", name))
    api.update(RequestScope(pods, "default", name, "status"), {**current, "status": {
        "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})


def test_evictions_decrement_the_budget_until_it_refuses(api):
    pdbs, pods = resource_for("poddisruptionbudgets"), resource_for("pods")
    for name in ("a", "b", "c"):
        running_pod(api, name)
    api.create(RequestScope(pdbs, "default"), pdb(minAvailable=2))
    budget = api.get(RequestScope(pdbs, "default", "web"))
    api.update(RequestScope(pdbs, "default", "web", "status"), {**budget, "status": {
        "disruptionsAllowed": 1, "currentHealthy": 3, "desiredHealthy": 2, "expectedPods": 3,
        "observedGeneration": 1}})

    def evict(name: str) -> dict:
        return eviction.evict(api, RequestScope(pods, "default", name, "eviction"),
                              {"metadata": {"name": name, "namespace": "default"}}, [])

    assert evict("a") == eviction.SUCCESS
    gone = api.get(RequestScope(pods, "default", "a"))
    assert gone["metadata"]["deletionTimestamp"]
    assert {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}.items() <= \
        gone["status"]["conditions"][-1].items()
    status = api.get(RequestScope(pdbs, "default", "web"))["status"]
    assert status["disruptionsAllowed"] == 0 and set(status["disruptedPods"]) == {"a"}
    with pytest.raises(APIError) as refused:
        evict("b")
    assert refused.value.code == 429
    assert not api.get(RequestScope(pods, "default", "b"))["metadata"].get("deletionTimestamp")
    assert evict("a") == eviction.SUCCESS  # already terminating: no budget to ask
    with pytest.raises(APIError, match="name in URL does not match name in Eviction object"):
        eviction.evict(api, RequestScope(pods, "default", "b", "eviction"), {"metadata": {"name": "c"}}, [])
