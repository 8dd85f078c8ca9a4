"""The PV controller and kind's local-path provisioner: claims get volumes, volumes are reclaimed.

A port of the parts of ``pkg/controller/volume/persistentvolume`` and rancher's
``local-path-provisioner`` a course meets:

* **dynamic provisioning** — a claim of a class whose provisioner is ``rancher.io/local-path``
  waits (``WaitForFirstConsumer``) until a pod using it is bound to a node; the controller then
  annotates the claim with ``volume.kubernetes.io/selected-node`` (kube-scheduler's hand-off),
  creates ``pvc-<uid>``, a ``hostPath`` volume at ``/var/local-path-provisioner/pvc-<uid>_<ns>_<name>``
  of that node with a ``nodeAffinity`` to it, and binds the two. The kubelet creates the
  directory when it mounts the volume (``labctl/agent/kubelet/mounter.py``).
* **static binding** — a claim of no provisioner binds the smallest Available volume of its
  class that is big enough and offers its access modes (the "manual" volumes of the tutorials).
* **protection** — a claim deleted while a pod uses it stays ``Terminating`` (the
  ``kubernetes.io/pvc-protection`` finalizer the API server adds) until no running pod uses it.
* **reclaim** — a volume whose claim is gone is ``Released``; with ``Delete`` a local-path one
  is emptied by a helper pod on its node (``rm -rf`` of its directory, as the provisioner's
  ``helperPod.yaml`` in the ``local-path-config`` ConfigMap does), then deleted. The control
  plane never touches a node's disk itself.
"""

from __future__ import annotations

import logging
from typing import Any

import yaml

from ..client.informer import FuncHandler
from ..client.rest import APIStatusError, resource_path
from ..kube.quantity import parse_quantity
from ..kube.storage import (
    BOUND_BY_CONTROLLER_ANNOTATION,
    HOSTNAME_LABEL,
    LOCAL_PATH_PROVISIONER,
    LOCAL_PATH_ROOT,
    PROVISIONED_BY_ANNOTATION,
    PVC_PROTECTION_FINALIZER,
    SELECTED_NODE_ANNOTATION,
    STORAGE_PROVISIONER_ANNOTATION,
    WAIT_FOR_FIRST_CONSUMER,
    local_path,
    volume_node,
    volume_path,
)
from ._volumebinding import claim_names
from .base import Controller, key_of, split_key
from .context import ControllerContext

log = logging.getLogger("labctl.controllers.persistentvolume")

Obj = dict[str, Any]
#: where kind installs the provisioner and its configuration
PROVISIONER_NAMESPACE = "local-path-storage"
CONFIG_MAP = "local-path-config"
VOLUME_KEY = "pv/"  # queue keys: "pv/<name>" for volumes, "<ns>/<name>" for claims


def provisioned_volume(claim: Obj, sc: Obj, node: str) -> Obj:
    """The local-path PersistentVolume of ``claim`` on ``node`` (``provisioner.Provision``)."""
    meta, spec = claim["metadata"], claim.get("spec") or {}
    return {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": f"pvc-{meta['uid']}", "annotations": {PROVISIONED_BY_ANNOTATION: LOCAL_PATH_PROVISIONER}},
        "spec": {
            "capacity": {"storage": ((spec.get("resources") or {}).get("requests") or {}).get("storage", "1Gi")},
            "accessModes": list(spec.get("accessModes") or ["ReadWriteOnce"]),
            "persistentVolumeReclaimPolicy": sc.get("reclaimPolicy") or "Delete",
            "storageClassName": sc["metadata"]["name"],
            "volumeMode": spec.get("volumeMode") or "Filesystem",
            "hostPath": {"path": local_path(claim), "type": "DirectoryOrCreate"},
            "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                {"key": HOSTNAME_LABEL, "operator": "In", "values": [node]}]}]}},
            "claimRef": claim_ref(claim),
        },
    }


def claim_ref(claim: Obj) -> Obj:
    meta = claim["metadata"]
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": meta["namespace"],
            "name": meta["name"], "uid": meta["uid"]}


