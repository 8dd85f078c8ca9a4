"""The Deployment controller: rolls a pod template out through ReplicaSets.

A port of ``pkg/controller/deployment`` (``deployment_controller.go``, ``sync.go``,
``rolling.go``, ``recreate.go``, ``progress.go``); the arithmetic lives in
:mod:`._rollout`. One sync of a Deployment:

* claims its ReplicaSets (adopt matching orphans, release non-matching);
* being deleted → status only; paused → proportional scaling only (no rollout) and a
  ``Progressing=Unknown DeploymentPaused`` condition;
* resized (an active RS's desired-replicas annotation differs) → proportional scaling;
* otherwise one rollout step: RollingUpdate grows the new RS up to replicas+maxSurge,
  or shrinks old ones down to replicas-maxUnavailable available; Recreate scales old
  RSs to 0, waits for their pods to be gone, then creates the new one at full size;
* completion → old RSs beyond revisionHistoryLimit are deleted;
* status and the Progressing/Available conditions; a stuck rollout is re-checked at its
  progressDeadlineSeconds and marked ``ProgressDeadlineExceeded``.

``kubectl rollout undo`` needs nothing special: kubectl itself patches the Deployment's
template back to the old ReplicaSet's, which then becomes the new RS with the next
revision number (its old numbers kept in ``deployment.kubernetes.io/revision-history``).
"""

from __future__ import annotations

import copy
import logging
from typing import Literal, overload

from ..client.informer import FuncHandler
from ..client.rest import APIStatusError, resource_path
from ..kube.labels import selector_from_label_selector
from . import _rollout as ro
from ._ownership import claim, controller_of
from ._podutil import utcnow
from .base import Controller, split_key
from .context import ControllerContext

log = logging.getLogger("labctl.controllers.deployment")


