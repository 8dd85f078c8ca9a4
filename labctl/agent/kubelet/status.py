"""Pod status as the kubelet computes it: container states, phase, conditions, QoS.

Pure functions of what the pod worker observed in Docker (:class:`ContainerView`),
so every rule — when a crashing container makes the pod ``Running`` and when
``Failed``, which condition flips when — is unit-tested without a cluster. The rules
follow the kubelet's ``getPhase`` and ``generateAPIPodStatus``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...kube.quantity import parse_quantity
from .runtime import ContainerRecord

TERMINAL_PHASES = ("Succeeded", "Failed")


@dataclass
class ContainerView:
    """What the worker knows about one container of the spec."""

    name: str
    image: str                               # the spec's image
    latest: ContainerRecord | None = None    # newest Docker instance
    previous: ContainerRecord | None = None  # the instance before it (kept for `logs --previous`)
    waiting_reason: str = ""                 # e.g. ErrImagePull, CrashLoopBackOff (overrides "exited")
    waiting_message: str = ""
    ready: bool = False                      # readiness probe verdict (True when there is no probe)


def terminated_state(record: ContainerRecord) -> dict:
    reason = "OOMKilled" if record.oom_killed else ("Completed" if record.exit_code == 0 else "Error")
    state = {"exitCode": record.exit_code, "reason": reason, "startedAt": record.started_at or None,
             "finishedAt": record.finished_at or None, "containerID": f"docker://{record.id}"}
    if record.error:
        state["message"] = record.error
    return {"terminated": state}


def container_status(view: ContainerView) -> dict:
    """One ``containerStatuses`` entry."""
    latest, previous = view.latest, view.previous
    status = {"name": view.name, "image": view.image, "imageID": "", "ready": False, "started": False,
              "restartCount": latest.attempt if latest else 0, "state": {}, "lastState": {}}
    if latest is None:
        status["state"] = {"waiting": _waiting(view.waiting_reason or "ContainerCreating", view.waiting_message)}
        return status
    status["containerID"] = f"docker://{latest.id}"
    status["imageID"] = f"docker://{latest.image_id}" if latest.image_id else ""
    if latest.running:
        status["state"] = {"running": {"startedAt": latest.started_at}}
        status["started"] = True
        status["ready"] = view.ready
        if previous is not None and previous.exited:
            status["lastState"] = terminated_state(previous)
    elif view.waiting_reason:
        status["state"] = {"waiting": _waiting(view.waiting_reason, view.waiting_message)}
        if latest.exited:
            status["lastState"] = terminated_state(latest)
    elif latest.exited:
        status["state"] = terminated_state(latest)
        if previous is not None and previous.exited:
            status["lastState"] = terminated_state(previous)
    else:  # created, not yet started
        status["state"] = {"waiting": _waiting("ContainerCreating", "")}
    return status


def _waiting(reason: str, message: str) -> dict:
    return {"reason": reason, **({"message": message} if message else {})}


def pod_phase(restart_policy: str, statuses: list[dict]) -> str:
    """The kubelet's ``getPhase`` for a pod without init containers."""
    pending = running = stopped = succeeded = 0
    for status in statuses:
        state, last = status["state"], status.get("lastState") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"]["exitCode"] == 0
        elif "waiting" in state and "terminated" in last:
            stopped += 1  # between restarts: it ran before
            succeeded += last["terminated"]["exitCode"] == 0
        else:
            pending += 1
    if pending:
        return "Pending"
    if running:
        return "Running"
    if stopped:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if restart_policy == "Never" else "Running"
    return "Pending"


def pod_conditions(phase: str, statuses: list[dict], sandbox_ready: bool, old: list[dict], now: str) -> list[dict]:
    """PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled, with stable transition times."""
    previous = {cond["type"]: cond for cond in old or []}

    def cond(typ: str, ok: bool, reason: str = "", message: str = "") -> dict:
        status = "True" if ok else "False"
        before = previous.get(typ)
        since = before["lastTransitionTime"] if before and before.get("status") == status else now
        out = {"type": typ, "status": status, "lastProbeTime": None, "lastTransitionTime": since}
        if reason:
            out["reason"] = reason
        if message:
            out["message"] = message
        return out

    not_ready = [s["name"] for s in statuses if not s["ready"]]
    if phase in TERMINAL_PHASES:
        ready, reason, message = False, "PodCompleted", ""
    elif not_ready:
        ready, reason = False, "ContainersNotReady"
        message = f"containers with unready status: [{' '.join(not_ready)}]"
    else:
        ready, reason, message = True, "", ""
    return [
        cond("PodReadyToStartContainers", sandbox_ready),
        cond("Initialized", True, "PodCompleted" if phase in TERMINAL_PHASES else ""),
        cond("Ready", ready, reason, message),
        cond("ContainersReady", ready, reason, message),
        cond("PodScheduled", True),
    ]


def qos_class(pod: dict) -> str:
    """Guaranteed (limits = requests for cpu and memory everywhere), BestEffort (none), else Burstable."""
    containers = (pod.get("spec") or {}).get("containers") or []
    any_set, guaranteed = False, True
    for container in containers:
        resources = container.get("resources") or {}
        limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
        any_set = any_set or bool(limits) or bool(requests)
        for resource in ("cpu", "memory"):
            if resource not in limits:
                guaranteed = False
            elif resource in requests and parse_quantity(requests[resource]) != parse_quantity(limits[resource]):
                guaranteed = False
    if not any_set:
        return "BestEffort"
    return "Guaranteed" if guaranteed and containers else "Burstable"


def build_pod_status(pod: dict, views: list[ContainerView], *, pod_ip: str, host_ip: str, start_time: str,
                     sandbox_ready: bool, now: str) -> dict:
    """The whole ``status`` the kubelet writes for ``pod``."""
    statuses = [container_status(v) for v in views]
    phase = pod_phase((pod.get("spec") or {}).get("restartPolicy", "Always"), statuses)
    old = pod.get("status") or {}
    status = {
        "phase": phase,
        "conditions": pod_conditions(phase, statuses, sandbox_ready, old.get("conditions") or [], now),
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "startTime": start_time or old.get("startTime") or now,
        "containerStatuses": statuses,
        "qosClass": qos_class(pod),
    }
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    elif old.get("podIP"):
        status["podIP"], status["podIPs"] = old["podIP"], old.get("podIPs") or [{"ip": old["podIP"]}]
    return status
