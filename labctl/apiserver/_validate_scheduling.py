"""ValidatePriorityClass and its update rules (scheduling.k8s.io/v1)."""

from __future__ import annotations

from typing import Any

from labctl.apiserver._validate_common import is_int
from labctl.apiserver.errors import FieldError, forbidden, invalid, not_supported
from labctl.kube.priority import HIGHEST_USER_DEFINABLE_PRIORITY, PREEMPTION_POLICIES, SYSTEM_PREFIX, system_class_error

Obj = dict[str, Any]
_INT32 = (-(2**31), 2**31 - 1)


def validate_priority_class(pc: Obj) -> list[FieldError]:
    """The ``system-`` names are reserved for the built-in classes; a user class stays at or below 10⁹."""
    name, value = str((pc.get("metadata") or {}).get("name") or ""), pc.get("value")
    if not is_int(value) or not _INT32[0] <= value <= _INT32[1]:
        return [invalid("value", value, "must be a 32-bit integer")]
    errs: list[FieldError] = []
    if name.startswith(SYSTEM_PREFIX):
        if reason := system_class_error(name, value, pc.get("globalDefault")):
            errs.append(forbidden("metadata.name", f"priority class names with '{SYSTEM_PREFIX}' prefix are reserved "
                                                   f"for system use only. error: {reason}"))
    elif value > HIGHEST_USER_DEFINABLE_PRIORITY:
        errs.append(forbidden("value", f"maximum allowed value of a user defined priority is "
                                       f"{HIGHEST_USER_DEFINABLE_PRIORITY}"))
    policy = pc.get("preemptionPolicy")
    if policy not in PREEMPTION_POLICIES:
        errs.append(not_supported("preemptionPolicy", policy, list(PREEMPTION_POLICIES)))
    return errs


def validate_priority_class_update(old: Obj, new: Obj) -> list[FieldError]:
    """``value`` and ``preemptionPolicy`` are fixed once created (pods already carry them)."""
    return [forbidden(key, "may not be changed in an update.") for key in ("value", "preemptionPolicy")
            if old.get(key) != new.get(key)]
