"""The detail views' text: ``kubectl describe`` (the fields a student looks for) and ``kubectl get -o yaml``.

Pure functions of the objects the state model holds, so they work the same on a live lab and
on a recorded one. The describe text keeps kubectl's headings and order, not all of its
fields; the YAML is the object as the API returned it, without ``managedFields``.
"""

from __future__ import annotations

from typing import Any

import yaml

from ..kube.meta import parse_time
from ..kube.objects import controller_of, node_address
from ..kube.printers import Clock, human_duration, make_port_string
from .actions import Ref
from .rollout import bounds
from .rows import endpoint_counts
from .state import LabState

__all__ = ["describe", "to_yaml"]

Obj = dict[str, Any]


def to_yaml(obj: Obj) -> str:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "managedFields"}
    return yaml.safe_dump({**obj, "metadata": meta}, sort_keys=False, allow_unicode=True)


def _pairs(values: dict[str, str] | None) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((values or {}).items())) or "<none>"


def _field(label: str, value: object, width: int = 16) -> str:
    return f"{label + ':':<{width}}{value}"


def _listed(label: str, values: dict[str, str] | None) -> list[str]:
    """One ``key=value`` a line, as kubectl lists labels and annotations."""
    pairs = [f"{k}={v}" for k, v in sorted((values or {}).items())] or ["<none>"]
    return [_field(label, pairs[0]), *(" " * 16 + p for p in pairs[1:])]


def describe(state: LabState, ref: Ref) -> str:
    """``kubectl describe KIND NAME``'s text for the object ``ref`` names (or why there is none)."""
    obj = state.get(ref.plural, ref.namespace, ref.name)
    if obj is None:
        return f'Error from server (NotFound): {ref.plural} "{ref.name}" not found'
    meta = obj["metadata"]
    lines = [_field("Name", meta["name"])]
    if meta.get("namespace"):
        lines.append(_field("Namespace", meta["namespace"]))
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != "kubectl.kubernetes.io/last-applied-configuration"}
    lines += [*_listed("Labels", meta.get("labels")), *_listed("Annotations", annotations),
              _field("Created", meta.get("creationTimestamp", ""))]
    if meta.get("deletionTimestamp"):
        lines.append(_field("Terminating", f"since {meta['deletionTimestamp']}"))
    owner = controller_of(obj)
    if owner:
        lines.append(_field("Controlled By", f"{owner.get('kind')}/{owner.get('name')}"))
    lines += {"Pod": _pod, "Deployment": _deployment, "ReplicaSet": _replicaset, "Service": _service,
              "Node": _node, "Event": _event}.get(ref.kind, lambda o, s: [])(obj, state)
    if ref.kind != "Event":
        lines += _events(state, ref)
    return "\n".join(lines)


def _conditions(obj: Obj) -> list[str]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    if not conditions:
        return []
    out = ["Conditions:", f"  {'Type':<22}{'Status':<8}Reason"]
    out += [f"  {c.get('type', ''):<22}{c.get('status', ''):<8}{c.get('reason', '')}" for c in conditions]
    return out


def _pod(pod: Obj, state: LabState) -> list[str]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    node = spec.get("nodeName", "")
    node_obj = state.get("nodes", "", node) if node else None
    address = node_address(node_obj) if node_obj else ""
    lines = [_field("Node", f"{node}/{address or ''}" if node else "<none>"),
             _field("Status", "Terminating" if pod["metadata"].get("deletionTimestamp") else status.get("phase", "")),
             _field("IP", status.get("podIP") or "<none>"), "Containers:"]
    statuses = {c.get("name"): c for c in status.get("containerStatuses") or []}
    for container in spec.get("containers") or []:
        cs = statuses.get(container.get("name"), {})
        state_name, detail = next(iter((cs.get("state") or {"waiting": {}}).items()))
        reason = (detail or {}).get("reason", "")
        ports = ",".join(f"{p.get('containerPort')}/{p.get('protocol', 'TCP')}" for p in container.get("ports") or [])
        lines += [f"  {container.get('name')}:",
                  f"    {_field('Image', container.get('image', ''), 15)}",
                  f"    {_field('Port', ports or '<none>', 15)}",
                  f"    {_field('State', state_name.capitalize() + (f' ({reason})' if reason else ''), 15)}",
                  f"    {_field('Ready', cs.get('ready', False), 15)}",
                  f"    {_field('Restart Count', cs.get('restartCount', 0), 15)}"]
    return lines + _conditions(pod)


def _template_images(obj: Obj) -> str:
    containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    return ", ".join(f"{c.get('name')}={c.get('image')}" for c in containers)


