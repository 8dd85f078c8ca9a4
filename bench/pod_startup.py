#!/usr/bin/env python3
"""Pod start latency of the kubelet role: N pods created at once → all Ready, against the Docker floor.

For each batch size (``--sizes``, default 50) it creates N bare pods from the course template
(nginx:1.14.2 → labctl/nginx:v1 by the image alias, limits 128Mi/500m) spread over the workers by
``spec.nodeName``, all at once, watches them, and takes create → Ready per pod. In the same
run it measures the **Docker floor**: the same pods' containers — a ``labctl/pause`` sandbox
with ``--network none`` plus the app container joined to its network and IPC namespaces, same
image, limits and labels — created and started straight through the Docker API (one client,
``--floor-concurrency`` pods at a time), each pod timed from the batch's start to its app
container started. It prints p50/p99/max, the time until the last pod, pods/s, the ratio
labctl / floor, and the load average before and after.

Runs against ``--cluster``'s lab (KUBECONFIG pointing at its kubeconfig) or, without it, a
scratch 1+2 lab made for the run and removed after.

    python bench/pod_startup.py --sizes 50 --out /tmp/pods.json

``--out FILE`` writes JSON::

    {"machine": str, "date": "YYYY-MM-DD", "cores": int,
     "load_before": [1m, 5m, 15m], "load_after": [1m, 5m, 15m],
     "results": [{"pods": N,
                  "labctl": {"p50_s", "p99_s", "max_s", "pods_per_s", "memory_per_pod_mib",
                             "start_times_s": [per pod, sorted: seconds from the batch's start to Ready]},
                  "floor": {"concurrency": C, "p50_s", "p99_s", "max_s", "pods_per_s",
                            "start_times_s": [per pod, sorted: seconds to its app container started]},
                  "ratio_all_ready": labctl max_s / floor max_s, "ratio_p50": …, "ratio_p99": …,
                  "load": [1m, 5m, 15m] when the batch ended}]}

``start_times_s`` are what a CDF plot of the burst against the floor needs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import docker
from _common import existing_or_scratch_lab, write_json

from labctl.agent.kubelet.runtime import PAUSE_IMAGE
from labctl.client.rest import APIClient, APIStatusError, resource_path
from labctl.cluster import Lab

APP_IMAGE = "labctl/nginx:v1"   # what nginx:1.14.2 runs as (the lab's image alias)
FLOOR_LABEL = "labctl.bench.floor"


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


def summary(times: list[float]) -> dict:
    return {"p50_s": round(statistics.median(times), 3), "p99_s": round(percentile(times, 0.99), 3),
            "max_s": round(max(times), 3), "pods_per_s": round(len(times) / max(times), 2),
            "start_times_s": [round(t, 3) for t in sorted(times)]}


def load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


async def labctl_batch(client: APIClient, n: int, workers: list[str], namespace: str) -> dict:
    run = uuid.uuid4().hex[:6]
    names = [f"bench-{run}-{i}" for i in range(n)]
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

    watcher = asyncio.create_task(watch())
    started = time.monotonic()
    await asyncio.gather(*(client.create(resource_path("pods", namespace), course_pod(name, workers[i % len(workers)],
                                                                                       run))
                           for i, name in enumerate(names)))
    await asyncio.wait_for(done.wait(), timeout=60 + 3 * n)
    watcher.cancel()
    result = summary([ready[name] - started for name in names])
    result["memory_per_pod_mib"] = pod_memory_mib(run)
    for name in names:
        try:
            await client.delete(resource_path("pods", namespace, name))
        except APIStatusError:
            pass
    return result


def floor_batch(n: int, concurrency: int, app_image: str = APP_IMAGE) -> dict:
    """The same pods' containers straight through the Docker API, ``concurrency`` pods at a time."""
    api = docker.APIClient(base_url="unix:///var/run/docker.sock", timeout=120, version="auto")
    run = uuid.uuid4().hex[:6]
    labels = {FLOOR_LABEL: run}
    created: list[str] = []

    def one(i: int) -> float:
        sandbox = api.create_container(PAUSE_IMAGE, name=f"floor-{run}-{i}-pod", labels=labels,
                                       host_config=api.create_host_config(network_mode="none", ipc_mode="shareable"))
        created.append(sandbox["Id"])
        api.start(sandbox["Id"])
        joined = f"container:{sandbox['Id']}"
        app = api.create_container(app_image, name=f"floor-{run}-{i}-app", labels=labels, host_config=api.create_host_config(
            network_mode=joined, ipc_mode=joined, mem_limit=128 * 2**20, cpu_period=100_000, cpu_quota=50_000,
            cpu_shares=512, pids_limit=1024))
        created.append(app["Id"])
        api.start(app["Id"])
        return time.monotonic()

    try:
        with ThreadPoolExecutor(concurrency) as pool:
            started = time.monotonic()
            times = [t - started for t in pool.map(one, range(n))]
    finally:
        with ThreadPoolExecutor(concurrency) as pool:
            list(pool.map(lambda cid: api.remove_container(cid, force=True), created))
        api.close()
    return {"concurrency": concurrency, **summary(times)}


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


