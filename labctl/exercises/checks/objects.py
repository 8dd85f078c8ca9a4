"""Checks of objects and their relations: the workload, the Service that selects its pods, its
Endpoints, a new revision, and the exercise's own setup objects left as they were."""

from __future__ import annotations

from typing import Any

from ...client.rest import APIStatusError, resource_path
from ...kube.labels import selector_from_set
from ...kube.meta import parse_time
from ...kube.resources import Registry
from ..loader import read_manifest
from ..model import CheckSpec, ServiceRef, WorkloadRef
from ..relations import (
    Obj,
    current_replicaset,
    endpoint_ips,
    explain_no_service,
    find_services,
    find_workload,
    pods_of,
    replicasets_of,
    revision,
    serving_pods,
)
from . import Context, Unmet, Verdict, kind

#: what ``setup-intact`` compares when an exercise does not say
DEFAULT_FIELDS = ("spec.selector", "spec.template.metadata.labels", "spec.template.spec.containers")
WORKLOAD_KINDS = ("Deployment", "ReplicaSet", "Pod", "DaemonSet", "StatefulSet")


def _name(obj: Obj) -> str:
    return str(obj["metadata"]["name"])


def workload(ctx: Context, params: dict[str, Any]) -> tuple[Obj, WorkloadRef]:
    """The workload a check means, or :class:`Unmet` saying there is none."""
    ref = WorkloadRef.parse(params["workload"])
    found, why = find_workload(ctx.snapshot, ref)
    if found is None:
        raise Unmet(why)
    return found, ref


def service(ctx: Context, params: dict[str, Any]) -> tuple[Obj, Obj, WorkloadRef]:
    """(the Service, its workload, the workload's ref), or :class:`Unmet` saying why no Service fits."""
    found, ref = workload(ctx, params)
    sref = ServiceRef.parse(params.get("service"))
    services = find_services(ctx.snapshot, found, ref.kind, sref)
    if not services:
        raise Unmet(explain_no_service(ctx.snapshot, found, ref.kind, sref), workload=_name(found))
    return services[0], found, ref


@kind("workload")
async def check_workload(ctx: Context, spec: CheckSpec) -> Verdict:
    found, ref = workload(ctx, spec.params)
    ready = serving_pods(pods_of(ctx.snapshot, found, ref.kind))
    evidence = {"workload": f"{ref.kind}/{_name(found)}", "readyPods": sorted(_name(p) for p in ready),
                "replicas": (found.get("spec") or {}).get("replicas", 1)}
    want, at_least = spec.params.get("replicas"), spec.params.get("minReplicas")
    if want is not None and len(ready) != want:
        return Verdict.failed(f"{ref.kind} {_name(found)} has {len(ready)} Ready pod(s), the task asks for {want}",
                              **evidence)
    if at_least is not None and len(ready) < at_least:
        return Verdict.failed(f"{ref.kind} {_name(found)} has {len(ready)} Ready pod(s), the task asks for at "
                              f"least {at_least}", **evidence)
    return Verdict.passed(f"{ref.kind} {_name(found)} has {len(ready)} Ready pod(s)", **evidence)


@kind("service")
async def check_service(ctx: Context, spec: CheckSpec) -> Verdict:
    svc, found, ref = service(ctx, spec.params)
    s = svc.get("spec") or {}
    evidence = {"service": _name(svc), "type": s.get("type", "ClusterIP"), "selector": s.get("selector"),
                "ports": s.get("ports"), "workload": f"{ref.kind}/{_name(found)}"}
    wrong = _wrong_target_ports(svc, found)
    if wrong:
        return Verdict.failed(wrong, **evidence)
    return Verdict.passed(f"Service {_name(svc)} ({evidence['type']}) selects the pods of {ref.kind} {_name(found)} "
                          f"with {selector_from_set(s.get('selector'))}", **evidence)


