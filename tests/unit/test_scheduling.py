"""The scheduler's filters, scores, assume cache and kube-scheduler's exact messages, on plain dicts."""

from __future__ import annotations

import pytest

from labctl.controllers._schedcache import SchedulerCache
from labctl.controllers._scheduling import (
    UNRESOLVABLE,
    UNSCHEDULABLE,
    FitError,
    NodeInfo,
    PodInfo,
    filter_node_affinity,
    filter_node_ports,
    filter_resources_fit,
    filter_taint_toleration,
    pod_requests,
    run_filters,
    schedule,
    tolerates,
)
from labctl.controllers.scheduler import node_signature, unschedulable_condition, wants_scheduling

CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
CP_TOLERATION = {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}


def node(name: str, cpu: str = "2", memory: str = "4Gi", pods: str = "110", labels: dict | None = None,
         taints: list | None = None, ready: str = "True", unschedulable: bool = False) -> dict:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}},
            "spec": {"taints": taints or [], **({"unschedulable": True} if unschedulable else {})},
            "status": {"allocatable": {"cpu": cpu, "memory": memory, "pods": pods},
                       "conditions": [{"type": "Ready", "status": ready}]}}


def pod(name: str = "web-1", requests: dict | None = None, limits: dict | None = None, owner: str = "",
        **spec) -> dict:
    resources = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    meta: dict = {"name": name, "namespace": "default", "uid": f"uid-{name}"}
    if owner:
        meta["ownerReferences"] = [{"kind": "ReplicaSet", "name": "rs", "uid": owner, "controller": True}]
    return {"metadata": meta, "spec": {"containers": [{"name": "c", "image": "nginx", "resources": resources}],
                                       "schedulerName": "default-scheduler", **spec},
            "status": {"phase": "Pending"}}


def pi(name: str = "web-1", **kwargs) -> PodInfo:
    """A pod as the filter plugins take it (parsed once per scheduling cycle)."""
    return PodInfo.of(pod(name, **kwargs))


def lab_nodes() -> list[NodeInfo]:
    """The test lab's shape: a tainted control plane and two workers."""
    return [NodeInfo(node("control-plane", labels={"node-role.kubernetes.io/control-plane": ""}, taints=[CP_TAINT])),
            NodeInfo(node("worker")), NodeInfo(node("worker2"))]


# -- requests ---------------------------------------------------------------------------
def test_limits_imply_requests_when_requests_are_absent():
    r = pod_requests(pod(limits={"cpu": "500m", "memory": "128Mi"}))
    assert (r.milli_cpu, r.memory) == (500, 128 * 1024 * 1024)


def test_explicit_request_wins_over_limit_and_init_containers_count_as_max():
    p = pod(requests={"cpu": "100m"}, limits={"cpu": "1"})
    p["spec"]["initContainers"] = [{"name": "i", "resources": {"requests": {"cpu": "300m", "nvidia.com/gpu": "1"}}}]
    r = pod_requests(p)
    assert r.milli_cpu == 300 and r.scalars == {"nvidia.com/gpu": 1}


# -- filters ----------------------------------------------------------------------------
@pytest.mark.parametrize("toleration, ok", [
    (CP_TOLERATION, True),
    ({"operator": "Exists"}, True),                                        # tolerates everything
    ({"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoExecute"}, False),
    ({"key": "node-role.kubernetes.io/control-plane", "value": "x"}, False),  # Equal, value differs
    ({"key": "node-role.kubernetes.io/control-plane", "operator": "Equal", "value": ""}, True),
])
def test_tolerations_match_like_kubernetes(toleration, ok):
    assert tolerates(toleration, CP_TAINT) is ok


def test_control_plane_taint_message_and_code():
    status = filter_taint_toleration(pi(), lab_nodes()[0])
    assert status.code == UNRESOLVABLE
    assert status.reasons == ["node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"]
    assert filter_taint_toleration(pi(tolerations=[CP_TOLERATION]), lab_nodes()[0]) is None


def test_not_ready_node_is_kept_off_by_the_not_ready_taint():
    status = run_filters(pod(), NodeInfo(node("worker", ready="False")))
    assert status.reasons == ["node(s) had untolerated taint {node.kubernetes.io/not-ready: }"]


def test_cordoned_node_is_unschedulable():
    assert run_filters(pod(), NodeInfo(node("worker", unschedulable=True))).reasons == ["node(s) were unschedulable"]


