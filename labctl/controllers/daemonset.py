"""The DaemonSet controller: one pod on every eligible node, following nodes that come and go.

A port of ``pkg/controller/daemon`` (``daemon_controller.go``, ``update.go``). Each sync:

1. records the template as a ControllerRevision (``<ds>-<hash>``, ``revision`` one above the
   others; what ``kubectl rollout history/undo ds/...`` read) and drops the oldest unused
   ones beyond ``revisionHistoryLimit``;
2. decides per node whether the daemon pod should run there (``NodeShouldRunDaemonPod``):
   the scheduler's own filters (:mod:`labctl.controllers._scheduling`) for node name,
   ``nodeSelector``/required node affinity and taints, applied to the pod as it would be
   created — with the tolerations every daemon pod gets (not-ready and unreachable
   ``NoExecute``, unschedulable and the pressure taints ``NoSchedule``). The control plane's
   ``node-role.kubernetes.io/control-plane:NoSchedule`` taint keeps it off unless tolerated;
3. creates the missing pods — each pinned to its node by node affinity
   (``matchFields metadata.name``) and bound by the scheduler, as upstream — deletes failed
   ones, duplicates and those on nodes that should no longer run one; deletions first, and
   creations once those are observed (one kind of write per sync keeps expectations simple);
4. rolls a changed template out with ``RollingUpdate`` (``maxUnavailable`` old pods
   replaced at a time, or with ``maxSurge`` a new pod started beside the old one, which goes
   when the new one is available) or, with ``OnDelete``, only where a pod was deleted;
5. writes status: desired/current/misscheduled/ready/updated/available/unavailable counts
   and ``observedGeneration``, which ``kubectl rollout status ds/...`` reads.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
from collections.abc import Iterable

from ..client.informer import FuncHandler
from ..client.rest import APIStatusError, resource_path
from ..kube.intstr import scaled_value
from ..kube.labels import selector_from_label_selector
from ..kube.meta import parse_time
from ..kube.objects import pod_is_ready
from ._ownership import Expectations, claim, controller_key
from ._podcontrol import PodControl, pod_from_template
from ._podutil import is_pod_available, utcnow
from ._revisions import REVISION_HASH_LABEL, owned_revisions, record_revision
from ._rollout import compute_hash
from ._scheduling import NodeInfo, PodInfo, filter_node_affinity, filter_node_name, filter_taint_toleration
from .base import Controller, key_of, split_key
from .context import ControllerContext

log = logging.getLogger("labctl.controllers.daemonset")

TEMPLATE_GENERATION_LABEL = "pod-template-generation"
TEMPLATE_GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
#: ``AddOrUpdateDaemonPodTolerations``: a daemon pod survives what would evict or block other pods
DAEMON_TOLERATIONS = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)


# -- pure decisions ------------------------------------------------------------------------
def template_hash(ds: dict) -> str:
    return compute_hash(((ds.get("spec") or {}).get("template")) or {},
                        (ds.get("status") or {}).get("collisionCount"))


def daemon_pod(ds: dict, node_name: str, hash_: str) -> dict:
    """The pod the DaemonSet runs on ``node_name``: its template, the daemon tolerations, pinned by affinity."""
    pod = pod_from_template(ds)
    labels = pod["metadata"]["labels"]
    labels[REVISION_HASH_LABEL] = hash_
    generation = (ds["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    if generation:
        labels[TEMPLATE_GENERATION_LABEL] = generation
    spec = pod["spec"]
    tolerations = list(spec.get("tolerations") or [])
    for toleration in DAEMON_TOLERATIONS:
        if not any(t.get("key") == toleration["key"] and t.get("effect") == toleration["effect"] for t in tolerations):
            tolerations.append(dict(toleration))
    spec["tolerations"] = tolerations
    # ReplaceDaemonSetPodNodeNameNodeAffinity: only the target node is left to the scheduler
    affinity = spec.setdefault("affinity", {})
    affinity.setdefault("nodeAffinity", {})["requiredDuringSchedulingIgnoredDuringExecution"] = {
        "nodeSelectorTerms": [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node_name]}]}]}
    return pod


def should_run(ds: dict, node: dict) -> tuple[bool, bool]:
    """``NodeShouldRunDaemonPod``: (should a pod run here, may a running one stay).

    A pod stays on a node it no longer fits only because of a new ``NoSchedule`` taint.
    """
    template = (ds.get("spec") or {}).get("template") or {}
    spec = copy.deepcopy(template.get("spec") or {})
    spec["tolerations"] = list(spec.get("tolerations") or []) + list(DAEMON_TOLERATIONS)
    pi = PodInfo.of({"metadata": template.get("metadata") or {}, "spec": spec})
    ni = NodeInfo(node)
    if filter_node_name(pi, ni) or filter_node_affinity(pi, ni):
        return False, False
    if filter_taint_toleration(pi, ni) is None:
        return True, True
    ni.taints = [t for t in ni.taints if t.get("effect") == "NoExecute"]
    return False, filter_taint_toleration(pi, ni) is None


def target_node(pod: dict) -> str:
    """``GetTargetNodeName``: where the pod runs, or the node its affinity pins it to before binding."""
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        return str(node)
    required = ((((pod.get("spec") or {}).get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and len(field.get("values") or []) == 1:
                return str(field["values"][0])
    return ""


def is_updated(pod: dict, hash_: str, generation: str | None) -> bool:
    """``IsPodUpdated``: the pod carries the current revision's hash (or template generation)."""
    labels = pod["metadata"].get("labels") or {}
    return labels.get(REVISION_HASH_LABEL) == hash_ or (
        generation is not None and labels.get(TEMPLATE_GENERATION_LABEL) == generation
        and REVISION_HASH_LABEL not in labels)


