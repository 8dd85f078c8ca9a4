"""A pod's own network, as the lesson describes it: an IP of its own from its node's podCIDR, and
what the CNI plugin's ADD set up inside the pod's network namespace.

``pod-ips`` reads the snapshot only (each pod's IP against ``spec.podCIDR`` of its node). The
``pod-address`` and ``pod-gateway`` questions are checked against the live pod: the grader
enters the pod's network namespace on its node (:func:`enter_pod`: the sandbox is a container
of the host's Docker engine, its ``SandboxKey`` the namespace's path, which the node sees too)
and reads the address and default route the plugin configured there — what ADD returned as
``ips[0].address``, ``ips[0].gateway`` and ``routes``. :mod:`.frompod` sends requests and DNS
queries from the same place.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ...cluster.lab import Node
from ...engine.exec import ExecResult
from ...engine.sdk import read_files
from ...kube.containers import KUBELET_PODS_DIR
from ...kube.objects import pod_is_ready
from ...kube.resolvconf import parse_resolv_conf
from ..model import CheckSpec
from ..relations import Obj, pods_of, serving_pods
from . import CannotJudge, Context, Unmet, Verdict, kind
from .objects import workload

__all__ = ["POD_ASKS", "PodSandbox", "enter_pod", "expected_pod_answers", "pod_ip_problems"]

#: the questions answered from inside the pod: what CNI ADD returned for it
POD_ASKS = ("pod-address", "pod-gateway")
#: the interface the kubelet asks the plugin to create (CNI_IFNAME)
POD_IFNAME = "eth0"


@dataclass(frozen=True)
class PodSandbox:
    """Where a pod's network namespace is, and the resolver the runtime gave the pod."""

    pod: str  # namespace/name
    ip: str
    node: Node
    netns: str  # the sandbox's SandboxKey
    nameservers: tuple[str, ...]
    search: tuple[str, ...]
    ndots: int

    async def exec(self, argv: Sequence[str]) -> ExecResult:
        """Run ``argv`` on the pod's node inside the pod's network namespace (the node's tools)."""
        return await self.node.exec(["nsenter", f"--net={self.netns}", *argv])


async def enter_pod(ctx: Context, pod: Obj) -> PodSandbox:
    """The running sandbox of ``pod`` (:class:`CannotJudge` when it has none: starting or going)."""
    meta, name = pod["metadata"], f"{pod['metadata']['namespace']}/{pod['metadata']['name']}"
    info = await asyncio.to_thread(ctx.lab.pod_sandbox, meta["namespace"], meta["name"], meta["uid"])
    if info is None:
        raise CannotJudge(f"pod {name} has no running sandbox (it is starting or being deleted); check again")
    node = await asyncio.to_thread(ctx.lab.node, pod["spec"].get("nodeName", ""))
    # the resolver the pod's containers use: the kubelet writes it in the pod's directory on the node
    files = await asyncio.to_thread(read_files, ctx.lab.docker, node.info.container,
                                    f"{KUBELET_PODS_DIR}/{meta['uid']}", ["resolv.conf"])
    resolver = parse_resolv_conf(files.get("resolv.conf", b"").decode(errors="replace"))
    return PodSandbox(name, (pod.get("status") or {}).get("podIP", ""), node, await asyncio.to_thread(ctx.lab.pod_netns, info),
                      tuple(resolver.nameservers), tuple(resolver.searches), resolver.ndots)


def pod_ip_problems(pods: list[Obj], pod_cidrs: dict[str, str]) -> tuple[list[str], list[dict[str, Any]]]:
    """What breaks "every pod has its own IP from its node's podCIDR" (pure), and a row per pod."""
    problems: list[str] = []
    rows: list[dict[str, Any]] = []
    owners: dict[str, str] = {}
    for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
        name, ip = pod["metadata"]["name"], (pod.get("status") or {}).get("podIP", "")
        node = (pod.get("spec") or {}).get("nodeName", "")
        cidr = pod_cidrs.get(node, "")
        rows.append({"pod": name, "ip": ip or None, "node": node or None, "podCIDR": cidr or None})
        if not pod_is_ready(pod) or not ip:
            problems.append(f"{name} is not Ready" + (f" (on {node})" if node else " (not scheduled)"))
            continue
        if not cidr or ipaddress.ip_address(ip) not in ipaddress.ip_network(cidr):
            problems.append(f"{name}'s IP {ip} is not in the podCIDR of its node {node} ({cidr or 'none'})")
        if ip in owners:
            problems.append(f"{name} and {owners[ip]} have the same IP {ip}")
        owners[ip] = name
    return problems, rows