def test_node_selector_and_required_node_affinity():
    ni = NodeInfo(node("worker", labels={"disk": "ssd", "gen": "3"}))
    assert filter_node_affinity(pi(nodeSelector={"disk": "ssd"}), ni) is None
    assert filter_node_affinity(pi(nodeSelector={"disk": "hdd"}), ni).reasons == [
        "node(s) didn't match Pod's node affinity/selector"]
    affinity = lambda *exprs: {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
        "nodeSelectorTerms": [{"matchExpressions": list(exprs)}]}}}
    assert filter_node_affinity(pi(affinity=affinity({"key": "gen", "operator": "Gt", "values": ["2"]})), ni) is None
    assert filter_node_affinity(pi(affinity=affinity({"key": "disk", "operator": "NotIn", "values": ["ssd"]})), ni)
    by_name = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["worker"]}]}]}}}
    assert filter_node_affinity(pi(affinity=by_name), ni) is None


def test_resources_fit_counts_bound_pods_and_knows_unresolvable():
    ni = NodeInfo(node("worker", cpu="2"))
    ni.add_pod("default/a", pod("a", requests={"cpu": "1500m"}))
    status = filter_resources_fit(pi(requests={"cpu": "1"}), ni)
    assert (status.code, status.reasons) == (UNSCHEDULABLE, ["Insufficient cpu"])
    status = filter_resources_fit(pi(requests={"cpu": "1000", "memory": "1Ti"}), ni)
    assert (status.code, status.reasons) == (UNRESOLVABLE, ["Insufficient cpu", "Insufficient memory"])
    full = NodeInfo(node("worker", pods="1"))
    full.add_pod("default/a", pod("a"))
    assert filter_resources_fit(pi(), full).reasons == ["Too many pods"]


def test_node_ports_keep_two_pods_with_one_host_port_apart():
    def with_ports(name: str, *ports: dict) -> dict:
        p = pod(name)
        p["spec"]["containers"][0]["ports"] = list(ports)
        return p
    ni = NodeInfo(node("worker"))
    ni.add_pod("default/a", with_ports("a", {"containerPort": 80, "hostPort": 8081, "protocol": "TCP"}))
    status = filter_node_ports(PodInfo.of(with_ports("b", {"containerPort": 80, "hostPort": 8081})), ni)
    assert (status.code, status.reasons) == (UNSCHEDULABLE, ["node(s) didn't have free ports for the requested pod ports"])
    for free in ({"containerPort": 80, "hostPort": 8082}, {"containerPort": 53, "hostPort": 8081, "protocol": "UDP"},
                 {"containerPort": 80}):
        assert filter_node_ports(PodInfo.of(with_ports("c", free)), ni) is None
    pinned = NodeInfo(node("worker"))
    pinned.add_pod("default/a", with_ports("a", {"containerPort": 80, "hostPort": 8081, "hostIP": "172.30.0.3"}))
    assert filter_node_ports(PodInfo.of(with_ports("d", {"containerPort": 80, "hostPort": 8081,
                                                         "hostIP": "172.30.0.4"})), pinned) is None
    assert filter_node_ports(PodInfo.of(with_ports("e", {"containerPort": 80, "hostPort": 8081})), pinned) is not None


# -- scheduling and messages ------------------------------------------------------------
def test_pods_land_on_workers_only():
    infos = lab_nodes()
    assert schedule(pod(), infos) in ("worker", "worker2")


def test_four_pods_of_one_owner_split_two_and_two():
    cache = SchedulerCache()
    for n in lab_nodes():
        cache.set_node(n.node)
    placed = []
    for i in range(4):
        p = pod(f"web-{i}", owner="rs-uid")
        target = schedule(p, cache.node_infos())
        cache.assume(p, target)
        placed.append(target)
    assert sorted(placed) == ["worker", "worker", "worker2", "worker2"]


def test_burst_of_fifty_is_spread_through_assumed_pods():
    cache = SchedulerCache()
    for n in lab_nodes():
        cache.set_node(n.node)
    for i in range(50):
        p = pod(f"p{i}", requests={"cpu": "10m"})
        cache.assume(p, schedule(p, cache.node_infos()))
    counts = {ni.name: len(ni.pods) for ni in cache.node_infos()}
    assert counts == {"control-plane": 0, "worker": 25, "worker2": 25}


