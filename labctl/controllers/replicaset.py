"""The ReplicaSet controller: keeps ``spec.replicas`` pods matching the selector.

A port of ``pkg/controller/replicaset/replica_set.go``. Each sync:

1. takes the namespace's *active* pods (not finished, not being deleted: a Terminating
   pod already counts as gone, so its replacement starts at once);
2. claims them: adopts matching orphans, releases owned pods whose labels stopped
   matching (``ownerReferences`` with ``controller: true``);
3. if its expectations are met (every pod it created or deleted before has been seen by
   the informer), creates the missing pods (``generateName: <rs>-``, the RS's template,
   batches of 1, 2, 4 … like ``slowStartBatch``) or deletes the surplus in Kubernetes'
   order (unscheduled, pending, not ready, doubled-up, most recently ready first);
4. writes status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (Ready
   for minReadySeconds), observedGeneration, and a ReplicaFailure condition on errors.
"""

from __future__ import annotations

import copy
import logging

from ..client.informer import FuncHandler
from ..client.rest import resource_path
from ..kube.labels import SelectorError, selector_from_label_selector, selector_from_set
from ..kube.meta import timestamp
from ..kube.objects import pod_is_ready
from ._ownership import Expectations, claim, controller_of
from ._podcontrol import PodControl, pod_from_template
from ._podutil import filter_active_pods, is_pod_available, next_available_in, pods_to_delete, utcnow
from .base import Controller, split_key
from .context import ControllerContext

log = logging.getLogger("labctl.controllers.replicaset")

BURST_REPLICAS = 500


def replicaset_status(rs: dict, pods: list[dict], error: str | None, now) -> dict:
    """``calculateStatus`` over the RS's claimed active pods."""
    status = copy.deepcopy(rs.get("status") or {})
    template_labels = selector_from_set(((rs.get("spec") or {}).get("template") or {}).get("metadata", {}).get("labels") or {})
    min_ready = int((rs.get("spec") or {}).get("minReadySeconds") or 0)
    status["replicas"] = len(pods)
    status["fullyLabeledReplicas"] = sum(1 for p in pods if template_labels.matches(p["metadata"].get("labels") or {}))
    status["readyReplicas"] = sum(1 for p in pods if pod_is_ready(p))
    status["availableReplicas"] = sum(1 for p in pods if is_pod_available(p, min_ready, now))
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "ReplicaFailure"]
    failure = next((c for c in status.get("conditions") or [] if c.get("type") == "ReplicaFailure"), None)
    if error and failure is None:
        diff = len(pods) - int((rs.get("spec") or {}).get("replicas", 1))
        reason = "FailedCreate" if diff < 0 else "FailedDelete"
        conditions.append({"type": "ReplicaFailure", "status": "True", "reason": reason, "message": error,
                           "lastTransitionTime": timestamp(now)})
    elif failure is not None and error:
        conditions.append(failure)
    if conditions:
        status["conditions"] = conditions
    else:
        status.pop("conditions", None)
    return status


