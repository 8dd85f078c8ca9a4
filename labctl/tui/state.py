"""The state model: what the lab looks like now, as the views draw it.

It lives on the UI thread and changes only through :meth:`LabState.apply` and the few
``set_*`` methods, which the app calls with what a state source posted (:mod:`.messages`);
each returns the *topics* that changed, so only views that show them redraw. The source's
threads never touch it. Time is :attr:`LabState.clock` (a recorded state has a fixed one),
so every age and every chart is deterministic for the same input.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..kube.objects import is_control_plane
from .rollout import RolloutHistory, snapshots
from .traffic import Sample, TrafficPlan, TrafficStats

if TYPE_CHECKING:
    from ..exercises.model import Exercise, Grade
    from ..inspect import LabNetwork

__all__ = ["KINDS", "TOPICS", "ExerciseReport", "LabState", "NodeHealth"]

Obj = dict[str, Any]

#: the kinds the state holds, by their plural, and the topic each belongs to
KINDS = {"nodes": "nodes", "pods": "pods", "deployments": "workloads", "replicasets": "workloads",
         "services": "services", "endpoints": "services", "events": "events"}
#: everything a view can depend on
TOPICS = frozenset({*KINDS.values(), "network", "health", "exercise", "traffic", "connection"})


@dataclass(frozen=True)
class NodeHealth:
    """A node container as Docker sees it: its state and what it uses (the node's own processes, not its pods)."""

    state: str  # running | exited | …
    cpu_percent: float | None = None  # of one core
    memory_bytes: int | None = None


@dataclass
class ExerciseReport:
    """The active exercise, its last grade and the hints released so far (check id → texts)."""

    exercise: Exercise | None
    grade: Grade | None = None
    hints: dict[str, list[str]] = field(default_factory=dict)
    error: str = ""


class LabState:
    """One lab's state; ``versions`` counts the changes of each topic."""

    def __init__(self, lab: str, clock: Callable[[], float] = time.time) -> None:
        self.lab = lab
        self.clock = clock
        self.objects: dict[str, dict[tuple[str, str], Obj]] = {kind: {} for kind in KINDS}
        self.synced = False
        self.connection = "connecting…"  # "" while the source works; else what is wrong
        self.network: LabNetwork | None = None
        self.network_error = ""
        self.health: dict[str, NodeHealth] = {}
        self.exercise: ExerciseReport | None = None
        self.traffic = TrafficStats()
        self.rollouts = RolloutHistory()
        self.versions: Counter[str] = Counter()

    # -- reading -------------------------------------------------------------------------

    def now(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.clock(), dt.UTC)

    def listed(self, kind: str) -> list[Obj]:
        """Objects of ``kind`` in (namespace, name) order."""
        return [obj for _, obj in sorted(self.objects[kind].items())]

    def get(self, kind: str, namespace: str, name: str) -> Obj | None:
        return self.objects[kind].get((namespace, name))

    def node_names(self) -> list[str]:
        """Nodes as the API knows them, control plane first (as ``labctl status`` lists them)."""
        def order(node: Obj) -> tuple[bool, str]:
            return not is_control_plane(node), node["metadata"]["name"]

        return [n["metadata"]["name"] for n in sorted(self.objects["nodes"].values(), key=order)]

    # -- changing ------------------------------------------------------------------------

    def apply(self, events: Iterable[tuple[str, str, Obj]], synced: bool = False) -> set[str]:
        """Watch events ``(plural, ADDED|MODIFIED|DELETED, object)`` in order; the topics they touched."""
        topics: set[str] = set()
        for kind, typ, obj in events:
            meta = obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            if typ == "DELETED":
                self.objects[kind].pop(key, None)
            else:
                self.objects[kind][key] = obj
            topics.add(KINDS[kind])
        if synced and not self.synced:
            self.synced = True
            topics.add("connection")
        if topics & {"workloads", "pods"}:
            self.rollouts.observe(snapshots(self.objects["deployments"].values(),
                                            self.objects["replicasets"].values(),
                                            self.objects["pods"].values()), self.clock())
        return self._bump(topics)

    def set_connection(self, problem: str) -> set[str]:
        if problem == self.connection:
            return set()
        self.connection = problem
        return self._bump({"connection"})

    def set_network(self, network: LabNetwork | None, error: str = "") -> set[str]:
        if network is not None:
            self.network = network
        self.network_error = error
        return self._bump({"network"})

    def set_health(self, health: dict[str, NodeHealth]) -> set[str]:
        if health == self.health:
            return set()
        self.health = health
        return self._bump({"health"})

    def set_exercise(self, report: ExerciseReport) -> set[str]:
        self.exercise = report
        return self._bump({"exercise"})

    def start_traffic(self, plan: TrafficPlan) -> set[str]:
        self.traffic.reset(plan)
        self.traffic.running = True
        return self._bump({"traffic"})

    def add_traffic(self, samples: list[Sample], running: bool) -> set[str]:
        self.traffic.add(samples)
        self.traffic.running = running
        return self._bump({"traffic"})

    def _bump(self, topics: set[str]) -> set[str]:
        self.versions.update(topics)
        return topics