def _wrong_target_ports(svc: Obj, found: Obj) -> str:
    """Why the Service's ports lead nowhere (a targetPort no container declares), or ``""``."""
    containers = (((found.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
    declared = [p for c in containers for p in c.get("ports") or []]
    if not declared:
        return ""  # nothing to compare with: traffic checks will tell
    numbers = {p.get("containerPort") for p in declared}
    names = {p.get("name") for p in declared if p.get("name")}
    for port in (svc.get("spec") or {}).get("ports") or []:
        target = port.get("targetPort", port.get("port"))
        if target not in numbers and target not in names:
            listen = ", ".join(str(n) for n in sorted(numbers))
            return (f"Service {_name(svc)} sends port {port.get('port')} to targetPort {target}, but the pods of "
                    f"{_name(found)} listen on {listen}")
    return ""


@kind("endpoints")
async def check_endpoints(ctx: Context, spec: CheckSpec) -> Verdict:
    svc, found, ref = service(ctx, spec.params)
    snap = ctx.snapshot
    owner = current_replicaset(snap, found) if ref.kind == "Deployment" else found
    if owner is None:
        return Verdict.failed(f"Deployment {_name(found)} has no ReplicaSet yet")
    want = {p["status"]["podIP"]: _name(p) for p in serving_pods(pods_of(snap, found, ref.kind, current_only=True))}
    ready, not_ready = endpoint_ips(snap, svc)
    evidence = {"service": _name(svc), "endpoints": sorted(ready), "notReady": sorted(not_ready),
                "readyPods": {ip: name for ip, name in sorted(want.items())}, "replicaSet": _name(owner)}
    if not want:
        return Verdict.failed(f"{ref.kind} {_name(found)} has no Ready pod", **evidence)
    missing, extra = set(want) - ready, ready - set(want)
    if missing or extra:
        parts = []
        if missing:
            parts.append("missing " + ", ".join(f"{want[ip]} ({ip})" for ip in sorted(missing)))
        if extra:
            parts.append("also " + ", ".join(sorted(extra)) + " (not a Ready pod of " + _name(owner) + ")")
        return Verdict.failed(f"the Endpoints of Service {_name(svc)} are not the Ready pods of ReplicaSet "
                              f"{_name(owner)}: {'; '.join(parts)}", **evidence)
    return Verdict.passed(f"the Endpoints of Service {_name(svc)} are exactly the {len(want)} Ready pods of "
                          f"ReplicaSet {_name(owner)}", **evidence)


@kind("new-revision")
async def check_new_revision(ctx: Context, spec: CheckSpec) -> Verdict:
    found, ref = workload(ctx, spec.params)
    if ref.kind != "Deployment":
        raise Unmet(f"only Deployments have revisions, not {ref.kind}")
    history = sorted(replicasets_of(ctx.snapshot, found), key=revision)
    evidence = {"deployment": _name(found), "revisions": [
        {"revision": revision(rs), "replicaSet": _name(rs), "created": rs["metadata"].get("creationTimestamp"),
         "images": [c.get("image") for c in rs["spec"]["template"]["spec"].get("containers") or []]}
        for rs in history]}
    started = ctx.state.started_at
    new = [rs for rs in history if revision(rs) >= 2 and _created(rs) >= started - 1]
    if not new:
        return Verdict.failed(f"Deployment {_name(found)} has no new revision since the exercise started "
                              f"(revisions: {', '.join(str(revision(rs)) for rs in history) or 'none'})", **evidence)
    current = current_replicaset(ctx.snapshot, found)
    return Verdict.passed(f"Deployment {_name(found)} rolled out revision {revision(new[-1])} after the start "
                          f"(current: {revision(current) if current else '?'})", **evidence)


def _created(obj: Obj) -> float:
    when = parse_time(obj["metadata"].get("creationTimestamp"))
    return when.timestamp() if when else 0.0


@kind("setup-intact")
async def check_setup_intact(ctx: Context, spec: CheckSpec) -> Verdict:
    """The objects ``start`` made that the task says to leave alone are still there and unchanged
    in the fields that matter, so deleting or bending them never turns a failing attempt into a pass."""
    fields = tuple(spec.params.get("fields") or DEFAULT_FIELDS)
    wanted = spec.params.get("objects")
    registry = Registry()
    problems, checked = [], []
    for step in ctx.exercise.setup:
        if step.action != "apply":
            continue
        for obj in read_manifest(ctx.exercise, step.value):
            key = f"{obj['kind']}/{obj['metadata']['name']}"
            if (wanted is None and obj["kind"] not in WORKLOAD_KINDS) or (wanted is not None and key not in wanted):
                continue
            rt = registry.by_kind(obj["apiVersion"], obj["kind"])
            if rt is None:
                continue
            checked.append(key)
            try:
                live = await ctx.api.get(resource_path(rt.plural, ctx.exercise.namespace if rt.namespaced else None,
                                                       obj["metadata"]["name"]))
            except APIStatusError as err:
                if err.code != 404:
                    raise
                problems.append(f"{key} was deleted")
                continue
            problems += [f"{key}: {path} was changed" for path in fields
                         if not _subset(_at(obj, path), _at(live, path))]
    if problems:
        return Verdict.failed("the exercise's own objects must stay as start made them: " + "; ".join(problems)
                              + " (labctl exercise reset puts them back)", objects=checked, problems=problems)
    return Verdict.passed(f"{', '.join(checked) or 'nothing'} as start made it", objects=checked)


def _at(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _subset(want: Any, live: Any) -> bool:
    """Whether every field of ``want`` is in ``live`` with the same value (the server adds defaults)."""
    if isinstance(want, dict):
        return isinstance(live, dict) and all(_subset(v, live.get(k)) for k, v in want.items())
    if isinstance(want, list):
        return isinstance(live, list) and len(want) == len(live) and all(map(_subset, want, live))
    return want == live
