#!/usr/bin/env python3
"""Pod start latency of the kubelet role: create → Ready for 1, 10 and 50 pods.

Runs against a running lab (``labctl up -t topology.yaml`` first; KUBECONFIG pointing
at its kubeconfig). For each batch size it creates N bare pods from the course
template (nginx:1.14.2 via the image alias, limits 128Mi/500m) spread over the
workers by ``spec.nodeName``, watches them, and prints p50/p99 of create → Ready,
pods per second for the whole batch, and memory per pod (sandbox + app, docker stats).
``--out FILE`` writes the figures as JSON.

    python bench/pod_startup.py --cluster lab --sizes 1 10 50 --out /tmp/pods.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from labctl.client.rest import APIClient, APIStatusError, Credentials, resource_path

KUBELET = "/opt/labctl/bin/python3 -m labctl.agent.kubelet > /var/log/labctl-kubelet.log 2>&1"


def course_pod(name: str, node: str, run: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "web", "bench": run}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [{
                "name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}],
                "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}}}]}}


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run_batch(client: APIClient, n: int, workers: list[str], namespace: str) -> dict:
    run = uuid.uuid4().hex[:6]
    names = [f"bench-{run}-{i}" for i in range(n)]
    created: dict[str, float] = {}
    ready: dict[str, float] = {}
    listed = await client.get(resource_path("pods", namespace))
    done = asyncio.Event()

    async def watch() -> None:
        async for event in client.watch(resource_path("pods", namespace), listed["metadata"]["resourceVersion"],
                                        labelSelector=f"bench={run}"):
            pod = event["object"]
            name = pod.get("metadata", {}).get("name")
            if event["type"] == "BOOKMARK" or not name:
                continue
            if name not in ready and is_ready(pod):
                ready[name] = time.monotonic()
                if len(ready) == n:
                    done.set()
                    return

    async def create(i: int, name: str) -> None:
        created[name] = time.monotonic()
        await client.create(resource_path("pods", namespace), course_pod(name, workers[i % len(workers)], run))

    watcher = asyncio.create_task(watch())
    started = time.monotonic()
    await asyncio.gather(*(create(i, name) for i, name in enumerate(names)))
    await asyncio.wait_for(done.wait(), timeout=60 + 3 * n)
    elapsed = time.monotonic() - started
    watcher.cancel()
    latencies = [ready[name] - created[name] for name in names]
    memory = pod_memory_mib(run)
    for name in names:
        try:
            await client.delete(resource_path("pods", namespace, name))
        except APIStatusError:
            pass
    return {"pods": n, "p50_s": round(statistics.median(latencies), 3), "p99_s": round(percentile(latencies, 0.99), 3),
            "max_s": round(max(latencies), 3), "pods_per_s": round(n / elapsed, 2),
            "memory_per_pod_mib": memory}


def pod_memory_mib(run: str) -> float:
    """Average (sandbox + app) memory per pod from ``docker stats``."""
    ids = subprocess.run(["docker", "ps", "-q", "--filter", "label=io.kubernetes.pod.name"],
                         capture_output=True, text=True).stdout.split()
    if not ids:
        return 0.0
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}", *ids],
                         capture_output=True, text=True).stdout
    per_pod: dict[str, float] = {}
    for line in out.splitlines():
        name, usage = line.split(" ", 1)
        if f"bench-{run}-" not in name:
            continue
        pod = name.split("_")[2]
        amount = usage.split("/")[0].strip()
        factor = {"KiB": 1 / 1024, "MiB": 1, "GiB": 1024, "B": 1 / 2**20}
        unit = next(u for u in ("KiB", "MiB", "GiB", "B") if amount.endswith(u))
        per_pod[pod] = per_pod.get(pod, 0.0) + float(amount[: -len(unit)]) * factor[unit]
    return round(statistics.mean(per_pod.values()), 2) if per_pod else 0.0


async def main_async(args: argparse.Namespace) -> list[dict]:
    client = APIClient(Credentials.from_kubeconfig(Path(args.kubeconfig)))
    try:
        nodes = (await client.get(resource_path("nodes")))["items"]
        workers = [n["metadata"]["name"] for n in nodes if "node-role.kubernetes.io/control-plane"
                   not in n["metadata"].get("labels", {})] or [nodes[0]["metadata"]["name"]]
        results = []
        for size in args.sizes:
            result = await run_batch(client, size, workers, args.namespace)
            print(f"{size:>3} pods: create→Ready p50 {result['p50_s']:.2f}s p99 {result['p99_s']:.2f}s "
                  f"max {result['max_s']:.2f}s, {result['pods_per_s']:.1f} pods/s, "
                  f"{result['memory_per_pod_mib']:.1f} MiB/pod", flush=True)
            results.append(result)
            await asyncio.sleep(args.pause)
        return results
    finally:
        await client.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cluster", required=True, help="name of a running lab")
    p.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG", str(Path.home() / ".kube/config")))
    p.add_argument("--namespace", default="default")
    p.add_argument("--sizes", type=int, nargs="+", default=[1, 10, 50])
    p.add_argument("--pause", type=float, default=5.0, help="seconds between batches (deletions settle)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    for node in ("control-plane", "worker", "worker2"):  # no-op when the agent already runs the kubelet
        subprocess.run(["docker", "exec", "-d", f"{args.cluster}-{node}", "sh", "-c", KUBELET], capture_output=True)
    time.sleep(3)
    results = asyncio.run(main_async(args))
    if args.out:
        args.out.write_text(json.dumps({"cores": os.cpu_count(), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
