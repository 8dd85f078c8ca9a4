"""The node lifecycle controller: a node that stops heartbeating goes NotReady, its pods move.

A port, at lab scale, of ``pkg/controller/nodelifecycle`` (``monitorNodeHealth``, the
NoSchedule tainting pass and taint-based eviction). Every ``node_monitor_period_seconds``:

* **health**: a node's *probe time* is when this controller last saw its Lease's
  ``renewTime`` (or its Ready heartbeat) change — measured on the controller's clock, as
  Kubernetes does, and reset at controller start so a restart never condemns every node.
  Past ``node_monitor_grace_seconds`` (Kubernetes: 40 s; the topology's
  ``nodeLifecycle.nodeMonitorGracePeriod``) its conditions become ``Unknown``
  (``NodeStatusUnknown``, "Kubelet stopped posting node status.").
* **taints**: Ready=Unknown → ``node.kubernetes.io/unreachable`` NoSchedule + NoExecute;
  Ready=False → ``node.kubernetes.io/not-ready`` likewise; Ready=True → none of them.
* **eviction**: a pod on a node with a NoExecute taint it does not tolerate is deleted at
  once; one that tolerates it for ``tolerationSeconds`` is deleted that long after the
  taint's ``timeAdded``. Every pod gets the 300 s tolerations from the API server
  (DefaultTolerationSeconds); in a lab that default stands for the topology's
  ``podEvictionTimeout``, so a toleration of exactly 300 s counts as
  ``pod_eviction_timeout_seconds``. An explicit other value is honoured as written.
* **one owner per condition**: this controller writes only ``Unknown``. Ready, MemoryPressure,
  DiskPressure and PIDPressure are the kubelet's (the node agent posts them, and re-posts at
  once when its watch shows our ``Unknown``); when Ready is True again the taints go — the
  controller looks again as soon as a node's Ready changes, not only every period. The
  deleted pods' replacements are already running elsewhere; the returning node agent removes
  the stale containers.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time

from ..client.informer import FuncHandler
from ..client.rest import APIStatusError, resource_path
from ..kube.meta import now, parse_time, timestamp
from ..kube.objects import NODE_CONDITION_TYPES, condition_status
from .base import Controller
from .context import NODE_MONITOR_PERIOD_SECONDS, ControllerContext

log = logging.getLogger("labctl.controllers.nodelifecycle")

LEASE_NAMESPACE = "kube-node-lease"
UNREACHABLE = "node.kubernetes.io/unreachable"
NOT_READY = "node.kubernetes.io/not-ready"
DEFAULT_TOLERATION_SECONDS = 300
UNKNOWN_REASON = "NodeStatusUnknown"
UNKNOWN_MESSAGE = "Kubelet stopped posting node status."


def unknown_conditions(node: dict, now: str) -> list[dict]:
    """Every condition the kubelet owns set to Unknown, keeping its last heartbeat time."""
    current = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
    out = [c for t, c in current.items() if t not in NODE_CONDITION_TYPES]
    for typ in NODE_CONDITION_TYPES:
        old = current.get(typ)
        if old is None:
            out.append({"type": typ, "status": "Unknown", "reason": "NodeStatusNeverUpdated",
                        "message": "Kubelet never posted node status.", "lastHeartbeatTime": now,
                        "lastTransitionTime": now})
        else:
            out.append({**old, "status": "Unknown", "reason": UNKNOWN_REASON, "message": UNKNOWN_MESSAGE,
                        "lastTransitionTime": now if old.get("status") != "Unknown" else old.get("lastTransitionTime")})
    return out


def conditions_to_write(node: dict, stale: bool, now: str) -> list[dict] | None:
    """What this controller writes into a node's conditions: the ``Unknown`` set once the
    kubelet's heartbeat is stale; nothing otherwise — never True or False, which only the
    kubelet reports (``tryUpdateNodeHealth``)."""
    if not stale or condition_status(node, "Ready") == "Unknown":
        return None
    return unknown_conditions(node, now)


def wanted_taints(ready: str | None) -> set[tuple[str, str]]:
    """(key, effect) pairs the Ready condition calls for."""
    if ready == "Unknown":
        return {(UNREACHABLE, "NoSchedule"), (UNREACHABLE, "NoExecute")}
    if ready == "False":
        return {(NOT_READY, "NoSchedule"), (NOT_READY, "NoExecute")}
    return set()


def reconcile_taints(taints: list[dict], ready: str | None, now: str) -> list[dict] | None:
    """The node's taints with ours brought in line with ``ready``; None when nothing changes."""
    ours = {UNREACHABLE, NOT_READY}
    wanted = wanted_taints(ready)
    have = {(t.get("key"), t.get("effect")) for t in taints if t.get("key") in ours}
    if have == wanted:
        return None
    kept = [t for t in taints if t.get("key") not in ours or (t.get("key"), t.get("effect")) in wanted]
    for key, effect in sorted(wanted - have):
        taint = {"key": key, "effect": effect}
        if effect == "NoExecute":
            taint["timeAdded"] = now
        kept.append(taint)
    return kept


