#!/usr/bin/env python3
"""Scheduler benchmark: how fast a burst of pods is bound, and the cost of one scheduling cycle.

Starts ``python -m labctl.apiserver`` as a real process, registers a tainted control plane and
``--workers`` worker Nodes, runs labctl's Scheduler in-process (its own event loop and
informers, as in the controller manager), creates ``--pods`` pods at once and watches until
every one has ``spec.nodeName``. Also times the pure filter+score cycle (no API) on 3 and
100 nodes. Prints a table; ``--out FILE`` writes JSON.

    python bench/scheduler_burst.py --pods 50 --out bench/results/scheduler.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "controllers"))
from scheduler_harness import SchedulerThread, node_object, register_nodes

from labctl.client.informer import FuncHandler, Informer
from labctl.client.rest import APIClient, Credentials, resource_path
from labctl.controllers._schedcache import SchedulerCache
from labctl.controllers._scheduling import schedule
from support.apiserver import APIServerProcess


def pod(name: str, owner_uid: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                                            "name": "bench", "uid": owner_uid, "controller": True}]},
            "spec": {"containers": [{"name": "web", "image": "labctl/web:v1",
                                     "resources": {"limits": {"cpu": "10m", "memory": "16Mi"}}}]}}


async def burst(kubeconfig: Path, prefix: str, n: int, start_scheduler: bool) -> dict:
    """Create ``n`` pods concurrently; seconds until the last create returned and until all are bound."""
    async with APIClient(Credentials.from_kubeconfig(kubeconfig)) as client:
        bound: dict[str, str] = {}
        done = asyncio.Event()

        def seen(obj: dict, new: dict | None = None) -> None:
            p = new or obj
            if p["metadata"]["name"].startswith(prefix) and p["spec"].get("nodeName"):
                bound[p["metadata"]["name"]] = p["spec"]["nodeName"]
                if len(bound) == n:
                    done.set()

        informer = Informer(client, "pods", [FuncHandler(seen, lambda old, new: seen(old, new))], namespace="default")
        watch = asyncio.create_task(informer.run())
        await informer.synced.wait()
        started = time.perf_counter()
        await asyncio.gather(*(client.create(resource_path("pods", "default"), pod(f"{prefix}{i:03d}", prefix))
                               for i in range(n)))
        created = time.perf_counter()
        scheduler = SchedulerThread(kubeconfig).__enter__() if start_scheduler else None
        if scheduler:
            created = time.perf_counter()  # backlog: time from the scheduler's start
        await asyncio.wait_for(done.wait(), 60)
        finished = time.perf_counter()
        watch.cancel()
        if scheduler:
            scheduler.__exit__(None, None, None)
        return {"pods": n, "create_s": round(created - started, 3), "bound_after_create_s": round(finished - created, 3),
                "total_s": round(finished - started, 3), "placement": dict(Counter(bound.values()))}


def cycle_cost(nodes: int, pods: int = 500) -> float:
    """Microseconds per filter+score+assume cycle with ``nodes`` workers, no API involved."""
    cache = SchedulerCache()
    for i in range(nodes):
        node = node_object(f"w{i}", cpu="64")
        node["status"]["allocatable"]["pods"] = str(pods)  # room for every pod: this times the cycle, not a full node
        cache.set_node(node)
    started = time.perf_counter()
    for i in range(pods):
        p = pod(f"p{i}", "o")
        p["metadata"]["namespace"] = "default"
        cache.assume(p, schedule(p, cache.node_infos()))
    return (time.perf_counter() - started) / pods * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pods", type=int, default=50)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = APIServerProcess(Path(tmp)).start()
        try:
            nodes = [node_object("control-plane", control_plane=True)] + \
                    [node_object(f"worker{i + 1 if i else ''}") for i in range(args.workers)]
            asyncio.run(register_nodes(server.kubeconfig, nodes))
            backlog = asyncio.run(burst(server.kubeconfig, "backlog-", args.pods, start_scheduler=True))
            with SchedulerThread(server.kubeconfig):
                live = asyncio.run(burst(server.kubeconfig, "live-", args.pods, start_scheduler=False))
        finally:
            server.stop()
    results = {"machine": f"{platform.system()} {platform.machine()} python {platform.python_version()}",
               "burst_while_running": live, "backlog_at_start": backlog,
               "cycle_us_3_nodes": round(cycle_cost(3), 1), "cycle_us_100_nodes": round(cycle_cost(100), 1)}
    print(f"burst of {args.pods} pods, scheduler running : created in {live['create_s']:.3f}s, all bound "
          f"{live['bound_after_create_s']:.3f}s later ({live['total_s']:.3f}s total) {live['placement']}")
    print(f"backlog of {args.pods} pods at scheduler start: all bound {backlog['bound_after_create_s']:.3f}s "
          f"after start (incl. informer list) {backlog['placement']}")
    print(f"one scheduling cycle (filter+score+assume): {results['cycle_us_3_nodes']} µs on 3 nodes, "
          f"{results['cycle_us_100_nodes']} µs on 100 nodes")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
