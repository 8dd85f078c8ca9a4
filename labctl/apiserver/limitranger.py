"""LimitRange admission: a namespace's default resources for containers, and its min/max/ratio rules.

A port of kube's ``LimitRanger`` admission plugin (``plugin/pkg/admission/limitranger``):
on a pod's create, the ``Container`` items' ``defaultRequest``/``default`` fill in what each
container leaves out (recorded in the ``kubernetes.io/limit-ranger`` annotation), then the
``Container`` and ``Pod`` items' ``min``, ``max`` and ``maxLimitRequestRatio`` are enforced,
and the ``PersistentVolumeClaim`` items' ``min``/``max`` on a claim's storage request. A
violation is a 403 in kube's words (``pods "x" is forbidden: minimum cpu usage per
Container is 100m, but request is 50m``). Like kube, pod updates are not checked: the
containers' resources cannot change.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from labctl.kube.quantity import canonical_quantity, format_quantity, parse_quantity, quantity_format
from labctl.kube.resources import ResourceType

from ._validate_common import as_dict, as_list
from .defaults import pod_qos_class
from .resourcequota import forbidden, pod_resources

if TYPE_CHECKING:
    from .strategies.base import Storage

Obj = dict[str, Any]
LIMIT_RANGE_KEY = "core/limitranges"
ANNOTATION = "kubernetes.io/limit-ranger"


def _items(api: Storage, namespace: str, kind: str) -> list[Obj]:
    """The namespace's LimitRange items of ``kind``; nothing to scan in a cluster without LimitRanges."""
    if not api.store.count(LIMIT_RANGE_KEY):
        return []
    return [as_dict(item) for lr in api.store.list(LIMIT_RANGE_KEY, namespace)
            for item in as_list(as_dict(lr.get("spec")).get("limits")) if as_dict(item).get("type") == kind]


# -- defaults (mutating admission) --------------------------------------------------------------
def default_pod(api: Storage, pod: Obj) -> None:
    """Fill each container's missing requests and limits from the namespace's ``Container`` defaults."""
    items = _items(api, pod["metadata"]["namespace"], "Container")
    if not items:
        return
    requests: Obj = {}
    limits: Obj = {}
    for item in items:  # later ranges win, as kube's loop over the list
        requests.update(as_dict(item.get("defaultRequest")))
        limits.update(as_dict(item.get("default")))
    spec = as_dict(pod.get("spec"))
    notes: list[str] = []
    for field, prefix in (("initContainers", "init container"), ("containers", "container")):
        for ctr in as_list(spec.get(field)):
            if isinstance(ctr, dict):
                notes += _merge(ctr, requests, limits, f"{prefix} {ctr.get('name', '')}")
    if notes:
        annotations = pod["metadata"].setdefault("annotations", {})
        annotations[ANNOTATION] = "LimitRanger plugin set: " + "; ".join(notes)
        pod.setdefault("status", {})["qosClass"] = pod_qos_class(spec)


def _merge(ctr: Obj, requests: Obj, limits: Obj, who: str) -> list[str]:
    resources = ctr.setdefault("resources", {})
    notes = []
    for key, defaults in (("requests", requests), ("limits", limits)):
        have = resources.setdefault(key, {})
        added = sorted(name for name in defaults if name not in have)
        for name in added:
            have[name] = defaults[name]
        if not have:
            resources.pop(key)
        if added:
            notes.append(f"{', '.join(added)} {'request' if key == 'requests' else 'limit'} for {who}")
    return notes


# -- constraints (validating admission) ---------------------------------------------------------
def validate(api: Storage, rt: ResourceType, obj: Obj) -> None:
    """Raise kube's 403 when a pod or claim breaks its namespace's LimitRanges."""
    namespace = obj["metadata"]["namespace"]
    if rt.key == "core/pods":
        errs = _pod_errors(api, namespace, as_dict(obj.get("spec")))
    elif rt.key == "core/persistentvolumeclaims":
        errs = _claim_errors(api, namespace, as_dict(obj.get("spec")))
    else:
        return
    if errs:
        raise forbidden(rt, obj, errs[0] if len(errs) == 1 else "[" + ", ".join(errs) + "]")


