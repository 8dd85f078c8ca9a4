"""LimitRange and ResourceQuota: defaulting and validation, with upstream's field paths and words.

The parts of ``pkg/apis/core/v1/defaults.go`` (``SetDefaults_LimitRangeItem``) and
``pkg/apis/core/validation`` (``ValidateLimitRange``, ``ValidateResourceQuota``) that a
course's manifests meet. A quota scope labctl cannot honour (``PriorityClass``,
``CrossNamespacePodAffinity``, ``VolumeAttributesClass``) is refused with the field's path
rather than stored and ignored.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from labctl.apiserver._validate_common import IS_NEGATIVE, as_dict, as_list
from labctl.apiserver.errors import FieldError, forbidden, invalid, not_supported, required
from labctl.apiserver.resourcequota import SUPPORTED_SCOPES, is_quota_resource
from labctl.kube.quantity import canonical_quantity, parse_quantity

__all__ = ["default_limit_range", "validate_limit_range", "validate_resource_quota"]

Obj = dict[str, Any]
LIMIT_TYPES = ["Container", "PersistentVolumeClaim", "Pod"]
#: scopes kube knows; labctl honours SUPPORTED_SCOPES of them
KUBE_SCOPES = ["BestEffort", "CrossNamespacePodAffinity", "NotBestEffort", "NotTerminating", "PriorityClass",
               "Terminating", "VolumeAttributesClass"]
_RESOURCES = {"Container": ("cpu", "memory", "ephemeral-storage"), "Pod": ("cpu", "memory", "ephemeral-storage"),
              "PersistentVolumeClaim": ("storage",)}
_SCOPE_OPERATORS = ["DoesNotExist", "Exists", "In", "NotIn"]


def default_limit_range(lr: Obj) -> None:
    """SetDefaults_LimitRangeItem: a Container item's default limit is its max, its default request the default or min."""
    for item in as_list(as_dict(lr.get("spec")).get("limits")):
        if not isinstance(item, dict) or item.get("type") != "Container":
            continue
        default = item.setdefault("default", {})
        request = item.setdefault("defaultRequest", {})
        if not isinstance(default, dict) or not isinstance(request, dict):
            continue
        for name, q in as_dict(item.get("max")).items():
            default.setdefault(name, q)
        for name, q in list(default.items()) + list(as_dict(item.get("min")).items()):
            request.setdefault(name, q)


