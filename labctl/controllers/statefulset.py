"""The StatefulSet controller: pods with a stable name, network identity and storage, in order.

A port of ``pkg/controller/statefulset`` (``stateful_set_control.go``, ``stateful_set_utils.go``).
Each sync:

1. records the template as a ControllerRevision (``<sts>-<hash>``; the pods' label
   ``controller-revision-hash`` holds its name), what ``kubectl rollout history/undo sts/...``
   read; the status' ``updateRevision`` is it, ``currentRevision`` the one the pods ran before;
2. splits the pods by the ordinal in their name ``<sts>-<ordinal>`` into the replicas
   (ordinals ``start .. start+replicas-1``) and the condemned (the rest);
3. decides one step (:func:`plan`): with ``OrderedReady`` pods are created in ascending
   order, each only once every lower one is Running and Ready, and condemned ones are deleted
   from the highest ordinal down, one at a time; with ``Parallel`` all at once. Failed pods
   are deleted, to be made again under the same name;
4. a pod gets its claims first: one PersistentVolumeClaim per ``volumeClaimTemplates`` entry,
   ``<template>-<sts>-<ordinal>``, made if missing, so a recreated pod mounts the same data.
   Claims are kept unless ``persistentVolumeClaimRetentionPolicy`` says ``Delete``: then the
   StatefulSet (``whenDeleted``) or a pod condemned by a scale-down (``whenScaled``) becomes
   the claim's owner and the garbage collector deletes the claim with it;
5. rolls a changed template out with ``RollingUpdate``: from the highest ordinal down to
   ``partition``, deleting pods of an older revision (they come back at the new one) while
   fewer than ``maxUnavailable`` (default 1) replicas are not Running and Ready; pods below the
   partition are (re)made at the current revision. ``OnDelete`` leaves that to the user;
6. writes status: replicas, ready, available, current and updated counts, both revisions and
   ``observedGeneration``, which ``kubectl get sts`` and ``kubectl rollout status`` read.

Each pod's ``hostname`` is its name and its ``subdomain`` the StatefulSet's ``serviceName``,
so the endpoints controllers give its address that hostname and the cluster DNS answers
``<pod>.<service>.<namespace>.svc.cluster.local``.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass, field

from ..client.informer import FuncHandler
from ..client.rest import APIStatusError, resource_path
from ..kube.intstr import scaled_value
from ..kube.labels import selector_from_label_selector
from ..kube.objects import pod_is_ready
from ._ownership import Expectations, claim, controller_key, set_owner_references
from ._podcontrol import PodControl, pod_from_template
from ._podutil import is_pod_available, utcnow
from ._revisions import REVISION_HASH_LABEL, owned_revisions, record_revision, revision_template
from ._rollout import compute_hash
from .base import Controller, key_of, split_key
from .context import ControllerContext

log = logging.getLogger("labctl.controllers.statefulset")

POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


# -- identity --------------------------------------------------------------------------------
def start_ordinal(sts: dict) -> int:
    return int((((sts.get("spec") or {}).get("ordinals")) or {}).get("start") or 0)


def replica_count(sts: dict) -> int:
    value = (sts.get("spec") or {}).get("replicas")
    return 1 if value is None else int(value)


def pod_name(sts: dict, ordinal: int) -> str:
    return f"{sts['metadata']['name']}-{ordinal}"


def claim_name(template_name: str, sts: dict, ordinal: int) -> str:
    """``getPersistentVolumeClaimName``: ``<template>-<sts>-<ordinal>``, e.g. ``www-web-0``."""
    return f"{template_name}-{pod_name(sts, ordinal)}"


def pod_ordinal(sts: dict, pod: dict) -> int | None:
    """``getParentNameAndOrdinal``: the ordinal of a pod named ``<sts>-<n>``; None for any other name."""
    match = _ORDINAL.match(pod["metadata"]["name"])
    if match is None or match.group(1) != sts["metadata"]["name"]:
        return None
    return int(match.group(2))


def template_hash(sts: dict) -> str:
    """The revision's hash; an unset ``collisionCount`` counts as 0 (``getStatefulSetRevisions``), so the
    first status write (which sets it) does not make a new revision."""
    return compute_hash(((sts.get("spec") or {}).get("template")) or {},
                        int((sts.get("status") or {}).get("collisionCount") or 0))


def pod_revision(pod: dict) -> str:
    return (pod["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL, "")


def is_terminating(pod: dict) -> bool:
    return bool(pod["metadata"].get("deletionTimestamp"))


def is_finished(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Failed", "Succeeded")


def is_healthy(pod: dict) -> bool:
    """``isHealthy``: Running, Ready and not being deleted."""
    return ((pod.get("status") or {}).get("phase") == "Running" and pod_is_ready(pod)
            and not is_terminating(pod))


def partition(sts: dict) -> int:
    """The replica index (ordinal minus start) below which a rolling update leaves pods alone."""
    rolling = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    return int(rolling.get("partition") or 0)


def update_strategy(sts: dict) -> str:
    return ((sts.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate")


def creation_revision(sts: dict, ordinal: int, current: str, update: str) -> str:
    """``newVersionedStatefulSetPod``: below the partition a pod is made at the current revision."""
    if update_strategy(sts) == "RollingUpdate" and ordinal - start_ordinal(sts) < partition(sts):
        return current
    return update


def stateful_pod(sts: dict, ordinal: int, template: dict, revision: str) -> dict:
    """The pod of ``ordinal``: the template with its identity (name, labels, hostname, subdomain) and claims."""
    pod = pod_from_template(sts, template)
    name = pod_name(sts, ordinal)
    meta = pod["metadata"]
    del meta["generateName"]
    meta["name"] = name
    meta["labels"].update({REVISION_HASH_LABEL: revision, POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal)})
    spec = pod["spec"]
    spec["hostname"] = name
    service = (sts.get("spec") or {}).get("serviceName")
    if service:
        spec["subdomain"] = service
    claims = {(t.get("metadata") or {}).get("name", ""): claim_name((t.get("metadata") or {}).get("name", ""), sts,
                                                                     ordinal)
              for t in (sts.get("spec") or {}).get("volumeClaimTemplates") or []}
    # updateStorage: a template volume of a claim template's name is replaced by the claim
    volumes = [v for v in spec.get("volumes") or [] if v.get("name") not in claims]
    volumes += [{"name": t, "persistentVolumeClaim": {"claimName": c}} for t, c in claims.items()]
    if volumes:
        spec["volumes"] = volumes
    return pod


def retention_policy(sts: dict) -> tuple[str, str]:
    """(whenDeleted, whenScaled) of ``persistentVolumeClaimRetentionPolicy``."""
    policy = (sts.get("spec") or {}).get("persistentVolumeClaimRetentionPolicy") or {}
    return policy.get("whenDeleted") or "Retain", policy.get("whenScaled") or "Retain"


def _plain_ref(owner: dict, kind: str, api_version: str) -> dict:
    """``setOwnerRef``: a plain owner (not the controller), which the garbage collector follows."""
    return {"apiVersion": api_version, "kind": kind, "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}


def claim_owner_refs(sts: dict, claim: dict, pod: dict | None, condemned: bool) -> list[dict]:
    """``claimOwnerMatchesSetAndPod``: the claim's owners under the retention policy.

    ``whenDeleted: Delete`` makes the StatefulSet an owner (the claim goes with it);
    ``whenScaled: Delete`` makes a condemned pod the owner (the claim goes with the pod). A
    claim of a condemned pod under both has only the pod; other owners are kept.
    """
    when_deleted, when_scaled = retention_policy(sts)
    ours = {sts["metadata"]["uid"], *([pod["metadata"]["uid"]] if pod is not None else [])}
    refs = [r for r in claim["metadata"].get("ownerReferences") or [] if r.get("uid") not in ours]
    if when_deleted == "Delete" and not (condemned and when_scaled == "Delete"):
        refs.append(_plain_ref(sts, "StatefulSet", "apps/v1"))
    if when_scaled == "Delete" and condemned and pod is not None:
        refs.append(_plain_ref(pod, "Pod", "v1"))
    return refs


def stateful_claims(sts: dict, ordinal: int) -> list[dict]:
    """``getPersistentVolumeClaims``: the claims of ``ordinal``, labelled with the selector's matchLabels
    (owned by the StatefulSet under ``whenDeleted: Delete``)."""
    selector_labels = ((sts.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    claims = []
    for template in (sts.get("spec") or {}).get("volumeClaimTemplates") or []:
        tmeta = template.get("metadata") or {}
        meta: dict = {"name": claim_name(tmeta.get("name", ""), sts, ordinal),
                      "namespace": sts["metadata"]["namespace"],
                      "labels": {**(tmeta.get("labels") or {}), **selector_labels}}
        if tmeta.get("annotations"):
            meta["annotations"] = dict(tmeta["annotations"])
        if retention_policy(sts)[0] == "Delete":
            meta["ownerReferences"] = [_plain_ref(sts, "StatefulSet", "apps/v1")]
        claims.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta,
                       "spec": dict(template.get("spec") or {})})
    return claims


# -- one step ----------------------------------------------------------------------------------
@dataclass
class Plan:
    """What one sync does: the ordinals to create (claims first) and the pods to delete."""

    create: list[int] = field(default_factory=list)
    delete: list[dict] = field(default_factory=list)


def split_pods(sts: dict, pods: list[dict]) -> tuple[dict[int, dict], list[dict]]:
    """The replicas by ordinal and the condemned pods (ordinal out of range), highest ordinal first."""
    start, count = start_ordinal(sts), replica_count(sts)
    replicas: dict[int, dict] = {}
    condemned: list[tuple[int, dict]] = []
    for pod in pods:
        ordinal = pod_ordinal(sts, pod)
        if ordinal is None:
            continue
        if start <= ordinal < start + count:
            replicas[ordinal] = pod
        else:
            condemned.append((ordinal, pod))
    return replicas, [p for _, p in sorted(condemned, key=lambda c: c[0], reverse=True)]


def max_unavailable(sts: dict) -> int:
    """``getStatefulSetMaxUnavailable``: a number or a percentage of replicas (rounded up), at least 1."""
    rolling = ((sts.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
    return max(scaled_value(rolling.get("maxUnavailable", 1), replica_count(sts), True), 1)


def plan(sts: dict, pods: list[dict], update_revision: str, now: dt.datetime) -> Plan:
    """``updateStatefulSet``: the next step towards the spec, kube's order and pace."""
    monotonic = (sts.get("spec") or {}).get("podManagementPolicy", "OrderedReady") != "Parallel"
    start, count = start_ordinal(sts), replica_count(sts)
    min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)

    def available(pod: dict) -> bool:
        return is_healthy(pod) and is_pod_available(pod, min_ready, now)

    replicas, condemned = split_pods(sts, pods)
    step = Plan()
    for ordinal in range(start, start + count):
        pod = replicas.get(ordinal)
        if pod is None:
            step.create.append(ordinal)
            if monotonic:
                return step
            continue
        if is_finished(pod):  # a failed pod goes; the next sync makes it again under its name
            if not is_terminating(pod):
                step.delete.append(pod)
            if monotonic:
                return step
            continue
        if monotonic and not available(pod):
            return step  # each pod Running and Ready (for minReadySeconds) before the next
    if step.create or step.delete:
        return step
    for pod in condemned:  # highest ordinal first
        if is_terminating(pod):
            if monotonic:
                return step
            continue
        step.delete.append(pod)
        if monotonic:
            return step
    if step.delete or update_strategy(sts) != "RollingUpdate":
        return step
    # updateStatefulSetAfterInvariantEstablished: from the highest ordinal down to the partition, old pods
    # go while fewer than maxUnavailable replicas (any ordinal) are unavailable
    budget = max_unavailable(sts) - sum(1 for pod in replicas.values() if not available(pod))
    for ordinal in range(start + count - 1, start + partition(sts) - 1, -1):
        if len(step.delete) >= budget:
            break
        pod = replicas[ordinal]
        if pod_revision(pod) != update_revision and not is_terminating(pod):
            step.delete.append(pod)
    return step