def _pod_errors(api: Storage, namespace: str, spec: Obj) -> list[str]:
    errs: list[str] = []
    for item in _items(api, namespace, "Container"):
        for ctr in as_list(spec.get("containers")) + as_list(spec.get("initContainers")):
            resources = as_dict(as_dict(ctr).get("resources"))
            errs += check_item("Container", item, as_dict(resources.get("requests")), as_dict(resources.get("limits")))
    for item in _items(api, namespace, "Pod"):
        requests, limits = pod_resources(spec)
        errs += check_item("Pod", item, _texts(spec, "requests", requests), _texts(spec, "limits", limits))
    return errs


def _claim_errors(api: Storage, namespace: str, spec: Obj) -> list[str]:
    requests = as_dict(as_dict(spec.get("resources")).get("requests"))
    errs: list[str] = []
    for item in _items(api, namespace, "PersistentVolumeClaim"):
        for name, q in sorted(as_dict(item.get("min")).items()):
            errs += _min(("PersistentVolumeClaim", name, q), requests, {})
        for name, q in sorted(as_dict(item.get("max")).items()):
            if name not in requests:
                errs.append(f"maximum {name} usage per PersistentVolumeClaim is {_show(q)}.  No request is specified")
            elif parse_quantity(requests[name]) > parse_quantity(q):
                errs.append(f"maximum {name} usage per PersistentVolumeClaim is {_show(q)}, "
                            f"but request is {_show(requests[name])}")
    return errs


def _texts(spec: Obj, key: str, usage: dict[str, Decimal]) -> Obj:
    """The pod's totals as quantities in the format of the containers' own (``2Gi``, not ``2147483648``)."""
    formats: dict[str, str] = {}
    for ctr in as_list(spec.get("containers")) + as_list(spec.get("initContainers")):
        for name, q in as_dict(as_dict(as_dict(ctr).get("resources")).get(key)).items():
            try:
                formats.setdefault(name, quantity_format(q))
            except (ValueError, TypeError):
                continue
    return {name: format_quantity(q, formats.get(name, "DecimalSI")) for name, q in usage.items()}


def _show(q: Any) -> str:
    return canonical_quantity(q)


def check_item(kind: str, item: Obj, requests: Obj, limits: Obj) -> list[str]:
    """kube's min/max/ratio constraints of one LimitRange item over one container's (or pod's) resources."""
    errs: list[str] = []
    for name, q in sorted(as_dict(item.get("min")).items()):
        errs += _min((kind, name, q), requests, limits)
    for name, q in sorted(as_dict(item.get("max")).items()):
        errs += _max((kind, name, q), requests, limits)
    for name, q in sorted(as_dict(item.get("maxLimitRequestRatio")).items()):
        errs += _ratio((kind, name, q), requests, limits)
    return errs


Rule = tuple[str, str, Any]  # (limit type, resource name, enforced quantity)


def _min(rule: Rule, requests: Obj, limits: Obj) -> list[str]:
    kind, name, enforced = rule
    head = f"minimum {name} usage per {kind} is {_show(enforced)}"
    if name not in requests:
        return [f"{head}.  No request is specified"]
    if parse_quantity(requests[name]) < parse_quantity(enforced):
        return [f"{head}, but request is {_show(requests[name])}"]
    if name in limits and parse_quantity(limits[name]) < parse_quantity(enforced):
        return [f"{head}, but limit is {_show(limits[name])}"]
    return []


def _max(rule: Rule, requests: Obj, limits: Obj) -> list[str]:
    kind, name, enforced = rule
    head = f"maximum {name} usage per {kind} is {_show(enforced)}"
    if name not in limits:
        return [f"{head}.  No limit is specified"]
    if parse_quantity(limits[name]) > parse_quantity(enforced):
        return [f"{head}, but limit is {_show(limits[name])}"]
    if name in requests and parse_quantity(requests[name]) > parse_quantity(enforced):
        return [f"{head}, but request is {_show(requests[name])}"]
    return []


def _ratio(rule: Rule, requests: Obj, limits: Obj) -> list[str]:
    kind, name, enforced = rule
    head = f"{name} max limit to request ratio per {kind} is {_show(enforced)}"
    request = parse_quantity(requests[name]) if name in requests else Decimal(0)
    limit = parse_quantity(limits[name]) if name in limits else Decimal(0)
    if request == 0:
        return [f"{head}, but no request is specified or request is 0"]
    if limit == 0:
        return [f"{head}, but no limit is specified or limit is 0"]
    ratio = limit / request
    if ratio > parse_quantity(enforced):
        return [f"{head}, but provided ratio is {float(ratio):f}"]
    return []
