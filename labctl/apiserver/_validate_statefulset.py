"""StatefulSet validation (``pkg/apis/apps/validation``: ``ValidateStatefulSetSpec`` and its update rule)."""

from __future__ import annotations

import copy
from typing import Any

from labctl.apiserver._validate_batch import int_or_percent
from labctl.apiserver._validate_common import as_dict, as_list, nonnegative, validate_dns1123_label, validate_label_selector
from labctl.apiserver._validate_pods import validate_template
from labctl.apiserver._validate_storage import validate_claim
from labctl.apiserver.errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from labctl.kube.labels import SelectorError, selector_from_label_selector

__all__ = ["validate_statefulset", "validate_statefulset_update"]

Obj = dict[str, Any]

POD_MANAGEMENT_POLICIES = ["OrderedReady", "Parallel"]
RETENTION_POLICIES = ["Retain", "Delete"]
#: ``ValidateStatefulSetUpdate``: the spec fields an update may change (the rest is fixed at creation)
MUTABLE_SPEC_FIELDS = ("replicas", "ordinals", "template", "updateStrategy", "revisionHistoryLimit",
                       "persistentVolumeClaimRetentionPolicy", "minReadySeconds")


def _validate_update_strategy(strategy: Obj) -> list[FieldError]:
    path = "spec.updateStrategy"
    kind = strategy.get("type")
    if not kind:
        return [required(f"{path}.type", "")]
    if kind == "OnDelete":
        if strategy.get("rollingUpdate") is not None:
            return [invalid(f"{path}.rollingUpdate", strategy["rollingUpdate"],
                            "only allowed for updateStrategy 'RollingUpdate'")]
        return []
    if kind != "RollingUpdate":
        return [invalid(f"{path}.type", kind, "must be 'RollingUpdate' or 'OnDelete'")]
    rolling = as_dict(strategy.get("rollingUpdate"))
    errs: list[FieldError] = []
    if rolling.get("partition") is not None:
        errs += nonnegative(rolling["partition"], f"{path}.rollingUpdate.partition")
    if rolling.get("maxUnavailable") is not None:  # validateRollingUpdateStatefulSet
        max_path = f"{path}.rollingUpdate.maxUnavailable"
        value, value_errs = int_or_percent(rolling["maxUnavailable"], max_path)
        errs += value_errs
        if value == 0:
            errs.append(invalid(max_path, rolling["maxUnavailable"], "cannot be 0"))
        if isinstance(rolling["maxUnavailable"], str) and (value or 0) > 100:
            errs.append(invalid(max_path, rolling["maxUnavailable"], "must not be greater than 100%"))
    return errs


def _validate_claim_templates(templates: Any) -> tuple[list[str], list[FieldError]]:
    """Each claim template is a claim: a DNS-label name (it becomes a volume name) and a valid spec."""
    names: list[str] = []
    errs: list[FieldError] = []
    for i, claim in enumerate(as_list(templates)):
        claim, path = as_dict(claim), f"spec.volumeClaimTemplates[{i}]"
        name = as_dict(claim.get("metadata")).get("name")
        if not name:
            errs.append(required(f"{path}.metadata.name", "name or generateName is required"))
            continue
        errs += validate_dns1123_label(name, f"{path}.metadata.name")
        if name in names:
            errs.append(duplicate(f"{path}.metadata.name", name))
        names.append(str(name))
        errs += [FieldError(e.type, f"{path}.{e.field}", e.bad_value, e.detail) for e in validate_claim(claim)]
    return names, errs


def _template_with_claims(spec: Obj, claims: list[str]) -> Obj:
    """The spec with each claim template as a pod volume, so mounts naming a claim template validate.

    The controller adds exactly these volumes to every pod (``updateStorage``).
    """
    spec = copy.deepcopy(spec)
    tspec = as_dict(as_dict(spec.get("template")).get("spec"))
    volumes = [v for v in as_list(tspec.get("volumes")) if isinstance(v, dict)]
    present = {v.get("name") for v in volumes}
    if isinstance(spec.get("template"), dict) and isinstance(spec["template"].get("spec"), dict):
        spec["template"]["spec"]["volumes"] = volumes + [
            {"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims if c not in present]
    return spec


def validate_statefulset(sts: Obj) -> list[FieldError]:
    """ValidateStatefulSetSpec: policies, strategy, a non-empty selector matching the template, claim templates."""
    spec = as_dict(sts.get("spec"))
    errs: list[FieldError] = []
    policy = spec.get("podManagementPolicy")
    if not policy:
        errs.append(required("spec.podManagementPolicy", ""))
    elif policy not in POD_MANAGEMENT_POLICIES:
        errs.append(invalid("spec.podManagementPolicy", policy,
                            "must be 'OrderedReady' or 'Parallel'"))
    errs += _validate_update_strategy(as_dict(spec.get("updateStrategy")))
    retention = as_dict(spec.get("persistentVolumeClaimRetentionPolicy"))
    for when in ("whenDeleted", "whenScaled"):
        if retention.get(when) not in RETENTION_POLICIES:
            errs.append(not_supported(f"spec.persistentVolumeClaimRetentionPolicy.{when}", retention.get(when),
                                      RETENTION_POLICIES))
    if spec.get("ordinals") is not None:
        errs += nonnegative(as_dict(spec["ordinals"]).get("start", 0), "spec.ordinals.start")
    for key in ("replicas", "minReadySeconds", "revisionHistoryLimit"):
        if spec.get(key) is not None:
            errs += nonnegative(spec[key], f"spec.{key}")
    if spec.get("serviceName"):
        errs += validate_dns1123_label(spec["serviceName"], "spec.serviceName")
    claims, claim_errs = _validate_claim_templates(spec.get("volumeClaimTemplates"))
    errs += claim_errs
    if spec.get("selector") is None:
        return errs + [required("spec.selector", "")]
    errs += validate_label_selector(spec["selector"], "spec.selector")
    try:
        selector = selector_from_label_selector(as_dict(spec["selector"]))
    except (SelectorError, AttributeError, TypeError):
        return errs + [invalid("spec.selector", spec["selector"], "invalid label selector")]
    if selector.empty:
        errs.append(invalid("spec.selector", spec["selector"], "empty selector is invalid for statefulset"))
    return errs + validate_template(_template_with_claims(spec, claims), "spec.template", selector)


def validate_statefulset_update(old: Obj, new: Obj) -> list[FieldError]:
    """ValidateStatefulSetUpdate: only the fields of :data:`MUTABLE_SPEC_FIELDS` may change."""
    old_spec, new_spec = dict(as_dict(old.get("spec"))), dict(as_dict(new.get("spec")))
    for key in MUTABLE_SPEC_FIELDS:
        old_spec.pop(key, None)
        new_spec.pop(key, None)
    if old_spec != new_spec:
        return [forbidden("spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                                  "'template', 'updateStrategy', 'revisionHistoryLimit', "
                                  "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden")]
    return []
