"""The CronJob controller: creates a Job at each time of the schedule.

A port of ``pkg/controller/cronjob/cronjob_controllerv2.go``. Each sync of a CronJob:

1. reconciles ``status.active`` with the Jobs it owns: a finished one leaves the list (a
   Complete one sets ``lastSuccessfulTime``), an unknown running one joins it, a missing one
   goes;
2. unless suspended or being deleted, finds the most recent unmet schedule time after
   ``lastScheduleTime`` (or the CronJob's creation, or ``now - startingDeadlineSeconds``),
   in ``spec.timeZone`` (UTC without one); a time older than ``startingDeadlineSeconds`` is a
   ``MissSchedule``; ``Forbid`` skips it while a Job runs, ``Replace`` deletes the running
   ones first; then creates the Job ``<cronjob>-<minutes since the epoch>`` from
   ``jobTemplate`` and records it as active and as ``lastScheduleTime``;
3. deletes the oldest finished Jobs beyond ``successfulJobsHistoryLimit`` /
   ``failedJobsHistoryLimit``;
4. comes back at the next schedule time.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from zoneinfo import ZoneInfo

from ..client.informer import FuncHandler
from ..client.rest import APIStatusError, resource_path
from ..kube.cron import scheduled_times, time_zone_error
from ..kube.meta import parse_time, timestamp
from ._ownership import controller_of, owner_reference
from ._podutil import utcnow
from .base import Controller, key_of, split_key
from .context import ControllerContext
from .job import condition_true, is_finished

log = logging.getLogger("labctl.controllers.cronjob")

SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
#: more unmet times than this since the last schedule earn a TooManyMissedTimes warning
MAX_MISSED = 100


# -- pure decisions ------------------------------------------------------------------------
def job_name(cronjob: dict, scheduled: dt.datetime) -> str:
    """``getJobName``: the CronJob's name and the scheduled time in minutes since the epoch."""
    return f"{cronjob['metadata']['name']}-{int(scheduled.timestamp()) // 60}"


def job_from_template(cronjob: dict, scheduled: dt.datetime) -> dict:
    """``getJobFromTemplate2``: the job template's metadata and spec, owned by the CronJob."""
    template = (cronjob.get("spec") or {}).get("jobTemplate") or {}
    tmeta = template.get("metadata") or {}
    zone = (cronjob.get("spec") or {}).get("timeZone")
    local = scheduled.astimezone(ZoneInfo(zone) if zone else dt.UTC)
    annotations = {**(tmeta.get("annotations") or {}), SCHEDULED_TIMESTAMP_ANNOTATION: local.isoformat()}
    meta = {"name": job_name(cronjob, scheduled), "namespace": cronjob["metadata"]["namespace"],
            "labels": dict(tmeta.get("labels") or {}), "annotations": annotations,
            "ownerReferences": [owner_reference(cronjob)]}
    if not meta["labels"]:
        del meta["labels"]
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta,
            "spec": copy.deepcopy(template.get("spec") or {})}


def unmet_schedule_times(cronjob: dict, now: dt.datetime) -> tuple[list[dt.datetime], dt.datetime]:
    """The schedule's times not acted on yet (the last ones, at most 101) and the next one after now."""
    spec, status = cronjob.get("spec") or {}, cronjob.get("status") or {}
    earliest = parse_time(status.get("lastScheduleTime")) or parse_time(cronjob["metadata"].get("creationTimestamp"))
    earliest = earliest or now
    deadline = spec.get("startingDeadlineSeconds")
    if deadline is not None:
        earliest = max(earliest, now - dt.timedelta(seconds=int(deadline)))
    return scheduled_times(spec.get("schedule", ""), spec.get("timeZone"), earliest, now, limit=MAX_MISSED + 1)


def too_late(cronjob: dict, scheduled: dt.datetime, now: dt.datetime) -> bool:
    deadline = (cronjob.get("spec") or {}).get("startingDeadlineSeconds")
    return deadline is not None and scheduled + dt.timedelta(seconds=int(deadline)) < now


def job_reference(job: dict) -> dict:
    meta = job["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "namespace": meta["namespace"],
            "resourceVersion": meta.get("resourceVersion", ""), "uid": meta["uid"]}


