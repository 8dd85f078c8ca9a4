"""kube-scheduler's InterPodAffinity plugin: pod affinity and anti-affinity over topology domains.

A term says "this pod wants (or refuses) to share a *topology domain* — the nodes with the same
value of ``topologyKey``, e.g. one node for ``kubernetes.io/hostname`` — with pods matching
``labelSelector`` in ``namespaces``/``namespaceSelector``". As upstream
(``pkg/scheduler/framework/plugins/interpodaffinity``), a PreFilter counts once per scheduling
cycle, per ``(topologyKey, value)`` pair, the existing pods that match each kind of term;
Filter then only looks up the node's pairs, in upstream's order (the first broken rule names
the reason):

* the incoming pod's required affinity — ``didn't match pod affinity rules`` (unresolvable: evicting
  pods cannot create a pod to be near), with upstream's exception for the first pod of a group
  that is affine to itself;
* the incoming pod's required anti-affinity — ``didn't match pod anti-affinity rules``;
* existing pods' required anti-affinity that the incoming pod matches (symmetry: a pod that
  refuses company keeps newcomers away too) — ``didn't satisfy existing pods anti-affinity rules``.

Score sums the weights of preferred terms (both directions, and existing pods' required
affinity with weight 1, upstream's ``hardPodAffinityWeight``) per pair, and normalises the
node totals to 0–100 between the lowest and the highest, as ``NormalizeScore`` does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from ..kube.labels import IN, NOT_IN, NOTHING, LabelSelector, Requirement, SelectorError, selector_from_label_selector

ERR_EXISTING_ANTI_AFFINITY = "node(s) didn't satisfy existing pods anti-affinity rules"
ERR_AFFINITY = "node(s) didn't match pod affinity rules"
ERR_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"

#: upstream's default ``hardPodAffinityWeight``: an existing pod's *required* affinity to the incoming pod
HARD_POD_AFFINITY_WEIGHT = 1
MAX_NODE_SCORE = 100

NamespaceLabels = Callable[[str], Mapping[str, str]]
TopologyPair = tuple[str, str]


def _no_labels(_namespace: str) -> Mapping[str, str]:
    return {}


@dataclass(frozen=True)
class AffinityTerm:
    """``framework.AffinityTerm``: a parsed ``podAffinityTerm`` (with its weight when preferred)."""

    selector: LabelSelector
    namespaces: frozenset[str]
    namespace_selector: LabelSelector
    topology_key: str
    weight: int = 0

    def matches(self, pod: Mapping, namespace_labels: NamespaceLabels) -> bool:
        """The pod is in one of the term's namespaces and its labels match the term's selector."""
        meta = pod.get("metadata") or {}
        namespace = meta.get("namespace", "")
        in_scope = namespace in self.namespaces or (not self.namespace_selector.nothing
                                                    and self.namespace_selector.matches(namespace_labels(namespace)))
        return in_scope and self.selector.matches(meta.get("labels") or {})


def parse_term(owner: Mapping, term: Mapping, weight: int = 0) -> AffinityTerm:
    """``newAffinityTerm``: no namespaces and no namespaceSelector mean the owner pod's namespace.

    ``matchLabelKeys``/``mismatchLabelKeys`` become ``key in (value)``/``key notin (value)`` with the
    owner pod's values, which is what kube-apiserver merges into the stored ``labelSelector``.
    A selector that cannot be parsed (validation refuses those) matches nothing.
    """
    meta = owner.get("metadata") or {}
    labels = meta.get("labels") or {}
    try:
        selector = selector_from_label_selector(term.get("labelSelector"))
        ns_selector = NOTHING if term.get("namespaceSelector") is None else \
            selector_from_label_selector(term.get("namespaceSelector"))
    except SelectorError:
        selector, ns_selector = NOTHING, NOTHING
    if not selector.nothing:
        extra = [Requirement(k, IN, (labels[k],)) for k in term.get("matchLabelKeys") or () if k in labels]
        extra += [Requirement(k, NOT_IN, (labels[k],)) for k in term.get("mismatchLabelKeys") or () if k in labels]
        if extra:
            selector = LabelSelector.of((*selector.requirements, *extra))
    namespaces = frozenset(term.get("namespaces") or ())
    if not namespaces and term.get("namespaceSelector") is None:
        namespaces = frozenset({meta.get("namespace", "")})
    return AffinityTerm(selector, namespaces, ns_selector, term.get("topologyKey") or "", weight)


@dataclass(frozen=True)
class PodAffinity:
    """A pod's four lists of inter-pod terms, parsed once (``framework.PodInfo``'s affinity fields)."""

    required_affinity: tuple[AffinityTerm, ...] = ()
    required_anti_affinity: tuple[AffinityTerm, ...] = ()
    preferred_affinity: tuple[AffinityTerm, ...] = ()
    preferred_anti_affinity: tuple[AffinityTerm, ...] = ()

    @classmethod
    def of(cls, pod: Mapping) -> PodAffinity:
        affinity = (pod.get("spec") or {}).get("affinity") or {}
        if not affinity.get("podAffinity") and not affinity.get("podAntiAffinity"):
            return NO_AFFINITY

        def required(kind: str) -> tuple[AffinityTerm, ...]:
            terms = (affinity.get(kind) or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or []
            return tuple(parse_term(pod, t) for t in terms)

        def preferred(kind: str) -> tuple[AffinityTerm, ...]:
            terms = (affinity.get(kind) or {}).get("preferredDuringSchedulingIgnoredDuringExecution") or []
            return tuple(parse_term(pod, t.get("podAffinityTerm") or {}, int(t.get("weight") or 0)) for t in terms)

        return cls(required("podAffinity"), required("podAntiAffinity"),
                   preferred("podAffinity"), preferred("podAntiAffinity"))

    @property
    def empty(self) -> bool:
        return not (self.required_affinity or self.required_anti_affinity
                    or self.preferred_affinity or self.preferred_anti_affinity)


NO_AFFINITY = PodAffinity()


@dataclass
class ExistingPod:
    """A pod already placed (bound or assumed), with the labels of its node: what the counts read."""

    pod: Mapping
    affinity: PodAffinity
    node_labels: Mapping[str, str]


def _pair(term: AffinityTerm, node_labels: Mapping[str, str]) -> TopologyPair | None:
    value = node_labels.get(term.topology_key)
    return None if value is None else (term.topology_key, value)


def _matches_all(terms: Iterable[AffinityTerm], pod: Mapping, namespace_labels: NamespaceLabels) -> bool:
    return all(t.matches(pod, namespace_labels) for t in terms)


@dataclass
class AffinityState:
    """``preFilterState``: per topology pair, how many existing pods each kind of rule counts there."""

    pod: Mapping
    affinity: PodAffinity
    namespace_labels: NamespaceLabels = _no_labels
    existing_anti_affinity: Counter[TopologyPair] = field(default_factory=Counter)
    affinity_counts: Counter[TopologyPair] = field(default_factory=Counter)
    anti_affinity_counts: Counter[TopologyPair] = field(default_factory=Counter)

    @classmethod
    def compute(cls, pod: Mapping, affinity: PodAffinity, existing: Iterable[ExistingPod],
                namespace_labels: NamespaceLabels = _no_labels) -> AffinityState:
        """PreFilter: one pass over the placed pods, counting the pairs each rule cares about."""
        state = cls(pod, affinity, namespace_labels)
        for other in existing:
            for term in other.affinity.required_anti_affinity:  # symmetry
                if (pair := _pair(term, other.node_labels)) and term.matches(pod, namespace_labels):
                    state.existing_anti_affinity[pair] += 1
            if affinity.required_affinity and _matches_all(affinity.required_affinity, other.pod, namespace_labels):
                for term in affinity.required_affinity:
                    if pair := _pair(term, other.node_labels):
                        state.affinity_counts[pair] += 1
            for term in affinity.required_anti_affinity:
                if (pair := _pair(term, other.node_labels)) and term.matches(other.pod, namespace_labels):
                    state.anti_affinity_counts[pair] += 1
        return state

    def filter(self, node_labels: Mapping[str, str]) -> str | None:
        """Filter: the first broken rule's reason for a node with these labels, or None."""
        if not self._satisfies_affinity(node_labels):
            return ERR_AFFINITY
        for term in self.affinity.required_anti_affinity:
            if (pair := _pair(term, node_labels)) and self.anti_affinity_counts.get(pair, 0) > 0:
                return ERR_ANTI_AFFINITY
        if any(self.existing_anti_affinity.get((k, v), 0) > 0 for k, v in node_labels.items()):
            return ERR_EXISTING_ANTI_AFFINITY
        return None

    def _satisfies_affinity(self, node_labels: Mapping[str, str]) -> bool:
        """``satisfyPodAffinity``: every term's domain here holds a matching pod (and has the label).

        With no matching pod anywhere, a pod matching its own terms may start the group, so
        the first replica of a self-affine Deployment is not stuck forever.
        """
        terms = self.affinity.required_affinity
        pods_exist = True
        for term in terms:
            pair = _pair(term, node_labels)
            if pair is None:
                return False
            if self.affinity_counts.get(pair, 0) <= 0:
                pods_exist = False
        if pods_exist:
            return True
        return not self.affinity_counts and _matches_all(terms, self.pod, self.namespace_labels)


