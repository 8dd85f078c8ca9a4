"""The Job controller: runs pods until ``completions`` of them succeed, or the Job fails.

A port of ``pkg/controller/job/job_controller.go`` for NonIndexed Jobs. Each sync:

1. claims the pods its selector (``batch.kubernetes.io/controller-uid``) matches;
2. counts finished pods exactly once, as kube does with the ``batch.kubernetes.io/job-tracking``
   finalizer every Job pod carries: a finished pod's uid goes into
   ``status.uncountedTerminatedPods``, then its finalizer is removed, then the uid moves
   into ``status.succeeded``/``status.failed`` — so a finished pod deleted later (by a
   user, the garbage collector) is still counted, and never twice;
3. decides the outcome: ``succeeded >= completions`` (or, without completions, a success and
   nothing running) meets the success criteria; more failures than ``backoffLimit`` (with
   restartPolicy OnFailure: container restarts) or ``activeDeadlineSeconds`` passed is a
   failure. As in kube 1.37 the interim condition comes first (``SuccessCriteriaMet`` /
   ``FailureTarget``), the remaining pods are deleted, and the terminal one (``Complete`` /
   ``Failed``, what ``kubectl wait --for=condition=complete`` waits for) follows once no pod
   of the Job is terminating;
4. otherwise keeps ``min(parallelism, completions - succeeded)`` pods running, creating the
   missing ones after the pod-failure back-off (10 s, doubling, at most 6 min) and deleting
   the surplus; a suspended Job keeps none;
5. deletes a finished Job ``ttlSecondsAfterFinished`` after it finished (kube's TTL-after-finished
   controller), with its pods (background propagation).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from ..client.informer import FuncHandler
from ..client.rest import APIStatusError, resource_path
from ..kube.labels import selector_from_label_selector
from ..kube.meta import parse_time, timestamp
from ..kube.objects import pod_is_ready
from ._ownership import Expectations, claim, controller_key, controller_of
from ._podcontrol import PodControl, pod_from_template
from ._podutil import pods_to_delete, utcnow
from .base import Controller, key_of, split_key
from .context import ControllerContext

log = logging.getLogger("labctl.controllers.job")

TRACKING_FINALIZER = "batch.kubernetes.io/job-tracking"
POD_FAILURE_BACKOFF = 10.0     # DefaultJobPodFailureBackOff
MAX_POD_FAILURE_BACKOFF = 360.0  # MaxJobPodFailureBackOff
BURST_REPLICAS = 500
COMPLETIONS_REACHED = ("CompletionsReached", "Reached expected number of succeeded pods")
BACKOFF_LIMIT_EXCEEDED = ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
DEADLINE_EXCEEDED = ("DeadlineExceeded", "Job was active longer than specified deadline")
TERMINAL = {"SuccessCriteriaMet": "Complete", "FailureTarget": "Failed"}


# -- pure decisions ------------------------------------------------------------------------
def condition_true(job: dict, type_: str) -> dict | None:
    for cond in (job.get("status") or {}).get("conditions") or []:
        if cond.get("type") == type_ and cond.get("status") == "True":
            return cond
    return None


def is_finished(job: dict) -> bool:
    """Complete or Failed: nothing more happens to the Job but its TTL."""
    return condition_true(job, "Complete") is not None or condition_true(job, "Failed") is not None


def is_pod_finished(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def is_pod_failed(pod: dict, job: dict) -> bool:
    """``isPodFailed``: Failed, or (replacing terminating pods) deleted before it succeeded."""
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Failed":
        return True
    if (job.get("spec") or {}).get("podReplacementPolicy") == "Failed":
        return False
    return bool(pod["metadata"].get("deletionTimestamp")) and phase != "Succeeded"


def is_active(pod: dict) -> bool:
    """Pending or Running and not being deleted (``status.active``)."""
    return not is_pod_finished(pod) and not pod["metadata"].get("deletionTimestamp")


def is_terminating(pod: dict) -> bool:
    return not is_pod_finished(pod) and bool(pod["metadata"].get("deletionTimestamp"))


def container_restarts(pods: list[dict]) -> int:
    """Restarts of the containers of the Job's Pending and Running pods (``pastBackoffLimitOnFailure``)."""
    total = 0
    for pod in pods:
        status = pod.get("status") or {}
        if status.get("phase") in ("Pending", "Running"):
            for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
                total += int(cs.get("restartCount") or 0)
    return total


def past_backoff_limit(job: dict, failed: int, pods: list[dict]) -> bool:
    spec = job.get("spec") or {}
    limit = int(spec.get("backoffLimit", 6))
    if failed > limit:
        return True
    if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
        return False
    restarts = container_restarts(pods)
    return restarts > 0 if limit == 0 else restarts >= limit


