"""StorageClass, PersistentVolume and PersistentVolumeClaim validation, with upstream's field paths.

The subset of ``pkg/apis/storage/validation`` and ``pkg/apis/core/validation`` a course's
manifests meet: the provisioner and the policies of a class, a volume's capacity, access
modes and single source, a claim's access modes and requested storage; a claim's spec is
immutable once stored except its requested size, as kube refuses other changes.
"""

from __future__ import annotations

from typing import Any

from labctl.apiserver._validate_common import as_dict, as_list
from labctl.apiserver.errors import FieldError, forbidden, invalid, not_supported, required
from labctl.kube import quantity

__all__ = ["validate_claim", "validate_claim_update", "validate_storage_class", "validate_volume"]

Obj = dict[str, Any]
ACCESS_MODES = ["ReadOnlyMany", "ReadWriteMany", "ReadWriteOnce", "ReadWriteOncePod"]
RECLAIM_POLICIES = ["Delete", "Recycle", "Retain"]
BINDING_MODES = ["Immediate", "WaitForFirstConsumer"]
#: the volume sources labctl's kubelet mounts
VOLUME_SOURCES = ("hostPath", "local")


def validate_storage_class(sc: Obj) -> list[FieldError]:
    """ValidateStorageClass."""
    errs: list[FieldError] = []
    if not sc.get("provisioner"):
        errs.append(required("provisioner", ""))
    policy = sc.get("reclaimPolicy")
    if policy is not None and policy not in ("Delete", "Retain"):
        errs.append(not_supported("reclaimPolicy", policy, ["Delete", "Retain"]))
    mode = sc.get("volumeBindingMode")
    if mode is not None and mode not in BINDING_MODES:
        errs.append(not_supported("volumeBindingMode", mode, BINDING_MODES))
    return errs


def _access_modes(modes: Any, path: str) -> list[FieldError]:
    if not as_list(modes):
        return [required(path, "at least 1 access mode is required")]
    return [not_supported(path, m, ACCESS_MODES) for m in as_list(modes) if m not in ACCESS_MODES]


def _storage(value: Any, path: str) -> list[FieldError]:
    if value is None:
        return [required(path, "")]
    # the request decoder already refused what is not a quantity
    return [invalid(path, str(value), "must be greater than zero")] if quantity.parse_quantity(value) <= 0 else []


def validate_volume(pv: Obj) -> list[FieldError]:
    """ValidatePersistentVolume: capacity, access modes, reclaim policy, exactly one source labctl mounts."""
    spec = as_dict(pv.get("spec"))
    errs = _access_modes(spec.get("accessModes"), "spec.accessModes")
    errs += _storage(as_dict(spec.get("capacity")).get("storage"), "spec.capacity.storage")
    policy = spec.get("persistentVolumeReclaimPolicy")
    if policy is not None and policy not in RECLAIM_POLICIES:
        errs.append(not_supported("spec.persistentVolumeReclaimPolicy", policy, RECLAIM_POLICIES))
    sources = [key for key in VOLUME_SOURCES if key in spec]
    if not sources:
        errs.append(required("spec", "must specify a volume type"))
    elif len(sources) > 1:
        errs.append(forbidden(f"spec.{sources[1]}", "may not specify more than 1 volume type"))
    for key in sources:
        path = as_dict(spec.get(key)).get("path")
        if not isinstance(path, str) or not path.startswith("/"):
            errs.append(required(f"spec.{key}.path", "") if not path
                        else invalid(f"spec.{key}.path", path, "must be an absolute path"))
    if "local" in spec and not as_dict(spec.get("nodeAffinity")).get("required"):
        errs.append(required("spec.nodeAffinity", "Local volume requires node affinity"))
    return errs


def validate_claim(pvc: Obj) -> list[FieldError]:
    """ValidatePersistentVolumeClaimSpec."""
    spec = as_dict(pvc.get("spec"))
    errs = _access_modes(spec.get("accessModes"), "spec.accessModes")
    return errs + _storage(as_dict(as_dict(spec.get("resources")).get("requests")).get("storage"),
                           "spec.resources[storage]")


def validate_claim_update(old: Obj, new: Obj) -> list[FieldError]:
    """ValidatePersistentVolumeClaimUpdate: only the requests may change (and a binding be filled in)."""
    old_spec, new_spec = dict(as_dict(old.get("spec"))), dict(as_dict(new.get("spec")))
    for spec in (old_spec, new_spec):
        spec.pop("resources", None)
    if not old_spec.get("volumeName"):
        new_spec.pop("volumeName", None)
        old_spec.pop("volumeName", None)
    if old_spec != new_spec:
        return [forbidden("spec", "spec is immutable after creation except resources.requests and "
                          "volumeAttributesClassName for bound claims")]
    return []
