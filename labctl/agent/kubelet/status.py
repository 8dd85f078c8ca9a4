"""Pod status as the kubelet computes it: container states, phase, conditions, QoS.

Pure functions of what the pod worker observed in Docker (:class:`ContainerView`),
so every rule — when a crashing container makes the pod ``Running`` and when
``Failed``, which condition flips when, what an init container that has not run yet
says — is unit-tested without a cluster. The rules follow the kubelet's ``getPhase``,
``GeneratePodInitializedCondition`` and ``generateAPIPodStatus``, because
``kubectl get pods`` derives ``Init:0/2`` and ``PodInitializing`` from exactly these
fields (:func:`labctl.kube.printers.pod_status`).
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
    ready: bool = False                      # readiness probe verdict (True when there is no probe);
                                             # for a regular init container: it completed
    startup_passed: bool = True              # the startupProbe succeeded (True when there is none)
    default_reason: str = "ContainerCreating"  # PodInitializing in a pod with init containers


#: the start time of a container that never ran: containerd's zero, which the kubelet turns into the epoch
NEVER_STARTED = "1970-01-01T00:00:00Z"


def terminated_state(record: ContainerRecord) -> dict:
    started = record.started_at or None
    if record.start_error:
        reason, started = "StartError", NEVER_STARTED  # containerd's: it never ran
    else:
        reason = "OOMKilled" if record.oom_killed else ("Completed" if record.exit_code == 0 else "Error")
    state = {"exitCode": record.exit_code, "reason": reason, "startedAt": started,
             "finishedAt": record.finished_at or None, "containerID": f"docker://{record.id}"}
    if record.termination_message or record.error:
        state["message"] = record.termination_message or record.error
    return {"terminated": state}


def container_status(view: ContainerView) -> dict:
    """One ``containerStatuses`` (or ``initContainerStatuses``) entry."""
    latest, previous = view.latest, view.previous
    status = {"name": view.name, "image": view.image, "imageID": "", "ready": False, "started": False,
              "restartCount": latest.attempt if latest else 0, "state": {}, "lastState": {}}
    if latest is None:
        status["state"] = {"waiting": _waiting(view.waiting_reason or view.default_reason, view.waiting_message)}
        return status
    status["containerID"] = f"docker://{latest.id}"
    status["imageID"] = f"docker://{latest.image_id}" if latest.image_id else ""
    if latest.running:
        status["state"] = {"running": {"startedAt": latest.started_at}}
        status["started"] = view.startup_passed
        status["ready"] = view.ready and view.startup_passed
        if previous is not None and previous.exited:
            status["lastState"] = terminated_state(previous)
    elif view.waiting_reason:
        status["state"] = {"waiting": _waiting(view.waiting_reason, view.waiting_message)}
        if latest.exited:
            status["lastState"] = terminated_state(latest)
    elif latest.exited:
        status["state"] = terminated_state(latest)
        status["ready"] = view.ready and latest.exit_code == 0
        if previous is not None and previous.exited:
            status["lastState"] = terminated_state(previous)
    else:  # created, not yet started
        status["state"] = {"waiting": _waiting(view.default_reason, "")}
    return status


def _waiting(reason: str, message: str) -> dict:
    return {"reason": reason, **({"message": message} if message else {})}


def is_sidecar(container: dict) -> bool:
    """A restartable init container (``restartPolicy: Always`` on an init container, 1.33 GA)."""
    return container.get("restartPolicy") == "Always"


def pod_phase(spec: dict, statuses: list[dict], init_statuses: list[dict] | None = None) -> str:
    """The kubelet's ``getPhase``: init containers, sidecars, then the app containers."""
    restart_policy = spec.get("restartPolicy", "Always")
    by_name = {s["name"]: s for s in (init_statuses or [])}
    pending_init = pending_sidecars = failed_init = 0
    running = waiting = stopped = succeeded = unknown = 0
    for container in spec.get("initContainers") or []:
        status = by_name.get(container["name"])
        state, last = (status or {}).get("state") or {}, (status or {}).get("lastState") or {}
        if is_sidecar(container):
            if status is None:
                unknown += 1
            elif "running" in state:
                pending_sidecars += not status.get("started")
                running += 1
            elif "waiting" in state and "terminated" not in last:
                pending_sidecars += 1
            continue  # an exited sidecar counts for nothing
        if "terminated" in state:
            failed_init += state["terminated"]["exitCode"] != 0
        elif "waiting" in state and "terminated" in last:
            failed_init += last["terminated"]["exitCode"] != 0
        else:  # not yet run, running, or created
            pending_init += 1
    for status in statuses:
        state, last = status["state"], status.get("lastState") or {}
        if "running" in state:
            running += 1
        elif "terminated" in state:
            stopped += 1
            succeeded += state["terminated"]["exitCode"] == 0
        elif "waiting" in state and "terminated" in last:
            stopped += 1  # between restarts: it ran before
        elif "waiting" in state:
            waiting += 1
        else:
            unknown += 1
    if failed_init and restart_policy == "Never":
        return "Failed"
    initialized_before = _any_regular_started(statuses)
    if pending_init or (pending_sidecars and not initialized_before) or waiting:
        return "Pending"
    if running and not unknown:
        return "Running"
    if stopped and not running and not unknown:
        if restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        return "Failed" if restart_policy == "Never" else "Running"
    return "Pending"


