"""ResourceQuota: admission that refuses a create over a namespace's quota, and the quotas' ``status``.

A port of kube's quota admission (``plugin/pkg/admission/resourcequota``) and of the usage
its evaluators count (``pkg/quota/v1/evaluator/core``): pods (count and their cpu/memory
requests and limits), services (count, NodePorts, LoadBalancers), PersistentVolumeClaims
(count, requested storage, per StorageClass), and ``count/<resource>[.<group>]`` for any
namespaced kind labctl serves.

Why no separate controller: kube's admission adds each accepted create to
``status.used`` and the quota controller recalculates after deletes. Here every write runs
on the API server's event loop, which also serialises the store's writes (storage.py), so
the usage is counted from the store at the moment of admission and the quotas' status is
recalculated right after each write of a counted kind in their namespace: two racing
creates can never both pass, and ``status.used`` is never stale — the same simplification
as the namespace controller's work done inside the API server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from labctl.kube.quantity import format_quantity, parse_quantity, quantity_format
from labctl.kube.resources import CREATE_ONLY, ResourceType

from . import errors
from ._validate_common import as_dict, as_list
from .storage import clone

if TYPE_CHECKING:
    from .strategies.base import Storage

Obj = dict[str, Any]
Usage = dict[str, Decimal]

QUOTA_KEY = "core/resourcequotas"
#: what a quota on cpu or memory makes every container state (kube: "this was a mistake", kept for compatibility)
_COMPUTE = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory", "cpu", "memory")
#: the object-count names that predate ``count/<resource>``
_LEGACY_COUNTS = {"pods": "pods", "services": "services", "configmaps": "configmaps", "secrets": "secrets",
                  "persistentvolumeclaims": "persistentvolumeclaims", "resourcequotas": "resourcequotas",
                  "replicationcontrollers": "replicationcontrollers"}
#: resource names a quota may limit beside ``count/...`` and per-class storage (ValidateResourceQuotaResourceName)
STANDARD_QUOTA_RESOURCES = frozenset({
    *_COMPUTE, "ephemeral-storage", "requests.ephemeral-storage", "limits.ephemeral-storage", "requests.storage",
    "services.nodeports", "services.loadbalancers", *_LEGACY_COUNTS,
})
STORAGE_CLASS_SUFFIX = ".storageclass.storage.k8s.io/"
#: the scopes labctl honours; the others are refused at validation (spec.scopes / spec.scopeSelector)
SUPPORTED_SCOPES = ("Terminating", "NotTerminating", "BestEffort", "NotBestEffort")


def is_quota_resource(name: str) -> bool:
    """Whether ``name`` may appear in ``spec.hard`` (kube's ValidateResourceQuotaResourceName)."""
    if name in STANDARD_QUOTA_RESOURCES or name.startswith("count/") or name.startswith("hugepages-"):
        return True
    if STORAGE_CLASS_SUFFIX in name:
        return name.split(STORAGE_CLASS_SUFFIX, 1)[1] in ("requests.storage", "persistentvolumeclaims")
    return name.startswith("requests.hugepages-")


# -- usage -----------------------------------------------------------------------------------
def _quantities(rl: Any) -> Usage:
    out: Usage = {}
    for name, q in as_dict(rl).items():
        try:
            out[name] = parse_quantity(q)
        except (ValueError, TypeError):
            continue
    return out


def _add(into: Usage, more: Usage) -> None:
    for name, q in more.items():
        into[name] = into.get(name, Decimal(0)) + q


def pod_resources(spec: Obj) -> tuple[Usage, Usage]:
    """The pod's effective (requests, limits): the app containers' sum, at least any init container's, plus overhead.

    kube's ``resourcehelper.PodRequests``/``PodLimits``: init containers run one at a time
    before the app containers, so the pod needs the larger of the two; a sidecar (an init
    container with ``restartPolicy: Always``) keeps running and adds up.
    """
    totals: list[Usage] = []
    for key in ("requests", "limits"):
        total: Usage = {}
        sidecars: Usage = {}
        for ctr in as_list(spec.get("containers")):
            _add(total, _quantities(as_dict(as_dict(ctr).get("resources")).get(key)))
        for ctr in as_list(spec.get("initContainers")):
            ctr = as_dict(ctr)
            own = _quantities(as_dict(ctr.get("resources")).get(key))
            if ctr.get("restartPolicy") == "Always":
                _add(sidecars, own)
                continue
            with_sidecars = dict(sidecars)
            _add(with_sidecars, own)
            for name, q in with_sidecars.items():
                total[name] = max(total.get(name, Decimal(0)), q)
        _add(total, sidecars)
        _add(total, _quantities(spec.get("overhead")))
        totals.append(total)
    return totals[0], totals[1]


def is_best_effort(spec: Obj) -> bool:
    """No container requests or limits anything (kube's BestEffort QoS for quota scopes)."""
    for ctr in as_list(spec.get("containers")) + as_list(spec.get("initContainers")):
        resources = as_dict(as_dict(ctr).get("resources"))
        if as_dict(resources.get("requests")) or as_dict(resources.get("limits")):
            return False
    return True


def _pod_counts(pod: Obj) -> bool:
    """Terminal pods no longer hold quota (kube's ``QuotaV1Pod``)."""
    return as_dict(pod.get("status")).get("phase") not in ("Succeeded", "Failed")


def _pod_usage(pod: Obj) -> Usage:
    spec = as_dict(pod.get("spec"))
    requests, limits = pod_resources(spec)
    usage: Usage = {"pods": Decimal(1)}
    for name in ("cpu", "memory", "ephemeral-storage"):
        if name in requests:
            usage[name] = usage[f"requests.{name}"] = requests[name]
        if name in limits:
            usage[f"limits.{name}"] = limits[name]
    return usage


def _service_usage(svc: Obj) -> Usage:
    spec = as_dict(svc.get("spec"))
    usage: Usage = {"services": Decimal(1)}
    kind = spec.get("type", "ClusterIP")
    if kind in ("NodePort", "LoadBalancer"):
        usage["services.nodeports"] = Decimal(len(as_list(spec.get("ports"))))
    if kind == "LoadBalancer":
        usage["services.loadbalancers"] = Decimal(1)
    return usage


def _claim_usage(pvc: Obj) -> Usage:
    spec = as_dict(pvc.get("spec"))
    storage = _quantities(as_dict(spec.get("resources")).get("requests")).get("storage", Decimal(0))
    usage: Usage = {"persistentvolumeclaims": Decimal(1), "requests.storage": storage}
    if cls := spec.get("storageClassName"):
        usage[f"{cls}{STORAGE_CLASS_SUFFIX}persistentvolumeclaims"] = Decimal(1)
        usage[f"{cls}{STORAGE_CLASS_SUFFIX}requests.storage"] = storage
    return usage


_EVALUATORS: dict[str, Callable[[Obj], Usage]] = {
    "core/pods": _pod_usage, "core/services": _service_usage, "core/persistentvolumeclaims": _claim_usage,
}


def object_usage(rt: ResourceType, obj: Obj) -> Usage:
    """What one object of ``rt`` adds to its namespace's usage."""
    evaluator = _EVALUATORS.get(rt.key)
    usage = evaluator(obj) if evaluator else {}
    if rt.plural in _LEGACY_COUNTS:
        usage.setdefault(rt.plural, Decimal(1))
    usage[f"count/{rt.qualified}"] = Decimal(1)
    return usage


def matches_scopes(quota: Obj, rt: ResourceType, obj: Obj) -> bool:
    """Whether ``obj`` is counted by ``quota``'s scopes (they only select pods; other kinds never match)."""
    scopes = quota_scopes(quota)
    if not scopes:
        return True
    if rt.key != "core/pods":
        return False
    spec = as_dict(obj.get("spec"))
    for scope in scopes:
        if scope in ("BestEffort", "NotBestEffort") and is_best_effort(spec) != (scope == "BestEffort"):
            return False
        # labctl refuses activeDeadlineSeconds (podfields.py): no pod is ever Terminating
        if scope == "Terminating":
            return False
    return True


def quota_scopes(quota: Obj) -> list[str]:
    """``spec.scopes`` plus ``spec.scopeSelector``'s expressions as scopes (``DoesNotExist``: the opposite one).

    Validation admits only the scopes of :data:`SUPPORTED_SCOPES`, which kube selects with
    ``Exists``/``DoesNotExist`` only.
    """
    spec = as_dict(quota.get("spec"))
    scopes = [s for s in as_list(spec.get("scopes")) if isinstance(s, str)]
    for expr in as_list(as_dict(spec.get("scopeSelector")).get("matchExpressions")):
        expr = as_dict(expr)
        if expr.get("operator") == "Exists":
            scopes.append(expr.get("scopeName", ""))
        elif expr.get("operator") == "DoesNotExist":
            scopes.append(_OPPOSITE.get(expr.get("scopeName", ""), ""))
    return scopes


_OPPOSITE = {"Terminating": "NotTerminating", "NotTerminating": "Terminating",
             "BestEffort": "NotBestEffort", "NotBestEffort": "BestEffort"}


def namespace_usage(api: Storage, quota: Obj, namespace: str, names: Iterable[str]) -> Usage:
    """The usage of ``names`` in ``namespace`` by the objects ``quota`` counts, from the store."""
    wanted = set(names)
    used: Usage = {name: Decimal(0) for name in wanted}
    for rt in api.registry.resources:
        if not rt.namespaced or rt.verbs == CREATE_ONLY or not _counts_kind(rt, wanted):
            continue
        for obj in api.store.list(rt.key, namespace):
            if rt.key == "core/pods" and not _pod_counts(obj):
                continue
            if not matches_scopes(quota, rt, obj):
                continue
            for name, q in object_usage(rt, obj).items():
                if name in wanted:
                    used[name] += q
    return used


def _counts_kind(rt: ResourceType, wanted: set[str]) -> bool:
    if f"count/{rt.qualified}" in wanted or rt.plural in wanted:
        return True
    return rt.key in _EVALUATORS and any(not n.startswith("count/") for n in wanted)


def hard_of(quota: Obj) -> Usage:
    return _quantities(as_dict(quota.get("spec")).get("hard"))


def quota_status(api: Storage, quota: Obj) -> Obj:
    """``status`` as kube's quota controller writes it: ``hard`` from the spec, ``used`` of the same names."""
    hard = as_dict(as_dict(quota.get("spec")).get("hard"))
    used = namespace_usage(api, quota, quota["metadata"]["namespace"], hard)
    return {"hard": dict(hard), "used": {name: _show(hard, name, q) for name, q in sorted(used.items())}}


def _show(hard: Obj, name: str, q: Decimal) -> str:
    """A counted amount in the format of its limit (``512Mi`` under ``1Gi``), as kube adds quantities."""
    try:
        fmt = quantity_format(hard[name])
    except (KeyError, ValueError):
        fmt = "DecimalSI"
    return format_quantity(q, fmt)


def quotas_in(api: Storage, namespace: str) -> list[Obj]:
    """The namespace's quotas; a cluster without any (the usual case) pays one dict lookup per write."""
    return api.store.list(QUOTA_KEY, namespace) if api.store.count(QUOTA_KEY) else []


# -- admission -------------------------------------------------------------------------------
def admit(api: Storage, rt: ResourceType, obj: Obj, old: Obj | None = None) -> None:
    """Refuse a create (``old`` None) or an update of ``obj`` that would take a quota of its namespace over (403).

    Called on the event loop right before the store's write, with nothing awaited in
    between: the usage counted here is the usage the write lands on. An update is held
    only to what it adds (a Service turned into a LoadBalancer, a claim grown).
    """
    if not rt.namespaced or rt.key == QUOTA_KEY:
        return
    namespace = obj["metadata"]["namespace"]
    quotas = quotas_in(api, namespace)
    if not quotas or (rt.key == "core/pods" and not _pod_counts(obj)):
        return
    delta = object_usage(rt, obj)
    for quota in quotas:
        if not matches_scopes(quota, rt, obj):
            continue
        hard = hard_of(quota)
        if rt.key == "core/pods" and old is None:
            _require_compute(rt, obj, quota, hard)
        before = object_usage(rt, old) if old is not None and matches_scopes(quota, rt, old) else {}
        covered = [name for name in hard if delta.get(name, Decimal(0)) > before.get(name, Decimal(0))]
        if not covered:
            continue
        used = namespace_usage(api, quota, namespace, covered)
        added = {name: delta[name] - before.get(name, Decimal(0)) for name in covered}
        failed = sorted(name for name in covered if used[name] + added[name] > hard[name])
        if failed:
            spec_hard = as_dict(as_dict(quota.get("spec")).get("hard"))
            raise forbidden(rt, obj, "exceeded quota: {}, requested: {}, used: {}, limited: {}".format(
                quota["metadata"]["name"], _pretty(spec_hard, added, failed), _pretty(spec_hard, used, failed),
                _pretty(spec_hard, hard, failed)))


def _require_compute(rt: ResourceType, pod: Obj, quota: Obj, hard: Usage) -> None:
    """A quota on cpu/memory makes every container state it (kube's podEvaluator.Constraints)."""
    required = [name for name in _COMPUTE if name in hard]
    if not required:
        return
    missing: dict[str, list[str]] = {}
    spec = as_dict(pod.get("spec"))
    for ctr in as_list(spec.get("containers")) + as_list(spec.get("initContainers")):
        ctr = as_dict(ctr)
        resources = as_dict(ctr.get("resources"))
        requests, limits = as_dict(resources.get("requests")), as_dict(resources.get("limits"))
        for name in required:
            base = name.split(".", 1)[-1]
            stated = limits if name.startswith("limits.") else requests
            if base not in stated:
                missing.setdefault(name, []).append(str(ctr.get("name", "")))
    if missing:
        detail = "; ".join(f"{name} for: {','.join(sorted(missing[name]))}" for name in sorted(missing))
        raise forbidden(rt, pod, f"failed quota: {quota['metadata']['name']}: must specify {detail}")


def _pretty(hard: Obj, usage: Usage, names: list[str]) -> str:
    """kube's ``prettyPrint``: ``name=amount`` sorted, comma-separated."""
    return ",".join(f"{name}={_show(hard, name, usage.get(name, Decimal(0)))}" for name in names)


def forbidden(rt: ResourceType, obj: Obj, detail: str) -> errors.APIError:
    """kube's ``admission.NewForbidden``: named by the object's name, or its generateName before one is made."""
    meta = as_dict(obj.get("metadata"))
    name = meta.get("name") or meta.get("generateName") or "Unknown"
    return errors.APIError(403, "Forbidden", f'{rt.qualified} "{name}" is forbidden: {detail}',
                           {"name": name, "group": rt.group, "kind": rt.plural})


# -- status ----------------------------------------------------------------------------------
def record(api: Storage, rt: ResourceType, namespace: str | None) -> None:
    """After a write of ``rt`` in ``namespace``: bring its quotas' ``status`` up to date (the quota controller's job)."""
    if not namespace or not rt.namespaced:
        return
    for quota in quotas_in(api, namespace):
        hard = as_dict(as_dict(quota.get("spec")).get("hard"))
        if rt.key != QUOTA_KEY and not _counts_kind(rt, set(hard)):
            continue
        status = quota_status(api, quota)
        if quota.get("status") == status:
            continue
        updated = clone(quota)
        updated["status"] = status
        meta = quota["metadata"]
        api.store.update((QUOTA_KEY, namespace, meta["name"]), updated, int(meta["resourceVersion"]))