def _deployment(deployment: Obj, state: LabState) -> list[str]:
    spec, status = deployment.get("spec") or {}, deployment.get("status") or {}
    b = bounds(deployment)
    lines = [_field("Selector", _pairs((spec.get("selector") or {}).get("matchLabels"))),
             _field("Replicas", f"{spec.get('replicas', 1)} desired | {status.get('updatedReplicas', 0)} updated | "
                                f"{status.get('replicas', 0)} total | {status.get('availableReplicas', 0)} available | "
                                f"{status.get('unavailableReplicas', 0)} unavailable"),
             _field("StrategyType", b.strategy)]
    if b.strategy == "RollingUpdate":
        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        lines.append(_field("RollingUpdate", f"{rolling.get('maxUnavailable', '25%')} max unavailable, "
                                             f"{rolling.get('maxSurge', '25%')} max surge "
                                             f"(≤{b.max_total} pods, ≥{b.min_available} available)"))
    return [*lines, _field("Pod Template", _template_images(deployment)), *_conditions(deployment)]


def _replicaset(rs: Obj, state: LabState) -> list[str]:
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    return [_field("Selector", _pairs((spec.get("selector") or {}).get("matchLabels"))),
            _field("Replicas", f"{status.get('replicas', 0)} current / {spec.get('replicas', 1)} desired"),
            _field("Pods Status", f"{status.get('readyReplicas', 0)} Ready / {status.get('availableReplicas', 0)} "
                                  "Available"),
            _field("Pod Template", _template_images(rs))]


def _service(svc: Obj, state: LabState) -> list[str]:
    spec = svc.get("spec") or {}
    endpoints = state.get("endpoints", svc["metadata"].get("namespace", ""), svc["metadata"]["name"])
    ready, not_ready = endpoint_counts(endpoints)
    addresses = [f"{a.get('ip')}" + (f" ({a['targetRef']['name']})" if a.get("targetRef") else "")
                 for subset in (endpoints or {}).get("subsets") or [] for a in subset.get("addresses") or []]
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    lines = [_field("Selector", _pairs(spec.get("selector"))), _field("Type", spec.get("type", "ClusterIP")),
             _field("IP", spec.get("clusterIP", "")),
             _field("Port(s)", make_port_string(spec.get("ports") or []) or "<none>")]
    if ingress:
        lines.append(_field("LoadBalancer", ", ".join(i.get("ip") or i.get("hostname", "") for i in ingress)))
    if spec.get("externalIPs"):
        lines.append(_field("External IPs", ", ".join(spec["externalIPs"])))
    lines.append(_field("Endpoints", f"{ready} ready, {not_ready} not ready"))
    lines += [f"  {a}" for a in addresses]
    return lines


def _node(node: Obj, state: LabState) -> list[str]:
    spec = node.get("spec") or {}
    addresses = ", ".join(f"{a.get('type')}={a.get('address')}" for a in (node.get("status") or {}).get("addresses")
                          or [])
    health = state.health.get(node["metadata"]["name"])
    lines = [_field("Addresses", addresses or "<none>"), _field("PodCIDR", spec.get("podCIDR", "<none>")),
             _field("Unschedulable", bool(spec.get("unschedulable")))]
    if health is not None:
        lines.append(_field("Container", health.state + (f", {health.cpu_percent:.0f}% CPU"
                                                         if health.cpu_percent is not None else "")))
    pods = [p for p in state.listed("pods") if (p.get("spec") or {}).get("nodeName") == node["metadata"]["name"]]
    return lines + _conditions(node) + [_field("Pods", len(pods))]


def _event(ev: Obj, state: LabState) -> list[str]:
    involved = ev.get("involvedObject") or {}
    return [_field("Type", ev.get("type", "")), _field("Reason", ev.get("reason", "")),
            _field("Object", f"{involved.get('kind', '')}/{involved.get('name', '')}"),
            _field("Count", ev.get("count", 1)), _field("Message", (ev.get("message") or "").strip())]


def _events(state: LabState, ref: Ref) -> list[str]:
    clock = Clock(state.now())
    mine = [e for e in state.objects["events"].values()
            if (e.get("involvedObject") or {}).get("name") == ref.name
            and (e.get("involvedObject") or {}).get("kind") == ref.kind
            and e["metadata"].get("namespace", "") in (ref.namespace, "default" if not ref.namespace else "")]
    if not mine:
        return ["Events:          <none>"]

    def when(e: Obj) -> str:
        return str(e.get("lastTimestamp") or e.get("eventTime") or "")

    out = ["Events:", f"  {'Type':<8}{'Reason':<22}{'Age':<8}Message"]
    for e in sorted(mine, key=when)[-20:]:
        at = parse_time(when(e))
        age = human_duration((clock.now - at).total_seconds()) if at else "<unknown>"
        out.append(f"  {e.get('type', ''):<8}{e.get('reason', ''):<22}{age:<8}{(e.get('message') or '').strip()}")
    return out
