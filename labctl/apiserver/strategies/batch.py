"""Jobs and CronJobs: pods that run to completion, once or on a schedule."""

from __future__ import annotations

from typing import Any

from labctl.apiserver._validate_batch import (
    CONTROLLER_UID_LABEL,
    JOB_NAME_LABEL,
    LEGACY_CONTROLLER_UID_LABEL,
    LEGACY_JOB_NAME_LABEL,
    validate_cronjob,
    validate_job,
    validate_job_update,
)
from labctl.apiserver.defaults import default_cronjob, default_job
from labctl.apiserver.errors import FieldError, forbidden
from labctl.apiserver.podfields import refused_fields
from labctl.kube.printers import CRONJOB_TABLE, JOB_TABLE

from .base import Obj, Strategy

#: JobSpec fields whose behaviour the Job controller does not implement: refused, not ignored
UNSUPPORTED_JOB_FIELDS = ("podFailurePolicy", "successPolicy", "backoffLimitPerIndex", "maxFailedIndexes", "managedBy")
_UNSUPPORTED = "labctl does not support this field (it would be ignored)"


def _at(obj: Obj | None, *path: str) -> Any:
    for key in path:
        obj = obj.get(key) if isinstance(obj, dict) else None
    return obj


def _refused_job_spec(spec: Any, old_spec: Any, path: str, created: bool) -> list[FieldError]:
    """The Job spec's unsupported fields and its pod template's refused ones (:mod:`labctl.apiserver.podfields`)."""
    if not isinstance(spec, dict):
        return []
    errs = [forbidden(f"{path}.{key}", _UNSUPPORTED) for key in UNSUPPORTED_JOB_FIELDS
            if spec.get(key) is not None and (created or spec.get(key) != _at(old_spec, key))]
    if spec.get("completionMode") == "Indexed" and (created or _at(old_spec, "completionMode") != "Indexed"):
        errs.append(forbidden(f"{path}.completionMode", "labctl runs NonIndexed Jobs only (Indexed is not supported)"))
    return errs + refused_fields(_at(spec, "template", "spec"), f"{path}.template.spec",
                                 None if created else _at(old_spec, "template", "spec"))


def generate_selector(job: Obj) -> None:
    """The Job strategy's ``generateSelector``: the pods carry the Job's name and uid, the selector its uid.

    Labels the user already set are kept (a conflict is then a validation error).
    """
    spec = job.setdefault("spec", {})
    if not isinstance(spec, dict) or spec.get("manualSelector") is True:
        return
    meta = job.get("metadata") or {}
    template = spec.setdefault("template", {})
    if not isinstance(template, dict):
        return
    template_meta = template.setdefault("metadata", {})
    labels = template_meta.setdefault("labels", {})
    if not isinstance(labels, dict):
        return
    for key in (LEGACY_JOB_NAME_LABEL, JOB_NAME_LABEL):
        labels.setdefault(key, meta.get("name", ""))
    for key in (LEGACY_CONTROLLER_UID_LABEL, CONTROLLER_UID_LABEL):
        labels.setdefault(key, meta.get("uid", ""))
    selector = spec.get("selector")
    if selector is None:
        selector = spec["selector"] = {}
    if isinstance(selector, dict):
        match = selector.setdefault("matchLabels", {})
        if isinstance(match, dict):
            match.setdefault(CONTROLLER_UID_LABEL, meta.get("uid", ""))


class JobStrategy(Strategy):
    """kube's ``jobStrategy``: a generated selector on create, a status the Job controller owns."""

    tracks_generation = True
    printer = JOB_TABLE

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        generate_selector(obj)
        # SetDefaults_Job: a Job without labels takes its template's; kube-apiserver defaults again
        # on every read from etcd, so the generated ones show on the Job as well
        labels = _at(obj, "spec", "template", "metadata", "labels")
        meta = obj.get("metadata")
        if isinstance(meta, dict) and not meta.get("labels") and isinstance(labels, dict) and labels:
            meta["labels"] = dict(labels)

    def default(self, obj: Obj) -> None:
        default_job(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_job(obj)

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_job_update(old, new)

    def admit(self, obj: Obj, old: Obj | None) -> list[FieldError]:
        return _refused_job_spec(obj.get("spec"), _at(old, "spec"), "spec", old is None)


class CronJobStrategy(Strategy):
    """kube's ``cronJobStrategy``: its job template is checked like a Job's."""

    tracks_generation = True
    printer = CRONJOB_TABLE

    def default(self, obj: Obj) -> None:
        default_cronjob(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_cronjob(obj)

    def admit(self, obj: Obj, old: Obj | None) -> list[FieldError]:
        return _refused_job_spec(_at(obj, "spec", "jobTemplate", "spec"), _at(old, "spec", "jobTemplate", "spec"),
                                 "spec.jobTemplate.spec", old is None)
