"""HorizontalPodAutoscaler validation: kube's ``ValidateHorizontalPodAutoscaler`` (``pkg/apis/autoscaling/validation``).

Upstream's field paths and messages for the scale target, the replica bounds, Resource
metrics and ``behavior``. Metric types the controller cannot compute (Pods, Object,
External, ContainerResource need a custom or external metrics API labctl does not serve)
are refused on the field rather than accepted and left ``<unknown>`` forever.
"""

from __future__ import annotations

from typing import Any

from labctl.apiserver._validate_common import as_dict, as_list, is_int
from labctl.apiserver.errors import FieldError, forbidden, invalid, not_supported, required
from labctl.kube.hpa import SUPPORTED_METRIC_TYPES, SUPPORTED_RESOURCES
from labctl.kube.quantity import parse_quantity

__all__ = ["validate_hpa", "validate_hpa_status"]

Obj = dict[str, Any]
METRIC_TYPES = ["ContainerResource", "External", "Object", "Pods", "Resource"]
TARGET_TYPES = ["AverageValue", "Utilization", "Value"]
POLICY_TYPES = ["Percent", "Pods"]
SELECT_POLICIES = ["Disabled", "Max", "Min"]
MAX_PERIOD_SECONDS = 1800
MAX_STABILIZATION_WINDOW_SECONDS = 3600


def validate_hpa(hpa: Obj) -> list[FieldError]:
    spec = as_dict(hpa.get("spec"))
    errs = _scale_target(as_dict(spec.get("scaleTargetRef")), "spec.scaleTargetRef")
    min_replicas = spec.get("minReplicas")
    if min_replicas is not None and (not is_int(min_replicas) or min_replicas < 1):
        errs.append(invalid("spec.minReplicas", min_replicas, "must be greater than or equal to 1"))
    max_replicas = spec.get("maxReplicas")
    if not is_int(max_replicas) or max_replicas < 1:
        errs.append(invalid("spec.maxReplicas", max_replicas, "must be greater than 0"))
    elif is_int(min_replicas) and max_replicas < min_replicas:
        errs.append(invalid("spec.maxReplicas", max_replicas, "must be greater than or equal to `minReplicas`"))
    for i, metric in enumerate(as_list(spec.get("metrics"))):
        errs += _metric(as_dict(metric), f"spec.metrics[{i}]")
    behavior = spec.get("behavior")
    if behavior is not None:
        for direction in ("scaleUp", "scaleDown"):
            if as_dict(behavior).get(direction) is not None:
                errs += _rules(as_dict(behavior[direction]), f"spec.behavior.{direction}")
    return errs


def _scale_target(ref: Obj, path: str) -> list[FieldError]:
    errs = []
    for key in ("kind", "name"):
        if not ref.get(key):
            errs.append(required(f"{path}.{key}"))
        elif "/" in str(ref[key]) or "%" in str(ref[key]):
            errs.append(invalid(f"{path}.{key}", ref[key], "may not contain '/' or '%'"))
    return errs


def _metric(metric: Obj, path: str) -> list[FieldError]:
    kind = metric.get("type")
    if not kind:
        return [required(f"{path}.type", "must specify a metric source type")]
    if kind not in METRIC_TYPES:
        return [not_supported(f"{path}.type", kind, METRIC_TYPES)]
    if kind not in SUPPORTED_METRIC_TYPES:
        return [forbidden(f"{path}.type", f"labctl's HPA controller computes Resource metrics only (cpu, memory "
                                           f"from metrics.k8s.io); {kind} metrics need a metrics API labctl does "
                                           "not serve")]
    resource = metric.get("resource")
    if not isinstance(resource, dict):
        return [required(f"{path}.resource", "must populate information for the given metric source")]
    errs = []
    name = resource.get("name")
    if not name:
        errs.append(required(f"{path}.resource.name", "must specify a resource name"))
    elif name not in SUPPORTED_RESOURCES:
        errs.append(not_supported(f"{path}.resource.name", name, list(SUPPORTED_RESOURCES)))
    return errs + _target(as_dict(resource.get("target")), f"{path}.resource.target")


