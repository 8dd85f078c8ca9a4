"""The scheduler's pure decision logic: filter plugins, score plugins and kube-scheduler's messages.

Nothing here talks to the API: :func:`schedule` takes a pod dict and the :class:`NodeInfo`
of every node (see :mod:`labctl.controllers._schedcache`) and returns either the chosen node
or a :class:`FitError` whose ``str()`` is, word for word, what kube-scheduler writes into
the ``FailedScheduling`` event (``pkg/scheduler/framework/types.go`` ``FitError.Error``), so a
student reading ``kubectl describe pod`` sees the message a real cluster would give.

Filters run in kube-scheduler's default order and a node stops at its first failing plugin,
which is why a tainted, full control plane reports only its taint.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ..kube.labels import DOES_NOT_EXIST, EXISTS, GREATER_THAN, IN, LESS_THAN, NOT_IN, Requirement
from ..kube.quantity import milli_value, value
from ._interpodaffinity import (
    ERR_AFFINITY,
    NO_AFFINITY,
    AffinityState,
    ExistingPod,
    NamespaceLabels,
    PodAffinity,
    normalized_scores,
    preferred_weights,
)

# framework.Code values a Filter returns; only UNSCHEDULABLE nodes are worth a preemption dry run.
UNSCHEDULABLE = "Unschedulable"
UNRESOLVABLE = "UnschedulableAndUnresolvable"

MAX_NODE_SCORE = 100
# schedutil.DefaultMilliCPURequest / DefaultMemoryRequest: what a container without requests
# "weighs" when scoring, so a hundred best-effort pods do not all pile onto one node.
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024

NOT_READY_TAINT = "node.kubernetes.io/not-ready"
UNREACHABLE_TAINT = "node.kubernetes.io/unreachable"
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"

ERR_NODE_NAME = "node(s) didn't match the requested node name"
ERR_VOLUME_NODE_AFFINITY = "node(s) had volume node affinity conflict"
ERR_NODE_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
ERR_UNSCHEDULABLE = "node(s) were unschedulable"
ERR_NO_NODES = "no nodes available to schedule pods"
ERR_NODE_PORTS = "node(s) didn't have free ports for the requested pod ports"
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_PREEMPTION_VICTIMS = "No preemption victims found for incoming pod"
PREEMPT_NEVER = "not eligible due to preemptionPolicy=Never."
NOT_ELIGIBLE_TERMINATING = "not eligible due to a terminating pod on the nominated node."

_BASE_RESOURCES = ("cpu", "memory", "ephemeral-storage", "pods")


# -- resources ----------------------------------------------------------------------------
@dataclass
class Resources:
    """``framework.Resource``: cpu in milli-cores, memory and storage in bytes, extended scalars."""

    milli_cpu: int = 0
    memory: int = 0
    ephemeral_storage: int = 0
    scalars: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_list(cls, rl: Mapping[str, object] | None) -> Resources:
        r = cls()
        for name, q in (rl or {}).items():
            if name == "cpu":
                r.milli_cpu = milli_value(q)  # type: ignore[arg-type]
            elif name == "memory":
                r.memory = value(q)  # type: ignore[arg-type]
            elif name == "ephemeral-storage":
                r.ephemeral_storage = value(q)  # type: ignore[arg-type]
            elif name != "pods":
                r.scalars[name] = value(q)  # type: ignore[arg-type]
        return r

    def add(self, other: Resources, sign: int = 1) -> None:
        self.milli_cpu += sign * other.milli_cpu
        self.memory += sign * other.memory
        self.ephemeral_storage += sign * other.ephemeral_storage
        for name, v in other.scalars.items():
            self.scalars[name] = self.scalars.get(name, 0) + sign * v

    def set_max(self, other: Resources) -> None:
        self.milli_cpu = max(self.milli_cpu, other.milli_cpu)
        self.memory = max(self.memory, other.memory)
        self.ephemeral_storage = max(self.ephemeral_storage, other.ephemeral_storage)
        for name, v in other.scalars.items():
            self.scalars[name] = max(self.scalars.get(name, 0), v)


def container_requests(container: Mapping) -> Resources:
    """A container's requests; a limit stands in for a missing request, as the API server defaults it."""
    res = container.get("resources") or {}
    merged = {**(res.get("limits") or {}), **(res.get("requests") or {})}
    return Resources.from_list(merged)