def jobs_to_clean_up(jobs: list[dict], successful_limit: int | None, failed_limit: int | None) -> list[dict]:
    """``cleanupFinishedJobs``: the oldest finished Jobs beyond each history limit."""
    def start(job: dict) -> dt.datetime:
        status = job.get("status") or {}
        return (parse_time(status.get("startTime")) or parse_time(job["metadata"].get("creationTimestamp"))
                or dt.datetime.min.replace(tzinfo=dt.UTC))

    out: list[dict] = []
    for kind, limit in (("Complete", successful_limit), ("Failed", failed_limit)):
        if limit is None:
            continue
        done = sorted((j for j in jobs if condition_true(j, kind)), key=start)
        out += done[:max(0, len(done) - int(limit))]
    return out


# -- the controller ------------------------------------------------------------------------
class CronJobController(Controller):
    name = "cronjob-controller"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder(self.name)
        self.cronjobs = ctx.informer("cronjobs")
        self.jobs = ctx.informer("jobs")
        #: the CronJob as last written here, until the informer catches up (a Job must not be created twice)
        self._written: dict[str, dict] = {}
        self.cronjobs.add_handler(FuncHandler(self._enqueue, lambda old, new: self._enqueue(new), self._deleted))
        self.jobs.add_handler(FuncHandler(self._job_changed, lambda old, new: self._job_changed(new),
                                          self._job_changed))

    def _enqueue(self, cronjob: dict) -> None:
        self.queue.add(key_of(cronjob))

    def _deleted(self, cronjob: dict) -> None:
        self._written.pop(key_of(cronjob), None)

    def _job_changed(self, job: dict) -> None:
        ref = controller_of(job)
        if ref is not None and ref.get("kind") == "CronJob":
            self.queue.add(f"{job['metadata']['namespace']}/{ref['name']}")

    def keys_for_resync(self) -> list[str]:
        return [key_of(c) for c in self.cronjobs.list()]

    def _current(self, key: str, cached: dict) -> dict:
        written = self._written.get(key)
        if written is None or written["metadata"]["uid"] != cached["metadata"]["uid"]:
            return cached
        if int(written["metadata"]["resourceVersion"]) > int(cached["metadata"]["resourceVersion"]):
            return written
        del self._written[key]
        return cached

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        cached = self.cronjobs.get(namespace, name)
        if cached is None:
            return
        cronjob = self._current(key, cached)
        uid = cronjob["metadata"]["uid"]
        jobs = [j for j in self.jobs.list()
                if j["metadata"].get("namespace") == namespace and (controller_of(j) or {}).get("uid") == uid]
        now = utcnow()
        status = copy.deepcopy(cronjob.get("status") or {})
        await self._track_active(cronjob, status, jobs)
        await self._schedule(key, cronjob, status, now)
        if status != (cronjob.get("status") or {}):
            meta = cronjob["metadata"]
            written = await self.client.replace(resource_path("cronjobs", namespace, meta["name"], "status"),
                                                {**cronjob, "status": status})
            self._written[key] = written
        await self._clean_up(cronjob, jobs)

    async def _track_active(self, cronjob: dict, status: dict, jobs: list[dict]) -> None:
        active = {ref.get("uid"): ref for ref in status.get("active") or []}
        by_uid = {j["metadata"]["uid"]: j for j in jobs}
        for job in jobs:
            uid = job["metadata"]["uid"]
            if is_finished(job):
                if uid in active:
                    del active[uid]
                    kind = "Complete" if condition_true(job, "Complete") else "Failed"
                    await self._event(cronjob, "Normal", "SawCompletedJob",
                                f"Saw completed job: {job['metadata']['name']}, condition: {kind}")
                completed = parse_time((job.get("status") or {}).get("completionTime"))
                last = parse_time(status.get("lastSuccessfulTime"))
                if condition_true(job, "Complete") and completed and (last is None or completed > last):
                    status["lastSuccessfulTime"] = job["status"]["completionTime"]
            elif uid not in active and not job["metadata"].get("deletionTimestamp"):
                active[uid] = job_reference(job)
        for uid in [u for u in active if u not in by_uid]:
            await self._event(cronjob, "Normal", "MissingJob", f"Active job went missing: {active[uid].get('name')}")
            del active[uid]
        if active:
            status["active"] = sorted(active.values(), key=lambda r: r.get("name", ""))
        else:
            status.pop("active", None)

    async def _schedule(self, key: str, cronjob: dict, status: dict, now: dt.datetime) -> None:
        spec = cronjob.get("spec") or {}
        if cronjob["metadata"].get("deletionTimestamp"):
            return
        zone = spec.get("timeZone")
        if zone and time_zone_error(zone):
            await self._event(cronjob, "Warning", "UnknownTimeZone", f"invalid timeZone: {zone!r}: {time_zone_error(zone)}")
            return
        if spec.get("suspend"):
            return
        try:
            times, following = unmet_schedule_times({**cronjob, "status": status}, now)
        except (ValueError, KeyError) as err:
            await self._event(cronjob, "Warning", "InvalidSchedule", f"invalid schedule: {spec.get('schedule')}: {err}")
            return
        self.queue.add_after(key, (following - now).total_seconds() + 0.1)
        if not times:
            return
        if len(times) > MAX_MISSED:
            await self._event(cronjob, "Warning", "TooManyMissedTimes",
                        "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew")
        scheduled = times[-1]
        if too_late(cronjob, scheduled, now):
            await self._event(cronjob, "Warning", "MissSchedule",
                        f"Missed scheduled time to start a job: {scheduled.strftime('%Y-%m-%dT%H:%M:%SZ')}")
            return
        name = job_name(cronjob, scheduled)
        if any(ref.get("name") == name for ref in status.get("active") or []):
            return
        if status.get("lastScheduleTime") and parse_time(status["lastScheduleTime"]) == scheduled:
            return
        policy = spec.get("concurrencyPolicy", "Allow")
        if policy == "Forbid" and status.get("active"):
            await self._event(cronjob, "Normal", "JobAlreadyActive",
                        "Not starting job because prior execution is running and concurrency policy is Forbid")
            return
        if policy == "Replace":
            for ref in list(status.get("active") or []):
                await self._delete_job(cronjob, ref["name"])
                status["active"].remove(ref)
            if not status.get("active"):
                status.pop("active", None)
        try:
            job = await self.client.create(resource_path("jobs", cronjob["metadata"]["namespace"]),
                                           job_from_template(cronjob, scheduled))
        except APIStatusError as err:
            if err.code != 409:  # AlreadyExists: made by an earlier sync whose status write was lost
                await self._event(cronjob, "Warning", "FailedCreate", f"Error creating job: {err}")
                raise
            job = await self.client.get(resource_path("jobs", cronjob["metadata"]["namespace"], name))
            if (controller_of(job) or {}).get("uid") != cronjob["metadata"]["uid"]:
                return
        else:
            await self._event(cronjob, "Normal", "SuccessfulCreate", f"Created job {name}")
        if not is_finished(job):
            status["active"] = [*(status.get("active") or []), job_reference(job)]
        status["lastScheduleTime"] = timestamp(scheduled)

    async def _delete_job(self, cronjob: dict, name: str) -> None:
        try:
            await self.client.delete(resource_path("jobs", cronjob["metadata"]["namespace"], name),
                                     propagationPolicy="Background")
        except APIStatusError as err:
            if err.code != 404:
                await self._event(cronjob, "Warning", "FailedDelete", f"Deleted job: {err}")
                raise
            return
        await self._event(cronjob, "Normal", "SuccessfulDelete", f"Deleted job {name}")

    async def _clean_up(self, cronjob: dict, jobs: list[dict]) -> None:
        spec = cronjob.get("spec") or {}
        for job in jobs_to_clean_up([j for j in jobs if not j["metadata"].get("deletionTimestamp")],
                                    spec.get("successfulJobsHistoryLimit"), spec.get("failedJobsHistoryLimit")):
            await self._delete_job(cronjob, job["metadata"]["name"])

    async def _event(self, cronjob: dict, type_: str, reason: str, message: str) -> None:
        await self.recorder.record(cronjob, type_, reason, message)
