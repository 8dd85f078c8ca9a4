"""Pod priority vocabulary: the built-in PriorityClasses and how a pod's priority is resolved.

Shared by the API server (the ``Priority`` admission plugin that writes ``spec.priority``, the
PriorityClass validation that reserves the ``system-`` names) and its bootstrap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

PREEMPT_LOWER_PRIORITY = "PreemptLowerPriority"
PREEMPT_NEVER = "Never"
PREEMPTION_POLICIES = (PREEMPT_LOWER_PRIORITY, PREEMPT_NEVER)

SYSTEM_PREFIX = "system-"
#: ``scheduling.HighestUserDefinablePriority``: above it only the system classes
HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000
#: ``scheduling.SystemCriticalPriority``
SYSTEM_CRITICAL_PRIORITY = 2 * HIGHEST_USER_DEFINABLE_PRIORITY

#: ``scheduling.SystemPriorityClasses()``: created by the API server at start, never deletable
SYSTEM_PRIORITY_CLASSES: dict[str, dict] = {
    "system-node-critical": {
        "value": SYSTEM_CRITICAL_PRIORITY + 1000,
        "description": "Used for system critical pods that must not be moved from their current node.",
    },
    "system-cluster-critical": {
        "value": SYSTEM_CRITICAL_PRIORITY,
        "description": "Used for system critical pods that must run in the cluster, but can be moved to another "
                       "node if necessary.",
    },
}


def system_class_error(name: str, value: object, global_default: object) -> str | None:
    """``IsKnownSystemPriorityClass``: why a ``system-`` class is not the built-in one, or None."""
    known = SYSTEM_PRIORITY_CLASSES.get(name)
    if known is None:
        return f"{name} is not a known system priority class"
    if value != known["value"]:
        return f"value of {name} PriorityClass must be {known['value']}"
    if bool(global_default):
        return f"globalDefault of {name} PriorityClass must be false"
    return None


@dataclass(frozen=True)
class ResolvedPriority:
    """What the Priority admission writes into a new pod's spec."""

    class_name: str
    value: int
    preemption_policy: str


def default_priority(classes: Iterable[Mapping]) -> ResolvedPriority:
    """``getDefaultPriority``: the globalDefault class (the lowest value if several), else 0."""
    defaults = [c for c in classes if c.get("globalDefault")]
    if not defaults:
        return ResolvedPriority("", 0, PREEMPT_LOWER_PRIORITY)
    best = min(defaults, key=lambda c: int(c.get("value") or 0))
    return of_class(best)


def of_class(pc: Mapping) -> ResolvedPriority:
    return ResolvedPriority((pc.get("metadata") or {}).get("name", ""), int(pc.get("value") or 0),
                            pc.get("preemptionPolicy") or PREEMPT_LOWER_PRIORITY)
