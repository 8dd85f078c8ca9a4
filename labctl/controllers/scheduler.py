"""The scheduler: binds each pending pod to a node, like kube-scheduler's default profile.

Pods with no ``spec.nodeName``, for ``default-scheduler`` and not being deleted, are queued,
highest ``spec.priority`` first. One scheduling cycle per pod (filters, scores, :mod:`._scheduling`) runs against the
:class:`~._schedcache.SchedulerCache`; the chosen node is *assumed* at once and the
``POST pods/<name>/binding`` plus the ``Scheduled`` event run in the background, so the next
pod in a burst is placed while the first is still being bound. A pod that fits nowhere gets
``PodScheduled=False`` (reason ``Unschedulable``) and a ``FailedScheduling`` event with
kube-scheduler's message, and is retried whenever a node or a bound pod changes in a way that
could make room, and every ``resync_seconds``. When evicting lower-priority pods would make room
(the cycle's PostFilter), those are preempted and the pod is nominated to their node.
"""

from __future__ import annotations

import asyncio
import logging

from ..client.informer import FuncHandler
from ..client.rest import APIStatusError, resource_path
from ..kube.meta import timestamp
from ..kube.pdb import disruption_target_conditions
from ._schedcache import SchedulerCache, occupies_node, pod_key
from ._scheduling import FitError, PodInfo, Preemption, effective_taints, schedule
from ._volumebinding import UnschedulableClaims, volume_nodes
from .base import Controller, WorkQueue, split_key
from .context import ControllerContext

log = logging.getLogger("labctl.controllers.scheduler")

SCHEDULER_NAME = "default-scheduler"


def wants_scheduling(pod: dict) -> bool:
    """Unbound, ours, and not on its way out."""
    spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
    return (not spec.get("nodeName") and (spec.get("schedulerName") or SCHEDULER_NAME) == SCHEDULER_NAME
            and not meta.get("deletionTimestamp") and (pod.get("status") or {}).get("phase") in (None, "Pending"))


def node_signature(node: dict) -> tuple:
    """What a filter or score reads from a node; a heartbeat that changes none of it is ignored."""
    meta, spec, status = node.get("metadata") or {}, node.get("spec") or {}, node.get("status") or {}
    return (repr(sorted((meta.get("labels") or {}).items())), repr(effective_taints(node)),
            bool(spec.get("unschedulable")), repr(sorted((status.get("allocatable") or {}).items())))


def _labels(obj: dict) -> dict:
    return (obj.get("metadata") or {}).get("labels") or {}


def unschedulable_condition(pod: dict, message: str) -> list[dict] | None:
    """The pod's conditions with ``PodScheduled=False``; None when that is already what it says."""
    conditions = list((pod.get("status") or {}).get("conditions") or [])
    old = next((c for c in conditions if c.get("type") == "PodScheduled"), None)
    if old and old.get("status") == "False" and old.get("reason") == "Unschedulable" and old.get("message") == message:
        return None
    new = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message,
           "lastProbeTime": None,
           "lastTransitionTime": old["lastTransitionTime"] if old and old.get("status") == "False"
           and old.get("lastTransitionTime") else timestamp()}
    return [c for c in conditions if c.get("type") != "PodScheduled"] + [new]


