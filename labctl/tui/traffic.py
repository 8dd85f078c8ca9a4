"""What the Traffic view shows: a steady stream of requests, summed up per second, per backend, per version.

Pure bookkeeping, fed with :class:`Sample` batches by the state source (:mod:`.pump` sends
the requests). Time comes from the samples themselves, so a recorded run draws the same
picture every time. Each request is a new connection (a new draw of the Service's rules), so
the share per backend pod is the kube-proxy probabilities at work, and a backend that goes
away shows as failures, not as a hidden retry.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from ..exercises.relations import Snapshot, entry_points
from ..kube.objects import node_address

__all__ = ["VIAS", "Sample", "Target", "TrafficPlan", "TrafficStats", "service_targets"]

#: the ways into a Service, as the exercises name them (``via``)
VIAS = ("ClusterIP", "NodePort", "LoadBalancer")

#: seconds of history the sparklines and the version strip show
WINDOW = 60
#: seconds that count as "now" for the share per version
RECENT = 5
#: failures kept with their detail
MAX_FAILURES = 200


@dataclass(frozen=True)
class Target:
    """One way into a Service: ``kind`` is ClusterIP, NodePort or LoadBalancer (what a student picks)."""

    kind: str
    host: str
    port: int
    service: str  # namespace/name
    node: str = ""  # the node a NodePort target goes through

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def label(self) -> str:
        via = f" via {self.node}" if self.node else ""
        return f"{self.service} {self.kind} {self.host}:{self.port}{via}"


def service_targets(service: dict[str, Any], nodes: list[dict[str, Any]]) -> list[Target]:
    """Every way into a Service's first port (the grader's :func:`~labctl.exercises.relations.entry_points`):
    its ClusterIP, each node's NodePort, its LoadBalancer IPs."""
    meta = service["metadata"]
    name = f"{meta.get('namespace', '')}/{meta['name']}"
    node_of = {node_address(n): n["metadata"]["name"] for n in nodes}
    snap = Snapshot(meta.get("namespace", ""), nodes=nodes)
    return [Target(via, host, port, name, node_of.get(host, "") if via == "NodePort" else "")
            for via in VIAS for host, port in entry_points(snap, service, via)]


@dataclass(frozen=True)
class TrafficPlan:
    """What to send: to ``targets`` in turn, from ``source`` (``host`` or ``namespace/pod``), ``rate`` a second."""

    targets: tuple[Target, ...]
    source: str = "host"
    rate: int = 10
    path: str = "/"

    @property
    def description(self) -> str:
        shown = ", ".join(str(t) for t in self.targets[:3]) + (" …" if len(self.targets) > 3 else "")
        return f"{self.targets[0].service} {self.targets[0].kind} ({shown}) from {self.source}"


@dataclass(frozen=True)
class Sample:
    """One request: when it started (epoch seconds), how long it took, and what answered."""

    at: float
    seconds: float
    target: str
    ok: bool
    pod: str = ""
    version: str = ""
    error: str = ""


@dataclass
class _Second:
    requests: int = 0
    errors: int = 0
    slowest: float = 0.0
    total_seconds: float = 0.0
    versions: Counter[str] = field(default_factory=Counter)


class TrafficStats:
    """Totals, per-second buckets over the last :data:`WINDOW` seconds, shares and failures."""

    def __init__(self) -> None:
        self.running = False
        self.reset(None)

    def reset(self, plan: TrafficPlan | None) -> None:
        """Forget everything: a new run (``plan``) starts from zero."""
        self.plan = plan
        self.requests = 0
        self.errors = 0
        self.by_pod: Counter[str] = Counter()
        self.by_version: Counter[str] = Counter()
        self.failures: deque[Sample] = deque(maxlen=MAX_FAILURES)
        self.first = 0.0
        self.latest = 0.0
        self._seconds: dict[int, _Second] = {}

    def add(self, samples: list[Sample]) -> None:
        for s in samples:
            self.requests += 1
            second = self._seconds.setdefault(int(s.at), _Second())
            second.requests += 1
            second.slowest = max(second.slowest, s.seconds)
            second.total_seconds += s.seconds
            if s.ok:
                self.by_pod[s.pod or "?"] += 1
                self.by_version[s.version or "?"] += 1
                second.versions[s.version or "?"] += 1
            else:
                self.errors += 1
                second.errors += 1
                self.failures.append(s)
            self.latest = max(self.latest, s.at)
            self.first = min(self.first, s.at) if self.first else s.at
        horizon = int(self.latest) - WINDOW
        for old in [k for k in self._seconds if k <= horizon]:
            del self._seconds[old]

    def _window(self) -> list[_Second]:
        end = int(self.latest)
        return [self._seconds.get(t, _Second()) for t in range(end - WINDOW + 1, end + 1)]

    def latency_ms(self) -> list[float]:
        """The mean latency of each second of the window, in milliseconds (0 for a second without answers)."""
        return [1000 * s.total_seconds / s.requests if s.requests else 0.0 for s in self._window()]

    def errors_per_second(self) -> list[float]:
        return [float(s.errors) for s in self._window()]

    def requests_per_second(self) -> list[float]:
        return [float(s.requests) for s in self._window()]

    def version_strip(self) -> str:
        """The answering version of each second, one character each (``1`` for v1, ``·`` for none, ``*`` mixed)."""
        out = []
        for s in self._window():
            if not s.versions:
                out.append("·")
            elif len(s.versions) > 1:
                out.append("*")
            else:
                version = next(iter(s.versions))
                out.append(version[-1] if version[-1:].isalnum() else "?")
        return "".join(out)

    def recent_versions(self) -> Counter[str]:
        """Answers per version over the last :data:`RECENT` seconds: what serves *now*."""
        end = int(self.latest)
        total: Counter[str] = Counter()
        for t in range(end - RECENT + 1, end + 1):
            if t in self._seconds:
                total.update(self._seconds[t].versions)
        return total

    @property
    def answered(self) -> int:
        return self.requests - self.errors

    @property
    def seconds(self) -> float:
        """How long the run has been answering (from its first request to its latest)."""
        return self.latest - self.first if self.requests else 0.0

    def latency_summary(self) -> tuple[float, float]:
        """(mean, slowest) latency over the window, in milliseconds."""
        window = [s for s in self._seconds.values() if s.requests]
        total = sum(s.requests for s in window)
        mean = 1000 * sum(s.total_seconds for s in window) / total if total else 0.0
        return mean, 1000 * max((s.slowest for s in window), default=0.0)