def matching_volume(claim: Obj, volumes: list[Obj]) -> Obj | None:
    """``findBestMatchForClaim``: the smallest Available volume of the claim's class that fits it."""
    spec = claim.get("spec") or {}
    wanted = parse_quantity(((spec.get("resources") or {}).get("requests") or {}).get("storage", "0"))
    modes = set(spec.get("accessModes") or [])
    fits = [pv for pv in volumes
            if not (pv.get("spec") or {}).get("claimRef") and not pv["metadata"].get("deletionTimestamp")
            and ((pv.get("spec") or {}).get("storageClassName") or "") == (spec.get("storageClassName") or "")
            and modes <= set((pv.get("spec") or {}).get("accessModes") or [])
            and parse_quantity(((pv.get("spec") or {}).get("capacity") or {}).get("storage", "0")) >= wanted]
    return min(fits, key=lambda pv: (parse_quantity(pv["spec"]["capacity"]["storage"]), pv["metadata"]["name"]),
               default=None)


def delete_helper_pod(pv: Obj, template: Obj) -> Obj:
    """The helper pod that removes a local-path volume's directory on its node (``createHelperPod``)."""
    path = volume_path(pv) or ""
    pod = dict(template)
    spec = dict(pod.get("spec") or {})
    container = dict((spec.get("containers") or [{}])[0])
    container.update(name="helper-pod", command=["rm", "-rf", path],
                     volumeMounts=[{"name": "data", "mountPath": LOCAL_PATH_ROOT}])
    spec.update(containers=[container], nodeName=volume_node(pv), restartPolicy="Never",
                volumes=[{"name": "data", "hostPath": {"path": LOCAL_PATH_ROOT, "type": "DirectoryOrCreate"}}])
    return {"apiVersion": "v1", "kind": "Pod", "spec": spec,
            "metadata": {"name": helper_pod_name(pv), "namespace": PROVISIONER_NAMESPACE}}


def helper_pod_name(pv: Obj) -> str:
    return f"helper-pod-delete-{pv['metadata']['name']}"