def pod_requests(pod: Mapping) -> Resources:
    """``resource.PodRequests``: sum of containers, at least the largest init container, plus overhead."""
    spec = pod.get("spec") or {}
    total = Resources()
    for c in spec.get("containers") or []:
        total.add(container_requests(c))
    for c in spec.get("initContainers") or []:
        total.set_max(container_requests(c))
    total.add(Resources.from_list(spec.get("overhead")))
    return total


def pod_non_zero_requests(pod: Mapping) -> tuple[int, int]:
    """(milli cpu, memory) for scoring, with kube's defaults for containers that request nothing."""
    cpu = mem = 0
    for c in (pod.get("spec") or {}).get("containers") or []:
        r = container_requests(c)
        cpu += r.milli_cpu or DEFAULT_MILLI_CPU_REQUEST
        mem += r.memory or DEFAULT_MEMORY_REQUEST
    return cpu, mem


def controller_uid(pod: Mapping) -> str:
    """The uid of the pod's controlling owner (ReplicaSet, …), or '' for a bare pod."""
    for ref in (pod.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return str(ref.get("uid", ""))
    return ""


# -- what the plugins read: the pod and each node, parsed once ----------------------------
@dataclass
class PodInfo:
    """``framework.PodInfo``: a pod with its requests parsed once, not once per node."""

    pod: Mapping
    requests: Resources
    non_zero: tuple[int, int]
    owner: str
    priority: int
    affinity: PodAffinity = NO_AFFINITY
    #: the nodes the pod's bound PersistentVolumes allow (None: any), from the VolumeBinding PreFilter
    volume_nodes: frozenset[str] | None = None
    #: InterPodAffinity's PreFilter counts for this cycle (None: no pod's rules concern this pod)
    affinity_state: AffinityState | None = None

    @classmethod
    def of(cls, pod: Mapping | PodInfo) -> PodInfo:
        if isinstance(pod, PodInfo):
            return pod
        return cls(pod, pod_requests(pod), pod_non_zero_requests(pod), controller_uid(pod),
                   int((pod.get("spec") or {}).get("priority") or 0), PodAffinity.of(pod))

    @property
    def spec(self) -> Mapping:
        return self.pod.get("spec") or {}


@dataclass
class NodeInfo:
    """``framework.NodeInfo``: a node plus what the pods bound (or assumed) to it already take."""

    node: dict
    requested: Resources = field(default_factory=Resources)
    non_zero_cpu: int = 0
    non_zero_memory: int = 0
    pods: dict[str, PodInfo] = field(default_factory=dict)  # pod key -> pod
    owners: Counter = field(default_factory=Counter)        # controller uid -> pods here

    def __post_init__(self) -> None:
        self.set_node(self.node)

    def set_node(self, node: dict) -> None:
        """Take a new version of the node; parse what the plugins read from it once."""
        self.node = node
        self.name: str = node["metadata"]["name"]
        self.labels: dict = (node.get("metadata") or {}).get("labels") or {}
        allocatable = (node.get("status") or {}).get("allocatable") or {}
        self.allocatable = Resources.from_list(allocatable)
        self.allowed_pods = value(allocatable["pods"]) if allocatable.get("pods") is not None else 0
        self.taints = effective_taints(node)

    def add_pod(self, key: str, pod: Mapping | PodInfo, sign: int = 1) -> None:
        pi = PodInfo.of(pod)
        self.requested.add(pi.requests, sign)
        self.non_zero_cpu += sign * pi.non_zero[0]
        self.non_zero_memory += sign * pi.non_zero[1]
        if pi.owner:
            self.owners[pi.owner] += sign
            if self.owners[pi.owner] <= 0:
                del self.owners[pi.owner]
        if sign > 0:
            self.pods[key] = pi
        else:
            self.pods.pop(key, None)


# -- filter plugins ---------------------------------------------------------------------
@dataclass
class Status:
    """A failed filter: its code and the reasons counted in the FitError histogram."""

    code: str
    reasons: list[str]


def tolerates(toleration: Mapping, taint: Mapping) -> bool:
    """``Toleration.ToleratesTaint``: an empty effect or key (with Exists) matches any."""
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    if toleration.get("key") and toleration["key"] != taint.get("key"):
        return False
    op = toleration.get("operator") or "Equal"
    if op == "Exists":
        return True
    return op == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def effective_taints(node: Mapping) -> list[dict]:
    """The node's taints, plus the not-ready/unreachable taint the node lifecycle controller would add.

    Kubernetes never filters on the Ready condition directly: the node lifecycle controller
    taints a node that is not Ready and the TaintToleration filter keeps pods off it. Adding the
    same taint here gives the same behaviour and message whether or not that controller runs.
    """
    taints = list((node.get("spec") or {}).get("taints") or [])
    ready = next((c.get("status") for c in (node.get("status") or {}).get("conditions") or []
                  if c.get("type") == "Ready"), "False")
    if ready != "True":
        key = UNREACHABLE_TAINT if ready == "Unknown" else NOT_READY_TAINT
        if not any(t.get("key") == key for t in taints):
            taints.append({"key": key, "effect": "NoSchedule"})
    return taints


def filter_node_unschedulable(pi: PodInfo, ni: NodeInfo) -> Status | None:
    if not (ni.node.get("spec") or {}).get("unschedulable"):
        return None
    taint = {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"}
    if any(tolerates(t, taint) for t in pi.spec.get("tolerations") or []):
        return None
    return Status(UNRESOLVABLE, [ERR_UNSCHEDULABLE])


def filter_node_name(pi: PodInfo, ni: NodeInfo) -> Status | None:
    wanted = pi.spec.get("nodeName")
    return None if not wanted or wanted == ni.name else Status(UNRESOLVABLE, [ERR_NODE_NAME])


def filter_taint_toleration(pi: PodInfo, ni: NodeInfo) -> Status | None:
    tolerations = pi.spec.get("tolerations") or []
    for taint in ni.taints:
        if taint.get("effect") not in ("NoSchedule", "NoExecute"):
            continue
        if not any(tolerates(t, taint) for t in tolerations):
            return Status(UNRESOLVABLE,
                          [f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"])
    return None


_AFFINITY_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST,
                       "Gt": GREATER_THAN, "Lt": LESS_THAN}


def _term_matches(term: Mapping, labels: Mapping[str, str], node_name: str) -> bool:
    """One ``nodeSelectorTerm``: every expression and field must match; an empty term matches nothing."""
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    for expr in exprs:
        op = _AFFINITY_OPERATORS.get(expr.get("operator", ""))
        if op is None or not Requirement(expr.get("key", ""), op, tuple(expr.get("values") or ())).matches(labels):
            return False
    for f in fields:
        op = _AFFINITY_OPERATORS.get(f.get("operator", ""))
        if f.get("key") != "metadata.name" or op is None:
            return False
        if not Requirement("metadata.name", op, tuple(f.get("values") or ())).matches({"metadata.name": node_name}):
            return False
    return True


def filter_node_affinity(pi: PodInfo, ni: NodeInfo) -> Status | None:
    """``nodeSelector`` and ``requiredDuringSchedulingIgnoredDuringExecution`` node affinity."""
    spec, labels = pi.spec, ni.labels
    selector = spec.get("nodeSelector") or {}
    if any(labels.get(k) != v for k, v in selector.items()):
        return Status(UNRESOLVABLE, [ERR_NODE_AFFINITY])
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if required is not None:
        terms = required.get("nodeSelectorTerms") or []
        if not any(_term_matches(t, labels, ni.name) for t in terms):
            return Status(UNRESOLVABLE, [ERR_NODE_AFFINITY])
    return None


def host_ports(pod: Mapping) -> list[tuple[str, str, int]]:
    """``(hostIP, protocol, hostPort)`` of every container port with a hostPort (``schedutil.GetHostPorts``).

    Init containers' count too: the kubelet forwards theirs as well (network.port_mappings).
    """
    out = []
    spec = pod.get("spec") or {}
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                out.append((port.get("hostIP") or "0.0.0.0", port.get("protocol") or "TCP", int(port["hostPort"])))
    return out


def _ports_conflict(a: tuple[str, str, int], b: tuple[str, str, int]) -> bool:
    """Same protocol and port, and the same address or either on every address (``HostPortInfo``)."""
    return a[1:] == b[1:] and (a[0] == b[0] or "0.0.0.0" in (a[0], b[0]))


def filter_node_ports(pi: PodInfo, ni: NodeInfo) -> Status | None:
    """``NodePorts``: two pods' hostPorts on one node would fight over the node's DNAT (labctl-portmap)."""
    wanted = host_ports(pi.pod)
    if not wanted:
        return None
    used = [p for other in ni.pods.values() for p in host_ports(other.pod)]
    if any(_ports_conflict(w, u) for w in wanted for u in used):
        return Status(UNSCHEDULABLE, [ERR_NODE_PORTS])
    return None


def filter_resources_fit(pi: PodInfo, ni: NodeInfo) -> Status | None:
    """``NodeResourcesFit``: requests against allocatable minus what bound pods request.

    A request larger than the whole node is unresolvable (no preemption could help),
    a request larger than what is left is merely unschedulable, as in ``fitsRequest``.
    """
    want, alloc, used = pi.requests, ni.allocatable, ni.requested
    reasons: list[str] = []
    unresolvable = False
    if len(ni.pods) + 1 > ni.allowed_pods:
        reasons.append("Too many pods")
    checks = [("cpu", want.milli_cpu, alloc.milli_cpu, used.milli_cpu),
              ("memory", want.memory, alloc.memory, used.memory),
              ("ephemeral-storage", want.ephemeral_storage, alloc.ephemeral_storage, used.ephemeral_storage)]
    checks += [(name, q, alloc.scalars.get(name, 0), used.scalars.get(name, 0)) for name, q in sorted(want.scalars.items())]
    for name, requested, allocatable, in_use in checks:
        if requested > 0 and requested > allocatable - in_use:
            reasons.append(f"Insufficient {name}")
            unresolvable = unresolvable or requested > allocatable
    if not reasons:
        return None
    return Status(UNRESOLVABLE if unresolvable else UNSCHEDULABLE, reasons)


def filter_volume_binding(pi: PodInfo, ni: NodeInfo) -> Status | None:
    """VolumeBinding: a bound volume's node affinity (its node, for local-path volumes)."""
    if pi.volume_nodes is not None and ni.name not in pi.volume_nodes:
        return Status(UNRESOLVABLE, [ERR_VOLUME_NODE_AFFINITY])
    return None


def filter_inter_pod_affinity(pi: PodInfo, ni: NodeInfo) -> Status | None:
    """InterPodAffinity (:mod:`._interpodaffinity`); an unmet affinity is unresolvable, as upstream."""
    if pi.affinity_state is None or (reason := pi.affinity_state.filter(ni.labels)) is None:
        return None
    return Status(UNRESOLVABLE if reason == ERR_AFFINITY else UNSCHEDULABLE, [reason])


FilterPlugin = Callable[[PodInfo, NodeInfo], "Status | None"]
# kube-scheduler's default filter order (of the volume plugins, VolumeBinding has something to check here).
FILTERS: list[tuple[str, FilterPlugin]] = [
    ("NodeUnschedulable", filter_node_unschedulable),
    ("NodeName", filter_node_name),
    ("TaintToleration", filter_taint_toleration),
    ("NodeAffinity", filter_node_affinity),
    ("NodePorts", filter_node_ports),
    ("NodeResourcesFit", filter_resources_fit),
    ("VolumeBinding", filter_volume_binding),
    ("InterPodAffinity", filter_inter_pod_affinity),
]


def run_filters(pod: Mapping | PodInfo, ni: NodeInfo) -> Status | None:
    """The first failing filter's status, or None when the pod fits the node."""
    pi = PodInfo.of(pod)
    for _, plugin in FILTERS:
        if status := plugin(pi, ni):
            return status
    return None


# -- score plugins ----------------------------------------------------------------------
def score_least_allocated(pi: PodInfo, ni: NodeInfo) -> int:
    """``NodeResourcesFit`` LeastAllocated: the share of cpu and memory left free after placing the pod."""
    cpu, mem = pi.non_zero
    alloc = ni.allocatable
    scores = []
    for requested, capacity in ((ni.non_zero_cpu + cpu, alloc.milli_cpu), (ni.non_zero_memory + mem, alloc.memory)):
        scores.append(0 if capacity == 0 or requested > capacity else (capacity - requested) * MAX_NODE_SCORE // capacity)
    return sum(scores) // len(scores)


def score_spread(pi: PodInfo, feasible: list[NodeInfo]) -> dict[str, int]:
    """Selector spreading: fewer pods of the same controller on a node scores higher (``SelectorSpread``)."""
    owner = pi.owner
    counts = {ni.name: (ni.owners.get(owner, 0) if owner else 0) for ni in feasible}
    most = max(counts.values(), default=0)
    if most == 0:
        return {name: MAX_NODE_SCORE for name in counts}
    return {name: MAX_NODE_SCORE * (most - n) // most for name, n in counts.items()}


def score_node_affinity(pi: PodInfo, feasible: list[NodeInfo]) -> dict[str, int]:
    """NodeAffinity's score: the weights of the preferred terms a node matches, scaled so the best is 100."""
    preferred = (((pi.spec.get("affinity") or {}).get("nodeAffinity") or {})
                 .get("preferredDuringSchedulingIgnoredDuringExecution") or [])
    raw = {ni.name: sum(int(p.get("weight") or 0) for p in preferred
                        if _term_matches(p.get("preference") or {}, ni.labels, ni.name)) for ni in feasible}
    best = max(raw.values(), default=0)
    return {name: (MAX_NODE_SCORE * score // best if best > 0 else 0) for name, score in raw.items()}


def score_inter_pod_affinity(pi: PodInfo, feasible: list[NodeInfo], existing: list[ExistingPod],
                             namespace_labels: NamespaceLabels) -> dict[str, int]:
    """InterPodAffinity's score (:func:`._interpodaffinity.preferred_weights`), 0–100 between min and max."""
    if not existing:
        return dict.fromkeys((ni.name for ni in feasible), 0)
    weights = preferred_weights(pi.pod, pi.affinity, existing, namespace_labels)
    return normalized_scores(weights, {ni.name: ni.labels for ni in feasible})


# kube-scheduler's default plugin weights: spreading (PodTopologySpread), NodeAffinity and
# InterPodAffinity 2 each outweigh balance (NodeResourcesFit, 1).
SPREAD_WEIGHT, NODE_AFFINITY_WEIGHT, INTER_POD_AFFINITY_WEIGHT, LEAST_ALLOCATED_WEIGHT = 2, 2, 2, 1


def score_nodes(pi: PodInfo, feasible: list[NodeInfo], existing: list[ExistingPod] | None = None,
                namespace_labels: NamespaceLabels = lambda _: {}) -> dict[str, int]:
    spread = score_spread(pi, feasible)
    node_affinity = score_node_affinity(pi, feasible)
    inter_pod = score_inter_pod_affinity(pi, feasible, existing or [], namespace_labels)
    return {ni.name: SPREAD_WEIGHT * spread[ni.name] + NODE_AFFINITY_WEIGHT * node_affinity[ni.name]
            + INTER_POD_AFFINITY_WEIGHT * inter_pod[ni.name] + LEAST_ALLOCATED_WEIGHT * score_least_allocated(pi, ni)
            for ni in feasible}


# -- the scheduling cycle ---------------------------------------------------------------
class FitError(Exception):
    """No node fits; ``str()`` is kube-scheduler's ``FitError.Error()`` including the preemption part.

    With ``preemption`` the PostFilter found room by evicting lower-priority pods: the message
    then has no preemption part (upstream's successful PostFilter says nothing) and the scheduler
    carries the preemption out.
    """

    def __init__(self, num_nodes: int, statuses: dict[str, Status], post_filter_msg: str = "",
                 preemption: Preemption | None = None) -> None:
        self.num_nodes = num_nodes
        self.statuses = statuses
        self.post_filter_msg = post_filter_msg
        self.preemption = preemption
        super().__init__(self.message())

    def message(self) -> str:
        if self.num_nodes == 0:
            return ERR_NO_NODES
        msg = fit_error_text(self.num_nodes, (s.reasons for s in self.statuses.values()))
        return f"{msg} {self.post_filter_msg}" if self.post_filter_msg else msg


def fit_error_text(num_nodes: int, reasons_per_node: Iterable[list[str]]) -> str:
    """``0/3 nodes are available: 1 node(s) had …, 2 Insufficient memory.``: a sorted reason histogram."""
    histogram: Counter[str] = Counter()
    for reasons in reasons_per_node:
        histogram.update(reasons)
    parts = sorted(f"{count} {reason}" for reason, count in histogram.items())
    text = f"0/{num_nodes} nodes are available:"
    return f"{text} {', '.join(parts)}." if parts else text


@dataclass
class Preemption:
    """DefaultPreemption's choice: the node to nominate and the lower-priority pods to evict there."""

    node: str
    victims: list[PodInfo]


def _filter_without(pi: PodInfo, infos: list[NodeInfo], ni: NodeInfo, removed: set[str],
                    namespace_labels: NamespaceLabels) -> Status | None:
    """The filters of ``pi`` on ``ni`` as if the pods keyed in ``removed`` were gone (a node copy)."""
    sim = NodeInfo(ni.node)
    for key, other in ni.pods.items():
        if key not in removed:
            sim.add_pod(key, other)
    pre_filter(pi, [sim if o.name == ni.name else o for o in infos], namespace_labels)
    return run_filters(pi, sim)


def _victims_on(pi: PodInfo, ni: NodeInfo, infos: list[NodeInfo],
                namespace_labels: NamespaceLabels) -> list[PodInfo] | Status:
    """``SelectVictimsOnNode``: remove every lower-priority pod; if the pod then fits, give back as
    many as still leave it room, the most important first. The victims, or why the node stays shut."""
    lower = sorted(((key, p) for key, p in ni.pods.items() if p.priority < pi.priority), key=lambda kp: -kp[1].priority)
    if not lower:
        return Status(UNRESOLVABLE, [NO_PREEMPTION_VICTIMS])
    removed = {key for key, _ in lower}
    if status := _filter_without(pi, infos, ni, removed, namespace_labels):
        return status
    victims = []
    for key, p in lower:
        removed.discard(key)
        if _filter_without(pi, infos, ni, removed, namespace_labels) is not None:
            removed.add(key)
            victims.append(p)
    return victims


def _terminating(p: PodInfo) -> bool:
    return bool((p.pod.get("metadata") or {}).get("deletionTimestamp"))


def post_filter(pi: PodInfo, infos: list[NodeInfo], statuses: dict[str, Status],
                namespace_labels: NamespaceLabels = lambda _: {}) -> Preemption | str:
    """DefaultPreemption's PostFilter: the node to free and its victims, or the ``preemption: …`` text.

    Nodes whose filter failure is unresolvable are "not helpful"; a node without lower-priority
    pods has "no victims"; one where evicting them all would not do says the filters' reasons.
    Among the candidates the lowest highest-victim priority wins, then the lowest sum, the fewest
    victims, the name (``pickOneNodeForPreemption``, without PodDisruptionBudgets). A pod whose
    earlier preemption is still under way (a victim terminating on its nominated node) waits.
    """
    if pi.spec.get("preemptionPolicy") == "Never":
        return f"preemption: {PREEMPT_NEVER}"
    nominated = next((ni for ni in infos if ni.name == (pi.pod.get("status") or {}).get("nominatedNodeName")), None)
    if nominated and any(p.priority < pi.priority and _terminating(p) for p in nominated.pods.values()):
        return f"preemption: {NOT_ELIGIBLE_TERMINATING}"
    per_node: list[list[str]] = []
    candidates: list[Preemption] = []
    for ni in infos:
        status = statuses.get(ni.name)
        if status is None or status.code == UNRESOLVABLE:
            per_node.append([PREEMPTION_NOT_HELPFUL])
        elif isinstance(result := _victims_on(pi, ni, infos, namespace_labels), Status):
            per_node.append(result.reasons)
        else:
            candidates.append(Preemption(ni.name, result))
    if candidates:
        return min(candidates, key=lambda c: (max((v.priority for v in c.victims), default=-(2**31)),
                                              sum(v.priority for v in c.victims), len(c.victims), c.node))
    return "preemption: " + fit_error_text(len(infos), per_node)


def pre_filter(pi: PodInfo, infos: list[NodeInfo], namespace_labels: NamespaceLabels) -> list[ExistingPod]:
    """InterPodAffinity's PreFilter: its counts into ``pi.affinity_state``; returns the placed pods it read.

    Those are all placed pods when the pod has rules of its own, else only the pods with rules
    (which may concern it by symmetry); with neither, there is nothing to check.
    """
    everyone = not pi.affinity.empty
    existing = [ExistingPod(p.pod, p.affinity, ni.labels) for ni in infos for p in ni.pods.values()
                if everyone or not p.affinity.empty]
    pi.affinity_state = (AffinityState.compute(pi.pod, pi.affinity, existing, namespace_labels)
                         if existing or everyone else None)
    return existing


def schedule(pod: Mapping | PodInfo, infos: list[NodeInfo], namespace_labels: NamespaceLabels = lambda _: {}) -> str:
    """Pick the node for ``pod``: filter every node, score the feasible ones, best score wins.

    ``namespace_labels`` gives a namespace's labels, for pod affinity terms' ``namespaceSelector``.
    Ties go to the node with fewer pods, then by name (kube picks at random among ties; a
    fixed rule keeps a student's lab reproducible). Raises :class:`FitError` when none fits.
    """
    if not infos:
        raise FitError(0, {})
    pi = PodInfo.of(pod)
    existing = pre_filter(pi, infos, namespace_labels)
    statuses: dict[str, Status] = {}
    feasible: list[NodeInfo] = []
    for ni in infos:
        status = run_filters(pi, ni)
        if status is None:
            feasible.append(ni)
        else:
            statuses[ni.name] = status
    if not feasible:
        outcome = post_filter(pi, infos, statuses, namespace_labels)
        if isinstance(outcome, Preemption):
            raise FitError(len(infos), statuses, preemption=outcome)
        raise FitError(len(infos), statuses, outcome)
    if len(feasible) == 1:
        return feasible[0].name
    scores = score_nodes(pi, feasible, existing, namespace_labels)
    best = min(feasible, key=lambda ni: (-scores[ni.name], len(ni.pods), ni.name))
    return best.name
