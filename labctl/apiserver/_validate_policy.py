"""PodDisruptionBudget validation: kube's ``ValidatePodDisruptionBudget`` (``pkg/apis/policy/validation``).

Field paths and messages are upstream's: ``minAvailable`` and ``maxUnavailable`` are
exclusive, each an integer of at least 0 or a percentage of at most 100%, the selector a
valid label selector, ``unhealthyPodEvictionPolicy`` one of the two policies; the status
counters the disruption controller writes may not go below 0.
"""

from __future__ import annotations

from typing import Any

from labctl.apiserver._validate_common import as_dict, nonnegative, validate_label_selector
from labctl.apiserver.errors import FieldError, invalid, not_supported
from labctl.kube import validators as v

__all__ = ["UNHEALTHY_POD_EVICTION_POLICIES", "validate_pdb", "validate_pdb_status"]

Obj = dict[str, Any]
UNHEALTHY_POD_EVICTION_POLICIES = ["AlwaysAllow", "IfHealthyBudget"]


def validate_pdb(pdb: Obj) -> list[FieldError]:
    """ValidatePodDisruptionBudgetSpec on ``spec``."""
    spec = as_dict(pdb.get("spec"))
    errs: list[FieldError] = []
    if spec.get("minAvailable") is not None and spec.get("maxUnavailable") is not None:
        errs.append(invalid("spec", spec, "minAvailable and maxUnavailable cannot be both set"))
    for key in ("minAvailable", "maxUnavailable"):
        if spec.get(key) is not None:
            errs += _positive_int_or_percent(spec[key], f"spec.{key}")
    errs += validate_label_selector(spec.get("selector"), "spec.selector")
    policy = spec.get("unhealthyPodEvictionPolicy")
    if policy is not None and policy not in UNHEALTHY_POD_EVICTION_POLICIES:
        errs.append(not_supported("spec.unhealthyPodEvictionPolicy", policy, UNHEALTHY_POD_EVICTION_POLICIES))
    return errs


def _positive_int_or_percent(value: Any, path: str) -> list[FieldError]:
    """ValidatePositiveIntOrPercent, then IsNotMoreThan100Percent."""
    if isinstance(value, str):
        msgs = v.is_valid_percent(value)
        if msgs:
            return [invalid(path, value, "must be an integer or percentage (e.g '5%')")]
        return [invalid(path, value, "must not be greater than 100%")] if int(value[:-1]) > 100 else []
    return nonnegative(value, path)


def validate_pdb_status(pdb: Obj) -> list[FieldError]:
    """ValidatePodDisruptionBudgetStatusUpdate: the counters are never negative."""
    status = as_dict(pdb.get("status"))
    errs: list[FieldError] = []
    for key in ("disruptionsAllowed", "currentHealthy", "desiredHealthy", "expectedPods"):
        if status.get(key) is not None:
            errs += nonnegative(status[key], f"status.{key}")
    return errs