def statefulset_status(sts: dict, pods: list[dict], current_revision: str, update_revision: str,
                       now: dt.datetime) -> dict:
    """``computeReplicaStatus`` + ``completeRollingUpdate``: what ``kubectl get/rollout status sts`` read."""
    min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
    status: dict = {"observedGeneration": int(sts["metadata"].get("generation") or 0), "replicas": 0,
                    "readyReplicas": 0, "availableReplicas": 0, "currentReplicas": 0, "updatedReplicas": 0,
                    "currentRevision": current_revision, "updateRevision": update_revision,
                    "collisionCount": int((sts.get("status") or {}).get("collisionCount") or 0)}
    for pod in pods:
        if pod_ordinal(sts, pod) is None:
            continue
        status["replicas"] += 1
        running_ready = (pod.get("status") or {}).get("phase") == "Running" and pod_is_ready(pod)
        if running_ready:
            status["readyReplicas"] += 1
            if is_pod_available(pod, min_ready, now):
                status["availableReplicas"] += 1
        if not is_terminating(pod):
            if pod_revision(pod) == current_revision:
                status["currentReplicas"] += 1
            if pod_revision(pod) == update_revision:
                status["updatedReplicas"] += 1
    if (update_strategy(sts) == "RollingUpdate" and status["updatedReplicas"] == status["replicas"]
            and status["readyReplicas"] == status["replicas"]):
        status["currentReplicas"] = status["updatedReplicas"]
        status["currentRevision"] = update_revision
    for omitted in ("readyReplicas", "availableReplicas", "currentReplicas", "updatedReplicas"):  # omitempty
        if not status[omitted]:
            del status[omitted]
    return status


