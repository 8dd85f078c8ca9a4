"""Probes the grader sends at check time: HTTP from the host or from every node, DNS from a node.

The way in is found by relation (the Service that selects the workload's pods) and reached
as a client would: its ClusterIP from a node, a node's port from the host, the LoadBalancer
IP. From a node, :mod:`labctl.exercises.traffic` runs there (the node image has labctl), so
one ``docker exec`` per node sends every request.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from ...client.rest import APIStatusError, resource_path
from ...cluster.lab import Node
from ..model import CheckSpec
from ..relations import entry_points, pods_of, serving_pods
from ..traffic import Answer, sample
from . import CannotJudge, Context, Unmet, Verdict, kind
from .objects import service

#: the cluster DNS Service every lab has (the kube-dns add-on)
DNS_SERVICE = ("kube-system", "kube-dns")


async def _from_nodes(ctx: Context, targets: list[tuple[str, int]], count: int, path: str) -> list[Answer]:
    nodes = [Node(ctx.lab, info) for info in ctx.lab.nodes()]

    async def one(node: Node) -> list[Answer]:
        argv = ["python3", "-m", "labctl.exercises.traffic", str(count), path, *(f"{h}:{p}" for h, p in targets)]
        result = await node.exec(argv)
        if not result.ok:
            raise CannotJudge(f"could not send requests from node {node.name}: "
                              f"{result.stderr.decode(errors='replace').strip()[-300:]}")
        return [Answer(**json.loads(line)) for line in result.stdout.decode().splitlines() if line.strip()]

    answers = await asyncio.gather(*(one(n) for n in nodes))
    return [a for batch in answers for a in batch]


@kind("http")
async def check_http(ctx: Context, spec: CheckSpec) -> Verdict:
    params = spec.params
    svc, found, ref = service(ctx, params)
    via, path, count = params["via"], params.get("path", "/"), params.get("requests", 10)
    targets = entry_points(ctx.snapshot, svc, via)
    if not targets:
        raise Unmet(f"Service {svc['metadata']['name']} has no {via} address yet", service=svc["metadata"]["name"])
    if params["from"] == "host":
        answers = await sample(targets, count * len(targets), path)
    else:
        answers = await _from_nodes(ctx, targets, count, path)
    failed = [a for a in answers if not a.ok]
    pattern = re.compile(params["body"]) if params.get("body") else None
    wrong = [a for a in answers if a.ok and pattern and not pattern.search(a.body)]
    pods = sorted({a.pod for a in answers if a.pod})
    evidence: dict[str, Any] = {
        "service": svc["metadata"]["name"], "via": via, "from": params["from"],
        "targets": [f"{h}:{p}" for h, p in targets], "requests": len(answers), "failed": len(failed),
        "errors": sorted({f"{a.target}: {a.error}" for a in failed})[:10], "answeredBy": pods}
    where = f"{via} {', '.join(evidence['targets'][:3])}{'…' if len(targets) > 3 else ''} from {params['from']}"
    if failed:
        return Verdict.failed(f"{len(failed)} of {len(answers)} requests to {where} failed: "
                              f"{'; '.join(evidence['errors'][:3])}", **evidence)
    if wrong:
        return Verdict.failed(f"{len(wrong)} of {len(answers)} answers from {where} do not match "
                              f"{params['body']!r} (e.g. {wrong[0].body[:80]!r})", **evidence)
    if params.get("spread"):
        want = sorted(p["metadata"]["name"] for p in serving_pods(pods_of(ctx.snapshot, found, ref.kind)))
        missing = sorted(set(want) - set(pods))
        evidence["readyPods"] = want
        if missing:
            return Verdict.failed(f"{len(answers)} requests to {where} were answered by {len(pods)} of the "
                                  f"{len(want)} Ready pods; never by {', '.join(missing)}", **evidence)
        return Verdict.passed(f"{len(answers)} requests to {where}: every one answered, by all {len(want)} Ready "
                              f"pods", **evidence)
    return Verdict.passed(f"{len(answers)} requests to {where}: every one answered", **evidence)


@kind("dns")
async def check_dns(ctx: Context, spec: CheckSpec) -> Verdict:
    params = spec.params
    expect = params.get("expect")
    if expect is None:
        svc, _, _ = service(ctx, {"workload": params["workload"], "service": params.get("service")})
        expect = svc["spec"].get("clusterIP")
    try:
        dns = await ctx.api.get(resource_path("services", DNS_SERVICE[0], DNS_SERVICE[1]))
    except APIStatusError as err:
        raise CannotJudge(f"the cluster DNS Service kube-system/kube-dns is missing: {err}") from None
    server = dns["spec"]["clusterIP"]
    node = Node(ctx.lab, ctx.lab.nodes()[0])
    result = await node.exec(["dig", "+short", "+time=2", "+tries=2", f"@{server}", params["name"]])
    if result.exit_code not in (0, 9):
        raise CannotJudge(f"dig failed on node {node.name}: {result.stderr.decode(errors='replace').strip()}")
    answers = result.stdout.decode().split()
    evidence = {"name": params["name"], "server": server, "answers": answers, "expected": expect}
    if expect in answers:
        return Verdict.passed(f"{params['name']} resolves to {expect} through cluster DNS ({server})", **evidence)
    return Verdict.failed(f"{params['name']} resolves to {', '.join(answers) or 'nothing'} through cluster DNS, "
                          f"not to {expect}", **evidence)
