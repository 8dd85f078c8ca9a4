"""The HorizontalPodAutoscaler controller: a target's replicas follow its pods' resource usage.

A port of ``pkg/controller/podautoscaler/horizontal.go`` for Resource metrics. Every
:data:`SYNC_PERIOD` seconds (``--horizontal-pod-autoscaler-sync-period``, 15 s) each HPA:

1. reads its target's ``scale`` subresource (Deployment, ReplicaSet or any kind serving
   ``/scale``): the current replicas and the pods' selector;
2. outside ``[minReplicas, maxReplicas]`` the count is brought back within; a target at 0
   replicas is left alone (``ScalingDisabled``); otherwise each metric's recommendation
   comes from the pods' usage in ``metrics.k8s.io`` (:mod:`._replicacalc`), the highest wins;
3. the recommendation is stabilised over the behaviour's windows and limited by its
   policies, then written to the target's ``scale``;
4. the status gets ``currentReplicas``, ``desiredReplicas``, ``currentMetrics``,
   ``lastScaleTime`` and the conditions AbleToScale, ScalingActive and ScalingLimited.

The recommendations and scale events the windows and policies look back on live in this
process's memory, as upstream's do: a restart of the controllers starts them afresh.
"""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

from ..client.informer import FuncHandler
from ..client.rest import APIStatusError, resource_path
from ..kube.hpa import DEFAULT_TOLERANCE, effective_behavior
from ..kube.meta import timestamp
from ..kube.objects import pod_is_ready
from ..kube.quantity import format_quantity, milli_value, parse_quantity, value
from ..kube.resources import METRICS_GROUP, RESOURCES
from ._replicacalc import History, MetricsError, PodSample, limit_rate, resource_replicas, stabilize
from .base import Controller, key_of, split_key
from .context import ControllerContext

log = logging.getLogger("labctl.controllers.horizontal")

Obj = dict[str, Any]
#: ``--horizontal-pod-autoscaler-sync-period``
SYNC_PERIOD = 15.0
#: the kinds whose ``scale`` subresource an HPA may drive, by ``scaleTargetRef.kind``
#: the conditions in the order upstream's controller writes them
CONDITION_ORDER = ("AbleToScale", "ScalingActive", "ScalingLimited")
SERVED_PLURALS = {rt.plural for rt in RESOURCES if "scale" in rt.subresources}
SCALABLE = {"Deployment": "deployments", "ReplicaSet": "replicasets", "StatefulSet": "statefulsets"}


def _tolerance(rules: Obj) -> float:
    return float(parse_quantity(rules["tolerance"])) if rules.get("tolerance") is not None else DEFAULT_TOLERANCE


def pod_sample(pod: Obj, resource: str) -> PodSample:
    """``groupPods`` for one pod: ignored when deleted or failed; unready when Pending, or not Ready for CPU."""
    meta, status = pod["metadata"], pod.get("status") or {}
    request, lacking = 0, ""
    for c in (pod.get("spec") or {}).get("containers") or []:
        asked = ((c.get("resources") or {}).get("requests") or {}).get(resource)
        if asked is None:
            lacking = lacking or c.get("name", "")
            continue
        request += milli_value(asked) if resource == "cpu" else value(asked)
    phase = status.get("phase")
    return PodSample(meta["name"],
                     unready=phase == "Pending" or (resource == "cpu" and not pod_is_ready(pod)),
                     ignored=bool(meta.get("deletionTimestamp")) or phase == "Failed",
                     request=None if lacking else request, missing_request_container=lacking)


def pod_usage(metrics: list[Obj], resource: str) -> dict[str, int]:
    """Each PodMetrics' usage of ``resource`` summed over its containers: millicores for CPU, bytes for memory."""
    out = {}
    for item in metrics:
        total = Decimal(0)
        for c in item.get("containers") or []:
            total += parse_quantity((c.get("usage") or {}).get(resource, "0"))
        out[item["metadata"]["name"]] = int(total * 1000) if resource == "cpu" else int(total)
    return out


def _average_quantity(average: int, resource: str) -> str:
    return f"{average}m" if resource == "cpu" else format_quantity(Decimal(average), "BinarySI")


def set_condition(status: Obj, kind: str, state: str, reason: str, message: str, now: str) -> None:
    """``setCondition``: replace the condition of ``kind``, keeping its transition time while its status holds."""
    conditions = status.setdefault("conditions", [])
    for c in conditions:
        if c["type"] == kind:
            if c["status"] != state:
                c["lastTransitionTime"] = now
            c.update(status=state, reason=reason, message=message)
            return
    conditions.append({"type": kind, "status": state, "lastTransitionTime": now, "reason": reason,
                       "message": message})