async def wait_gone(client: APIClient, namespace: str) -> None:
    """Until the benchmark's pods are deleted (their containers stopped), so batches do not overlap."""
    while any(p["metadata"]["name"].startswith("bench-")
              for p in (await client.get(resource_path("pods", namespace)))["items"]):
        await asyncio.sleep(0.5)


async def run(client: APIClient, args: argparse.Namespace) -> list[dict]:
    nodes = (await client.get(resource_path("nodes")))["items"]
    workers = [n["metadata"]["name"] for n in nodes if "node-role.kubernetes.io/control-plane"
               not in n["metadata"].get("labels", {})] or [nodes[0]["metadata"]["name"]]
    results = []
    for size in args.sizes:
        ours = await labctl_batch(client, size, workers, args.namespace)
        await wait_gone(client, args.namespace)
        floor = await asyncio.to_thread(floor_batch, size, args.floor_concurrency)
        result = {"pods": size, "labctl": ours, "floor": floor,
                  "ratio_all_ready": round(ours["max_s"] / floor["max_s"], 2),
                  "ratio_p50": round(ours["p50_s"] / floor["p50_s"], 2),
                  "ratio_p99": round(ours["p99_s"] / floor["p99_s"], 2), "load": load()}
        for label, r in (("labctl", ours), (f"floor ({floor['concurrency']} at a time)", floor)):
            print(f"{size:>3} pods, {label:22}: p50 {r['p50_s']:5.2f}s p99 {r['p99_s']:5.2f}s "
                  f"all {r['max_s']:5.2f}s, {r['pods_per_s']:4.1f} pods/s", flush=True)
        print(f"{size:>3} pods: labctl / floor = {result['ratio_all_ready']:.2f}× (all Ready), "
              f"{result['ratio_p50']:.2f}× (p50), {result['ratio_p99']:.2f}× (p99); load {result['load']}", flush=True)
        results.append(result)
        await asyncio.sleep(args.pause)
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cluster", help="name of a running lab (default: a scratch lab for the run)")
    p.add_argument("--kubeconfig", type=Path, help="the kubeconfig with --cluster's context (default: $KUBECONFIG)")
    p.add_argument("--namespace", default="default")
    p.add_argument("--sizes", type=int, nargs="+", default=[50])
    p.add_argument("--floor-concurrency", type=int, default=8, help="pods created at once by the floor")
    p.add_argument("--pause", type=float, default=2.0, help="seconds between batches")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = str(args.kubeconfig)  # where the lab's context is found
    before = load()
    with existing_or_scratch_lab(args.cluster, "podb") as (opened, _made):
        lab: Lab = opened  # type: ignore[assignment]
        async def go() -> list[dict]:
            client = lab.api()
            try:
                return await run(client, args)
            finally:
                await client.close()
        results = asyncio.run(go())
    write_json(args.out, {"machine": f"{platform.node()} {os.cpu_count()} cpus", "date": time.strftime("%Y-%m-%d"),
                          "cores": os.cpu_count(), "load_before": before, "load_after": load(), "results": results})
    return 0


if __name__ == "__main__":
    sys.exit(main())