def test_fit_error_wording_matches_kube_scheduler():
    infos = [NodeInfo(node("control-plane", taints=[CP_TAINT])), NodeInfo(node("worker", memory="1Gi")),
             NodeInfo(node("worker2", memory="1Gi"))]
    for ni in infos[1:]:
        ni.add_pod("default/big", pod("big", requests={"memory": "900Mi"}))
    with pytest.raises(FitError) as err:
        schedule(pod(requests={"memory": "512Mi"}), infos)
    assert str(err.value) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 Insufficient memory. preemption: 0/3 nodes are available: "
        "1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.")


def test_request_bigger_than_any_node_says_preemption_is_not_helpful():
    with pytest.raises(FitError) as err:
        schedule(pod(requests={"cpu": "1000"}), lab_nodes())
    assert str(err.value) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 Insufficient cpu. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")


def test_missing_label_and_no_nodes_and_preemption_policy_never():
    with pytest.raises(FitError) as err:
        schedule(pod(nodeSelector={"disktype": "ssd"}), lab_nodes())
    assert str(err.value) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 node(s) didn't match Pod's node affinity/selector. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.")
    with pytest.raises(FitError, match="^no nodes available to schedule pods$"):
        schedule(pod(), [])
    with pytest.raises(FitError, match=r"preemption: not eligible due to preemptionPolicy=Never\.$"):
        schedule(pod(requests={"cpu": "1000"}, preemptionPolicy="Never"), lab_nodes())


def test_tolerating_pod_with_selector_lands_on_the_control_plane():
    p = pod(tolerations=[CP_TOLERATION], nodeSelector={"node-role.kubernetes.io/control-plane": ""})
    assert schedule(p, lab_nodes()) == "control-plane"


# -- cache ------------------------------------------------------------------------------
def test_cache_confirms_assumptions_forgets_failures_and_frees_finished_pods():
    cache = SchedulerCache()
    cache.set_node(node("worker"))
    p = pod("a", requests={"cpu": "1"})
    cache.assume(p, "worker")
    cache.update_pod(p)  # the informer still sees it unbound: the assumption stays
    assert cache.node_info("worker").requested.milli_cpu == 1000 and cache.is_assumed("default/a")
    bound = {**p, "spec": {**p["spec"], "nodeName": "worker"}}
    cache.update_pod(bound)
    assert not cache.is_assumed("default/a") and cache.node_info("worker").requested.milli_cpu == 1000
    cache.update_pod({**bound, "status": {"phase": "Succeeded"}})
    assert cache.node_info("worker").requested.milli_cpu == 0 and not cache.node_info("worker").pods
    q = pod("b", requests={"cpu": "1"})
    cache.assume(q, "worker")
    cache.forget(q)
    assert cache.node_info("worker").requested.milli_cpu == 0


def test_node_added_after_its_pods_counts_them():
    cache = SchedulerCache()
    bound = pod("a", requests={"cpu": "1"}, nodeName="worker")
    cache.update_pod(bound)
    cache.set_node(node("worker"))
    assert cache.node_info("worker").requested.milli_cpu == 1000


# -- controller helpers -----------------------------------------------------------------
def test_which_pods_are_queued():
    assert wants_scheduling(pod())
    assert not wants_scheduling(pod(nodeName="worker"))
    assert not wants_scheduling(pod(schedulerName="my-scheduler"))
    gone = pod()
    gone["metadata"]["deletionTimestamp"] = "2026-11-30T00:00:00Z"
    assert not wants_scheduling(gone)


def test_heartbeats_do_not_change_the_node_signature_but_taints_do():
    a = node("worker")
    b = node("worker")
    b["status"]["conditions"][0]["lastHeartbeatTime"] = "later"
    assert node_signature(a) == node_signature(b)
    assert node_signature(a) != node_signature(node("worker", ready="False"))


def test_unschedulable_condition_is_written_once_per_message():
    p = pod()
    conditions = unschedulable_condition(p, "0/3 nodes are available: x.")
    assert conditions[-1]["type"] == "PodScheduled" and conditions[-1]["reason"] == "Unschedulable"
    p["status"]["conditions"] = conditions
    assert unschedulable_condition(p, "0/3 nodes are available: x.") is None
    assert unschedulable_condition(p, "other")[-1]["lastTransitionTime"] == conditions[-1]["lastTransitionTime"]