def _created(pod: dict) -> dt.datetime:
    return parse_time(pod["metadata"].get("creationTimestamp")) or dt.datetime.max.replace(tzinfo=dt.UTC)


def split_updated(pods: list[dict], hash_: str, generation: str | None) -> tuple[dict | None, dict | None, bool]:
    """``findUpdatedPodsOnNode``: the node's new and old pod; False when it has more than one of either."""
    new = [p for p in pods if is_updated(p, hash_, generation)]
    old = [p for p in pods if not is_updated(p, hash_, generation)]
    if len(new) > 1 or len(old) > 1:
        return None, None, False
    return (new[0] if new else None), (old[0] if old else None), True


def rolling_params(ds: dict, desired: int) -> tuple[int, int]:
    """(maxSurge, maxUnavailable) against the number of nodes that should run the pod (both rounded up)."""
    rolling = (((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate")) or {}
    surge = scaled_value(rolling.get("maxSurge", 0), desired, True)
    unavailable = scaled_value(rolling.get("maxUnavailable", 1), desired, True)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable


def rolling_update(ds: dict, node_pods: dict[str, list[dict]], running_nodes: set[str], hash_: str,
                   now: dt.datetime) -> tuple[list[dict], list[str]]:
    """``rollingUpdate``: the old pods to delete now and the nodes to surge a new pod onto."""
    generation = (ds["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    surge, max_unavailable = rolling_params(ds, len(running_nodes))
    to_delete: list[dict] = []
    if surge == 0:
        unavailable, replaceable, candidates = 0, [], []
        for node in sorted(node_pods):
            new, old, ok = split_updated(node_pods[node], hash_, generation)
            if not ok or (new is None) == (old is None):
                unavailable += 1  # manage() creates or cleans up here
            elif new is not None:
                unavailable += 0 if is_pod_available(new, min_ready, now) else 1
            elif old is not None and not is_pod_available(old, min_ready, now):
                replaceable.append(old)  # replacing what is unavailable anyway costs nothing
            elif old is not None:
                candidates.append(old)
        budget = max(0, min(max_unavailable - unavailable, len(candidates)))
        return replaceable + candidates[:budget], []
    surging, allowed, candidate_nodes = 0, [], []
    for node in sorted(node_pods):
        new, old, ok = split_updated(node_pods[node], hash_, generation)
        if not ok:
            surging += 1
        elif old is None:
            continue
        elif new is None:
            if node not in running_nodes:
                to_delete.append(old)
            elif not is_pod_available(old, min_ready, now):
                allowed.append(node)
            else:
                candidate_nodes.append(node)
        elif not is_pod_available(new, min_ready, now):
            surging += 1
        else:
            to_delete.append(old)
    budget = max(0, min(surge - surging, len(candidate_nodes)))
    return to_delete, allowed + candidate_nodes[:budget]


def daemonset_status(ds: dict, nodes: Iterable[dict], node_pods: dict[str, list[dict]], hash_: str,
                     now: dt.datetime) -> dict:
    """``updateDaemonSetStatus``: the counts ``kubectl get ds`` and ``rollout status`` read."""
    generation = (ds["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
    min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
    desired = current = misscheduled = ready = updated = available = 0
    for node in nodes:
        run, _ = should_run(ds, node)
        pods = node_pods.get(node["metadata"]["name"]) or []
        if not run:
            misscheduled += 1 if pods else 0
            continue
        desired += 1
        if not pods:
            continue
        current += 1
        oldest = min(pods, key=_created)
        if pod_is_ready(oldest):
            ready += 1
            available += 1 if is_pod_available(oldest, min_ready, now) else 0
        if is_updated(oldest, hash_, generation):  # during a surge the old pod is still the one counted
            updated += 1
    status = copy.deepcopy(ds.get("status") or {})
    status.update({"desiredNumberScheduled": desired, "currentNumberScheduled": current,
                   "numberMisscheduled": misscheduled, "numberReady": ready, "updatedNumberScheduled": updated,
                   "numberAvailable": available, "numberUnavailable": desired - available,
                   "observedGeneration": int(ds["metadata"].get("generation") or 0)})
    for omitted in ("updatedNumberScheduled", "numberAvailable", "numberUnavailable"):  # omitempty
        if not status[omitted]:
            del status[omitted]
    return status


# -- the controller ------------------------------------------------------------------------
class DaemonSetController(Controller):
    name = "daemonset-controller"
    workers = 2

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder(self.name)
        self.daemonsets = ctx.informer("daemonsets")
        self.pods = ctx.informer("pods")
        self.nodes = ctx.informer("nodes")
        self.revisions = ctx.informer("controllerrevisions")
        self.expectations = Expectations()
        self.pod_control = PodControl(self.client, self.recorder, self.expectations)
        self.daemonsets.add_handler(FuncHandler(self._enqueue, lambda old, new: self._enqueue(new), self._deleted))
        self.pods.add_handler(FuncHandler(self._pod_added, lambda old, new: self._pod_changed(new), self._pod_deleted))
        self.nodes.add_handler(FuncHandler(self._node_changed, self._node_updated, self._node_changed))

    def _enqueue(self, ds: dict) -> None:
        self.queue.add(key_of(ds))

    def _deleted(self, ds: dict) -> None:
        self.expectations.delete(key_of(ds))

    def _owner_key(self, pod: dict) -> str | None:
        return controller_key(pod, "DaemonSet")

    def _pod_added(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.creation_observed(key)
            self.queue.add(key)

    def _pod_changed(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.queue.add(key)

    def _pod_deleted(self, pod: dict) -> None:
        key = self._owner_key(pod)
        if key is not None:
            self.expectations.deletion_observed(key, key_of(pod))
            self.queue.add(key)

    def _node_changed(self, node: dict) -> None:
        for ds in self.daemonsets.list():
            self._enqueue(ds)

    def _node_updated(self, old: dict, new: dict) -> None:
        def scheduling_view(node: dict) -> tuple:
            ready = [c.get("status") for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"]
            return (node["metadata"].get("labels"), (node.get("spec") or {}).get("taints"),
                    (node.get("spec") or {}).get("unschedulable"), ready)
        if scheduling_view(old) != scheduling_view(new):
            self._node_changed(new)

    def keys_for_resync(self) -> list[str]:
        return [key_of(d) for d in self.daemonsets.list()]

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        ds = self.daemonsets.get(namespace, name)
        if ds is None:
            self.expectations.delete(key)
            return
        selector = selector_from_label_selector((ds.get("spec") or {}).get("selector"))
        candidates = [p for p in self.pods.list() if p["metadata"].get("namespace") == namespace]
        pods = [p for p in await claim(self.client, "pods", ds, selector, candidates)
                if not p["metadata"].get("deletionTimestamp")]
        hash_ = template_hash(ds)
        now = utcnow()
        node_pods: dict[str, list[dict]] = {}
        for pod in pods:
            node_pods.setdefault(target_node(pod), []).append(pod)
        nodes = self.nodes.list()
        if not ds["metadata"].get("deletionTimestamp"):
            in_use = {(p["metadata"].get("labels") or {}).get(REVISION_HASH_LABEL) or "" for p in pods}
            await record_revision(self.client, owned_revisions(self.revisions.list(), ds), ds, hash_, in_use)
            if self.expectations.satisfied(key):
                await self._manage(key, ds, nodes, node_pods, hash_, now)
        status = daemonset_status(ds, nodes, node_pods, hash_, now)
        if status != (ds.get("status") or {}):
            meta = ds["metadata"]
            try:
                await self.client.replace(resource_path("daemonsets", namespace, meta["name"], "status"),
                                          {**ds, "status": status})
            except APIStatusError as err:
                if err.code != 409:
                    raise
                self.queue.add(key)  # our cached DaemonSet is older than the stored one: look again
                return
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        if min_ready and status.get("numberAvailable", 0) < status["numberReady"]:
            self.queue.add_after(key, min_ready)

    async def _manage(self, key: str, ds: dict, nodes: list[dict], node_pods: dict[str, list[dict]], hash_: str,
                      now: dt.datetime) -> None:
        """``manage`` + ``rollingUpdate``: deletions first; creations once they are observed."""
        generation = (ds["metadata"].get("annotations") or {}).get(TEMPLATE_GENERATION_ANNOTATION)
        strategy = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("type", "RollingUpdate")
        surge, _ = rolling_params(ds, len(nodes)) if strategy == "RollingUpdate" else (0, 0)
        to_create: list[str] = []
        to_delete: list[dict] = []
        running: set[str] = set()
        for node in nodes:
            node_name = node["metadata"]["name"]
            run, keep = should_run(ds, node)
            pods = node_pods.get(node_name) or []
            if run:
                running.add(node_name)
            if not keep:
                to_delete += pods
                continue
            failed = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
            for pod in failed:
                await self.recorder.record(ds, "Warning", "FailedDaemonPod",
                                           f"Found failed daemon pod {pod['metadata']['namespace']}/"
                                           f"{pod['metadata']['name']} on node {node_name}, will try to kill it")
            to_delete += failed
            alive = sorted((p for p in pods if p not in failed), key=_created)
            if run and not alive:
                to_create.append(node_name)
            elif len(alive) > 1:
                if surge:  # keep the oldest new and the oldest old pod: the surge is in progress
                    new = [p for p in alive if is_updated(p, hash_, generation)]
                    old = [p for p in alive if not is_updated(p, hash_, generation)]
                    to_delete += new[1:] + old[1:]
                else:
                    to_delete += alive[1:]
        if strategy == "RollingUpdate":
            live = {n: [p for p in ps if p not in to_delete] for n, ps in node_pods.items() if n in running}
            old_to_delete, surge_nodes = rolling_update(ds, {n: ps for n, ps in live.items() if ps}, running, hash_, now)
            to_delete += [p for p in old_to_delete if p not in to_delete]
            to_create += [n for n in surge_nodes if n not in to_create]
        if to_delete:
            await self.pod_control.delete(key, ds, to_delete)
        elif to_create:
            await self.pod_control.create(key, ds, [daemon_pod(ds, node, hash_) for node in sorted(to_create)])
