"""Pod readiness, availability and the scale-down order, ported from Kubernetes.

``IsPodReady`` / ``IsPodAvailable`` (``pkg/api/v1/pod``) and ``ActivePodsWithRanks`` /
``FilterActivePods`` (``pkg/controller/controller_utils.go``) decide the numbers a student
reads in ``kubectl get rs`` (READY, AVAILABLE) and *which* pods a scale-down removes, so
they are kept as close to the Go code as Python allows. Pure functions: unit-tested.
"""

from __future__ import annotations

import datetime as dt
import functools
import math

from ..kube.meta import now as utcnow
from ..kube.meta import parse_time
from ..kube.objects import get_condition, pod_is_ready

PHASE_ORDINAL = {"Pending": 0, "Unknown": 1, "Running": 2}
DELETION_COST_ANNOTATION = "controller.kubernetes.io/pod-deletion-cost"


def pod_ready_time(pod: dict) -> dt.datetime | None:
    """When the pod last became Ready (the Ready condition's lastTransitionTime)."""
    ready = get_condition(pod, "Ready")
    if ready is None or ready.get("status") != "True":
        return None
    return parse_time(ready.get("lastTransitionTime"))


def is_pod_available(pod: dict, min_ready_seconds: int, now: dt.datetime) -> bool:
    """Ready for at least ``minReadySeconds`` (``podutil.IsPodAvailable``)."""
    if not pod_is_ready(pod):
        return False
    if min_ready_seconds == 0:
        return True
    since = pod_ready_time(pod)
    return since is not None and since + dt.timedelta(seconds=min_ready_seconds) < now


#: How far past ``readySince + minReadySeconds`` a check is scheduled: availability is a
#: strict ``<`` (``IsPodAvailable``), so a check at the exact moment would still say no.
AVAILABLE_MARGIN_S = 0.01


def next_available_in(pods: list[dict], min_ready_seconds: int, now: dt.datetime) -> float | None:
    """Seconds until the first Ready-but-not-yet-available pod becomes available, or None.

    What a controller waits for with ``AddAfter``: the exact moment, not a resync period,
    so a rollout with ``minReadySeconds`` goes on the instant a new pod counts as available.
    """
    if min_ready_seconds <= 0:
        return None
    waits = []
    for pod in pods:
        since = pod_ready_time(pod)
        if since is None or is_pod_available(pod, min_ready_seconds, now):
            continue
        waits.append((since + dt.timedelta(seconds=min_ready_seconds) - now).total_seconds())
    return max(0.0, min(waits)) + AVAILABLE_MARGIN_S if waits else None


def is_pod_active(pod: dict) -> bool:
    """Not finished and not being deleted (``controller.IsPodActive``)."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def filter_active_pods(pods: list[dict]) -> list[dict]:
    return [p for p in pods if is_pod_active(p)]


def max_container_restarts(pod: dict) -> int:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return max((int(s.get("restartCount") or 0) for s in statuses), default=0)


def deletion_cost(pod: dict) -> int:
    raw = (pod["metadata"].get("annotations") or {}).get(DELETION_COST_ANNOTATION)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        return 0


def _after_or_zero(t1: dt.datetime | None, t2: dt.datetime | None) -> bool:
    """Empty time < newer < older, as ``afterOrZero``."""
    if t1 is None or t2 is None:
        return t1 is None
    return t1 > t2


def _log_rank(t: dt.datetime, now: dt.datetime) -> int:
    nanos = (now - t) / dt.timedelta(microseconds=1) * 1000
    return int(math.log2(nanos)) if nanos > 0 else -1


def _log_compare(t1: dt.datetime | None, t2: dt.datetime | None, now: dt.datetime | None,
                 uid1: str, uid2: str) -> bool:
    """LogarithmicScaleDown: times in the same power-of-two age bucket count as equal (UID breaks ties)."""
    if now is None or t1 is None or t2 is None:
        return _after_or_zero(t1, t2)
    diff = _log_rank(t1, now) - _log_rank(t2, now)
    if diff == 0:
        return uid1 < uid2
    return diff < 0


def _less(a: dict, b: dict, rank_a: int, rank_b: int, now: dt.datetime | None) -> bool:
    """``ActivePodsWithRanks.Less``: True when ``a`` should be deleted before ``b``."""
    node_a, node_b = (a.get("spec") or {}).get("nodeName") or "", (b.get("spec") or {}).get("nodeName") or ""
    if node_a != node_b and (not node_a or not node_b):          # 1. unassigned < assigned
        return not node_a
    phase_a = PHASE_ORDINAL.get((a.get("status") or {}).get("phase") or "", 0)
    phase_b = PHASE_ORDINAL.get((b.get("status") or {}).get("phase") or "", 0)
    if phase_a != phase_b:                                         # 2. Pending < Unknown < Running
        return phase_a < phase_b
    ready_a, ready_b = pod_is_ready(a), pod_is_ready(b)
    if ready_a != ready_b:                                         # 3. not ready < ready
        return not ready_a
    if deletion_cost(a) != deletion_cost(b):                       # 4. lower deletion cost first
        return deletion_cost(a) < deletion_cost(b)
    if rank_a != rank_b:                                           # 5. doubled up on a node first
        return rank_a > rank_b
    uid_a, uid_b = a["metadata"].get("uid", ""), b["metadata"].get("uid", "")
    if ready_a and ready_b:                                        # 6. most recently ready first
        t_a, t_b = pod_ready_time(a), pod_ready_time(b)
        if t_a != t_b:
            return _log_compare(t_a, t_b, now, uid_a, uid_b)
    if max_container_restarts(a) != max_container_restarts(b):     # 7. more restarts first
        return max_container_restarts(a) > max_container_restarts(b)
    c_a, c_b = parse_time(a["metadata"].get("creationTimestamp")), parse_time(b["metadata"].get("creationTimestamp"))
    if c_a != c_b:                                                 # 8. newest first
        return _log_compare(c_a, c_b, now, uid_a, uid_b)
    return False


def rank_pods_for_deletion(pods: list[dict], related: list[dict], now: dt.datetime | None = None) -> list[dict]:
    """Sort ``pods`` so the first ones are the ones a ReplicaSet deletes first on scale-down.

    ``related`` are the active pods of this ReplicaSet and of its siblings (same owning
    Deployment): a pod sharing its node with more of them ranks higher, so a scale-down
    spreads what is left (``getPodsRankedByRelatedPodsOnSameNode``).
    """
    per_node: dict[str, int] = {}
    for pod in related:
        if is_pod_active(pod):
            node = (pod.get("spec") or {}).get("nodeName") or ""
            per_node[node] = per_node.get(node, 0) + 1
    ranked = [(pod, per_node.get((pod.get("spec") or {}).get("nodeName") or "", 0)) for pod in pods]

    def cmp(x: tuple[dict, int], y: tuple[dict, int]) -> int:
        if _less(x[0], y[0], x[1], y[1], now):
            return -1
        if _less(y[0], x[0], y[1], x[1], now):
            return 1
        return 0

    return [pod for pod, _ in sorted(ranked, key=functools.cmp_to_key(cmp))]


def pods_to_delete(active: list[dict], related: list[dict], count: int, now: dt.datetime | None = None) -> list[dict]:
    """The ``count`` pods a scale-down removes (``getPodsToDelete``)."""
    if count < len(active):
        active = rank_pods_for_deletion(active, related, now or utcnow())
    return active[:count]
