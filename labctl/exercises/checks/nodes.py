"""Node introspection: what the nodes' kernels hold for the student's objects, read through
:mod:`labctl.inspect` (one ``docker exec`` per node, parsed into pods' veths, routes, a
Service's kube-proxy chains with their probabilities, conntrack entries).

These check the lesson's claims where they live: every pod has a veth on its node's
``cni0``; every node routes every other node's podCIDR to that node (host-gw); every node's
``KUBE-SVC-…`` chain of a Service picks each Ready pod with an equal share; the kernel's
conntrack table shows a connection to the Service DNATed to one of its pods.
"""

from __future__ import annotations

from ..model import CheckSpec
from ..relations import pods_of, serving_pods
from . import Context, Unmet, Verdict, kind
from .objects import service, workload

__all__ = ["expected_chain_answers"]


@kind("pod-veth")
async def check_pod_veth(ctx: Context, spec: CheckSpec) -> Verdict:
    found, ref = workload(ctx, spec.params)
    pods = serving_pods(pods_of(ctx.snapshot, found, ref.kind))
    if not pods:
        raise Unmet(f"{ref.kind} {found['metadata']['name']} has no Ready pod")
    net = await ctx.network()
    seen, missing = {}, []
    for pod in pods:
        node = net.node(pod["spec"].get("nodeName", ""))
        veth = node.veth_of(pod["status"]["podIP"]) if node else None
        if veth is None or node is None or node.bridge is None:
            missing.append(pod["metadata"]["name"])
        else:
            seen[pod["metadata"]["name"]] = f"{node.node}: {veth.name} on {node.bridge.name} ({veth.port_state})"
    if missing:
        return Verdict.failed(f"no veth on its node's bridge for {', '.join(missing)}", veths=seen, missing=missing)
    return Verdict.passed(f"each of the {len(seen)} pods has its veth on its node's bridge", veths=seen)


@kind("routes")
async def check_routes(ctx: Context, spec: CheckSpec) -> Verdict:
    """Every node routes every other node's podCIDR via that node's InternalIP (host-gw)."""
    net = await ctx.network()
    missing, seen = [], []
    for node in net.nodes:
        for other in net.nodes:
            if other is node or not other.pod_cidr:
                continue
            route = next((r for r in node.routes if r.destination == other.pod_cidr), None)
            if route is None or route.gateway != other.internal_ip:
                missing.append(f"{node.node} → {other.pod_cidr} via {other.internal_ip}")
            else:
                seen.append(f"{node.node}: {route.destination} via {route.gateway} dev {route.device}")
    if missing:
        return Verdict.failed(f"missing route(s): {'; '.join(missing)}", routes=seen, missing=missing)
    return Verdict.passed(f"every node routes every other node's podCIDR to it ({len(seen)} routes)", routes=seen)


@kind("service-chains")
async def check_service_chains(ctx: Context, spec: CheckSpec) -> Verdict:
    """On every node, the Service's KUBE-SVC chain sends to exactly its Ready pods, each an equal share."""
    svc, found, ref = service(ctx, spec.params)
    name = f"{svc['metadata']['namespace']}/{svc['metadata']['name']}"
    want = {p["status"]["podIP"] for p in serving_pods(pods_of(ctx.snapshot, found, ref.kind))}
    net = await ctx.network()
    problems, evidence = [], {}
    for node in net.nodes:
        ports = [p for p in node.services if f"{p.namespace}/{p.service}" == name]
        if not ports:
            problems.append(f"{node.node} has no rules for {name}")
            continue
        port = ports[0]
        ips = {e.ip for e in port.endpoints}
        evidence[node.node] = {"chain": port.svc_chain, "endpoints": [
            {"ip": e.ip, "chain": e.chain, "probability": e.written or "1", "share": round(e.share, 3)}
            for e in port.endpoints]}
        if ips != want:
            problems.append(f"{node.node}'s {port.svc_chain} sends to {', '.join(sorted(ips)) or 'nothing'}, "
                            f"the Ready pods are {', '.join(sorted(want)) or 'none'}")
        elif port.endpoints and max(abs(e.share - 1 / len(want)) for e in port.endpoints) > 0.01:
            problems.append(f"{node.node}'s {port.svc_chain} does not give each pod 1/{len(want)}")
    if problems:
        return Verdict.failed("; ".join(problems), nodes=evidence)
    return Verdict.passed(f"every node's rules for {name} pick each of its {len(want)} Ready pods with share "
                          f"1/{len(want)}", nodes=evidence)


@kind("conntrack")
async def check_conntrack(ctx: Context, spec: CheckSpec) -> Verdict:
    """Some node's conntrack table holds a connection to the Service DNATed to one of its pods."""
    svc, found, ref = service(ctx, spec.params)
    cluster_ip = svc["spec"].get("clusterIP", "")
    node_ports = {p.get("nodePort") for p in svc["spec"].get("ports") or [] if p.get("nodePort")}
    pods = {ip for p in pods_of(ctx.snapshot, found, ref.kind) if (ip := (p.get("status") or {}).get("podIP"))}
    net = await ctx.network(conntrack=True)
    hits = [f"{node.node}: {e.text or e}" for node in net.nodes for e in node.conntrack
            if e.dnat and e.reply.src in pods and (e.original.dst == cluster_ip or e.original.dport in node_ports)]
    if not hits:
        return Verdict.failed(f"no node's conntrack table holds a connection to Service {svc['metadata']['name']} "
                              f"({cluster_ip}) translated to one of its pods; send it a request first")
    return Verdict.passed(f"{len(hits)} connection(s) to Service {svc['metadata']['name']} DNATed to its pods",
                          entries=hits[:20])


async def expected_chain_answers(ctx: Context, params: dict) -> set[str]:
    """The right answers to ``pod-veth``, ``sep-chain`` and ``svc-chain`` questions, from the nodes."""
    net = await ctx.network()
    if params["ask"] == "pod-veth":
        found, ref = workload(ctx, params)
        names = set()
        for pod in serving_pods(pods_of(ctx.snapshot, found, ref.kind)):
            node = net.node(pod["spec"].get("nodeName", ""))
            veth = node.veth_of(pod["status"]["podIP"]) if node else None
            if veth is not None:
                names.add(veth.name)
        return names
    svc, _, _ = service(ctx, params)
    name = f"{svc['metadata']['namespace']}/{svc['metadata']['name']}"
    ports = [p for node in net.nodes for p in node.services if f"{p.namespace}/{p.service}" == name]
    if params["ask"] == "svc-chain":
        return {p.svc_chain for p in ports}
    return {e.chain for p in ports for e in p.endpoints}