def past_active_deadline(job: dict, now: dt.datetime) -> bool:
    deadline = (job.get("spec") or {}).get("activeDeadlineSeconds")
    started = parse_time((job.get("status") or {}).get("startTime"))
    return deadline is not None and started is not None and (now - started).total_seconds() >= int(deadline)


def success_criteria_met(job: dict, succeeded: int, active: int) -> bool:
    completions = (job.get("spec") or {}).get("completions")
    if completions is None:
        return succeeded > 0 and active == 0
    return succeeded >= int(completions)


def want_active(job: dict, succeeded: int, active: int) -> int:
    """How many pods should be running now (``manageJob``'s ``wantActive``)."""
    spec = job.get("spec") or {}
    if spec.get("suspend"):
        return 0
    parallelism = int(spec.get("parallelism", 1))
    completions = spec.get("completions")
    if completions is None:
        return active if succeeded > 0 else parallelism
    return max(0, min(parallelism, int(completions) - succeeded))


def pod_failure_backoff(failures: int, last_failure: dt.datetime | None, now: dt.datetime) -> float:
    """Seconds to wait before replacing failed pods: 10 s doubling per failure, at most 6 min."""
    if failures <= 0 or last_failure is None:
        return 0.0
    delay = min(POD_FAILURE_BACKOFF * 2 ** (failures - 1), MAX_POD_FAILURE_BACKOFF)
    return max(0.0, delay - (now - last_failure).total_seconds())


def last_failure_time(pods: list[dict]) -> dt.datetime | None:
    """When the latest failed pod's containers finished (its creation time if it has none)."""
    latest: dt.datetime | None = None
    for pod in pods:
        if (pod.get("status") or {}).get("phase") != "Failed":
            continue
        finished = [parse_time(((cs.get("state") or {}).get("terminated") or {}).get("finishedAt"))
                    for cs in (pod.get("status") or {}).get("containerStatuses") or []]
        when = max((f for f in finished if f), default=None) or parse_time(pod["metadata"].get("creationTimestamp"))
        if when and (latest is None or when > latest):
            latest = when
    return latest


def new_condition(type_: str, reason: str, message: str, now: dt.datetime) -> dict:
    stamp = timestamp(now)
    return {"type": type_, "status": "True", "lastProbeTime": stamp, "lastTransitionTime": stamp,
            "reason": reason, "message": message}


def set_condition(status: dict, cond: dict) -> None:
    """Add or replace the condition of that type (keeping lastTransitionTime when its status is unchanged)."""
    conditions = status.setdefault("conditions", [])
    for i, old in enumerate(conditions):
        if old.get("type") == cond["type"]:
            if old.get("status") == cond["status"]:
                cond = {**cond, "lastTransitionTime": old.get("lastTransitionTime", cond["lastTransitionTime"])}
            conditions[i] = cond
            return
    conditions.append(cond)


def ttl_remaining(job: dict, now: dt.datetime) -> float | None:
    """Seconds until a finished Job with ``ttlSecondsAfterFinished`` is deleted; None when it never is."""
    ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
    if ttl is None or not is_finished(job):
        return None
    cond = condition_true(job, "Complete") or condition_true(job, "Failed") or {}
    finished = parse_time((job.get("status") or {}).get("completionTime")) or parse_time(cond.get("lastTransitionTime"))
    if finished is None:
        return None
    return max(0.0, int(ttl) - (now - finished).total_seconds())


def _rv(obj: dict) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


