"""The garbage collector: deletes dependents whose owners are gone, as kube-controller-manager's.

A port, at lab scale, of ``pkg/controller/garbagecollector``. The object graph is an index
``owner uid → dependents`` kept from the informers of the kinds a lab owns things with
(Deployments → ReplicaSets → Pods, Services → EndpointSlices). Three ways an owner goes:

* **Background** (kubectl's default): the API server removes the owner at once; its
  dependents now point at a missing uid and are deleted (and theirs, in turn).
* **Foreground**: the owner stays with ``deletionTimestamp`` and the ``foregroundDeletion``
  finalizer; its dependents are deleted (in foreground too) and only when none with
  ``blockOwnerDeletion`` is left is the finalizer removed, so the owner goes last.
* **Orphan** (``--cascade=orphan``): the ``orphan`` finalizer; the owner's reference is
  stripped from every dependent, then the finalizer is removed: the dependents live on.

An owner is only declared missing after a live GET by name (uid compared), never from a
cache that may lag, so a just-created owner never loses its children.
"""

from __future__ import annotations

import logging

from ..client.informer import FuncHandler
from ..client.rest import APIStatusError, resource_path
from .base import Controller
from .context import ControllerContext

log = logging.getLogger("labctl.controllers.garbagecollector")

#: the resources whose objects the collector tracks (dependents and owners alike)
TRACKED = ("deployments", "replicasets", "daemonsets", "statefulsets", "controllerrevisions", "cronjobs", "jobs", "pods",
           "services", "endpointslices", "persistentvolumeclaims")
#: ownerReference kind -> (plural, namespaced): the kinds whose absence can be verified
KINDS = {"Deployment": ("deployments", True), "ReplicaSet": ("replicasets", True), "Pod": ("pods", True),
         "DaemonSet": ("daemonsets", True), "StatefulSet": ("statefulsets", True),
         "ControllerRevision": ("controllerrevisions", True),
         "CronJob": ("cronjobs", True), "Job": ("jobs", True),
         "Service": ("services", True), "EndpointSlice": ("endpointslices", True), "Node": ("nodes", False),
         "ConfigMap": ("configmaps", True), "Secret": ("secrets", True), "Namespace": ("namespaces", False)}
ORPHAN = "orphan"
FOREGROUND = "foregroundDeletion"

Identity = tuple[str, str, str]  # (plural, namespace, name)


def _key(ident: Identity) -> str:
    return "|".join(ident)


def _ident(plural: str, obj: dict) -> Identity:
    return plural, obj["metadata"].get("namespace") or "", obj["metadata"]["name"]


def classify_owners(refs: list[dict], owners: dict[str | None, dict | None]) -> tuple[list[dict], list[dict], list[dict]]:
    """Split ownerReferences into (solid, dangling, waiting-for-dependents-deletion).

    ``owners`` maps each ref's uid to the live owner, or None when it is verified absent.
    """
    solid, dangling, waiting = [], [], []
    for ref in refs:
        owner = owners.get(ref.get("uid"))
        if owner is None:
            dangling.append(ref)
        elif owner["metadata"].get("deletionTimestamp") and FOREGROUND in (owner["metadata"].get("finalizers") or []):
            waiting.append(ref)
        else:
            solid.append(ref)
    return solid, dangling, waiting


