"""Job and CronJob validation (``pkg/apis/batch/validation``), and the DaemonSet's (apps)."""

from __future__ import annotations

from typing import Any

from labctl.apiserver._validate_common import as_dict, is_int, nonnegative, validate_label_selector
from labctl.apiserver._validate_pods import validate_template
from labctl.apiserver.errors import FieldError, forbidden, invalid, not_supported, required
from labctl.kube import validators as v
from labctl.kube.cron import schedule_error, time_zone_error
from labctl.kube.labels import LabelSelector, SelectorError, selector_from_label_selector

__all__ = [
    "CONTROLLER_UID_LABEL",
    "JOB_NAME_LABEL",
    "LEGACY_CONTROLLER_UID_LABEL",
    "LEGACY_JOB_NAME_LABEL",
    "int_or_percent",
    "validate_cronjob",
    "validate_daemonset",
    "validate_job",
    "validate_job_update",
]

Obj = dict[str, Any]

CONTROLLER_UID_LABEL = "batch.kubernetes.io/controller-uid"
LEGACY_CONTROLLER_UID_LABEL = "controller-uid"
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
LEGACY_JOB_NAME_LABEL = "job-name"
JOB_RESTART_POLICIES = ("OnFailure", "Never")
#: a CronJob's Jobs are named ``<cronjob>-<minutes since epoch>``: 11 characters of the 63 are the suffix
CRONJOB_NAME_MAX = 52


def _selector(selector: Any, path: str) -> tuple[LabelSelector | None, list[FieldError]]:
    errs = validate_label_selector(selector, path)
    try:
        return selector_from_label_selector(as_dict(selector)), errs
    except (SelectorError, AttributeError, TypeError):
        return None, errs + [invalid(path, selector, "invalid label selector")]


def _validate_job_spec(spec: Obj, path: str, selector_required: bool) -> list[FieldError]:
    """validateJobSpec: counts, completion mode, selector against the template, OnFailure/Never pods."""
    errs: list[FieldError] = []
    for key in ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit", "ttlSecondsAfterFinished"):
        if spec.get(key) is not None:
            errs += nonnegative(spec[key], f"{path}.{key}")
    mode = spec.get("completionMode")
    if mode is not None and mode not in ("NonIndexed", "Indexed"):
        errs.append(not_supported(f"{path}.completionMode", mode, ["NonIndexed", "Indexed"]))
    if mode == "Indexed" and spec.get("completions") is None:
        errs.append(required(f"{path}.completions", "when completion mode is Indexed"))
    policy = spec.get("podReplacementPolicy")
    if policy is not None and policy not in ("TerminatingOrFailed", "Failed"):
        errs.append(not_supported(f"{path}.podReplacementPolicy", policy, ["TerminatingOrFailed", "Failed"]))
    selector: LabelSelector | None = LabelSelector()
    if spec.get("selector") is not None:
        selector, selector_errs = _selector(spec["selector"], f"{path}.selector")
        errs += selector_errs
    elif selector_required:
        errs.append(required(f"{path}.selector"))
    if selector is not None:
        errs += validate_template(spec, f"{path}.template", selector, JOB_RESTART_POLICIES)
    return errs


def validate_job(job: Obj) -> list[FieldError]:
    """ValidateJob: the spec, and that a generated selector selects this Job's uid."""
    spec = as_dict(job.get("spec"))
    errs = _validate_job_spec(spec, "spec", selector_required=True)
    if spec.get("manualSelector") is not True and spec.get("selector") is not None:
        uid = as_dict(job.get("metadata")).get("uid", "")
        selector, _ = _selector(spec["selector"], "spec.selector")
        if selector is not None and not selector.matches({CONTROLLER_UID_LABEL: uid}):
            errs.append(invalid("spec.selector", spec["selector"], "`selector` not auto-generated"))
    return errs


def validate_job_update(old: Obj, new: Obj) -> list[FieldError]:
    """ValidateJobSpecUpdate: what a running Job keeps (its selector, completions, mode, pod template)."""
    old_spec, new_spec = as_dict(old.get("spec")), as_dict(new.get("spec"))
    errs = []
    for key in ("selector", "completions", "completionMode", "manualSelector"):
        if old_spec.get(key) != new_spec.get(key):
            errs.append(invalid(f"spec.{key}", new_spec.get(key), "field is immutable"))
    # a suspended Job's template may change (kube allows the scheduling directives); a running one's may not
    if old_spec.get("template") != new_spec.get("template") and not old_spec.get("suspend"):
        errs.append(invalid("spec.template", new_spec.get("template"), "field is immutable"))
    return errs


