"""A pod worker does not re-sync on the API server's echo of its own status write."""

from __future__ import annotations

import copy
from types import SimpleNamespace

from labctl.agent.kubelet.podworker import PodWorker
from labctl.agent.kubelet.volumes import NodeVolumes

POD = {"metadata": {"name": "web", "namespace": "default", "uid": "u1", "resourceVersion": "5"},
       "spec": {"nodeName": "worker", "containers": [{"name": "nginx", "image": "nginx"}]},
       "status": {"phase": "Pending", "qosClass": "BestEffort"}}
WRITTEN = {"phase": "Running", "podIP": "10.244.1.5",
           "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-07T12:00:00Z"}]}


def worker() -> PodWorker:
    w = PodWorker(SimpleNamespace(volumes=NodeVolumes()), copy.deepcopy(POD))  # type: ignore[arg-type]
    w._wake.clear()
    w.last_status = copy.deepcopy(WRITTEN)
    return w


def echoed(**changes: object) -> dict:
    pod = copy.deepcopy(POD)
    pod["metadata"]["resourceVersion"] = "6"
    pod["status"] = {**pod["status"], **copy.deepcopy(WRITTEN)}  # a merge patch keeps qosClass
    pod.update(changes)
    return pod


def test_the_echo_of_its_own_status_does_not_wake_the_worker():
    w = worker()
    w.update(echoed())
    assert not w._wake.is_set()
    assert w.pod["metadata"]["resourceVersion"] == "6"  # the worker still holds the newest object


def test_a_status_someone_else_changed_wakes_the_worker():
    w = worker()
    status = copy.deepcopy(WRITTEN)
    status["conditions"][0]["status"] = "Unknown"  # the node lifecycle controller
    w.update(echoed(status={**POD["status"], **status}))
    assert w._wake.is_set()


def test_a_spec_or_metadata_change_wakes_the_worker():
    w = worker()
    pod = echoed()
    pod["metadata"]["deletionTimestamp"] = "2026-12-07T12:00:05Z"
    w.update(pod)
    assert w._wake.is_set()


def test_before_any_status_write_every_update_wakes():
    w = worker()
    w.last_status = None
    w.update(echoed())
    assert w._wake.is_set()