class PersistentVolumeController(Controller):
    name = "persistentvolume-binder-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder("persistentvolume-controller")
        self.claims = ctx.informer("persistentvolumeclaims")
        self.volumes = ctx.informer("persistentvolumes")
        self.classes = ctx.informer("storageclasses")
        self.pods = ctx.informer("pods")
        self.claims.add_handler(FuncHandler(self._claim_changed, lambda old, new: self._claim_changed(new),
                                            self._claim_changed))
        self.volumes.add_handler(FuncHandler(self._volume_changed, lambda old, new: self._volume_changed(new),
                                             lambda pv: None))
        self.pods.add_handler(FuncHandler(self._pod_changed, lambda old, new: self._pod_changed(new),
                                          self._pod_changed))

    def _claim_changed(self, claim: Obj) -> None:
        self.queue.add(key_of(claim))
        if volume := (claim.get("spec") or {}).get("volumeName"):
            self.queue.add(VOLUME_KEY + volume)

    def _volume_changed(self, pv: Obj) -> None:
        self.queue.add(VOLUME_KEY + pv["metadata"]["name"])
        ref = (pv.get("spec") or {}).get("claimRef")
        if ref:
            self.queue.add(f"{ref.get('namespace')}/{ref.get('name')}")

    def _pod_changed(self, pod: Obj) -> None:
        """A pod bound to a node is the first consumer its claims wait for; a helper pod's end is news."""
        namespace = pod["metadata"].get("namespace", "")
        for name in claim_names(pod):
            self.queue.add(f"{namespace}/{name}")
        if namespace == PROVISIONER_NAMESPACE and pod["metadata"]["name"].startswith("helper-pod-delete-"):
            self.queue.add(VOLUME_KEY + pod["metadata"]["name"].removeprefix("helper-pod-delete-"))

    def keys_for_resync(self) -> list[str]:
        return [key_of(c) for c in self.claims.list()] + [VOLUME_KEY + v["metadata"]["name"]
                                                          for v in self.volumes.list()]

    async def reconcile(self, key: str) -> None:
        if key.startswith(VOLUME_KEY):
            pv = self.volumes.get("", key.removeprefix(VOLUME_KEY))
            if pv is not None:
                await self._sync_volume(pv)
            return
        namespace, name = split_key(key)
        claim = self.claims.get(namespace, name)
        if claim is None:
            return
        if claim["metadata"].get("deletionTimestamp"):
            await self._release_protection(claim)
        else:
            await self._sync_claim(claim)

    async def _release_protection(self, claim: Obj) -> None:
        """The pvc-protection controller: a deleted claim goes once no running pod uses it (``Terminating`` till then)."""
        meta = claim["metadata"]
        finalizers = meta.get("finalizers") or []
        if PVC_PROTECTION_FINALIZER not in finalizers:
            return
        if any(p["metadata"].get("namespace") == meta["namespace"] and meta["name"] in claim_names(p)
               and (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed") for p in self.pods.list()):
            return  # the pod's deletion queues the claim again
        await self.client.patch(resource_path("persistentvolumeclaims", meta["namespace"], meta["name"]),
                                {"metadata": {"finalizers": [f for f in finalizers if f != PVC_PROTECTION_FINALIZER],
                                              "resourceVersion": meta.get("resourceVersion")}})

    # -- claims ------------------------------------------------------------------------
    async def _sync_claim(self, claim: Obj) -> None:
        """``syncUnboundClaim``/``syncBoundClaim``: find or provision a volume, then bind both ways."""
        spec = claim.get("spec") or {}
        if spec.get("volumeName"):
            pv = self.volumes.get("", spec["volumeName"])
            if pv is None:
                await self._claim_status(claim, "Lost")
                return
            await self._bind(claim, pv)
            return
        class_name = spec.get("storageClassName") or ""
        sc = self.classes.get("", class_name) if class_name else None
        if sc is None or sc.get("provisioner") != LOCAL_PATH_PROVISIONER:
            pv = matching_volume(claim, self.volumes.list())
            if pv is not None:
                await self._bind(claim, pv)
            elif class_name and sc is None:
                await self.recorder.record(claim, "Warning", "ProvisioningFailed",
                                           f'storageclass.storage.k8s.io "{class_name}" not found')
            elif not class_name:
                await self.recorder.record(claim, "Normal", "FailedBinding",
                                           "no persistent volumes available for this claim and no storage class is set")
            else:
                await self.recorder.record(claim, "Normal", "ExternalProvisioning",
                                           f"Waiting for a volume to be created either by the external provisioner "
                                           f"'{(sc or {}).get('provisioner')}' or manually by the system administrator.")
            return
        node = self._consumer_node(claim)
        if node is None:
            if sc.get("volumeBindingMode") == WAIT_FOR_FIRST_CONSUMER:
                await self.recorder.record(claim, "Normal", "WaitForFirstConsumer",
                                           "waiting for first consumer to be created before binding")
            else:
                await self.recorder.record(claim, "Warning", "ProvisioningFailed",
                                           "failed to provision volume with StorageClass "
                                           f'"{class_name}": configuration error, no node was specified')
            return
        await self._provision(claim, sc, node)

    def _consumer_node(self, claim: Obj) -> str | None:
        """The node of the claim's first pod bound to one (kube-scheduler's ``selected-node``)."""
        selected = (claim["metadata"].get("annotations") or {}).get(SELECTED_NODE_ANNOTATION)
        if selected:
            return str(selected)
        meta = claim["metadata"]
        pods = [p for p in self.pods.list() if p["metadata"].get("namespace") == meta["namespace"]
                and (p.get("spec") or {}).get("nodeName") and meta["name"] in claim_names(p)]
        return min(pods, key=lambda p: p["metadata"].get("creationTimestamp") or "")["spec"]["nodeName"] if pods \
            else None

    async def _provision(self, claim: Obj, sc: Obj, node: str) -> None:
        meta = claim["metadata"]
        annotations = meta.get("annotations") or {}
        if annotations.get(SELECTED_NODE_ANNOTATION) != node:
            claim = await self.client.patch(resource_path("persistentvolumeclaims", meta["namespace"], meta["name"]),
                                            {"metadata": {"annotations": {
                                                SELECTED_NODE_ANNOTATION: node,
                                                STORAGE_PROVISIONER_ANNOTATION: LOCAL_PATH_PROVISIONER}}})
        pv = provisioned_volume(claim, sc, node)
        await self.recorder.record(claim, "Normal", "Provisioning",
                                   f'External provisioner is provisioning volume for claim "{meta["namespace"]}/'
                                   f'{meta["name"]}"')
        try:
            pv = await self.client.create(resource_path("persistentvolumes"), pv)
        except APIStatusError as err:
            if err.code != 409:
                raise
            pv = await self.client.get(resource_path("persistentvolumes", None, pv["metadata"]["name"]))
        else:
            await self.recorder.record(claim, "Normal", "ProvisioningSucceeded",
                                       f"Successfully provisioned volume {pv['metadata']['name']}")
        await self._bind(claim, pv)

    async def _bind(self, claim: Obj, pv: Obj) -> None:
        """``bind``: the volume's claimRef and phase, then the claim's volumeName and status."""
        meta, name = claim["metadata"], pv["metadata"]["name"]
        ref = (pv.get("spec") or {}).get("claimRef") or {}
        if ref.get("uid") != meta["uid"]:
            if ref:
                return  # bound to another claim meanwhile
            pv = await self.client.patch(resource_path("persistentvolumes", None, name),
                                         {"spec": {"claimRef": claim_ref(claim)}})
        if (pv.get("status") or {}).get("phase") != "Bound":
            await self.client.patch(resource_path("persistentvolumes", None, name, "status"),
                                    {"status": {"phase": "Bound"}})
        if (claim.get("spec") or {}).get("volumeName") != name:
            claim = await self.client.patch(
                resource_path("persistentvolumeclaims", meta["namespace"], meta["name"]),
                {"metadata": {"annotations": {BOUND_BY_CONTROLLER_ANNOTATION: "yes"}}, "spec": {"volumeName": name}})
        pv_spec = pv.get("spec") or {}
        await self._claim_status(claim, "Bound", {"accessModes": pv_spec.get("accessModes") or [],
                                                  "capacity": pv_spec.get("capacity") or {}})

    async def _claim_status(self, claim: Obj, phase: str, more: Obj | None = None) -> None:
        status = {"phase": phase, **(more or {})}
        current = claim.get("status") or {}
        if all(current.get(k) == v for k, v in status.items()):
            return
        meta = claim["metadata"]
        await self.client.patch(resource_path("persistentvolumeclaims", meta["namespace"], meta["name"], "status"),
                                {"status": status})

    # -- volumes -----------------------------------------------------------------------
    async def _sync_volume(self, pv: Obj) -> None:
        """``syncVolume``: Available without a claim, Released once its claim is gone, then reclaimed."""
        spec, name = pv.get("spec") or {}, pv["metadata"]["name"]
        ref = spec.get("claimRef")
        phase = (pv.get("status") or {}).get("phase")
        if not ref:
            if phase != "Available":
                await self.client.patch(resource_path("persistentvolumes", None, name, "status"),
                                        {"status": {"phase": "Available"}})
            return
        claim = self.claims.get(ref.get("namespace", ""), ref.get("name", ""))
        if claim is not None and claim["metadata"].get("uid") == ref.get("uid"):
            return  # bound, or being bound by the claim's sync
        if phase != "Released":
            await self.client.patch(resource_path("persistentvolumes", None, name, "status"),
                                    {"status": {"phase": "Released"}})
        if spec.get("persistentVolumeReclaimPolicy") == "Delete":
            await self._delete_volume(pv)

    async def _delete_volume(self, pv: Obj) -> None:
        """Empty a local-path volume's directory on its node with a helper pod, then delete the volume."""
        name = pv["metadata"]["name"]
        annotations = pv["metadata"].get("annotations") or {}
        if annotations.get(PROVISIONED_BY_ANNOTATION) == LOCAL_PATH_PROVISIONER and volume_node(pv):
            helper = self.pods.get(PROVISIONER_NAMESPACE, helper_pod_name(pv))
            if helper is None:
                config = await self.client.get(resource_path("configmaps", PROVISIONER_NAMESPACE, CONFIG_MAP))
                template = yaml.safe_load((config.get("data") or {}).get("helperPod.yaml") or "{}") or {}
                await self.client.create(resource_path("pods", PROVISIONER_NAMESPACE),
                                         delete_helper_pod(pv, template))
                return  # the helper pod's end queues the volume again
            phase = (helper.get("status") or {}).get("phase")
            if phase == "Failed":
                await self.recorder.record(pv, "Warning", "VolumeFailedDelete",
                                           f"failed to delete volume {name}: helper pod failed")
            if phase != "Succeeded":
                return
            await self.client.delete(resource_path("pods", PROVISIONER_NAMESPACE, helper_pod_name(pv)))
        try:
            await self.client.delete(resource_path("persistentvolumes", None, name))
        except APIStatusError as err:
            if err.code != 404:
                raise
        log.info("deleted volume %s", name)