class HorizontalController(Controller):
    name = "horizontal-pod-autoscaler"
    resync_seconds = SYNC_PERIOD

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder("horizontal-pod-autoscaler")
        self.hpas = ctx.informer("horizontalpodautoscalers")
        self.hpas.add_handler(FuncHandler(self._enqueue, self._updated, self._deleted))
        self.histories: dict[str, History] = {}

    def _enqueue(self, hpa: Obj) -> None:
        self.queue.add(key_of(hpa))

    def _updated(self, old: Obj, new: Obj) -> None:
        if old.get("spec") != new.get("spec"):  # status writes are ours: the next sync is on the period
            self._enqueue(new)

    def _deleted(self, hpa: Obj) -> None:
        self.histories.pop(key_of(hpa), None)

    def keys_for_resync(self) -> list[str]:
        return [key_of(h) for h in self.hpas.list()]

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        if self.hpas.get(namespace, name) is None:
            return
        # the server's copy, not the cache's: the cache may not have our last status write yet
        # (a rescale's lastScaleTime), and a sync built on it would write that status over
        try:
            hpa = await self.client.get(resource_path("horizontalpodautoscalers", namespace, name))
        except APIStatusError as err:
            if err.code == 404:
                return
            raise
        status = {**(hpa.get("status") or {})}
        status["conditions"] = [dict(c) for c in status.get("conditions") or []]
        await self._sync(hpa, status, self.histories.setdefault(key, History()))
        await self._write_status(hpa, status)

    async def _sync(self, hpa: Obj, status: Obj, history: History) -> None:
        spec, meta = hpa.get("spec") or {}, hpa["metadata"]
        namespace = meta["namespace"]
        stamp = timestamp()
        status["observedGeneration"] = meta.get("generation", 1)
        status.setdefault("desiredReplicas", 0)  # not omitempty upstream: 0 until a count is computed
        ref = spec.get("scaleTargetRef") or {}
        plural = SCALABLE.get(ref.get("kind", ""))
        served = plural is not None and plural in SERVED_PLURALS
        scale_path = resource_path(plural, namespace, ref.get("name"), "scale") if served and plural else ""
        try:
            if not scale_path:
                raise APIStatusError(404, {"message": f"the server could not find the requested resource: "
                                                      f"{ref.get('kind')!r} has no scale subresource in labctl"})
            scale = await self.client.get(scale_path)
        except APIStatusError as err:
            message = f"the HPA controller was unable to get the target's current scale: {err.status.get('message')}"
            set_condition(status, "AbleToScale", "False", "FailedGetScale", message, stamp)
            await self.recorder.record(hpa, "Warning", "FailedGetScale", str(err.status.get("message")))
            return
        current = int((scale.get("spec") or {}).get("replicas") or 0)
        status["currentReplicas"] = int((scale.get("status") or {}).get("replicas") or 0)
        min_replicas, max_replicas = int(spec.get("minReplicas") or 1), int(spec["maxReplicas"])
        behavior = effective_behavior(spec)
        rescale_reason = ""
        if current == 0 and min_replicas != 0:
            desired = 0
            set_condition(status, "ScalingActive", "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero", stamp)
        elif current > max_replicas:
            desired, rescale_reason = max_replicas, "Current number of replicas above Spec.MaxReplicas"
        elif current < min_replicas:
            desired, rescale_reason = min_replicas, "Current number of replicas below Spec.MinReplicas"
        else:
            computed = await self._metrics_replicas(hpa, status, current, scale, behavior, stamp)
            if computed is None:
                return
            proposed, rescale_reason = computed
            stabilized, reason, message = stabilize(history, time.time(), current, proposed,
                                                    behavior["scaleUp"], behavior["scaleDown"])
            if stabilized != proposed:
                set_condition(status, "AbleToScale", "True", reason, message, stamp)
            else:
                set_condition(status, "AbleToScale", "True", "ReadyForNewScale",
                              "recommended size matches current size", stamp)
            desired, reason, message = limit_rate(history, time.time(), current, stabilized, min_replicas,
                                                  max_replicas, behavior["scaleUp"], behavior["scaleDown"])
            set_condition(status, "ScalingLimited", "True" if desired != stabilized else "False", reason, message,
                          stamp)
        status["desiredReplicas"] = desired
        if desired == current:
            return
        try:
            await self.client.replace(scale_path, {**scale, "spec": {**(scale.get("spec") or {}),
                                                                     "replicas": desired}})
        except APIStatusError as err:
            set_condition(status, "AbleToScale", "False", "FailedUpdateScale",
                          f"the HPA controller was unable to update the target scale: {err.status.get('message')}",
                          stamp)
            await self.recorder.record(hpa, "Warning", "FailedRescale",
                                       f"New size: {desired}; reason: {rescale_reason}; error: {err.status.get('message')}")
            return
        longest = max(int(p["periodSeconds"]) for rules in behavior.values() for p in rules.get("policies") or [])
        history.record_scale(time.time(), current, desired, longest)
        status["lastScaleTime"] = stamp
        set_condition(status, "AbleToScale", "True", "SucceededRescale",
                      f"the HPA controller was able to update the target scale to {desired}", stamp)
        await self.recorder.record(hpa, "Normal", "SuccessfulRescale", f"New size: {desired}; reason: {rescale_reason}")
        log.info("%s: scaled %s/%s from %d to %d (%s)", key_of(hpa), ref.get("kind"), ref.get("name"), current,
                 desired, rescale_reason)

    async def _metrics_replicas(self, hpa: Obj, status: Obj, current: int, scale: Obj, behavior: Obj,
                                stamp: str) -> tuple[int, str] | None:
        """``computeReplicasForMetrics``: the highest recommendation over the metrics, and why; None on failure."""
        namespace = hpa["metadata"]["namespace"]
        selector = (scale.get("status") or {}).get("selector") or ""
        best: tuple[int, str] | None = None
        statuses: list[Obj] = []
        errors: list[str] = []
        for metric in (hpa.get("spec") or {}).get("metrics") or []:
            resource = metric["resource"]["name"]
            target = metric["resource"]["target"]
            try:
                pods = (await self.client.get(resource_path("pods", namespace), labelSelector=selector))["items"]
                metrics = (await self.client.get(f"/apis/{METRICS_GROUP}/v1beta1/namespaces/{namespace}/pods",
                                                 labelSelector=selector))["items"]
                average_target = target.get("averageValue")
                if average_target is not None:
                    average_target = milli_value(average_target) if resource == "cpu" else value(average_target)
                rec = resource_replicas(current, [pod_sample(p, resource) for p in pods], pod_usage(metrics, resource),
                                        target.get("averageUtilization") if average_target is None else None,
                                        average_target, _tolerance(behavior["scaleUp"]),
                                        _tolerance(behavior["scaleDown"]), resource)
            except (MetricsError, APIStatusError) as err:
                detail = err.status.get("message") if isinstance(err, APIStatusError) else str(err)
                kind = "utilization" if target.get("type") == "Utilization" else "usage"
                errors.append(f"failed to get {resource} {kind}: {detail}")
                statuses.append({"type": ""})
                continue
            current_status: Obj = {"averageValue": _average_quantity(rec.average, resource)}
            if rec.utilization is not None:
                current_status["averageUtilization"] = rec.utilization
            statuses.append({"type": "Resource", "resource": {"name": resource, "current": current_status}})
            what = (f"{resource} resource utilization (percentage of request)" if rec.utilization is not None
                    else f"{resource} resource")
            if best is None or rec.replicas > best[0]:
                best = (rec.replicas, what)
        found = [s for s in statuses if s.get("type")]
        if found:
            status["currentMetrics"] = found
        else:
            status.pop("currentMetrics", None)
        if best is None:
            message = f"the HPA was unable to compute the replica count: {errors[0] if errors else 'no metrics'}"
            set_condition(status, "ScalingActive", "False", "FailedGetResourceMetric", message, stamp)
            await self.recorder.record(hpa, "Warning", "FailedGetResourceMetric", errors[0] if errors else message)
            return None
        replicas, what = best
        set_condition(status, "ScalingActive", "True", "ValidMetricFound",
                      f"the HPA was able to successfully calculate a replica count from {what}", stamp)
        reason = f"{what} above target" if replicas > current else "All metrics below target"
        return replicas, reason

    async def _write_status(self, hpa: Obj, status: Obj) -> None:
        """UpdateStatus, only when something changed (conditions compared without their times)."""
        def comparable(s: Obj) -> Obj:
            return {**s, "conditions": [{k: v for k, v in c.items() if k != "lastTransitionTime"}
                                        for c in s.get("conditions") or []]}
        if comparable(status) == comparable(hpa.get("status") or {}):
            return
        status["conditions"].sort(key=lambda c: CONDITION_ORDER.index(c["type"]))
        meta = hpa["metadata"]
        path = resource_path("horizontalpodautoscalers", meta["namespace"], meta["name"], "status")
        try:
            await self.client.replace(path, {**hpa, "status": status})
        except APIStatusError as err:
            if err.code != 409:
                raise
            # the spec changed during this sync (`kubectl patch` right after `autoscale`): the status
            # is still this sync's and the target may be rescaled already, so it goes on the current
            # version; a retry would find nothing to rescale and lose lastScaleTime
            current = await self.client.get(resource_path("horizontalpodautoscalers", meta["namespace"],
                                                          meta["name"]))
            await self.client.replace(path, {**current, "status": status})