# -- the controller ------------------------------------------------------------------------
class JobController(Controller):
    name = "job-controller"
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder(self.name)
        self.jobs = ctx.informer("jobs")
        self.pods = ctx.informer("pods")
        self.expectations = Expectations()
        self.pod_control = PodControl(self.client, self.recorder, self.expectations)
        #: uids whose finalizer this controller removed, until the informer shows it gone (kube's
        #: ``finalizersRemoved`` expectations): a stale cached pod must not be counted twice
        self._released: set[str] = set()
        #: the Job as this controller last wrote it, used until the informer catches up: counting
        #: from a cached Job older than our own status write would count its finished pods twice
        self._written: dict[str, dict] = {}
        self.jobs.add_handler(FuncHandler(self._enqueue, lambda old, new: self._enqueue(new), self._job_deleted))
        self.pods.add_handler(FuncHandler(self._pod_added, self._pod_updated, self._pod_deleted))

    def _enqueue(self, job: dict) -> None:
        self.queue.add(key_of(job))

    def _job_deleted(self, job: dict) -> None:
        self.expectations.delete(key_of(job))
        self.queue.add(key_of(job))

    def _owner_key(self, pod: dict) -> str | None:
        return controller_key(pod, "Job")

    def _pod_added(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)

    def _pod_updated(self, old: dict, new: dict) -> None:
        key = self._owner_key(new)
        if key is not None:
            self.queue.add(key)

    def _pod_deleted(self, pod: dict) -> None:
        self._released.discard(pod["metadata"].get("uid", ""))
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, key_of(pod))
            self.queue.add(key)

    def keys_for_resync(self) -> list[str]:
        return [key_of(j) for j in self.jobs.list()]

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        job = self.jobs.get(namespace, name)
        if job is None:
            self.expectations.delete(key)
            self._written.pop(key, None)
            return
        written = self._written.get(key)
        if written is not None and written["metadata"]["uid"] == job["metadata"]["uid"]:
            if _rv(written) > _rv(job):
                job = written
            else:
                del self._written[key]
        if job["metadata"].get("deletionTimestamp"):
            await self._release_finalizers(key, [p for p in self._pods_of(job) if self._tracked(p)])
            return
        now = utcnow()
        if is_finished(job):
            await self._release_finalizers(key, [p for p in self._pods_of(job) if self._tracked(p)])
            await self._expire(key, job, now)
            return
        selector = selector_from_label_selector((job.get("spec") or {}).get("selector"))
        candidates = [p for p in self.pods.list() if p["metadata"].get("namespace") == namespace]
        pods = await claim(self.client, "pods", job, selector, candidates)
        await self._sync(key, job, pods, now)

    def _pods_of(self, job: dict) -> list[dict]:
        uid = job["metadata"]["uid"]
        return [p for p in self.pods.list() if (controller_of(p) or {}).get("uid") == uid]

    @staticmethod
    def _tracked(pod: dict) -> bool:
        return TRACKING_FINALIZER in (pod["metadata"].get("finalizers") or [])

    async def _sync(self, key: str, job: dict, pods: list[dict], now: dt.datetime) -> None:
        spec, old_status = job.get("spec") or {}, job.get("status") or {}
        status: dict[str, Any] = {k: v for k, v in old_status.items()}
        status["conditions"] = [dict(c) for c in old_status.get("conditions") or []]
        if not status["conditions"]:
            del status["conditions"]
        if not spec.get("suspend") and not status.get("startTime"):
            status["startTime"] = timestamp(now)

        # 1-2. count finished pods once: uncounted uids, then the finalizer goes, then the counters
        uncounted = status.get("uncountedTerminatedPods") or {}
        pending = {"succeeded": list(uncounted.get("succeeded") or []), "failed": list(uncounted.get("failed") or [])}
        seen = set(pending["succeeded"]) | set(pending["failed"])
        newly = False
        for pod in pods:
            uid = pod["metadata"]["uid"]
            if not self._tracked(pod):
                self._released.discard(uid)
                continue
            if uid in seen or uid in self._released:
                continue
            if (pod.get("status") or {}).get("phase") == "Succeeded":
                pending["succeeded"].append(uid)
            elif is_pod_failed(pod, job):  # a terminating pod counts as failed at once, as in kube
                pending["failed"].append(uid)
            else:
                continue
            seen.add(uid)
            newly = True
        if newly:
            status["uncountedTerminatedPods"] = pending
            job = await self._write_status(job, status)
        by_uid = {p["metadata"]["uid"]: p for p in pods}
        held = await self._release_finalizers(key, [by_uid[u] for u in seen if u in by_uid and self._tracked(by_uid[u])])
        still = {outcome: [u for u in uids if u in held] for outcome, uids in pending.items()}
        status["succeeded"] = int(status.get("succeeded") or 0) + len(pending["succeeded"]) - len(still["succeeded"])
        status["failed"] = int(status.get("failed") or 0) + len(pending["failed"]) - len(still["failed"])
        status["uncountedTerminatedPods"] = {k: v for k, v in still.items() if v}

        # 3. the outcome
        active_pods = [p for p in pods if is_active(p)]
        terminating = sum(1 for p in pods if is_terminating(p))
        succeeded, failed = status["succeeded"], status["failed"]
        interim = next((t for t in TERMINAL if condition_true({"status": status}, t)), None)
        if interim is None:
            outcome = None
            if success_criteria_met(job, succeeded, len(active_pods)):
                outcome = ("SuccessCriteriaMet", *COMPLETIONS_REACHED)
            elif past_backoff_limit(job, failed, pods):
                outcome = ("FailureTarget", *BACKOFF_LIMIT_EXCEEDED)
            elif not spec.get("suspend") and past_active_deadline(job, now):
                outcome = ("FailureTarget", *DEADLINE_EXCEEDED)
            if outcome is not None:
                interim = outcome[0]
                set_condition(status, new_condition(outcome[0], outcome[1], outcome[2], now))
                if outcome[0] == "FailureTarget":
                    await self.recorder.record(job, "Warning", outcome[1], outcome[2])

        error = None
        if interim is not None:
            # 4a. finishing: no pod keeps running; the terminal condition waits for them to go
            if active_pods and self.expectations.satisfied(key):
                await self.pod_control.delete(key, job, active_pods)
                terminating += len(active_pods)
            active_pods = []
            if terminating == 0 and not status["uncountedTerminatedPods"]:
                cond = next(c for c in status["conditions"] if c["type"] == interim)
                set_condition(status, new_condition(TERMINAL[interim], cond["reason"], cond["message"], now))
                if interim == "SuccessCriteriaMet":
                    status["completionTime"] = timestamp(now)
                    await self.recorder.record(job, "Normal", "Completed", "Job completed")
        elif self.expectations.satisfied(key):
            # 4b. running: keep wantActive pods
            try:
                active_pods = await self._manage(key, job, active_pods, succeeded, failed, pods, now)
            except Exception as err:  # recorded as an event by PodControl, retried
                error = err
        if spec.get("suspend") and interim is None:
            set_condition(status, new_condition("Suspended", "JobSuspended", "Job suspended", now))
        elif condition_true({"status": status}, "Suspended"):
            set_condition(status, {**new_condition("Suspended", "JobResumed", "Job resumed", now), "status": "False"})

        status["active"] = len(active_pods)
        status["ready"] = sum(1 for p in active_pods if pod_is_ready(p))
        status["terminating"] = terminating
        for omitted in ("active", "succeeded", "failed"):  # omitempty in JobStatus, unlike ready and terminating
            if not status[omitted]:
                del status[omitted]
        job = await self._write_status(job, status)
        if error is not None:
            raise error
        await self._expire(key, job, now)
        deadline = spec.get("activeDeadlineSeconds")
        started = parse_time(status.get("startTime"))
        if deadline is not None and started is not None and not is_finished(job):
            self.queue.add_after(key, max(0.0, int(deadline) - (now - started).total_seconds()) + 0.5)

    async def _manage(self, key: str, job: dict, active: list[dict], succeeded: int, failed: int,
                      pods: list[dict], now: dt.datetime) -> list[dict]:
        """Create the missing pods (after the failure back-off) or delete the surplus; returns the active ones."""
        wanted = want_active(job, succeeded, len(active))
        if len(active) > wanted:
            victims = pods_to_delete(active, active, len(active) - wanted, now)
            await self.pod_control.delete(key, job, victims)
            return [p for p in active if p not in victims]
        if len(active) < wanted:
            wait = pod_failure_backoff(failed, last_failure_time(pods), now)
            if wait > 0:
                self.queue.add_after(key, wait)
                return active
            count = min(wanted - len(active), BURST_REPLICAS)
            new_pods = []
            for _ in range(count):
                pod = pod_from_template(job)
                pod["metadata"]["finalizers"] = [*pod["metadata"].get("finalizers", []), TRACKING_FINALIZER]
                new_pods.append(pod)
            await self.pod_control.create(key, job, new_pods)
            return active + new_pods
        return active

    async def _write_status(self, job: dict, status: dict) -> dict:
        if status == (job.get("status") or {}):
            return job
        meta = job["metadata"]
        # UpdateStatus, guarded by resourceVersion: a status computed from an outdated Job is a 409,
        # retried (a merge patch could not empty uncountedTerminatedPods' lists either)
        written = await self.client.replace(resource_path("jobs", meta["namespace"], meta["name"], "status"),
                                            {**job, "status": status})
        self._written[key_of(written)] = written
        return written

    async def _release_finalizers(self, key: str, pods: list[dict]) -> set[str]:
        """Remove the tracking finalizer from ``pods``; returns the uids of those still holding it."""
        held: set[str] = set()
        for pod in pods:
            meta = pod["metadata"]
            finalizers = [f for f in meta.get("finalizers") or [] if f != TRACKING_FINALIZER]
            try:
                await self.client.patch(resource_path("pods", meta["namespace"], meta["name"]),
                                        {"metadata": {"finalizers": finalizers or None,
                                                      "resourceVersion": meta["resourceVersion"]}})
                self._released.add(meta["uid"])
            except APIStatusError as err:
                if err.code == 409:  # the pod changed: the next sync sees the newer one
                    held.add(meta["uid"])
                    self.queue.add(key)
                elif err.code != 404:
                    raise
        return held

    async def _expire(self, key: str, job: dict, now: dt.datetime) -> None:
        """kube's TTL-after-finished controller: delete the finished Job and (in the background) its pods."""
        remaining = ttl_remaining(job, now)
        if remaining is None:
            return
        if remaining > 0:
            self.queue.add_after(key, remaining + 0.1)
            return
        meta = job["metadata"]
        try:
            await self.client.delete(resource_path("jobs", meta["namespace"], meta["name"]),
                                     preconditions={"uid": meta["uid"]}, propagationPolicy="Background")
        except APIStatusError as err:
            if err.code != 404:
                raise