class DeploymentController(Controller):
    name = "deployment-controller"
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder(self.name)
        self.deployments = ctx.informer("deployments")
        self.replicasets = ctx.informer("replicasets")
        self.pods = ctx.informer("pods")
        self.deployments.add_handler(FuncHandler(self._enqueue, lambda o, n: self._enqueue(n), self._enqueue))
        self.replicasets.add_handler(FuncHandler(self._rs_changed, lambda o, n: self._rs_updated(o, n), self._rs_changed))
        self.pods.add_handler(FuncHandler(on_delete=self._pod_deleted))

    # -- handlers ----------------------------------------------------------------------
    def _enqueue(self, deploy: dict) -> None:
        self.queue.add(f"{deploy['metadata']['namespace']}/{deploy['metadata']['name']}")

    def _rs_changed(self, rs: dict) -> None:
        ref = controller_of(rs)
        if ref is not None:
            if ref.get("kind") == "Deployment":
                self.queue.add(f"{rs['metadata']['namespace']}/{ref['name']}")
            return
        for deploy in self._matching_deployments(rs):  # an orphan: who may adopt it?
            self._enqueue(deploy)

    def _rs_updated(self, old: dict, new: dict) -> None:
        old_ref, new_ref = controller_of(old), controller_of(new)
        if old_ref and (not new_ref or old_ref.get("uid") != new_ref.get("uid")) and old_ref.get("kind") == "Deployment":
            self.queue.add(f"{old['metadata']['namespace']}/{old_ref['name']}")
        self._rs_changed(new)

    def _pod_deleted(self, pod: dict) -> None:
        """Recreate waits for old pods to be gone: their deletion may unblock it."""
        ref = controller_of(pod)
        if ref is None or ref.get("kind") != "ReplicaSet":
            return
        rs = self.replicasets.get(pod["metadata"]["namespace"], ref["name"])
        if rs is not None:
            self._rs_changed(rs)

    def _matching_deployments(self, rs: dict) -> list[dict]:
        out = []
        for deploy in self.deployments.list():
            if deploy["metadata"]["namespace"] != rs["metadata"]["namespace"]:
                continue
            try:
                if selector_from_label_selector(deploy["spec"].get("selector")).matches(rs["metadata"].get("labels") or {}):
                    out.append(deploy)
            except Exception:
                continue
        return out

    def keys_for_resync(self) -> list[str]:
        return [f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in self.deployments.list()]

    # -- sync ---------------------------------------------------------------------------
    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        cached = self.deployments.get(namespace, name)
        if cached is None:
            return
        d = copy.deepcopy(cached)
        selector_obj = d["spec"].get("selector") or {}
        if not selector_obj.get("matchLabels") and not selector_obj.get("matchExpressions"):
            await self.recorder.record(d, "Warning", "SelectingAll",
                                       "This deployment is selecting all pods. A non-empty selector is required.")
            return
        selector = selector_from_label_selector(selector_obj)
        candidates = [r for r in self.replicasets.list() if r["metadata"]["namespace"] == namespace]
        rss = await claim(self.client, "replicasets", d, selector, candidates)
        if d["metadata"].get("deletionTimestamp"):
            new_rs, old_rss = await self.new_and_old(d, rss, create=False)
            await self.sync_status(d, [*old_rss, new_rs], new_rs)
            return
        d = await self.check_paused_conditions(d)
        if d["spec"].get("paused"):
            await self.sync(d, rss)
            return
        new_rs, old_rss = await self.new_and_old(d, rss, create=False)
        if ro.is_scaling_event(d, [*old_rss, new_rs]):
            await self.sync(d, rss)
            return
        if ro.is_rolling(d):
            await self.rollout_rolling(d, rss)
        else:
            await self.rollout_recreate(d, rss)

    async def sync(self, d: dict, rss: list[dict]) -> None:
        """Scaling (proportional) and status without advancing the rollout."""
        new_rs, old_rss = await self.new_and_old(d, rss, create=False)
        await self.scale(d, new_rs, old_rss)
        if d["spec"].get("paused"):
            await self.cleanup(d, old_rss)
        await self.sync_status(d, [*old_rss, new_rs], new_rs)

    async def rollout_rolling(self, d: dict, rss: list[dict]) -> None:
        new_rs, old_rss = await self.new_and_old(d, rss, create=True)
        all_rss = [*old_rss, new_rs]
        if ro.spec_replicas(new_rs) != ro.spec_replicas(d):  # reconcileNewReplicaSet
            target = (ro.spec_replicas(d) if ro.spec_replicas(new_rs) > ro.spec_replicas(d)
                      else ro.new_rs_new_replicas(d, [r for r in all_rss if r], new_rs))
            scaled, new_rs = await self.scale_rs(new_rs, target, d)
            if scaled:
                await self.sync_rollout_status(d, [*old_rss, new_rs], new_rs)
                return
        sizes = ro.old_rs_scale_down(d, new_rs, ro.active(old_rss))
        if sizes:
            for i, rs in enumerate(old_rss):
                if rs["metadata"]["name"] in sizes:
                    _, old_rss[i] = await self.scale_rs(rs, sizes[rs["metadata"]["name"]], d)
            await self.sync_rollout_status(d, [*old_rss, new_rs], new_rs)
            return
        if ro.deployment_complete(d, d.get("status") or {}):
            await self.cleanup(d, old_rss)
        await self.sync_rollout_status(d, [*old_rss, new_rs], new_rs)

    async def rollout_recreate(self, d: dict, rss: list[dict]) -> None:
        new_rs, old_rss = await self.new_and_old(d, rss, create=False)
        scaled_down = False
        for i, rs in enumerate(old_rss):
            if ro.spec_replicas(rs) > 0:
                changed, old_rss[i] = await self.scale_rs(rs, 0, d)
                scaled_down = scaled_down or changed
        if scaled_down or self.old_pods_running(new_rs, old_rss):
            await self.sync_rollout_status(d, [*old_rss, new_rs], new_rs)
            return
        if new_rs is None:
            new_rs, old_rss = await self.new_and_old(d, rss, create=True)
        if ro.spec_replicas(new_rs) != ro.spec_replicas(d):
            _, new_rs = await self.scale_rs(new_rs, ro.spec_replicas(d), d)
        if ro.deployment_complete(d, d.get("status") or {}):
            await self.cleanup(d, old_rss)
        await self.sync_rollout_status(d, [*old_rss, new_rs], new_rs)

    def old_pods_running(self, new_rs: dict | None, old_rss: list[dict]) -> bool:
        if ro.sum_status(old_rss, "replicas") > 0:
            return True
        old_uids = {r["metadata"]["uid"] for r in old_rss}
        for pod in self.pods.list():
            if (controller_of(pod) or {}).get("uid") in old_uids:
                if (pod.get("status") or {}).get("phase") not in ("Failed", "Succeeded"):
                    return True
        return False

    # -- ReplicaSets ---------------------------------------------------------------------
    @overload
    async def new_and_old(self, d: dict, rss: list[dict], create: Literal[True]) -> tuple[dict, list[dict]]: ...
    @overload
    async def new_and_old(self, d: dict, rss: list[dict], create: bool) -> tuple[dict | None, list[dict]]: ...

    async def new_and_old(self, d: dict, rss: list[dict], create: bool) -> tuple[dict | None, list[dict]]:
        """``getAllReplicaSetsAndSyncRevision``: the new RS (synced or created) and all the old ones."""
        existing = ro.find_new_rs(d, rss)
        old_rss = [r for r in rss if existing is None or r["metadata"]["uid"] != existing["metadata"]["uid"]]
        new_revision = ro.max_revision(old_rss) + 1
        now = utcnow()
        if existing is not None:
            rs = copy.deepcopy(existing)
            changed = ro.set_new_rs_annotations(d, rs, new_revision, exists=True)
            min_ready = int(d["spec"].get("minReadySeconds") or 0)
            if changed or int(rs["spec"].get("minReadySeconds") or 0) != min_ready:
                rs["spec"]["minReadySeconds"] = min_ready
                rs = await self.client.replace(resource_path("replicasets", rs["metadata"]["namespace"],
                                                             rs["metadata"]["name"]), rs)
            needs_update = ro.set_deployment_revision(d, rs["metadata"]["annotations"][ro.REVISION_ANNOTATION])
            if ro.has_progress_deadline(d) and ro.get_condition(d.setdefault("status", {}), "Progressing") is None:
                ro.set_condition(d["status"], ro.new_condition("Progressing", "True", ro.FOUND_NEW_RS,
                                                               f'Found new replica set "{rs["metadata"]["name"]}"', now))
                needs_update = True
            if needs_update:
                await self.update_deployment(d)
            return rs, old_rss
        if not create:
            return None, old_rss
        return await self.create_new_rs(d, old_rss, new_revision), old_rss

    async def create_new_rs(self, d: dict, old_rss: list[dict], new_revision: int) -> dict:
        status = d.setdefault("status", {})
        rs = ro.new_rs_object(d, status.get("collisionCount"))
        rs["spec"]["replicas"] = ro.new_rs_new_replicas(d, [*old_rss, rs], rs)
        ro.set_new_rs_annotations(d, rs, new_revision, exists=False)
        ns, now = d["metadata"]["namespace"], utcnow()
        already = False
        try:
            created = await self.client.create(resource_path("replicasets", ns), rs)
        except APIStatusError as err:
            if err.code != 409:
                message = f'Failed to create new replica set "{rs["metadata"]["name"]}": {err}'
                if ro.has_progress_deadline(d):
                    ro.set_condition(status, ro.new_condition("Progressing", "False", ro.FAILED_RS_CREATE, message, now))
                    await self.update_status(d)
                await self.recorder.record(d, "Warning", ro.FAILED_RS_CREATE, message)
                raise
            created = await self.client.get(resource_path("replicasets", ns, rs["metadata"]["name"]))
            ref = controller_of(created) or {}
            if ref.get("uid") != d["metadata"]["uid"] or not ro.equal_ignore_hash(
                    created["spec"]["template"], d["spec"]["template"]):
                status["collisionCount"] = int(status.get("collisionCount") or 0) + 1  # a hash collision
                await self.update_status(d)
                raise RuntimeError(f'hash collision for ReplicaSet "{rs["metadata"]["name"]}": retrying with '
                                   f'collisionCount {status["collisionCount"]}') from None
            already = True
        if not already and ro.spec_replicas(created) > 0:
            self.recorder.emit(d, "Normal", "ScalingReplicaSet", f"Scaled up replica set "
                               f"{created['metadata']['name']} from 0 to {ro.spec_replicas(created)}")
        needs_update = ro.set_deployment_revision(d, str(new_revision))
        if not already and ro.has_progress_deadline(d):
            ro.set_condition(status, ro.new_condition("Progressing", "True", ro.NEW_RS_CREATED,
                                                      f'Created new replica set "{created["metadata"]["name"]}"', now))
            needs_update = True
        if needs_update:
            await self.update_deployment(d)
        return created

    async def scale_rs(self, rs: dict, size: int, d: dict) -> tuple[bool, dict]:
        """Set an RS's replicas and its desired/max-replicas annotations; event on a size change."""
        replicas = ro.spec_replicas(d)
        max_replicas = replicas + ro.max_surge(d)
        resize = ro.spec_replicas(rs) != size
        if not resize and not ro.replicas_annotations_need_update(rs, replicas, max_replicas):
            return False, rs
        before = ro.spec_replicas(rs)
        new = copy.deepcopy(rs)
        new["spec"]["replicas"] = size
        ro.set_replicas_annotations(new, replicas, max_replicas)
        updated = await self.client.replace(resource_path("replicasets", rs["metadata"]["namespace"],
                                                          rs["metadata"]["name"]), new)
        if resize:
            direction = "up" if size > before else "down"
            self.recorder.emit(d, "Normal", "ScalingReplicaSet",  # not waited for: the rollout's next step
                               f"Scaled {direction} replica set {rs['metadata']['name']} from {before} to {size}")
        return resize, updated

    async def scale(self, d: dict, new_rs: dict | None, old_rss: list[dict]) -> None:
        sizes = ro.proportional_sizes(d, new_rs, old_rss)
        for rs in [r for r in (*old_rss, new_rs) if r is not None]:
            if rs["metadata"]["name"] in sizes:
                await self.scale_rs(rs, sizes[rs["metadata"]["name"]], d)

    async def cleanup(self, d: dict, old_rss: list[dict]) -> None:
        for rs in ro.rss_to_clean_up(d, old_rss):
            meta = rs["metadata"]
            try:
                await self.client.delete(resource_path("replicasets", meta["namespace"], meta["name"]),
                                         preconditions={"uid": meta["uid"]})
                log.info("deleted old ReplicaSet %s/%s (beyond revisionHistoryLimit)", meta["namespace"], meta["name"])
            except APIStatusError as err:
                if err.code != 404:
                    raise

    # -- status ------------------------------------------------------------------------
    async def check_paused_conditions(self, d: dict) -> dict:
        cond = ro.paused_condition(d, utcnow())
        if cond is None:
            return d
        ro.set_condition(d.setdefault("status", {}), cond)
        return await self.update_status(d)

    async def sync_status(self, d: dict, all_rss: list, new_rs: dict | None) -> None:
        status = ro.calculate_status(d, [r for r in all_rss if r], new_rs, utcnow())
        if status != (d.get("status") or {}):
            await self.update_status({**d, "status": status})

    async def sync_rollout_status(self, d: dict, all_rss: list, new_rs: dict | None) -> None:
        now = utcnow()
        status = ro.rollout_status(d, [r for r in all_rss if r], new_rs, now)
        key = f"{d['metadata']['namespace']}/{d['metadata']['name']}"
        if status == (d.get("status") or {}):
            after = ro.requeue_after(d, status, now)
            if after is not None:
                self.queue.add_after(key, after)
            return
        await self.update_status({**d, "status": status})
        cond = ro.get_condition(status, "Progressing")
        if cond and cond.get("reason") == ro.TIMED_OUT:
            old = ro.get_condition(d.get("status") or {}, "Progressing") or {}
            if old.get("reason") != ro.TIMED_OUT:
                await self.recorder.record(d, "Warning", ro.TIMED_OUT, cond["message"])
        after = ro.requeue_after({**d, "status": status}, status, now)
        if after is not None:
            self.queue.add_after(key, after)

    async def update_status(self, d: dict) -> dict:
        meta = d["metadata"]
        updated = await self.client.replace(resource_path("deployments", meta["namespace"], meta["name"], "status"), d)
        d.update(updated)
        return d

    async def update_deployment(self, d: dict) -> dict:
        """Write the revision annotation (main resource) and then any status change."""
        meta = d["metadata"]
        status = d.get("status")
        updated = await self.client.replace(resource_path("deployments", meta["namespace"], meta["name"]), d)
        d.update(updated)
        if status is not None and status != updated.get("status"):
            d["status"] = status
            await self.update_status(d)
        return d