# -- the controller ------------------------------------------------------------------------
class StatefulSetController(Controller):
    name = "statefulset-controller"
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder(self.name)
        self.statefulsets = ctx.informer("statefulsets")
        self.pods = ctx.informer("pods")
        self.claims = ctx.informer("persistentvolumeclaims")
        self.revisions = ctx.informer("controllerrevisions")
        self.expectations = Expectations()
        self.pod_control = PodControl(self.client, self.recorder, self.expectations)
        self.statefulsets.add_handler(FuncHandler(self._enqueue, lambda old, new: self._enqueue(new), self._deleted))
        self.pods.add_handler(FuncHandler(self._pod_added, self._pod_updated, self._pod_deleted))

    def _enqueue(self, sts: dict) -> None:
        self.queue.add(key_of(sts))

    def _deleted(self, sts: dict) -> None:
        self.expectations.delete(key_of(sts))

    def _pod_added(self, pod: dict) -> None:
        key = controller_key(pod, "StatefulSet")
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)

    def _pod_updated(self, old: dict, new: dict) -> None:
        key = controller_key(new, "StatefulSet")
        if key is not None:
            if is_terminating(new) and not is_terminating(old):  # a graceful deletion is observed when it starts
                self.expectations.deletion_observed(key, key_of(new))
            self.queue.add(key)

    def _pod_deleted(self, pod: dict) -> None:
        key = controller_key(pod, "StatefulSet")
        if key is not None:
            self.expectations.deletion_observed(key, key_of(pod))
            self.queue.add(key)

    def keys_for_resync(self) -> list[str]:
        return [key_of(s) for s in self.statefulsets.list()]

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        sts = self.statefulsets.get(namespace, name)
        if sts is None:
            self.expectations.delete(key)
            return
        selector = selector_from_label_selector((sts.get("spec") or {}).get("selector"))
        candidates = [p for p in self.pods.list() if p["metadata"].get("namespace") == namespace]
        pods = await claim(self.client, "pods", sts, selector, candidates)
        owned = owned_revisions(self.revisions.list(), sts)
        update_revision = f"{name}-{template_hash(sts)}"
        current_revision = (sts.get("status") or {}).get("currentRevision") or ""
        if not any(r["metadata"]["name"] == current_revision for r in owned):
            current_revision = update_revision
        if not sts["metadata"].get("deletionTimestamp"):
            prefix = f"{name}-"
            in_use = {pod_revision(p).removeprefix(prefix) for p in pods}
            in_use.add(current_revision.removeprefix(prefix))
            update_revision = await record_revision(self.client, owned, sts, template_hash(sts), in_use)
            if self.expectations.satisfied(key):
                await self._update_claim_owners(sts, pods)
                await self._apply(key, sts, plan(sts, pods, update_revision, utcnow()), owned, current_revision,
                                  update_revision)
        status = statefulset_status(sts, pods, current_revision, update_revision, utcnow())
        if status != (sts.get("status") or {}):
            try:
                await self.client.replace(resource_path("statefulsets", namespace, name, "status"),
                                          {**sts, "status": status})
            except APIStatusError as err:
                if err.code != 409:
                    raise
                self.queue.add(key)  # our cached StatefulSet is older than the stored one: look again
                return
        min_ready = int((sts.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready and status.get("availableReplicas", 0) < status.get("readyReplicas", 0):
            self.queue.add_after(key, min_ready)

    async def _apply(self, key: str, sts: dict, step: Plan, owned: list[dict], current_revision: str,
                     update_revision: str) -> None:
        """Deletions first; creations (claims, then the pod) at the revision their ordinal calls for."""
        if step.delete:
            await self.pod_control.delete(key, sts, step.delete)
            return
        templates = {r["metadata"]["name"]: revision_template(r) for r in owned}
        pods = []
        for ordinal in step.create:
            revision = creation_revision(sts, ordinal, current_revision, update_revision)
            template = templates.get(revision) if revision != update_revision else None
            await self._ensure_claims(sts, ordinal)
            pods.append(stateful_pod(sts, ordinal, template or (sts.get("spec") or {}).get("template") or {},
                                     revision if template else update_revision))
        if pods:
            await self.pod_control.create(key, sts, pods)

    async def _update_claim_owners(self, sts: dict, pods: list[dict]) -> None:
        """``UpdatePodClaimForRetentionPolicy``: each pod's claims owned as the retention policy says,
        before a condemned pod is deleted (the garbage collector then deletes its claims with it)."""
        namespace = sts["metadata"]["namespace"]
        replicas, condemned = split_pods(sts, pods)
        for pod, is_condemned in [*((p, False) for p in replicas.values()), *((p, True) for p in condemned)]:
            ordinal = pod_ordinal(sts, pod)
            assert ordinal is not None  # split_pods keeps only ordinal names
            for body in stateful_claims(sts, ordinal):
                existing = self.claims.get(namespace, body["metadata"]["name"])
                if existing is None or existing["metadata"].get("deletionTimestamp"):
                    continue
                refs = claim_owner_refs(sts, existing, pod, is_condemned)
                if {r.get("uid") for r in refs} != {r.get("uid") for r in existing["metadata"].get("ownerReferences") or []}:
                    await set_owner_references(self.client, "persistentvolumeclaims", existing, refs)

    async def _ensure_claims(self, sts: dict, ordinal: int) -> None:
        """``createPersistentVolumeClaims``: a missing claim is made; one being deleted stops the pod."""
        namespace = sts["metadata"]["namespace"]
        for body in stateful_claims(sts, ordinal):
            name = body["metadata"]["name"]
            existing = self.claims.get(namespace, name)
            if existing is not None and existing["metadata"].get("deletionTimestamp"):
                raise RuntimeError(f"pvc {name} is being deleted")
            if existing is not None:
                continue
            try:
                await self.client.create(resource_path("persistentvolumeclaims", namespace), body)
            except APIStatusError as err:
                if err.code != 409:
                    await self.recorder.record(sts, "Warning", "FailedCreate",
                                               f"create Claim {name} for Pod {pod_name(sts, ordinal)} in "
                                               f"StatefulSet {sts['metadata']['name']} failed error: {err}")
                    raise
                continue
            await self.recorder.record(sts, "Normal", "SuccessfulCreate",
                                       f"create Claim {name} for Pod {pod_name(sts, ordinal)} in StatefulSet "
                                       f"{sts['metadata']['name']} success")

