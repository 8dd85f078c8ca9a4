"""``pods/eviction``: deleting a pod only when its PodDisruptionBudget allows it, as kube's ``EvictionREST``.

A port of ``pkg/registry/core/pod/storage/eviction.go``. An eviction is a delete with a
budget check in front of it:

* a pod that is Pending, Succeeded, Failed or already terminating is deleted at once (it is
  no longer a disruption to count);
* no budget selects the pod: deleted; more than one: ``500`` (the API does not support it);
* the pod is not Ready: deleted when the budget's ``unhealthyPodEvictionPolicy`` is
  ``AlwaysAllow``, or (``IfHealthyBudget``, the default) when the budget is met without it
  (``currentHealthy >= desiredHealthy > 0``) — with the pod's resourceVersion as a
  precondition, so a pod that turned Ready meanwhile is not deleted behind the budget's back;
* otherwise the budget must allow a disruption: ``429 TooManyRequests`` "Cannot evict pod
  as it would violate the pod's disruption budget." with a ``DisruptionBudget`` cause when
  ``disruptionsAllowed`` is 0 (or the budget has not been computed for its spec yet);
  else ``disruptionsAllowed`` is decremented and the pod recorded in ``status.disruptedPods``
  in one status write (the disruption controller then stops counting it as healthy),
  and the pod is deleted with the eviction's ``deleteOptions``.

Before the delete, the pod gets the ``DisruptionTarget`` condition
(``EvictionByEvictionAPI``), as kube-apiserver writes it since PodDisruptionConditions went GA.
The decisions are pure functions (:func:`can_ignore_budget`, :func:`budget_decision`),
unit-tested; :func:`evict` runs them against the REST layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labctl.kube.labels import SelectorError, selector_from_label_selector
from labctl.kube.meta import timestamp
from labctl.kube.objects import pod_is_ready
from labctl.kube.pdb import disruption_target_conditions, set_disruption_allowed_condition
from labctl.kube.resources import resource_for

from . import errors
from .rest import RestAPI
from .scope import RequestScope
from .storage import clone

Obj = dict[str, Any]

VIOLATION_MESSAGE = "Cannot evict pod as it would violate the pod's disruption budget."
DISRUPTION_BUDGET_CAUSE = "DisruptionBudget"
#: ``MaxDisruptedPodSize``: evictions the disruption controller has not confirmed yet
MAX_DISRUPTED_POD_SIZE = 2000
#: ``EvictionsRetry``: conflicts on the budget's status are retried this many times
EVICTION_RETRIES = 5
SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def too_many_requests(detail: str, retry_after: int) -> errors.APIError:
    """``NewTooManyRequests`` with the ``DisruptionBudget`` cause kubectl drain prints."""
    details: dict[str, Any] = {"causes": [{"reason": DISRUPTION_BUDGET_CAUSE, "message": detail}]}
    if retry_after:
        details["retryAfterSeconds"] = retry_after
    return errors.APIError(429, "TooManyRequests", VIOLATION_MESSAGE, details)


def can_ignore_budget(pod: Obj) -> bool:
    """``canIgnorePDB``: a pod that is not running (or already going) is no disruption to count."""
    phase = (pod.get("status") or {}).get("phase")
    return phase in ("Succeeded", "Failed", "Pending") or bool(pod["metadata"].get("deletionTimestamp"))


def budgets_for(pod: Obj, pdbs: list[Obj]) -> list[Obj]:
    """``getPodDisruptionBudgets``: the budgets of the pod's namespace whose selector matches it.

    An empty or missing selector matches nothing here (upstream: "it should match nothing,
    not everything"), and an invalid one matches nothing.
    """
    labels = pod["metadata"].get("labels") or {}
    out = []
    for pdb in pdbs:
        selector = (pdb.get("spec") or {}).get("selector")
        if not selector or not (selector.get("matchLabels") or selector.get("matchExpressions")):
            continue
        try:
            if selector_from_label_selector(selector).matches(labels):
                out.append(pdb)
        except SelectorError:
            continue
    return out


@dataclass(frozen=True)
class Decision:
    """What to do with a pod under its budget: decrement it (``decrement``) and/or delete with a precondition."""

    decrement: bool
    require_resource_version: bool = False


def budget_decision(pod: Obj, pdb: Obj) -> Decision:
    """The budget check for one pod (raises the 429/403 kube answers); the pod is Running and not terminating."""
    spec, status = pdb.get("spec") or {}, pdb.get("status") or {}
    if not pod_is_ready(pod):
        if spec.get("unhealthyPodEvictionPolicy") == "AlwaysAllow":
            return Decision(decrement=False, require_resource_version=True)
        desired = int(status.get("desiredHealthy") or 0)
        if int(status.get("currentHealthy") or 0) >= desired > 0:
            return Decision(decrement=False, require_resource_version=True)
    check_budget(pdb)
    return Decision(decrement=True)


def check_budget(pdb: Obj) -> None:
    """The checks of ``checkAndDecrement`` before it decrements."""
    meta, status = pdb["metadata"], pdb.get("status") or {}
    name = meta["name"]
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        raise too_many_requests(f"The disruption budget {name} is still being processed by the server.", 10)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed < 0:
        raise _forbidden(name, "pdb disruptions allowed is negative")
    if len(status.get("disruptedPods") or {}) > MAX_DISRUPTED_POD_SIZE:
        raise _forbidden(name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller")
    if allowed == 0:
        raise too_many_requests(f"The disruption budget {name} needs {int(status.get('desiredHealthy') or 0)} "
                                f"healthy pods and has {int(status.get('currentHealthy') or 0)} currently", 0)


def decremented(pdb: Obj, pod_name: str, now: str) -> Obj:
    """The budget after one allowed eviction: one disruption fewer, the pod in ``disruptedPods``."""
    new = clone(pdb)
    status = new.setdefault("status", {})
    status["disruptionsAllowed"] = int(status.get("disruptionsAllowed") or 0) - 1
    if status["disruptionsAllowed"] == 0:
        set_disruption_allowed_condition(status)
    status["disruptedPods"] = {**(status.get("disruptedPods") or {}), pod_name: now}
    return new


def _forbidden(name: str, detail: str) -> errors.APIError:
    return errors.APIError(403, "Forbidden", f'poddisruptionbudget.policy "{name}" is forbidden: {detail}',
                           {"name": name, "group": "policy", "kind": "poddisruptionbudget"})


def delete_options_of(eviction: Obj, dry_run: list[str]) -> Obj:
    """``propagateDryRun``: the eviction's ``deleteOptions``, with the request's dryRun when it has none."""
    options = dict(eviction.get("deleteOptions") or {})
    if dry_run:
        if options.get("dryRun") and options["dryRun"] != dry_run:
            raise errors.bad_request(f"Non-matching dry-run options in request and content: {dry_run} and "
                                     f"{options['dryRun']}")
        options["dryRun"] = dry_run
    return options


def evict(api: RestAPI, scope: RequestScope, eviction: Obj, dry_run: list[str]) -> Obj:
    """Create an Eviction of the pod ``scope`` names; the ``Status`` to answer (201) or an APIError."""
    if (eviction.get("metadata") or {}).get("name") != scope.name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    options = delete_options_of(eviction, dry_run)
    pod_scope = RequestScope(scope.resource, scope.namespace, scope.name)
    pod = api.get(pod_scope)
    if can_ignore_budget(pod):
        if _enforce_resource_version(pod) and not _precondition_rv(options):
            options = _with_precondition(options, pod)
        _delete(api, pod_scope, options)
        return SUCCESS
    pdb_type = resource_for("poddisruptionbudgets")
    pdbs = budgets_for(pod, api.store.list(pdb_type.key, scope.namespace))
    if len(pdbs) > 1:
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": 500,
                "message": "This pod has more than one PodDisruptionBudget, which the eviction subresource "
                           "does not support."}
    if pdbs:
        decision = budget_decision(pod, pdbs[0])
        if decision.decrement:
            _decrement(api, RequestScope(pdb_type, scope.namespace, pdbs[0]["metadata"]["name"], "status"),
                       pod["metadata"]["name"], bool(options.get("dryRun")))
        elif decision.require_resource_version and not _precondition_rv(options):
            try:
                _delete(api, pod_scope, _with_precondition(options, pod))
            except errors.APIError as err:
                if err.code == 409:  # the pod changed (became Ready?) since the decision: let the client retry
                    raise too_many_requests(
                        f"The disruption budget {pdbs[0]['metadata']['name']} is still being processed by the server.",
                        10) from None
                raise
            return SUCCESS
    _delete(api, pod_scope, options)
    return SUCCESS


def _decrement(api: RestAPI, pdb_scope: RequestScope, pod_name: str, dry_run: bool) -> None:
    """checkAndDecrement with RetryOnConflict: re-read the budget and check again after a conflict."""
    for attempt in range(EVICTION_RETRIES):
        pdb = api.get(pdb_scope)
        check_budget(pdb)
        if dry_run:
            return
        try:
            api.update(pdb_scope, decremented(pdb, pod_name, timestamp()))
            return
        except errors.APIError as err:
            if err.code != 409 or attempt == EVICTION_RETRIES - 1:
                raise
    raise errors.timeout(f'couldn\'t update PodDisruptionBudget "{pdb_scope.name}" due to conflicts', 10)


def _delete(api: RestAPI, pod_scope: RequestScope, options: Obj) -> None:
    """``addConditionAndDeletePod``: the ``DisruptionTarget`` condition, then the delete."""
    dry_run = bool(options.get("dryRun"))
    if not dry_run:
        pod = api.get(pod_scope)
        expected = _precondition_rv(options)
        if expected and expected != pod["metadata"]["resourceVersion"]:
            raise errors.conflict("pods", "", pod_scope.name or "",
                                  f"Precondition failed: ResourceVersion in precondition: {expected}, "
                                  f"ResourceVersion in object meta: {pod['metadata']['resourceVersion']}")
        if not pod["metadata"].get("deletionTimestamp"):
            updated = api.update(RequestScope(pod_scope.resource, pod_scope.namespace, pod_scope.name, "status"),
                                 with_disruption_target(pod))
            if expected:
                options = _with_precondition(options, updated)
    api.delete(pod_scope, options, dry_run)


def with_disruption_target(pod: Obj) -> Obj:
    """The pod with ``DisruptionTarget=True`` (``EvictionByEvictionAPI``) among its conditions."""
    new = clone(pod)
    new.setdefault("status", {})["conditions"] = disruption_target_conditions(pod, "EvictionByEvictionAPI",
                                                                             "Eviction API: evicting")
    return new


def _enforce_resource_version(pod: Obj) -> bool:
    """``shouldEnforceResourceVersion``: not for terminal or terminating pods."""
    phase = (pod.get("status") or {}).get("phase")
    return phase not in ("Succeeded", "Failed") and not pod["metadata"].get("deletionTimestamp")


def _precondition_rv(options: Obj) -> str | None:
    return (options.get("preconditions") or {}).get("resourceVersion")


def _with_precondition(options: Obj, pod: Obj) -> Obj:
    return {**options, "preconditions": {**(options.get("preconditions") or {}),
                                         "resourceVersion": pod["metadata"]["resourceVersion"]}}