@kind("pod-ips")
async def check_pod_ips(ctx: Context, spec: CheckSpec) -> Verdict:
    """Every pod of the workload is Ready with an IP of its own, inside its node's ``spec.podCIDR``,
    and the pods run on at least ``minNodes`` nodes (so different podCIDRs show)."""
    found, ref = workload(ctx, spec.params)
    what = f"{ref.kind} {found['metadata']['name']}"
    pods = [p for p in pods_of(ctx.snapshot, found, ref.kind) if not p["metadata"].get("deletionTimestamp")]
    if not pods:
        raise Unmet(f"{what} has no pod")
    cidrs = {n["metadata"]["name"]: (n.get("spec") or {}).get("podCIDR", "") for n in ctx.snapshot.nodes}
    problems, rows = pod_ip_problems(pods, cidrs)
    per_node: dict[str, int] = {}
    for row in rows:
        if row["node"]:
            per_node[row["node"]] = per_node.get(row["node"], 0) + 1
    spread = ", ".join(f"{c} on {n} ({cidrs.get(n) or 'no podCIDR'})" for n, c in sorted(per_node.items()))
    evidence = {"workload": what, "pods": rows, "podCIDRs": {n: cidrs.get(n) for n in sorted(per_node)}}
    if problems:
        return Verdict.failed(f"{what}: " + "; ".join(problems), **evidence)
    min_nodes = spec.params.get("minNodes", 1)
    if len(per_node) < min_nodes:
        return Verdict.failed(f"the {len(pods)} pod(s) of {what} run on fewer than {min_nodes} nodes ({spread}): "
                              f"the task asks for pods on at least {min_nodes}, to see their podCIDRs differ",
                              **evidence)
    return Verdict.passed(f"the {len(pods)} pods of {what} each have an IP of their own from their node's "
                          f"podCIDR: {spread}", **evidence)


async def expected_pod_answers(ctx: Context, params: dict[str, Any]) -> set[str]:
    """What ADD returned for the workload's Ready pods, read back from inside each of them:
    ``pod-address`` is ``ips[0].address`` (IP/prefix on eth0), ``pod-gateway`` ``ips[0].gateway``
    (the default route's next hop)."""
    found, ref = workload(ctx, params)
    pods = serving_pods(pods_of(ctx.snapshot, found, ref.kind))
    if not pods:
        raise Unmet(f"{ref.kind} {found['metadata']['name']} has no Ready pod")

    async def read(pod: Obj) -> tuple[str, str]:
        return await _pod_interface(await enter_pod(ctx, pod))

    configs = await asyncio.gather(*(read(pod) for pod in pods))
    return {address if params["ask"] == "pod-address" else gateway for address, gateway in configs} - {""}


async def _pod_interface(sandbox: PodSandbox) -> tuple[str, str]:
    """(``IP/prefix`` of the pod's eth0, the gateway of its default route), from its namespace."""
    result = await sandbox.exec(["sh", "-c", f"ip -j -4 addr show dev {POD_IFNAME} && ip -j -4 route show default"])
    if not result.ok:
        raise CannotJudge(f"could not read the network of pod {sandbox.pod} on node {sandbox.node.name}: "
                          f"{result.stderr.decode(errors='replace').strip()[-200:]}")
    return parse_pod_interface(result.stdout.decode())


def parse_pod_interface(text: str) -> tuple[str, str]:
    """``ip -j addr`` then ``ip -j route`` lines → (``IP/prefix``, gateway); ``""`` for what is missing (pure)."""
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    links, routes = (lines + [[], []])[:2]
    address = next((f"{a['local']}/{a['prefixlen']}" for link in links for a in link.get("addr_info") or []
                    if a.get("family") == "inet"), "")
    gateway = next((r.get("gateway", "") for r in routes if r.get("dst") == "default"), "")
    return address, gateway