def validate_cronjob(cj: Obj) -> list[FieldError]:
    """ValidateCronJobCreate/Update: name length, schedule, time zone, policy, limits, job template."""
    errs: list[FieldError] = []
    name = as_dict(cj.get("metadata")).get("name")
    if isinstance(name, str) and len(name) > CRONJOB_NAME_MAX:
        errs.append(invalid("metadata.name", name, f"must be no more than {CRONJOB_NAME_MAX} characters"))
    spec = as_dict(cj.get("spec"))
    schedule = spec.get("schedule")
    if not schedule:
        errs.append(required("spec.schedule"))
    elif not isinstance(schedule, str):
        errs.append(invalid("spec.schedule", schedule, "must be a string"))
    else:
        problem = schedule_error(schedule)
        if problem:
            errs.append(invalid("spec.schedule", schedule, problem))
        if "TZ" in schedule:
            errs.append(invalid("spec.schedule", schedule,
                                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"))
    zone = spec.get("timeZone")
    if zone is not None:
        problem = time_zone_error(str(zone)) if isinstance(zone, str) and zone else f"unknown time zone {zone}"
        if problem:
            errs.append(invalid("spec.timeZone", zone, problem))
    policy = spec.get("concurrencyPolicy")
    if policy not in ("Allow", "Forbid", "Replace"):
        errs.append(not_supported("spec.concurrencyPolicy", policy, ["Allow", "Forbid", "Replace"]))
    for key in ("startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"):
        if spec.get(key) is not None:
            errs += nonnegative(spec[key], f"spec.{key}")
    template = spec.get("jobTemplate")
    if not isinstance(template, dict):
        return errs + [required("spec.jobTemplate")]
    return errs + _validate_job_spec(as_dict(template.get("spec")), "spec.jobTemplate.spec", selector_required=False)


def int_or_percent(value: Any, path: str) -> tuple[int | None, list[FieldError]]:
    """An IntOrString that is a non-negative integer or a percentage: (its number, errors)."""
    if isinstance(value, str):
        problems = v.is_valid_percent(value)
        return (None if problems else int(value[:-1])), [invalid(path, value, m) for m in problems]
    if value is None:
        return 0, []
    errs = nonnegative(value, path)
    return (value if is_int(value) else None), errs


def validate_daemonset(ds: Obj) -> list[FieldError]:
    """ValidateDaemonSetSpec: a non-empty selector matching the template, an update strategy, limits."""
    spec = as_dict(ds.get("spec"))
    errs: list[FieldError] = []
    if spec.get("selector") is None:
        errs.append(required("spec.selector"))
        selector: LabelSelector | None = None
    else:
        selector, selector_errs = _selector(spec["selector"], "spec.selector")
        errs += selector_errs
        if selector is not None and selector.empty:
            errs.append(invalid("spec.selector", spec["selector"], "empty selector is invalid for daemonset"))
    if selector is not None:
        errs += validate_template(spec, "spec.template", selector)
    for key in ("minReadySeconds", "revisionHistoryLimit"):
        if spec.get(key) is not None:
            errs += nonnegative(spec[key], f"spec.{key}")
    strategy = as_dict(spec.get("updateStrategy"))
    kind = strategy.get("type")
    if kind == "RollingUpdate":
        rolling = as_dict(strategy.get("rollingUpdate"))
        path = "spec.updateStrategy.rollingUpdate"
        unavailable, unavailable_errs = int_or_percent(rolling.get("maxUnavailable"), f"{path}.maxUnavailable")
        surge, surge_errs = int_or_percent(rolling.get("maxSurge"), f"{path}.maxSurge")
        errs += unavailable_errs + surge_errs
        if unavailable == 0 and surge == 0:
            errs.append(invalid(f"{path}.maxUnavailable", rolling.get("maxUnavailable"),
                                "may not be 0 when `maxSurge` is 0"))
        if isinstance(rolling.get("maxUnavailable"), str) and (unavailable or 0) > 100:
            errs.append(invalid(f"{path}.maxUnavailable", rolling["maxUnavailable"], "must not be greater than 100%"))
    elif kind == "OnDelete":
        if strategy.get("rollingUpdate") is not None:
            errs.append(forbidden("spec.updateStrategy.rollingUpdate",
                                  "may not be specified when strategy `type` is 'OnDelete'"))
    else:
        errs.append(not_supported("spec.updateStrategy.type", kind, ["OnDelete", "RollingUpdate"]))
    return errs