class Scheduler(Controller):
    """Binds pending pods to nodes; see the module docstring for the cycle."""

    name = "scheduler"
    workers = 1  # one pod at a time, as kube-scheduler: each cycle must see the previous assumption
    resync_seconds = 10.0

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        self.pods = ctx.informer("pods")
        self.queue = WorkQueue(sort_key=self._queue_order)  # PrioritySort: higher spec.priority first
        self.nodes = ctx.informer("nodes")
        self.claims = ctx.informer("persistentvolumeclaims")
        self.volumes = ctx.informer("persistentvolumes")
        self.classes = ctx.informer("storageclasses")
        self.namespaces = ctx.informer("namespaces")  # pod affinity terms' namespaceSelector
        self.recorder = ctx.recorder(SCHEDULER_NAME)
        self.cache = SchedulerCache()
        self.unschedulable: set[str] = set()
        self._bindings: set[asyncio.Task] = set()
        self.pods.add_handler(FuncHandler(self._on_pod_add, self._on_pod_update, self._on_pod_delete))
        self.nodes.add_handler(FuncHandler(self._on_node_add, self._on_node_update, self._on_node_delete))
        # a claim created or bound may make a waiting pod schedulable
        self.claims.add_handler(FuncHandler(lambda _: self._requeue_unschedulable(),
                                            lambda old, new: self._requeue_unschedulable(), lambda _: None))

    # -- informer handlers: keep the cache current, queue what may now be schedulable --
    def _on_pod_add(self, pod: dict) -> None:
        self.cache.update_pod(pod)
        if occupies_node(pod):
            self._requeue_unschedulable()  # a pod another waits to be near (pod affinity)
        if wants_scheduling(pod):
            self.queue.add(pod_key(pod))

    def _on_pod_update(self, old: dict, new: dict) -> None:
        self.cache.update_pod(new)
        if occupies_node(old) != occupies_node(new) or (occupies_node(new) and _labels(old) != _labels(new)):
            # a pod finished (its room is free again), was bound or relabelled (pod affinity reads both)
            self._requeue_unschedulable()
        if wants_scheduling(new) and (pod_key(new) not in self.unschedulable or old.get("spec") != new.get("spec")):
            self.queue.add(pod_key(new))  # our own status patch on an unschedulable pod is not news

    def _on_pod_delete(self, pod: dict) -> None:
        self.cache.remove_pod(pod)
        self.unschedulable.discard(pod_key(pod))
        if occupies_node(pod):
            self._requeue_unschedulable()

    def _on_node_add(self, node: dict) -> None:
        self.cache.set_node(node)
        self._requeue_unschedulable()

    def _on_node_update(self, old: dict, new: dict) -> None:
        self.cache.set_node(new)
        if node_signature(old) != node_signature(new):
            self._requeue_unschedulable()

    def _on_node_delete(self, node: dict) -> None:
        self.cache.remove_node(node["metadata"]["name"])

    def _requeue_unschedulable(self) -> None:
        for key in self.unschedulable:
            self.queue.add(key)

    def keys_for_resync(self) -> list[str]:
        return sorted(self.unschedulable)

    # -- the scheduling cycle ----------------------------------------------------------
    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        pod = self.pods.get(namespace, name)
        if pod is None or not wants_scheduling(pod):
            self.unschedulable.discard(key)
            return
        if self.cache.is_assumed(key):
            return  # already chosen; the binding is in flight
        infos = self.cache.node_infos()
        try:
            node_name = schedule(self._pod_info(pod), infos, self._namespace_labels)
        except UnschedulableClaims as err:
            self.unschedulable.add(key)
            await self._record_failure(pod, f"0/{len(infos)} nodes are available: {err}.")
            return
        except FitError as err:
            self.unschedulable.add(key)
            nominated = None
            if err.preemption is not None:
                await self._preempt(pod, err.preemption)
                nominated = err.preemption.node
            await self._record_failure(pod, str(err), nominated)
            return
        self.unschedulable.discard(key)
        self.cache.assume(pod, node_name)
        task = asyncio.create_task(self._bind(pod, node_name))
        self._bindings.add(task)
        task.add_done_callback(self._bindings.discard)

    def _pod_info(self, pod: dict) -> PodInfo:
        """The pod parsed once, with the VolumeBinding PreFilter's nodes; raises UnschedulableClaims."""
        namespace = pod["metadata"].get("namespace", "")
        nodes = volume_nodes(pod, lambda name: self.claims.get(namespace, name), lambda name: self.volumes.get("", name),
                             lambda name: self.classes.get("", name))
        info = PodInfo.of(pod)
        info.volume_nodes = nodes
        return info

    def _queue_order(self, key: str) -> int:
        namespace, name = split_key(key)
        pod = self.pods.get(namespace, name)
        return -int(((pod or {}).get("spec") or {}).get("priority") or 0)

    def _namespace_labels(self, namespace: str) -> dict:
        ns = self.namespaces.get("", namespace)
        return _labels(ns) if ns else {}

    async def _bind(self, pod: dict, node_name: str) -> None:
        """The binding cycle: bind, then tell the student where the pod went."""
        meta = pod["metadata"]
        binding = {"apiVersion": "v1", "kind": "Binding",
                   "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta.get("uid")},
                   "target": {"apiVersion": "v1", "kind": "Node", "name": node_name}}
        try:
            await self.client.create(resource_path("pods", meta["namespace"], meta["name"], "binding"), binding)
        except (TimeoutError, APIStatusError, OSError) as err:
            self.cache.forget(pod)
            log.warning("failed to bind pod %s/%s to node %r: %s", meta["namespace"], meta["name"], node_name, err)
            if not isinstance(err, APIStatusError) or err.code not in (404, 409):
                self.queue.retry(pod_key(pod))  # 404: gone; 409: someone else bound it
            return
        log.info("bound %s/%s to %s", meta["namespace"], meta["name"], node_name)
        await self.recorder.record(pod, "Normal", "Scheduled",
                                   f"Successfully assigned {meta['namespace']}/{meta['name']} to {node_name}")

    async def _preempt(self, pod: dict, preemption: Preemption) -> None:
        """``prepareCandidate``: each victim gets ``DisruptionTarget`` (PreemptionByScheduler), a
        ``Preempted`` event, and is deleted gracefully; the pod waits for the room, nominated there."""
        uid = pod["metadata"].get("uid", "")
        for victim in preemption.victims:
            meta = victim.pod["metadata"]
            path = resource_path("pods", meta["namespace"], meta["name"])
            log.info("preempting %s/%s on %s for %s", meta["namespace"], meta["name"], preemption.node, pod_key(pod))
            try:
                conditions = disruption_target_conditions(victim.pod, "PreemptionByScheduler",
                                                          f"{SCHEDULER_NAME}: preempting to accommodate a higher "
                                                          "priority pod")
                await self.client.patch(f"{path}/status", {"status": {"conditions": conditions}})
                await self.recorder.record(dict(victim.pod), "Normal", "Preempted",
                                           f"Preempted by pod {uid} on node {preemption.node}")
                await self.client.delete(path, preconditions={"uid": meta.get("uid")})
            except APIStatusError as err:
                if err.code not in (404, 409):
                    raise RuntimeError(f"failed to preempt pod {meta['name']!r}: {err}") from err
        await self._clear_lower_nominations(pod, preemption.node)

    async def _clear_lower_nominations(self, pod: dict, node: str) -> None:
        """Pods of lower priority nominated to ``node`` may no longer fit there: their nomination goes."""
        priority = PodInfo.of(pod).priority
        for other in self.pods.list():
            if ((other.get("status") or {}).get("nominatedNodeName") == node and pod_key(other) != pod_key(pod)
                    and not (other.get("spec") or {}).get("nodeName") and PodInfo.of(other).priority < priority):
                meta = other["metadata"]
                try:
                    await self.client.patch(resource_path("pods", meta["namespace"], meta["name"], "status"),
                                            {"status": {"nominatedNodeName": None}})
                except APIStatusError as err:
                    if err.code != 404:
                        raise RuntimeError(f"failed to clear the nomination of pod {meta['name']!r}: {err}") from err

    async def _record_failure(self, pod: dict, message: str, nominated: str | None = None) -> None:
        """``PodScheduled=False`` through the status subresource (with ``nominatedNodeName`` after a
        preemption), and a ``FailedScheduling`` event."""
        meta = pod["metadata"]
        log.info("unable to schedule %s/%s: %s", meta["namespace"], meta["name"], message)
        conditions = unschedulable_condition(pod, message)
        status: dict = {} if conditions is None else {"conditions": conditions}
        if nominated and (pod.get("status") or {}).get("nominatedNodeName") != nominated:
            status["nominatedNodeName"] = nominated
        if status:
            try:
                await self.client.patch(resource_path("pods", meta["namespace"], meta["name"], "status"),
                                        {"status": status})
            except APIStatusError as err:
                if err.code != 404:
                    raise RuntimeError(f"failed to set PodScheduled=False on pod {meta['name']!r}: {err}") from err
        await self.recorder.record(pod, "Warning", "FailedScheduling", message)