def _any_regular_started(statuses: list[dict]) -> bool:
    """kubelet's ``HasAnyRegularContainerStarted``: the pod was initialized once."""
    return any("running" in s["state"] or "terminated" in s["state"] for s in statuses)


def initialized_condition(spec: dict, statuses: list[dict], init_statuses: list[dict],
                          phase: str) -> tuple[bool, str, str]:
    """kubelet's ``GeneratePodInitializedCondition``: (status, reason, message)."""
    by_name = {s["name"]: s for s in init_statuses}
    unknown, incomplete = [], []
    for container in spec.get("initContainers") or []:
        status = by_name.get(container["name"])
        if status is None:
            unknown.append(container["name"])
        elif is_sidecar(container):
            if not status.get("started"):
                incomplete.append(container["name"])
        elif (status["state"].get("terminated") or {"exitCode": 1})["exitCode"] != 0:
            incomplete.append(container["name"])
    if phase == "Succeeded" and not unknown:
        return True, "PodCompleted", ""
    if _any_regular_started(statuses):
        return True, "", ""
    messages = []
    if unknown:
        messages.append(f"containers with unknown status: [{' '.join(unknown)}]")
    if incomplete:
        messages.append(f"containers with incomplete status: [{' '.join(incomplete)}]")
    if messages:
        return False, "ContainersNotInitialized", ", ".join(messages)
    return True, "", ""


def pod_conditions(phase: str, statuses: list[dict], sandbox_ready: bool, old: list[dict], now: str,
                   initialized: tuple[bool, str, str] = (True, "", "")) -> list[dict]:
    """PodReadyToStartContainers, Initialized, Ready, ContainersReady, PodScheduled, with stable transition times.

    ``statuses`` are the containers whose readiness counts: sidecars first, then the app containers.
    """
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
        cond("Initialized", *initialized),
        cond("Ready", ready, reason, message),
        cond("ContainersReady", ready, reason, message),
        cond("PodScheduled", True),
    ]


def qos_class(pod: dict) -> str:
    """Guaranteed (limits = requests for cpu and memory everywhere, init containers too), BestEffort (none),
    else Burstable."""
    spec = pod.get("spec") or {}
    containers = (spec.get("initContainers") or []) + (spec.get("containers") or [])
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
                     sandbox_ready: bool, now: str, init_views: list[ContainerView] | None = None) -> dict:
    """The whole ``status`` the kubelet writes for ``pod``."""
    spec = pod.get("spec") or {}
    statuses = [container_status(v) for v in views]
    init_statuses = [container_status(v) for v in init_views or []]
    phase = pod_phase(spec, statuses, init_statuses)
    old = pod.get("status") or {}
    sidecars = {c["name"] for c in spec.get("initContainers") or [] if is_sidecar(c)}
    readiness = [s for s in init_statuses if s["name"] in sidecars] + statuses
    initialized = initialized_condition(spec, statuses, init_statuses, phase)
    status = {
        "phase": phase,
        "conditions": pod_conditions(phase, readiness, sandbox_ready, old.get("conditions") or [], now, initialized),
        "hostIP": host_ip, "hostIPs": [{"ip": host_ip}],
        "startTime": start_time or old.get("startTime") or now,
        "containerStatuses": statuses,
        "qosClass": qos_class(pod),
    }
    if init_statuses:
        status["initContainerStatuses"] = init_statuses
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    elif old.get("podIP"):
        status["podIP"], status["podIPs"] = old["podIP"], old.get("podIPs") or [{"ip": old["podIP"]}]
    return status
