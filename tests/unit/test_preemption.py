"""DefaultPreemption's dry run: which node to free and which lower-priority pods to evict there."""

from __future__ import annotations

import pytest

from labctl.controllers._scheduling import FitError, NodeInfo, schedule

CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


def node(name: str) -> dict:
    return {"metadata": {"name": name, "labels": {"kubernetes.io/hostname": name}},
            "spec": {"taints": [CP_TAINT] if name == "control-plane" else []},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, cpu: str, priority: int = 0, **spec) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"},
            "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": cpu}}}],
                     "priority": priority, **spec}}


def lab(**placed: list[dict]) -> list[NodeInfo]:
    infos = [NodeInfo(node("control-plane")), NodeInfo(node("worker")), NodeInfo(node("worker2"))]
    for ni in infos:
        for p in placed.get(ni.name, []):
            ni.add_pod(f"default/{p['metadata']['name']}", p)
    return infos


def victims(err: FitError) -> tuple[str, list[str]]:
    assert err.preemption is not None, str(err)
    return err.preemption.node, [v.pod["metadata"]["name"] for v in err.preemption.victims]


def test_a_higher_priority_pod_evicts_the_lowest_it_needs_and_says_no_preemption_part():
    infos = lab(worker=[pod("low-1", "1500m", 1)], worker2=[pod("low-2", "1500m", 5)])
    with pytest.raises(FitError) as err:
        schedule(pod("high", "1", 100), infos)
    assert victims(err.value) == ("worker", ["low-1"])  # the node whose victim matters least
    assert str(err.value) == ("0/3 nodes are available: 1 node(s) had untolerated taint "
                              "{node-role.kubernetes.io/control-plane: }, 2 Insufficient cpu.")


def test_the_more_important_pods_are_reprieved_when_room_allows():
    infos = lab(worker=[pod("keep", "800m", 50), pod("evict", "800m", 10)],
                worker2=[pod("big", "1900m", 60)])
    with pytest.raises(FitError) as err:
        schedule(pod("high", "1", 100), infos)
    assert victims(err.value) == ("worker", ["evict"])


def test_equal_or_higher_priority_pods_are_never_victims():
    infos = lab(worker=[pod("same", "1500m", 100)], worker2=[pod("higher", "1500m", 200)])
    with pytest.raises(FitError) as err:
        schedule(pod("high", "1", 100), infos)
    assert err.value.preemption is None
    assert str(err.value).endswith("preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
                                   "2 No preemption victims found for incoming pod.")


def test_when_evicting_every_lower_pod_is_not_enough_the_reasons_are_given():
    infos = lab(worker=[pod("low", "500m", 1), pod("same", "1400m", 100)], worker2=[pod("higher", "1500m", 200)])
    with pytest.raises(FitError) as err:
        schedule(pod("high", "1", 100), infos)
    assert err.value.preemption is None
    assert str(err.value).endswith("preemption: 0/3 nodes are available: 1 Insufficient cpu, "
                                   "1 No preemption victims found for incoming pod, "
                                   "1 Preemption is not helpful for scheduling.")


def test_never_and_a_preemption_under_way_do_not_evict():
    infos = lab(worker=[pod("low-1", "1500m", 1)], worker2=[pod("low-2", "1500m", 1)])
    with pytest.raises(FitError, match=r"preemption: not eligible due to preemptionPolicy=Never\.$"):
        schedule(pod("high", "1", 100, preemptionPolicy="Never"), infos)
    going = pod("low-1", "1500m", 1)
    going["metadata"]["deletionTimestamp"] = "2026-12-07T12:00:00Z"
    infos = lab(worker=[going], worker2=[pod("low-2", "1500m", 1)])
    waiting = {**pod("high", "1", 100), "status": {"nominatedNodeName": "worker"}}
    with pytest.raises(FitError, match=r"preemption: not eligible due to a terminating pod on the nominated node\.$"):
        schedule(waiting, infos)