def tolerates(toleration: dict, taint: dict) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    op = toleration.get("operator") or "Equal"
    if not toleration.get("key"):
        return op == "Exists"
    if toleration["key"] != taint.get("key"):
        return False
    return op == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


def eviction_delay(pod: dict, taints: list[dict], eviction_timeout: float) -> float | None:
    """Seconds after the taint a pod may stay (0 = now); None = it tolerates every taint forever."""
    delay: float | None = None
    tolerations = (pod.get("spec") or {}).get("tolerations") or []
    for taint in taints:
        if taint.get("effect") != "NoExecute":
            continue
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            return 0.0
        seconds = [t.get("tolerationSeconds") for t in matching]
        if any(s is None for s in seconds):
            continue  # tolerated forever
        value = float(min(seconds))
        if value == DEFAULT_TOLERATION_SECONDS:
            value = eviction_timeout  # the admission default stands for the lab's podEvictionTimeout
        delay = value if delay is None else min(delay, value)
    return delay


class NodeLifecycleController(Controller):
    name = "node-lifecycle-controller"
    workers = 1
    resync_seconds = 3600.0

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        self.lifecycle = ctx.cluster.lifecycle
        self.recorder = ctx.recorder(self.name)
        self.nodes = ctx.informer("nodes")
        self.leases = ctx.informer("leases")
        self.pods = ctx.informer("pods")
        self._probe: dict[str, tuple[tuple, float]] = {}   # node -> (heartbeat signature, monotonic time seen)
        self.nodes.add_handler(FuncHandler(on_update=self._node_updated,
                                           on_delete=lambda n: self._probe.pop(n["metadata"]["name"], None)))

    def _node_updated(self, old: dict, new: dict) -> None:
        """A kubelet reporting Ready again (or not) gets its taints right now, not a period later."""
        if condition_status(old, "Ready") != condition_status(new, "Ready"):
            self.queue.add("monitor")

    async def run(self) -> None:
        await asyncio.gather(super().run(), self._monitor())

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(NODE_MONITOR_PERIOD_SECONDS)
            self.queue.add("monitor")

    async def reconcile(self, key: str) -> None:
        for node in self.nodes.list():
            try:
                await self.monitor_node(node["metadata"]["name"])
            except APIStatusError as err:
                log.warning("failed to update node %r: %s", node["metadata"]["name"], err)

    def heartbeat(self, name: str) -> tuple:
        lease = self.leases.get(LEASE_NAMESPACE, name)
        renew = ((lease or {}).get("spec") or {}).get("renewTime")
        node = self.nodes.get("", name) or {}
        ready: dict = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), {})
        return renew, ready.get("lastHeartbeatTime")

    def seconds_since_probe(self, name: str, now: float) -> float:
        signature = self.heartbeat(name)
        seen = self._probe.get(name)
        if seen is None or seen[0] != signature:
            self._probe[name] = (signature, now)
            return 0.0
        return now - seen[1]

    async def monitor_node(self, name: str) -> None:
        now = time.monotonic()
        stale = self.seconds_since_probe(name, now) > self.lifecycle.node_monitor_grace_seconds
        node = self.nodes.get("", name)
        if node is None:
            return
        unknown = conditions_to_write(node, stale, timestamp())
        if unknown is not None:
            node = await self.set_conditions(node, unknown)
            log.info("node %s: lease not renewed for %.0fs: Ready=Unknown", name, self.lifecycle.node_monitor_grace_seconds)
            await self.recorder.record(node, "Normal", "NodeNotReady", f"Node {name} status is now: NodeNotReady")
        ready = condition_status(node, "Ready")
        if ready == "Unknown":
            # every pass, not only on the transition: a write lost to a conflict (the pod changed
            # since the cache saw it) is retried a period later, as upstream's needsRetry
            await self.mark_pods_not_ready(name)
        taints = reconcile_taints((node.get("spec") or {}).get("taints") or [], ready, timestamp())
        if taints is not None:
            patch = {"spec": {"taints": taints or None}, "metadata": {"resourceVersion": node["metadata"]["resourceVersion"]}}
            node = await self.client.patch(resource_path("nodes", name=name), patch)
        await self.evict_pods(node)

    async def set_conditions(self, node: dict, conditions: list[dict]) -> dict:
        new = copy.deepcopy(node)
        new.setdefault("status", {})["conditions"] = conditions
        return await self.client.replace(resource_path("nodes", name=node["metadata"]["name"], subresource="status"), new)

    async def mark_pods_not_ready(self, name: str) -> None:
        """Kubernetes' MarkPodsNotReady: the node cannot vouch for its pods any more, so they
        leave every Service's endpoints now (EndpointSlice ``ready: false``, so no proxy sends
        them new connections) rather than at eviction, ``podEvictionTimeout`` later. Pods
        already not Ready are skipped, so repeating this every period costs no write."""
        now = timestamp()
        for pod in self.pods.list():
            if (pod.get("spec") or {}).get("nodeName") != name or pod["metadata"].get("deletionTimestamp"):
                continue
            conditions = (pod.get("status") or {}).get("conditions") or []
            if not any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
                continue
            new = copy.deepcopy(pod)
            for cond in new["status"]["conditions"]:
                if cond.get("type") in ("Ready", "ContainersReady") and cond.get("status") == "True":
                    cond.update(status="False", reason="NodeNotReady", lastTransitionTime=now,
                                message=f"node {name} is not ready")
            meta = pod["metadata"]
            try:
                await self.client.replace(resource_path("pods", meta["namespace"], meta["name"], "status"), new)
            except APIStatusError as err:
                if err.code not in (404, 409):
                    raise

    async def evict_pods(self, node: dict) -> None:
        taints = [t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoExecute"]
        if not taints:
            return
        name = node["metadata"]["name"]
        current = now()
        added = min((parse_time(t.get("timeAdded")) or current for t in taints), default=current)
        elapsed = (current - added).total_seconds()
        for pod in self.pods.list():
            meta = pod["metadata"]
            if (pod.get("spec") or {}).get("nodeName") != name or meta.get("deletionTimestamp"):
                continue
            delay = eviction_delay(pod, taints, self.lifecycle.pod_eviction_timeout_seconds)
            if delay is None or elapsed < delay:
                continue
            try:
                await self.client.delete(resource_path("pods", meta["namespace"], meta["name"]),
                                         preconditions={"uid": meta["uid"]})
            except APIStatusError as err:
                if err.code != 404:
                    raise
                continue
            log.info("evicted pod %s/%s from node %s", meta["namespace"], meta["name"], name)
            await self.recorder.record(pod, "Normal", "TaintManagerEviction",
                                       f"Marking for deletion Pod {meta['namespace']}/{meta['name']}")
