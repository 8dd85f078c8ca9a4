"""Storage: StorageClasses, PersistentVolumes and PersistentVolumeClaims (the PV controller binds them)."""

from __future__ import annotations

from labctl.apiserver._validate_storage import (
    validate_claim,
    validate_claim_update,
    validate_storage_class,
    validate_volume,
)
from labctl.apiserver.errors import FieldError
from labctl.kube.printers import PERSISTENTVOLUME_TABLE, PERSISTENTVOLUMECLAIM_TABLE, STORAGECLASS_TABLE
from labctl.kube.storage import PVC_PROTECTION_FINALIZER, default_class

from .base import Obj, Storage, Strategy


class StorageClassStrategy(Strategy):
    """kube's ``storageClassStrategy``: defaults ``reclaimPolicy: Delete`` and ``volumeBindingMode: Immediate``."""

    printer = STORAGECLASS_TABLE

    def default(self, obj: Obj) -> None:
        obj.setdefault("reclaimPolicy", "Delete")
        obj.setdefault("volumeBindingMode", "Immediate")

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_storage_class(obj)


class PersistentVolumeStrategy(Strategy):
    """kube's ``persistentvolumeStrategy``: a new volume is ``Pending`` until the PV controller looks at it."""

    printer = PERSISTENTVOLUME_TABLE

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"phase": "Pending"}

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
            spec.setdefault("volumeMode", "Filesystem")

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_volume(obj)


class PersistentVolumeClaimStrategy(Strategy):
    """kube's ``persistentvolumeclaimStrategy`` plus the ``DefaultStorageClass`` and
    ``StorageObjectInUseProtection`` admission plugins (the PV controller lifts the finalizer
    once no pod uses the claim)."""

    printer = PERSISTENTVOLUMECLAIM_TABLE

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"phase": "Pending"}
        meta = obj.get("metadata")
        if isinstance(meta, dict) and PVC_PROTECTION_FINALIZER not in (meta.get("finalizers") or []):
            meta["finalizers"] = [*(meta.get("finalizers") or []), PVC_PROTECTION_FINALIZER]

    def default(self, obj: Obj) -> None:
        spec = obj.setdefault("spec", {})
        if isinstance(spec, dict):
            spec.setdefault("volumeMode", "Filesystem")

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_claim(obj)

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_claim_update(old, new)

    def allocate(self, api: Storage, obj: Obj, old: Obj | None) -> list[FieldError]:
        """DefaultStorageClass: a new claim without ``storageClassName`` gets the default class's name.

        An explicit ``storageClassName: ""`` asks for no class (a pre-made volume) and is kept.
        """
        spec = obj.get("spec")
        if old is None and isinstance(spec, dict) and spec.get("storageClassName") is None:
            default = default_class(api.store.list("storage.k8s.io/storageclasses"))
            if default is not None:
                spec["storageClassName"] = default["metadata"]["name"]
        return []
