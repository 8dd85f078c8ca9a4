"""The disruption controller: every PodDisruptionBudget's status, which ``pods/eviction`` reads.

A port of ``pkg/controller/disruption/disruption.go``. For each budget:

1. the pods of its namespace its selector matches (an empty selector matches them all);
2. ``expectedPods`` and ``desiredHealthy`` (``getExpectedPodCount``): with an integer
   ``minAvailable``, the matched pods and that number; with a percentage, or with
   ``maxUnavailable``, the sum of the scales of the pods' controllers (a ReplicaSet's
   ``spec.replicas``, or its Deployment's) — a pod without a controller is "unmanaged"
   (a Warning event) and one whose controller cannot be found fails the sync;
3. ``disruptedPods``: the evictions the API server recorded that have not happened yet,
   dropped once their pod is terminating or gone, or after 2 minutes (``NotDeleted``);
4. ``currentHealthy``: Ready pods neither terminating nor just evicted;
5. ``disruptionsAllowed = currentHealthy - desiredHealthy`` (never below 0, and 0 while no
   pod is expected), ``observedGeneration``, the ``DisruptionAllowed`` condition. A failed
   sync writes the fail-safe status: no disruption allowed, ``SyncFailed``.

The status is written with the cached resourceVersion (an update, not a patch): an eviction
that decremented the budget meanwhile makes it a conflict, and the retry counts that eviction.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from ..client.informer import FuncHandler
from ..client.rest import resource_path
from ..kube.intstr import scaled_value
from ..kube.labels import SelectorError, selector_from_label_selector
from ..kube.meta import parse_time
from ..kube.objects import controller_of, pod_is_ready
from ..kube.pdb import SYNC_FAILED, set_disruption_allowed_condition
from ._podutil import utcnow
from .base import Controller, key_of, split_key
from .context import ControllerContext

log = logging.getLogger("labctl.controllers.disruption")

Obj = dict[str, Any]
#: ``DeletionTimeout``: how long an eviction recorded in ``disruptedPods`` is waited for
DELETION_TIMEOUT = dt.timedelta(minutes=2)
UNMANAGED_MESSAGE = ("Pods selected by this PodDisruptionBudget (selector: {selector}) were found to be unmanaged. "
                     "As a result, the status of the PDB cannot be calculated correctly, which may result in undefined "
                     "behavior. To account for these pods please set \".spec.minAvailable\" field of the PDB to an "
                     "integer value.")


class ControllerMissing(Exception):
    """``found no controllers for pod``: a pod's controller is not (yet) in the caches."""


def expected_scale(pods: list[Obj], scale_of: Any) -> tuple[int, list[str]]:
    """``getExpectedScale``: the sum of the pods' controllers' scales (each once), and the unmanaged pods.

    ``scale_of(namespace, ref)`` answers a controller's replicas, or None when it is unknown.
    """
    seen: set[str] = set()
    total, unmanaged = 0, []
    for pod in pods:
        ref = controller_of(pod)
        if ref is None:
            unmanaged.append(pod["metadata"]["name"])
            continue
        if ref.get("uid") in seen:
            continue
        found = scale_of(pod["metadata"]["namespace"], ref)
        if found is None:
            raise ControllerMissing(f'found no controllers for pod "{pod["metadata"]["name"]}"')
        uid, replicas = found
        if uid not in seen:  # two ReplicaSets of one Deployment count the Deployment once
            seen.add(uid)
            total += replicas
        seen.add(ref.get("uid", ""))
    return total, unmanaged


def expected_pod_count(pdb: Obj, pods: list[Obj], scale_of: Any) -> tuple[int, int, list[str]]:
    """``getExpectedPodCount``: (expectedPods, desiredHealthy, unmanaged pods)."""
    spec = pdb.get("spec") or {}
    max_unavailable, min_available = spec.get("maxUnavailable"), spec.get("minAvailable")
    if max_unavailable is not None:
        expected, unmanaged = expected_scale(pods, scale_of)
        return expected, max(expected - scaled_value(max_unavailable, expected, True), 0), unmanaged
    if isinstance(min_available, int):
        return len(pods), min_available, []
    if isinstance(min_available, str):
        expected, unmanaged = expected_scale(pods, scale_of)
        return expected, scaled_value(min_available, expected, True), unmanaged
    return 0, 0, []


