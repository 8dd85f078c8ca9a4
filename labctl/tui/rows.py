"""The rows of the table views, from the state model: kubectl's cells plus symbols that need no colour.

Pure functions. The cells come from :mod:`labctl.kube.printers`, the same functions the API
server prints ``kubectl get`` with, so a READY, STATUS or AGE here reads exactly as in the
student's other pane; the TUI adds a leading symbol to every state (✓ ready, … on its way,
✗ failing, ↓ terminating, ⚠ warning) so a terminal without colour still tells them apart.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from ..exercises.relations import current_replicaset, replicasets_of, revision
from ..kube.objects import controller_of, node_address, pod_is_ready
from ..kube.printers import Clock, print_deployment, print_event, print_node, print_pod, print_replicaset, print_service
from .actions import Ref
from .rollout import snapshots
from .state import LabState

__all__ = [
    "EVENT_COLUMNS",
    "POD_COLUMNS",
    "SERVICE_COLUMNS",
    "WORKLOAD_COLUMNS",
    "Row",
    "endpoint_counts",
    "event_rows",
    "filter_rows",
    "pod_mark",
    "pod_rows",
    "service_rows",
    "workload_rows",
]

Obj = dict[str, Any]

POD_COLUMNS = ("NAME", "IP", "READY", "STATUS", "RESTARTS", "AGE", "NAMESPACE", "OWNER")
WORKLOAD_COLUMNS = ("NAME", "READY", "UP-TO-DATE", "AVAILABLE", "REV", "IMAGES", "AGE", "NAMESPACE")
SERVICE_COLUMNS = ("NAME", "TYPE", "CLUSTER-IP", "PORT(S)", "ENDPOINTS", "EXTERNAL-IP", "AGE", "NAMESPACE")
EVENT_COLUMNS = ("LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE", "COUNT", "NAMESPACE")
#: the newest events the Events view keeps
MAX_EVENTS = 300

#: words in a pod's STATUS that mean it is failing
_FAILING = ("Err", "BackOff", "Error", "Failed", "Unknown", "OOM", "Evicted", "Invalid")


@dataclass(frozen=True)
class Row:
    """One table row: ``key`` stays the same while the object lives (the cursor follows it);
    ``group`` marks a heading row (a node in the Pods view); ``mark`` is ok, busy, bad or ``""``."""

    key: str
    cells: tuple[str, ...]
    ref: Ref | None = None
    group: bool = False
    mark: str = ""


def user_first(objects: list[Obj]) -> list[Obj]:
    """The student's objects first, the lab's own (``kube-system``) last; then by namespace and name."""
    def key(obj: Obj) -> tuple[bool, str, str]:
        meta = obj["metadata"]
        return meta.get("namespace") == "kube-system", meta.get("namespace", ""), meta["name"]

    return sorted(objects, key=key)


def filter_rows(rows: list[Row], text: str) -> list[Row]:
    """Rows whose cells contain ``text`` (any case), with the heading rows they sit under."""
    if not text:
        return rows
    needle = text.lower()
    out: list[Row] = []
    heading: Row | None = None
    for row in rows:
        if row.group:
            heading = row
            if needle in " ".join(row.cells).lower():
                out.append(row)
                heading = None
            continue
        if needle in " ".join(row.cells).lower():
            if heading is not None:
                out.append(heading)
                heading = None
            out.append(row)
    return out


def pod_mark(status: str, ready: bool, terminating: bool) -> tuple[str, str]:
    """(symbol, mark) of a pod: ✓ ready, ↓ terminating, ✗ failing, … anything on its way."""
    if terminating:
        return "↓", "busy"
    if any(word in status for word in _FAILING):
        return "✗", "bad"
    if ready or status == "Completed":
        return "✓", "ok"
    return "…", "busy"


def _owner(obj: Obj) -> str:
    ref = controller_of(obj)
    return f"{ref.get('kind', '')}/{ref.get('name', '')}" if ref else ""


def node_heading(node: Obj, clock: Clock, pods: int) -> Row:
    """A node as the heading of its pods: name and podCIDR, InternalIP, Ready (or why not)."""
    name, status, roles, age, *_ = print_node(node, clock)
    cidr = (node.get("spec") or {}).get("podCIDR", "")
    ready = status.startswith("Ready")
    symbol = "✓" if ready else "✗"
    if "SchedulingDisabled" in status:
        symbol, status = "⊘", status.replace("SchedulingDisabled", "cordoned")
    cells = (f"▾ {name}  {cidr}".rstrip(), node_address(node) or "<none>", f"{pods} pod{'s' if pods != 1 else ''}",
             f"{symbol} {status}", "", age, "", roles)
    return Row(f"node/{name}", cells, Ref("Node", name), group=True, mark="ok" if ready else "bad")


def pod_rows(state: LabState) -> list[Row]:
    """Pods grouped under their node (control plane first), then the pods no node runs yet."""
    clock = Clock(state.now())
    by_node: dict[str, list[Obj]] = defaultdict(list)
    for pod in user_first(state.listed("pods")):
        by_node[(pod.get("spec") or {}).get("nodeName") or ""].append(pod)
    rows = []
    for name in [*state.node_names(), *sorted(n for n in by_node if n and state.get("nodes", "", n) is None)]:
        node = state.get("nodes", "", name) or {"metadata": {"name": name}}
        rows.append(node_heading(node, clock, len(by_node.get(name, []))))
        rows += [_pod_row(p, clock) for p in by_node.get(name, [])]
    if by_node.get(""):
        rows.append(Row("node/", ("▾ (not scheduled)", "", f"{len(by_node[''])} pods", "", "", "", "", ""),
                        group=True, mark="busy"))
        rows += [_pod_row(p, clock) for p in by_node[""]]
    return rows


def _pod_row(pod: Obj, clock: Clock) -> Row:
    name, ready, status, restarts, age, ip, *_ = print_pod(pod, clock)
    meta = pod["metadata"]
    symbol, mark = pod_mark(status, pod_is_ready(pod), bool(meta.get("deletionTimestamp")))
    cells = (f"  {name}", ip, ready, f"{symbol} {status}", restarts, age, meta.get("namespace", ""), _owner(pod))
    return Row(f"pod/{meta.get('namespace', '')}/{name}", cells, Ref("Pod", name, meta.get("namespace", "")),
               mark=mark)


def workload_rows(state: LabState) -> list[Row]:
    """Deployments with their ReplicaSets under them (▶ the current one), then ReplicaSets of no Deployment."""
    clock = Clock(state.now())
    snaps = snapshots(state.listed("deployments"), state.listed("replicasets"), state.listed("pods"))
    rows: list[Row] = []
    owned: set[str] = set()
    for deployment in user_first(state.listed("deployments")):
        meta = deployment["metadata"]
        namespace = meta.get("namespace", "")
        name, ready, updated, available, age, _, images, _ = print_deployment(deployment, clock)
        samples = state.rollouts.samples(f"{namespace}/{name}")
        done = samples[-1].complete if samples else True
        symbol, mark = ("✓", "ok") if done else ("⟳", "busy")
        rev = (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision", "")
        rows.append(Row(f"deployment/{namespace}/{name}",
                        (f"{symbol} {name}", ready, str(updated), str(available), rev, images, age, namespace),
                        Ref("Deployment", name, namespace), mark=mark))
        snap = snaps[namespace]
        current = current_replicaset(snap, deployment)
        for rs in sorted(replicasets_of(snap, deployment), key=revision, reverse=True):
            owned.add(rs["metadata"]["uid"])
            rows.append(_replicaset_row(rs, clock, "▶" if rs is current else "·", "  "))
    for rs in user_first(state.listed("replicasets")):
        if rs["metadata"]["uid"] not in owned:
            rows.append(_replicaset_row(rs, clock, "", ""))
    return rows


def _replicaset_row(rs: Obj, clock: Clock, symbol: str, indent: str) -> Row:
    meta, status = rs["metadata"], rs.get("status") or {}
    namespace = meta.get("namespace", "")
    name, desired, _, ready, age, _, images, _ = print_replicaset(rs, clock)
    rev = (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision", "")
    role = {"▶": "new", "·": "old"}.get(symbol, "")
    mark = "ok" if ready == desired else "busy"
    label = f"{indent}{symbol} {name}" if symbol else name
    return Row(f"replicaset/{namespace}/{name}",
               (label, f"{ready}/{desired}", role, str(status.get("availableReplicas", 0)), rev, images, age,
                namespace), Ref("ReplicaSet", name, namespace), mark=mark)


def endpoint_counts(endpoints: Obj | None) -> tuple[int, int]:
    """(ready, not ready) addresses of an Endpoints object (0, 0 without one)."""
    ready = not_ready = 0
    for subset in (endpoints or {}).get("subsets") or []:
        ready += len(subset.get("addresses") or [])
        not_ready += len(subset.get("notReadyAddresses") or [])
    return ready, not_ready


def service_rows(state: LabState) -> list[Row]:
    clock = Clock(state.now())
    rows = []
    for svc in user_first(state.listed("services")):
        meta = svc["metadata"]
        namespace = meta.get("namespace", "")
        name, typ, cluster_ip, external_ip, ports, age, _ = print_service(svc, clock)
        ready, not_ready = endpoint_counts(state.get("endpoints", namespace, name))
        selector = (svc.get("spec") or {}).get("selector")
        if not selector:
            endpoints, mark = "(no selector)", ""
        elif not ready:
            endpoints, mark = f"✗ 0 ready{f' · {not_ready} not' if not_ready else ''}", "bad"
        else:
            endpoints, mark = f"✓ {ready} ready{f' · {not_ready} not' if not_ready else ''}", "ok"
        rows.append(Row(f"service/{namespace}/{name}",
                        (name, typ, cluster_ip, ports, endpoints, external_ip, age, namespace),
                        Ref("Service", name, namespace), mark=mark))
    return rows


def event_rows(state: LabState) -> list[Row]:
    """The newest events first (``kubectl get events --sort-by=.lastTimestamp``, reversed)."""
    clock = Clock(state.now())

    def last(ev: Obj) -> str:
        series = ev.get("series") or {}
        return str(series.get("lastObservedTime") or ev.get("lastTimestamp") or ev.get("eventTime")
                   or ev.get("firstTimestamp") or "")

    events = sorted(state.objects["events"].values(), key=lambda e: (last(e), e["metadata"]["name"]),
                    reverse=True)[:MAX_EVENTS]
    rows = []
    for ev in events:
        seen, typ, reason, target, _, _, message, _, count, name = print_event(ev, clock)
        namespace = ev["metadata"].get("namespace", "")
        warning = typ == "Warning"
        rows.append(Row(f"event/{namespace}/{name}",
                        (seen, f"{'⚠' if warning else '·'} {typ}", reason, target, message, str(count), namespace),
                        Ref("Event", name, namespace), mark="bad" if warning else ""))
    return rows