def _quantities(rl: Any, path: str, names: tuple[str, ...], errs: list[FieldError]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for name, q in as_dict(rl).items():
        qpath = f"{path}[{name}]"
        if "/" not in name and name not in names and not name.startswith("hugepages-"):
            errs.append(invalid(qpath, name, "must be a standard limit type or fully qualified"))
            continue
        try:
            out[name] = parse_quantity(q)
        except (ValueError, TypeError):
            continue  # the request decoder already refused what is not a quantity
        if out[name] < 0:
            errs.append(invalid(qpath, canonical_quantity(q), IS_NEGATIVE))
    return out


def validate_limit_range(lr: Obj) -> list[FieldError]:
    """ValidateLimitRange: known types and resources, min ≤ default request ≤ default ≤ max, ratio ≥ 1."""
    errs: list[FieldError] = []
    for i, item in enumerate(as_list(as_dict(lr.get("spec")).get("limits"))):
        item, path = as_dict(item), f"spec.limits[{i}]"
        kind = item.get("type")
        if kind not in LIMIT_TYPES:
            errs.append(not_supported(f"{path}.type", kind, LIMIT_TYPES) if kind else required(f"{path}.type"))
            continue
        names = _RESOURCES[kind]
        values = {key: _quantities(item.get(key), f"{path}.{key}", names, errs)
                  for key in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio")}
        if kind == "Pod":
            for key in ("default", "defaultRequest"):
                if values[key]:
                    errs.append(forbidden(f"{path}.{key}", "may not be specified when `type` is 'Pod'"))
        if kind == "PersistentVolumeClaim" and values["min"].get("storage") is None and values["max"].get("storage") is None:
            errs.append(required(f"{path}.limits", "either minimum or maximum storage value is required, "
                                                  "but neither was provided"))
        errs += _item_order(item, values, path)
    return errs


def _item_order(item: Obj, values: dict[str, dict[str, Decimal]], path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    low, high, default, request, ratio = (values[k] for k in ("min", "max", "default", "defaultRequest",
                                                               "maxLimitRequestRatio"))

    def text(key: str, name: str) -> str:
        return canonical_quantity(as_dict(item.get(key))[name])

    for name in sorted(set().union(*values.values())):
        if name in low and name in high and low[name] > high[name]:
            errs.append(invalid(f"{path}.min[{name}]", text("min", name),
                                f"min value {text('min', name)} is greater than max value {text('max', name)}"))
        if name in request and name in low and low[name] > request[name]:
            errs.append(invalid(f"{path}.defaultRequest[{name}]", text("defaultRequest", name),
                                f"min value {text('min', name)} is greater than default request value "
                                f"{text('defaultRequest', name)}"))
        if name in request and name in high and request[name] > high[name]:
            errs.append(invalid(f"{path}.defaultRequest[{name}]", text("defaultRequest", name),
                                f"default request value {text('defaultRequest', name)} is greater than max value "
                                f"{text('max', name)}"))
        if name in request and name in default and request[name] > default[name]:
            errs.append(invalid(f"{path}.defaultRequest[{name}]", text("defaultRequest", name),
                                f"default request value {text('defaultRequest', name)} is greater than default "
                                f"limit value {text('default', name)}"))
        if name in default and name in low and low[name] > default[name]:
            errs.append(invalid(f"{path}.default[{name}]", text("min", name),
                                f"min value {text('min', name)} is greater than default value {text('default', name)}"))
        if name in default and name in high and default[name] > high[name]:
            errs.append(invalid(f"{path}.default[{name}]", text("max", name),
                                f"default value {text('default', name)} is greater than max value {text('max', name)}"))
        if name in ratio and ratio[name] < 1:
            errs.append(invalid(f"{path}.maxLimitRequestRatio[{name}]", text("maxLimitRequestRatio", name),
                                f"ratio {text('maxLimitRequestRatio', name)} is less than 1"))
    return errs


def validate_resource_quota(quota: Obj) -> list[FieldError]:
    """ValidateResourceQuota: quota resource names, non-negative amounts, the scopes labctl honours."""
    spec = as_dict(quota.get("spec"))
    errs: list[FieldError] = []
    for name, q in as_dict(spec.get("hard")).items():
        path = f"spec.hard[{name}]"
        if not is_quota_resource(name):
            errs.append(invalid(path, name, "must be a standard resource for quota"))
            continue
        try:
            if parse_quantity(q) < 0:
                errs.append(invalid(path, canonical_quantity(q), IS_NEGATIVE))
        except (ValueError, TypeError):
            continue
    scopes = [(f"spec.scopes[{i}]", s) for i, s in enumerate(as_list(spec.get("scopes")))]
    for i, expr in enumerate(as_list(as_dict(spec.get("scopeSelector")).get("matchExpressions"))):
        expr, path = as_dict(expr), f"spec.scopeSelector.matchExpressions[{i}]"
        scopes.append((f"{path}.scopeName", expr.get("scopeName")))
        operator = expr.get("operator")
        if operator not in _SCOPE_OPERATORS:
            errs.append(not_supported(f"{path}.operator", operator, _SCOPE_OPERATORS))
        elif operator in ("In", "NotIn") and expr.get("scopeName") in SUPPORTED_SCOPES:
            errs.append(invalid(f"{path}.operator", operator,
                                'must be \'Exist\' when scope is any of ResourceQuotaScopeTerminating, '
                                'ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, '
                                'ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity'))
    for path, scope in scopes:
        if scope not in KUBE_SCOPES:
            errs.append(not_supported(path, scope, KUBE_SCOPES))
        elif scope not in SUPPORTED_SCOPES:
            errs.append(forbidden(path, f"labctl does not support the {scope} scope (it would be ignored); "
                                        f"supported: {', '.join(SUPPORTED_SCOPES)}"))
    names = {s for _, s in scopes}
    if {"BestEffort", "NotBestEffort"} <= names or {"Terminating", "NotTerminating"} <= names:
        errs.append(invalid("spec.scopeSelector" if spec.get("scopeSelector") else "spec.scopes", sorted(names),
                            "conflicting scopes"))
    if "BestEffort" in names:
        for name in as_dict(spec.get("hard")):
            if name not in ("pods", "count/pods"):
                errs.append(invalid(f"spec.hard[{name}]", name,
                                    "unsupported scope applied to resource"))
    return errs