def disrupted_pod_map(pdb: Obj, pods: list[Obj], now: dt.datetime) -> tuple[dict[str, str], dt.datetime | None, list[str]]:
    """``buildDisruptedPodMap``: the recorded evictions still awaited, the next recheck, the pods not deleted in time."""
    recorded = (pdb.get("status") or {}).get("disruptedPods") or {}
    result: dict[str, str] = {}
    recheck: dt.datetime | None = None
    late: list[str] = []
    for pod in pods:
        name = pod["metadata"]["name"]
        if pod["metadata"].get("deletionTimestamp") or name not in recorded:
            continue
        when = parse_time(recorded[name])
        if when is None:
            continue
        expected_deletion = when + DELETION_TIMEOUT
        if expected_deletion < now:
            late.append(name)
        else:
            recheck = expected_deletion if recheck is None or expected_deletion < recheck else recheck
            result[name] = recorded[name]
    return result, recheck, late


def count_healthy_pods(pods: list[Obj], disrupted: dict[str, str], now: dt.datetime) -> int:
    """``countHealthyPods``: Ready pods, not terminating and not awaiting an eviction."""
    healthy = 0
    for pod in pods:
        if pod["metadata"].get("deletionTimestamp"):
            continue
        when = parse_time(disrupted.get(pod["metadata"]["name"]))
        if when is not None and when + DELETION_TIMEOUT > now:
            continue
        healthy += pod_is_ready(pod)
    return healthy


def pdb_status(pdb: Obj, current_healthy: int, desired_healthy: int, expected: int,
               disrupted: dict[str, str]) -> Obj:
    """``updatePdbStatus``: the status to write for these counts."""
    allowed = current_healthy - desired_healthy
    if expected <= 0 or allowed <= 0:
        allowed = 0
    old = pdb.get("status") or {}
    status: Obj = {"disruptionsAllowed": allowed, "currentHealthy": current_healthy,
                   "desiredHealthy": desired_healthy, "expectedPods": expected,
                   "observedGeneration": int(pdb["metadata"].get("generation") or 0)}
    if disrupted:
        status["disruptedPods"] = disrupted
    if old.get("conditions"):
        status["conditions"] = old["conditions"]
    set_disruption_allowed_condition(status)
    return status


def fail_safe_status(pdb: Obj, message: str) -> Obj:
    """``failSafe``: no disruption allowed while the budget cannot be computed."""
    status = {**(pdb.get("status") or {}), "disruptionsAllowed": 0,
              "observedGeneration": int(pdb["metadata"].get("generation") or 0)}
    for key in ("currentHealthy", "desiredHealthy", "expectedPods"):
        status.setdefault(key, 0)
    set_disruption_allowed_condition(status, SYNC_FAILED, message)
    return status


def _counts(status: Obj) -> Obj:
    """The status without the condition's timestamp: what decides whether a write is needed."""
    return {**status, "conditions": [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                                     for c in status.get("conditions") or []]}


