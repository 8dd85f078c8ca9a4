"""The order of a pod's containers: init containers one by one, sidecars kept running, then the app.

A pure decision over what Docker holds (the kubelet's ``computeInitContainerActions``,
simplified to one step per sync): the pod worker acts on the plan, and the next Docker
event (the init container exited, a sidecar started) wakes it for the next step. So
``kubectl get pod`` walks ``Init:0/2`` → ``Init:1/2`` → ``PodInitializing`` → ``Running``
exactly as the containers really ran.

Rules, as upstream:

- a regular init container runs to completion before the next one is created; one that
  fails is restarted per the pod's ``restartPolicy`` (with the crash back-off), and with
  ``Never`` the pod fails;
- a sidecar (``restartPolicy: Always`` on an init container) is started in its turn and
  the next one waits only until it has *started* (postStart done, startupProbe passed),
  not until it exits; it is restarted whenever it exits;
- once an app container has run, the pod is initialized for good: regular init
  containers are not run again (until a new sandbox), sidecars are still kept running —
  unless every app container has finished for good, when sidecars are stopped instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .runtime import ContainerRecord
from .status import is_sidecar


def should_restart(restart_policy: str, exit_code: int) -> bool:
    """Whether an exited container of a pod with ``restart_policy`` runs again."""
    return restart_policy == "Always" or (restart_policy == "OnFailure" and exit_code != 0)


@dataclass
class InitPlan:
    """What the worker does in this sync."""

    start: list[dict] = field(default_factory=list)      # create, start or restart (with back-off) these
    stop: list[ContainerRecord] = field(default_factory=list)  # sidecars of a pod whose app has finished
    done: bool = False                                    # initialized: the app containers may run


def latest_record(instances: list[ContainerRecord] | None) -> ContainerRecord | None:
    """The newest Docker instance of a container (the list is oldest attempt first)."""
    return instances[-1] if instances else None


def app_finished(spec: dict, by_name: dict[str, list[ContainerRecord]]) -> bool:
    """Every app container exited and none will be restarted (the pod is about to complete)."""
    policy = spec.get("restartPolicy", "Always")
    records = [latest_record(by_name.get(c["name"])) for c in spec.get("containers") or []]
    return bool(records) and all(r is not None and r.exited and not should_restart(policy, r.exit_code)
                                 for r in records)


def plan_init(spec: dict, by_name: dict[str, list[ContainerRecord]],
              started: Callable[[ContainerRecord], bool]) -> InitPlan:
    """The next step of the init sequence; ``started(record)`` is the kubelet's ``started`` of a container."""
    plan = InitPlan()
    policy = spec.get("restartPolicy", "Always")
    initialized = any(by_name.get(c["name"]) for c in spec.get("containers") or [])
    finished = app_finished(spec, by_name)
    for container in spec.get("initContainers") or []:
        record = latest_record(by_name.get(container["name"]))
        if is_sidecar(container):
            if finished:
                if record is not None and record.running:
                    plan.stop.append(record)
                continue
            if record is None or not record.running:
                plan.start.append(container)
                if not initialized:
                    return plan
            elif not started(record) and not initialized:
                return plan  # wait for its startup before the next one
            continue
        if initialized:
            continue
        if record is None or not record.exited:
            if record is None or not record.running:
                plan.start.append(container)  # not created yet, or created and never started
            return plan
        if record.exit_code == 0:
            continue
        if policy != "Never":  # with Never the pod fails (status.pod_phase)
            plan.start.append(container)
        return plan
    plan.stop.reverse()  # sidecars stop in the reverse of their start order
    plan.done = True
    return plan
