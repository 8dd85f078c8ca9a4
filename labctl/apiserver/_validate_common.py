"""Helpers shared by the kind validators: safe access to decoded JSON, labels, selectors, ports.

Matching a selector is not validation: the validators use :mod:`labctl.kube.labels` for it.

Objects are plain dicts straight from the request body, so a field may have any JSON
type; these helpers make a wrong type look "absent" (and the typed checks report it)
instead of raising deep inside a validator.
"""

from __future__ import annotations

from typing import Any, TypeGuard

from labctl.apiserver.errors import FieldError, forbidden, invalid, not_supported, required
from labctl.kube import validators as v

IS_NEGATIVE = "must be greater than or equal to 0"
PROTOCOLS = ["SCTP", "TCP", "UDP"]
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def nonnegative(value: Any, path: str) -> list[FieldError]:
    """ValidateNonnegativeField (a non-integer is reported the same way JSON decoding would)."""
    if not is_int(value):
        return [invalid(path, value, "must be an integer")]
    return [invalid(path, value, IS_NEGATIVE)] if value < 0 else []


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    """ValidateLabels: keys are qualified names, values label values (errors name the map, not the key)."""
    errs: list[FieldError] = []
    for key, value in as_dict(labels).items():
        errs += [invalid(path, key, m) for m in v.is_qualified_name(str(key))]
        if not isinstance(value, str):
            errs.append(invalid(path, value, "must be a string"))
            continue
        errs += [invalid(path, value, m) for m in v.is_valid_label_value(value)]
    return errs


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    """Keys are qualified names (any case); keys and values together stay under 256 KiB."""
    annotations = as_dict(annotations)
    errs: list[FieldError] = []
    total = 0
    for key, value in annotations.items():
        errs += [invalid(path, key, m) for m in v.is_qualified_name(str(key).lower())]
        total += len(str(key)) + len(str(value if value is not None else ""))
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        errs.append(FieldError("FieldValueTooLong", path, "", f"must have at most {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"))
    return errs


_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def validate_label_selector(selector: Any, path: str) -> list[FieldError]:
    """ValidateLabelSelector for ``matchLabels`` and ``matchExpressions``."""
    selector = as_dict(selector)
    errs = validate_labels(selector.get("matchLabels"), f"{path}.matchLabels")
    for i, expr in enumerate(as_list(selector.get("matchExpressions"))):
        expr, epath = as_dict(expr), f"{path}.matchExpressions[{i}]"
        operator, values = expr.get("operator"), as_list(expr.get("values"))
        if operator in ("In", "NotIn"):
            if not values:
                errs.append(required(f"{epath}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                errs.append(forbidden(f"{epath}.values",
                                      "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            errs.append(invalid(f"{epath}.operator", operator, "not a valid selector operator"))
        errs += [invalid(f"{epath}.key", expr.get("key"), m) for m in v.is_qualified_name(str(expr.get("key") or ""))]
        for j, value in enumerate(values):
            errs += [invalid(f"{epath}.values[{j}]", value, m) for m in v.is_valid_label_value(str(value))]
    return errs


def validate_protocol(protocol: Any, path: str) -> list[FieldError]:
    if not protocol:
        return [required(path)]
    if protocol not in PROTOCOLS:
        return [not_supported(path, protocol, PROTOCOLS)]
    return []


def validate_port_num_or_name(port: Any, path: str) -> list[FieldError]:
    """ValidatePortNumOrName for IntOrString ports (targetPort, probe ports)."""
    if isinstance(port, str):
        return [invalid(path, port, m) for m in v.is_valid_port_name(port)]
    return [invalid(path, port, m) for m in v.is_valid_port_num(port)]


def validate_dns1123_label(value: Any, path: str) -> list[FieldError]:
    return [invalid(path, value, m) for m in v.is_dns1123_label(str(value))]


def validate_dns1123_subdomain(value: Any, path: str) -> list[FieldError]:
    return [invalid(path, value, m) for m in v.is_dns1123_subdomain(str(value))]