def _target(target: Obj, path: str) -> list[FieldError]:
    kind = target.get("type")
    if not kind:
        return [required(f"{path}.type", "must specify a metric target type")]
    if kind not in TARGET_TYPES:
        return [not_supported(f"{path}.type", kind, TARGET_TYPES)]
    errs = []
    utilization = target.get("averageUtilization")
    if kind == "Utilization" and utilization is None:
        errs.append(required(f"{path}.averageUtilization", "must set a target utilization for the Utilization type"))
    if utilization is not None and (not is_int(utilization) or utilization < 1):
        errs.append(invalid(f"{path}.averageUtilization", utilization, "must be greater than 0"))
    if kind == "AverageValue" and target.get("averageValue") is None:
        errs.append(required(f"{path}.averageValue", "must set a target averageValue for the AverageValue type"))
    if kind == "Value":  # upstream: a Resource metric has no total value, only an average per pod
        errs.append(invalid(f"{path}.type", kind, "must be either Utilization or AverageValue"))
    average = target.get("averageValue")
    if average is not None:
        try:
            positive = parse_quantity(average) > 0
        except (ValueError, ArithmeticError):
            positive = False
        if not positive:
            errs.append(invalid(f"{path}.averageValue", average, "must be positive"))
    return errs


def _rules(rules: Obj, path: str) -> list[FieldError]:
    errs = []
    window = rules.get("stabilizationWindowSeconds")
    if window is not None and (not is_int(window) or not 0 <= window <= MAX_STABILIZATION_WINDOW_SECONDS):
        errs.append(invalid(f"{path}.stabilizationWindowSeconds", window,
                            f"must be less than or equal to {MAX_STABILIZATION_WINDOW_SECONDS}" if is_int(window)
                            and window > 0 else "must be greater than or equal to zero"))
    select = rules.get("selectPolicy")
    if select is not None and select not in SELECT_POLICIES:
        errs.append(not_supported(f"{path}.selectPolicy", select, SELECT_POLICIES))
    tolerance = rules.get("tolerance")
    if tolerance is not None:
        try:
            ok = parse_quantity(tolerance) >= 0
        except (ValueError, ArithmeticError):
            ok = False
        if not ok:
            errs.append(invalid(f"{path}.tolerance", tolerance, "must be greater than or equal to 0"))
    policies = rules.get("policies")
    if policies is not None and not as_list(policies):
        errs.append(required(f"{path}.policies", "must specify at least one Policy"))
    for i, policy in enumerate(as_list(policies)):
        errs += _policy(as_dict(policy), f"{path}.policies[{i}]")
    return errs


def _policy(policy: Obj, path: str) -> list[FieldError]:
    errs = []
    if policy.get("type") not in POLICY_TYPES:
        errs.append(not_supported(f"{path}.type", policy.get("type"), POLICY_TYPES))
    value = policy.get("value")
    if not is_int(value) or value <= 0:
        errs.append(invalid(f"{path}.value", value, "must be greater than zero"))
    period = policy.get("periodSeconds")
    if not is_int(period) or period <= 0:
        errs.append(invalid(f"{path}.periodSeconds", period, "must be greater than zero"))
    elif period > MAX_PERIOD_SECONDS:
        errs.append(invalid(f"{path}.periodSeconds", period,
                            f"must be less than or equal to {MAX_PERIOD_SECONDS}"))
    return errs


def validate_hpa_status(hpa: Obj) -> list[FieldError]:
    """ValidateHorizontalPodAutoscalerStatusUpdate: the replica counts are never negative."""
    status = as_dict(hpa.get("status"))
    errs = []
    for key in ("currentReplicas", "desiredReplicas"):
        if status.get(key) is not None and (not is_int(status[key]) or status[key] < 0):
            errs.append(invalid(f"status.{key}", status[key], "must be greater than or equal to 0"))
    return errs
