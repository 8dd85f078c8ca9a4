"""A Deployment's rollout as the Workloads view draws it: old and new pods over time, within bounds.

Pure bookkeeping over the objects the state model holds. :class:`RolloutHistory` takes a
sample per Deployment whenever its counts change (so the picture moves with the cluster, not
with a timer); :func:`bounds` gives the surge/unavailable fenceposts the controller rolls out
within; :func:`revisions` is ``kubectl rollout history``. Which ReplicaSet is new, which pods
belong to it and whether the rollout is complete are :mod:`labctl.exercises.relations`' answers,
the same the grader gives.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..exercises.relations import (
    Snapshot,
    current_replicaset,
    pods_of,
    replicasets_of,
    revision,
    rollout_complete,
)
from ..kube.intstr import resolve_fenceposts
from ..kube.objects import pod_is_ready

__all__ = ["Bounds", "Revision", "RolloutHistory", "RolloutSample", "bounds", "revisions", "snapshots"]

Obj = dict[str, Any]

#: samples kept per Deployment (the chart is at most this wide)
KEEP = 120
CHANGE_CAUSE = "kubernetes.io/change-cause"


@dataclass(frozen=True)
class RolloutSample:
    """Pods of a Deployment at one moment: of its current ReplicaSet (new) and of the others (old)."""

    at: float
    revision: int
    new_total: int
    new_ready: int
    old_total: int
    old_ready: int
    complete: bool

    @property
    def counts(self) -> tuple[int, int, int, int, int]:
        return self.revision, self.new_total, self.new_ready, self.old_total, self.old_ready


@dataclass(frozen=True)
class Bounds:
    """What a RollingUpdate allows: at most ``max_total`` pods, at least ``min_available`` available."""

    replicas: int
    surge: int
    unavailable: int
    strategy: str

    @property
    def max_total(self) -> int:
        return self.replicas + self.surge

    @property
    def min_available(self) -> int:
        return max(self.replicas - self.unavailable, 0)


@dataclass(frozen=True)
class Revision:
    """One line of ``kubectl rollout history``: a ReplicaSet's revision, its change-cause and images."""

    revision: int
    replicaset: str
    change_cause: str
    images: str
    replicas: int
    current: bool


def snapshots(deployments: Iterable[Obj], replicasets: Iterable[Obj], pods: Iterable[Obj]) -> dict[str, Snapshot]:
    """The objects per namespace, as the relations read them."""
    out: dict[str, Snapshot] = {}

    def snap(obj: Obj) -> Snapshot:
        namespace = obj["metadata"].get("namespace", "")
        return out.setdefault(namespace, Snapshot(namespace))

    for d in deployments:
        snap(d).deployments.append(d)
    for rs in replicasets:
        snap(rs).replicasets.append(rs)
    for p in pods:
        snap(p).pods.append(p)
    return out


def sample(snap: Snapshot, deployment: Obj, at: float) -> RolloutSample:
    """Count the Deployment's pods now: terminating pods no longer count (they are leaving)."""
    current = current_replicaset(snap, deployment)
    new_uid = current["metadata"]["uid"] if current else ""
    counts = {True: [0, 0], False: [0, 0]}
    for rs in replicasets_of(snap, deployment):
        is_new = rs["metadata"]["uid"] == new_uid
        for pod in pods_of(snap, rs, "ReplicaSet"):
            if pod["metadata"].get("deletionTimestamp"):
                continue
            counts[is_new][0] += 1
            counts[is_new][1] += pod_is_ready(pod)
    return RolloutSample(at, revision(deployment), counts[True][0], counts[True][1], counts[False][0],
                         counts[False][1], rollout_complete(snap, deployment))


class RolloutHistory:
    """Samples per Deployment (``namespace/name``), one each time its counts change."""

    def __init__(self) -> None:
        self._samples: dict[str, deque[RolloutSample]] = {}

    def observe(self, snaps: dict[str, Snapshot], at: float) -> None:
        seen = set()
        for snap in snaps.values():
            for deployment in snap.deployments:
                key = f"{snap.namespace}/{deployment['metadata']['name']}"
                seen.add(key)
                now = sample(snap, deployment, at)
                track = self._samples.setdefault(key, deque(maxlen=KEEP))
                if not track or track[-1].counts != now.counts or track[-1].complete != now.complete:
                    track.append(now)
        for gone in set(self._samples) - seen:
            del self._samples[gone]

    def samples(self, key: str) -> list[RolloutSample]:
        return list(self._samples.get(key, ()))


def bounds(deployment: Obj) -> Bounds:
    """The fenceposts of a Deployment's strategy (``Recreate``: none, everything goes first)."""
    spec = deployment.get("spec") or {}
    replicas = int(spec.get("replicas", 1))
    strategy = spec.get("strategy") or {}
    kind = strategy.get("type", "RollingUpdate")
    if kind != "RollingUpdate":
        return Bounds(replicas, 0, replicas, kind)
    rolling = strategy.get("rollingUpdate") or {}
    surge, unavailable = resolve_fenceposts(rolling.get("maxSurge", "25%"), rolling.get("maxUnavailable", "25%"),
                                            replicas)
    return Bounds(replicas, surge, min(unavailable, replicas), kind)


def revisions(snap: Snapshot, deployment: Obj) -> list[Revision]:
    """``kubectl rollout history deployment/NAME``, oldest first."""
    current = current_replicaset(snap, deployment)
    out = []
    for rs in sorted(replicasets_of(snap, deployment), key=revision):
        meta, spec = rs["metadata"], rs.get("spec") or {}
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        out.append(Revision(revision(rs), meta["name"], (meta.get("annotations") or {}).get(CHANGE_CAUSE, ""),
                            ",".join(str(c.get("image", "")) for c in containers),
                            int((rs.get("status") or {}).get("replicas", 0)), rs is current))
    return out