class GarbageCollector(Controller):
    name = "garbage-collector-controller"
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        self.informers = {plural: ctx.informer(plural) for plural in TRACKED}
        self.dependents: dict[str, set[Identity]] = {}   # owner uid -> dependents
        self._owners_of: dict[Identity, set[str]] = {}   # dependent -> owner uids (to update the index)
        for plural, inf in self.informers.items():
            inf.add_handler(FuncHandler(lambda o, p=plural: self._observe(p, o),
                                        lambda old, new, p=plural: self._observe(p, new),
                                        lambda o, p=plural: self._forget(p, o)))

    # -- graph ---------------------------------------------------------------------------
    def _observe(self, plural: str, obj: dict) -> None:
        ident = _ident(plural, obj)
        uids = {r.get("uid") for r in obj["metadata"].get("ownerReferences") or [] if r.get("uid")}
        for uid in self._owners_of.get(ident, set()) - uids:
            self.dependents.get(uid, set()).discard(ident)
        for uid in uids:
            self.dependents.setdefault(uid, set()).add(ident)
        self._owners_of[ident] = uids
        meta = obj["metadata"]
        if uids or (meta.get("deletionTimestamp") and {ORPHAN, FOREGROUND} & set(meta.get("finalizers") or [])):
            self.queue.add(_key(ident))
        if meta.get("deletionTimestamp") and FOREGROUND in (meta.get("finalizers") or []):
            self._enqueue_dependents(meta["uid"])

    def _forget(self, plural: str, obj: dict) -> None:
        ident = _ident(plural, obj)
        for uid in self._owners_of.pop(ident, set()):
            self.dependents.get(uid, set()).discard(ident)
        self._enqueue_dependents(obj["metadata"].get("uid", ""))  # Background: they lost their owner

    def _enqueue_dependents(self, uid: str) -> None:
        for ident in list(self.dependents.get(uid, ())):
            self.queue.add(_key(ident))
        if uid in self.dependents and not self.dependents[uid]:
            del self.dependents[uid]

    def _get(self, ident: Identity) -> dict | None:
        plural, ns, name = ident
        return self.informers[plural].get(ns, name)

    def dependents_of(self, uid: str) -> list[tuple[Identity, dict]]:
        out = []
        for ident in list(self.dependents.get(uid, ())):
            obj = self._get(ident)
            if obj is not None:
                out.append((ident, obj))
        return out

    def keys_for_resync(self) -> list[str]:
        return [_key(ident) for ident, uids in self._owners_of.items() if uids]

    # -- sync ---------------------------------------------------------------------------
    async def reconcile(self, key: str) -> None:
        plural, ns, name = key.split("|")
        obj = self._get((plural, ns, name))
        if obj is None:
            return
        meta = obj["metadata"]
        finalizers = meta.get("finalizers") or []
        if meta.get("deletionTimestamp"):
            if ORPHAN in finalizers:
                await self.orphan_dependents(plural, obj)
                return
            if FOREGROUND in finalizers:
                await self.delete_dependents_first(plural, obj)
                return
            return  # being deleted already: nothing to collect
        if meta.get("ownerReferences"):
            await self.attempt_to_delete(plural, obj)

    async def attempt_to_delete(self, plural: str, obj: dict) -> None:
        meta = obj["metadata"]
        refs = meta.get("ownerReferences") or []
        owners = {ref.get("uid"): await self.lookup_owner(meta.get("namespace"), ref) for ref in refs}
        solid, dangling, waiting = classify_owners(refs, owners)
        if solid:
            if dangling or waiting:
                drop = {r.get("uid") for r in dangling + waiting}
                await self._patch_refs(plural, obj, [r for r in refs if r.get("uid") not in drop])
            return
        if waiting and self.dependents.get(meta["uid"]):
            policy = "Foreground"
        elif waiting:
            policy = "Background"
        elif ORPHAN in (meta.get("finalizers") or []):
            policy = "Orphan"
        else:
            policy = "Background"
        log.info("deleting %s %s/%s: owner %s", plural, meta.get("namespace", ""), meta["name"],
                 "is being deleted in foreground" if waiting else "is gone")
        await self._delete(plural, obj, policy)

    async def lookup_owner(self, namespace: str | None, ref: dict) -> dict | None:
        """The live owner, None when verified absent; a stand-in when its kind cannot be checked."""
        kind = KINDS.get(ref.get("kind", ""))
        if kind is None:
            return {"metadata": {"uid": ref.get("uid")}}  # unknown kind: never collect on a guess
        owner_plural, namespaced = kind
        ns = namespace if namespaced else ""
        if owner_plural in self.informers:
            cached = self.informers[owner_plural].get(ns or "", ref["name"])
            if cached is not None and cached["metadata"].get("uid") == ref.get("uid"):
                return cached
        try:
            live = await self.client.get(resource_path(owner_plural, ns or None, ref["name"]))
        except APIStatusError as err:
            if err.code == 404:
                return None
            raise
        return live if live["metadata"].get("uid") == ref.get("uid") else None

    async def delete_dependents_first(self, plural: str, owner: dict) -> None:
        uid = owner["metadata"]["uid"]
        blocking = []
        for ident, dep in self.dependents_of(uid):
            ref: dict = next((r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") == uid), {})
            if ref.get("blockOwnerDeletion"):
                blocking.append(dep)
            if not dep["metadata"].get("deletionTimestamp"):
                self.queue.add(_key(ident))
        if not blocking:
            await self._remove_finalizer(plural, owner, FOREGROUND)

    async def orphan_dependents(self, plural: str, owner: dict) -> None:
        uid = owner["metadata"]["uid"]
        for ident, dep in self.dependents_of(uid):
            refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
            await self._patch_refs(ident[0], dep, refs)
        await self._remove_finalizer(plural, owner, ORPHAN)

    # -- writes ----------------------------------------------------------------------------
    async def _patch_refs(self, plural: str, obj: dict, refs: list[dict]) -> None:
        meta = obj["metadata"]
        patch = {"metadata": {"ownerReferences": refs or None, "resourceVersion": meta["resourceVersion"]}}
        await self._ignore_404(self.client.patch(resource_path(plural, meta.get("namespace") or None, meta["name"]), patch))

    async def _remove_finalizer(self, plural: str, obj: dict, finalizer: str) -> None:
        meta = obj["metadata"]
        rest = [f for f in meta.get("finalizers") or [] if f != finalizer]
        patch = {"metadata": {"finalizers": rest or None, "resourceVersion": meta["resourceVersion"]}}
        await self._ignore_404(self.client.patch(resource_path(plural, meta.get("namespace") or None, meta["name"]), patch))

    async def _delete(self, plural: str, obj: dict, policy: str) -> None:
        meta = obj["metadata"]
        await self._ignore_404(self.client.delete(resource_path(plural, meta.get("namespace") or None, meta["name"]),
                                                  propagationPolicy=policy, preconditions={"uid": meta["uid"]}))

    @staticmethod
    async def _ignore_404(call) -> None:
        try:
            await call
        except APIStatusError as err:
            if err.code != 404:  # a 409 (changed under us) is retried with the watch's newer version
                raise