class ReplicaSetController(Controller):
    name = "replicaset-controller"
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.ctx = ctx
        self.client = ctx.client
        self.recorder = ctx.recorder(self.name)
        self.replicasets = ctx.informer("replicasets")
        self.pods = ctx.informer("pods")
        self.expectations = Expectations()
        self.pod_control = PodControl(self.client, self.recorder, self.expectations)
        self.replicasets.add_handler(FuncHandler(self._enqueue, self._rs_updated, self._rs_deleted))
        self.pods.add_handler(FuncHandler(self._pod_added, self._pod_updated, self._pod_deleted))

    # -- event handlers: only enqueue keys --------------------------------------------
    def _enqueue(self, rs: dict) -> None:
        self.queue.add(f"{rs['metadata']['namespace']}/{rs['metadata']['name']}")

    def _rs_updated(self, old: dict, new: dict) -> None:
        self._enqueue(new)

    def _rs_deleted(self, rs: dict) -> None:
        key = f"{rs['metadata']['namespace']}/{rs['metadata']['name']}"
        self.expectations.delete(key)
        self.queue.add(key)

    def _owner_key(self, pod: dict) -> str | None:
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return None
        rs = self.replicasets.get(pod["metadata"]["namespace"], ref["name"])
        if rs is None or rs["metadata"]["uid"] != ref.get("uid"):
            return None
        return f"{rs['metadata']['namespace']}/{rs['metadata']['name']}"

    def _enqueue_matching(self, pod: dict) -> None:
        """An orphan: every ReplicaSet whose selector matches may want to adopt it."""
        ns, labels = pod["metadata"]["namespace"], pod["metadata"].get("labels") or {}
        for rs in self.replicasets.list():
            if rs["metadata"]["namespace"] != ns:
                continue
            try:
                if selector_from_label_selector(rs["spec"].get("selector")).matches(labels):
                    self._enqueue(rs)
            except SelectorError:
                continue

    def _pod_added(self, pod: dict) -> None:
        if pod["metadata"].get("deletionTimestamp"):
            self._pod_deleted(pod)
            return
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)
        elif controller_of(pod) is None:
            self._enqueue_matching(pod)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if new["metadata"].get("deletionTimestamp") and not old["metadata"].get("deletionTimestamp"):
            self._pod_deleted(new)
            return
        old_key, key = self._owner_key(old), self._owner_key(new)
        if old_key and old_key != key:
            self.queue.add(old_key)
        if key is None:
            if controller_of(new) is None:
                self._enqueue_matching(new)
            return
        self.queue.add(key)  # the sync sets a timer for the moment a newly Ready pod becomes available

    def _pod_deleted(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, f"{pod['metadata']['namespace']}/{pod['metadata']['name']}")
            self.queue.add(key)

    def keys_for_resync(self) -> list[str]:
        return [f"{r['metadata']['namespace']}/{r['metadata']['name']}" for r in self.replicasets.list()]

    # -- sync ---------------------------------------------------------------------------
    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        rs = self.replicasets.get(namespace, name)
        if rs is None:
            self.expectations.delete(key)
            return
        needs_sync = self.expectations.satisfied(key)
        selector = selector_from_label_selector((rs.get("spec") or {}).get("selector"))
        candidates = filter_active_pods([p for p in self.pods.list() if p["metadata"].get("namespace") == namespace])
        pods = await claim(self.client, "pods", rs, selector, candidates)
        error = None
        if needs_sync and not rs["metadata"].get("deletionTimestamp"):
            try:
                await self.manage_replicas(key, rs, pods)
            except Exception as err:  # recorded in status, then retried
                error = str(err)
        now = utcnow()
        status = replicaset_status(rs, pods, error, now)
        status["observedGeneration"] = int(rs["metadata"].get("generation") or 0)
        current = rs.get("status") or {}
        if status != current:
            # a merge patch: only this controller writes RS status, and a stale cached
            # resourceVersion must not cost a conflict-and-retry round on every sync
            patch = {"status": {**{k: None for k in current if k not in status}, **status}}
            rs = await self.client.patch(resource_path("replicasets", namespace, name, "status"), patch)
        after = next_available_in(pods, int(rs["spec"].get("minReadySeconds") or 0), now)
        if after is not None:  # availableReplicas changes then: sync at that instant
            self.queue.add_after(key, after)
        if error is not None:
            raise RuntimeError(error)

    async def manage_replicas(self, key: str, rs: dict, pods: list[dict]) -> None:
        diff = len(pods) - int(rs["spec"].get("replicas", 1))
        if diff < 0:
            await self._create_pods(key, rs, min(-diff, BURST_REPLICAS))
        elif diff > 0:
            await self._delete_pods(key, rs, pods, min(diff, BURST_REPLICAS))

    async def _create_pods(self, key: str, rs: dict, count: int) -> None:
        await self.pod_control.create(key, rs, [pod_from_template(rs) for _ in range(count)])

    async def _delete_pods(self, key: str, rs: dict, pods: list[dict], count: int) -> None:
        await self.pod_control.delete(key, rs, pods_to_delete(pods, self._related_pods(rs), count))

    def _related_pods(self, rs: dict) -> list[dict]:
        """Active pods of this RS and of its siblings under the same controller (the Deployment)."""
        owner = controller_of(rs)
        uids = {rs["metadata"]["uid"]}
        if owner is not None:
            uids |= {r["metadata"]["uid"] for r in self.replicasets.list()
                     if (controller_of(r) or {}).get("uid") == owner.get("uid")}
        return [p for p in self.pods.list() if (controller_of(p) or {}).get("uid") in uids]
