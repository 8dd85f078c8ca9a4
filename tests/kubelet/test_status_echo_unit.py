"""A pod worker does not re-sync on the echo of its own doings: its status write (from the API server),
its container starts (from Docker's events)."""

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


def test_the_echo_that_overtakes_the_patch_answer_does_not_wake_the_worker():
    w = worker()
    w.last_status = {"phase": "Pending"}  # the previous write
    w.sending_status = copy.deepcopy(WRITTEN)  # its PATCH sent, the answer not read yet
    w.update(echoed())
    assert not w._wake.is_set()


def test_before_any_status_write_every_update_wakes():
    w = worker()
    w.last_status = None
    w.update(echoed())
    assert w._wake.is_set()


def test_the_docker_start_event_of_a_container_it_started_does_not_wake_the_worker():
    w = worker()
    w.own_starts.add("c1")  # what PodWorker.start records before it calls Docker
    w.container_event("start", "c1")
    assert not w._wake.is_set() and not w.own_starts
    w.container_event("start", "c1")  # started again by someone else (docker start): news
    assert w._wake.is_set()


def test_other_docker_events_wake_the_worker():
    for action in ("die", "oom", "destroy"):
        w = worker()
        w.own_starts.add("c1")
        w.container_event(action, "c1")
        assert w._wake.is_set()
