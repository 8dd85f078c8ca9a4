"""PodDisruptionBudget vocabulary shared by the eviction subresource and the disruption controller,
and the ``DisruptionTarget`` condition the eviction subresource and the scheduler's preemption set.

``pdbhelper.UpdateDisruptionAllowedCondition``: both writers of a budget's status keep its
``DisruptionAllowed`` condition in step with ``disruptionsAllowed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .meta import timestamp

DISRUPTION_ALLOWED = "DisruptionAllowed"
SUFFICIENT_PODS = "SufficientPods"
INSUFFICIENT_PODS = "InsufficientPods"
SYNC_FAILED = "SyncFailed"


def set_disruption_allowed_condition(status: dict[str, Any], reason: str | None = None, message: str = "") -> None:
    """Set ``DisruptionAllowed``: True (SufficientPods) when a disruption is allowed, else False.

    ``reason`` overrides the False reason (``SyncFailed`` when the controller could not compute
    the budget). The transition time moves only when the status changes, as ``meta.SetStatusCondition``.
    """
    allowed = int(status.get("disruptionsAllowed") or 0) > 0 and reason is None
    condition = {"type": DISRUPTION_ALLOWED, "status": "True" if allowed else "False",
                 "reason": SUFFICIENT_PODS if allowed else (reason or INSUFFICIENT_PODS), "message": message,
                 "observedGeneration": int(status.get("observedGeneration") or 0)}
    old = next((c for c in status.get("conditions") or [] if c.get("type") == DISRUPTION_ALLOWED), None)
    kept = old.get("lastTransitionTime") if old is not None and old.get("status") == condition["status"] else None
    condition["lastTransitionTime"] = kept or timestamp()
    status["conditions"] = [*(c for c in status.get("conditions") or [] if c.get("type") != DISRUPTION_ALLOWED),
                            condition]


def disruption_target_conditions(pod: Mapping[str, Any], reason: str, message: str) -> list[dict[str, Any]]:
    """The pod's conditions with ``DisruptionTarget=True`` (why it is about to be deleted) replacing any older one."""
    conditions = [c for c in (pod.get("status") or {}).get("conditions") or [] if c.get("type") != "DisruptionTarget"]
    return [*conditions, {"type": "DisruptionTarget", "status": "True", "lastProbeTime": None,
                          "lastTransitionTime": timestamp(), "reason": reason, "message": message}]