class DisruptionController(Controller):
    name = "disruption-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder("controllermanager")
        self.pdbs = ctx.informer("poddisruptionbudgets")
        self.pods = ctx.informer("pods")
        self.replicasets = ctx.informer("replicasets")
        self.deployments = ctx.informer("deployments")
        self.statefulsets = ctx.informer("statefulsets")
        self.pdbs.add_handler(FuncHandler(self._enqueue, lambda old, new: self._enqueue(new), self._enqueue))
        self.pods.add_handler(FuncHandler(self._pod_changed, lambda old, new: self._pod_changed(new),
                                          self._pod_changed))
        for scalable in (self.replicasets, self.deployments, self.statefulsets):
            scalable.add_handler(FuncHandler(self._scale_changed, self._scale_updated, self._scale_changed))

    def _enqueue(self, pdb: Obj) -> None:
        self.queue.add(key_of(pdb))

    def _pod_changed(self, pod: Obj) -> None:
        """``getPdbForPod``: the budgets selecting the pod look again."""
        labels = pod["metadata"].get("labels") or {}
        for pdb in self._namespace_pdbs(pod["metadata"].get("namespace", "")):
            try:
                if selector_from_label_selector((pdb.get("spec") or {}).get("selector")).matches(labels):
                    self._enqueue(pdb)
            except SelectorError:
                continue

    def _scale_updated(self, old: Obj, new: Obj) -> None:
        if (old.get("spec") or {}).get("replicas") != (new.get("spec") or {}).get("replicas"):
            self._scale_changed(new)

    def _scale_changed(self, obj: Obj) -> None:
        """A controller's scale is a percentage budget's ``expectedPods``: its namespace's budgets look again."""
        for pdb in self._namespace_pdbs(obj["metadata"].get("namespace", "")):
            self._enqueue(pdb)

    def _namespace_pdbs(self, namespace: str) -> list[Obj]:
        return [p for p in self.pdbs.list() if p["metadata"].get("namespace") == namespace]

    def keys_for_resync(self) -> list[str]:
        return [key_of(p) for p in self.pdbs.list()]

    def _scale_of(self, namespace: str, ref: Obj) -> tuple[str, int] | None:
        """The (uid, replicas) of the scalable controller ``ref`` names: a ReplicaSet (or the Deployment owning
        it), a Deployment or a StatefulSet (``getPodReplicaSet``, ``getPodDeployment``, ``getPodStatefulSet``)."""
        if ref.get("kind") == "ReplicaSet":
            rs = self.replicasets.get(namespace, ref.get("name", ""))
            if rs is None or rs["metadata"].get("uid") != ref.get("uid"):
                return None
            owner = controller_of(rs)
            if owner is not None and owner.get("kind") == "Deployment":
                deploy = self.deployments.get(namespace, owner.get("name", ""))
                if deploy is None or deploy["metadata"].get("uid") != owner.get("uid"):
                    return None
                return deploy["metadata"]["uid"], int((deploy.get("spec") or {}).get("replicas", 1))
            return rs["metadata"]["uid"], int((rs.get("spec") or {}).get("replicas", 1))
        informer = {"Deployment": self.deployments, "StatefulSet": self.statefulsets}.get(ref.get("kind", ""))
        if informer is not None:
            owner = informer.get(namespace, ref.get("name", ""))
            if owner is None or owner["metadata"].get("uid") != ref.get("uid"):
                return None
            return owner["metadata"]["uid"], int((owner.get("spec") or {}).get("replicas", 1))
        return None

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        pdb = self.pdbs.get(namespace, name)
        if pdb is None:
            return
        try:
            selector = selector_from_label_selector((pdb.get("spec") or {}).get("selector"))
        except SelectorError as err:
            await self._write(pdb, fail_safe_status(pdb, str(err)))
            return
        pods = [p for p in self.pods.list() if p["metadata"].get("namespace") == namespace
                and selector.matches(p["metadata"].get("labels") or {})]
        if not pods:
            await self.recorder.record(pdb, "Normal", "NoPods", "No matching pods found")
        try:
            expected, desired, unmanaged = expected_pod_count(pdb, pods, self._scale_of)
        except ControllerMissing as err:
            await self.recorder.record(pdb, "Warning", "CalculateExpectedPodCountFailed",
                                       f"Failed to calculate the number of expected pods: {err}")
            await self._write(pdb, fail_safe_status(pdb, str(err)))
            raise
        if unmanaged:
            await self.recorder.record(pdb, "Warning", "UnmanagedPods",
                                       UNMANAGED_MESSAGE.format(selector=(pdb.get("spec") or {}).get("selector")))
        now = utcnow()
        disrupted, recheck, late = disrupted_pod_map(pdb, pods, now)
        for pod_name in late:
            pod = self.pods.get(namespace, pod_name)
            if pod is not None:
                await self.recorder.record(pod, "Warning", "NotDeleted",
                                           f"Pod was expected by PDB {namespace}/{name} to be deleted but it wasn't")
        status = pdb_status(pdb, count_healthy_pods(pods, disrupted, now), desired, expected, disrupted)
        await self._write(pdb, status)
        if recheck is not None:
            self.queue.add_after(key, (recheck - now).total_seconds())

    async def _write(self, pdb: Obj, status: Obj) -> None:
        """UpdateStatus with the cached resourceVersion; a conflict fails the sync, which is retried."""
        if _counts(status) == _counts(pdb.get("status") or {}):
            return
        meta = pdb["metadata"]
        await self.client.replace(resource_path("poddisruptionbudgets", meta["namespace"], meta["name"], "status"),
                                  {**pdb, "status": status})