def preferred_weights(pod: Mapping, affinity: PodAffinity, existing: Iterable[ExistingPod],
                      namespace_labels: NamespaceLabels = _no_labels) -> Counter[TopologyPair]:
    """PreScore: per topology pair, the summed weights of every preferred (and symmetric) rule."""
    weights: Counter[TopologyPair] = Counter()

    def add(term: AffinityTerm, target: Mapping, node_labels: Mapping[str, str], weight: int) -> None:
        if weight and (pair := _pair(term, node_labels)) and term.matches(target, namespace_labels):
            weights[pair] += weight

    for other in existing:
        for term in affinity.preferred_affinity:
            add(term, other.pod, other.node_labels, term.weight)
        for term in affinity.preferred_anti_affinity:
            add(term, other.pod, other.node_labels, -term.weight)
        for term in other.affinity.required_affinity:
            add(term, pod, other.node_labels, HARD_POD_AFFINITY_WEIGHT)
        for term in other.affinity.preferred_affinity:
            add(term, pod, other.node_labels, term.weight)
        for term in other.affinity.preferred_anti_affinity:
            add(term, pod, other.node_labels, -term.weight)
    return weights


def normalized_scores(weights: Mapping[TopologyPair, int], nodes: Mapping[str, Mapping[str, str]]) -> dict[str, int]:
    """Score + NormalizeScore: each node's pairs summed, then scaled to 0–100 between min and max."""
    raw = {name: sum(weights.get((k, v), 0) for k, v in labels.items()) for name, labels in nodes.items()}
    if not raw:
        return {}
    low, high = min(raw.values()), max(raw.values())
    if high == low:
        return dict.fromkeys(raw, 0)
    return {name: int(MAX_NODE_SCORE * (score - low) / (high - low)) for name, score in raw.items()}
