#!/usr/bin/env python3
"""``labctl net`` on a 3-node lab with 50 pods and 20 Services (goal: ≤ 0.5 s).

Fills a lab (a scratch 1 control-plane + 2 worker lab unless ``--name``) with ``--pods`` pods
in namespace ``bench-net`` and ``--services`` ClusterIP Services over them (5 endpoints each
with the defaults), waits until every node's proxy has written them, then times:

* **snapshot** — :func:`labctl.inspect.snapshot` in this process: one ``docker exec`` per node,
  all at once, plus the parsing (what the TUI calls once a second);
* **command** — the whole ``labctl net`` command in this process (snapshot + rich output);
* **cli** — ``python -m labctl net`` as a student runs it (Python start-up and imports
  included), next to ``python -m labctl --version`` (start-up and imports alone).

    python bench/net.py [--name LAB] [--pods 50] [--services 20] [--repeat 20] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _common import existing_or_scratch_lab, write_json  # noqa: E402

from labctl.cli.main import run  # noqa: E402
from labctl.client.rest import APIStatusError, resource_path  # noqa: E402
from labctl.client.waiting import wait_for  # noqa: E402
from labctl.cluster import Lab  # noqa: E402
from labctl.inspect import read_lab  # noqa: E402

NAMESPACE = "bench-net"
GROUPS = 10


async def populate(lab: Lab, pods: int, services: int) -> None:
    """``pods`` pods in ``GROUPS`` label groups, ``services`` Services each selecting one group."""
    async with lab.api() as api:
        with contextlib.suppress(APIStatusError):
            await api.create(resource_path("namespaces"), {"metadata": {"name": NAMESPACE}})
        for i in range(pods):
            pod = {"metadata": {"name": f"web-{i}", "labels": {"group": f"g{i % GROUPS}"}},
                   "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}]}]}}
            with contextlib.suppress(APIStatusError):  # already there from an earlier run
                await api.create(resource_path("pods", NAMESPACE), pod)
        for i in range(services):
            svc = {"metadata": {"name": f"svc-{i}"},
                   "spec": {"selector": {"group": f"g{i % GROUPS}"}, "ports": [{"name": "http", "port": 80}]}}
            with contextlib.suppress(APIStatusError):
                await api.create(resource_path("services", NAMESPACE), svc)


def programmed(lab: Lab, pods: int, services: int) -> bool:
    """Every node's rules hold every Service with every Ready pod behind it."""
    net = read_lab(lab)
    for node in net.nodes:
        ports = [p for p in node.services if p.namespace == NAMESPACE]
        if len(ports) != services or sum(len(p.endpoints) for p in ports) < services * (pods // GROUPS):
            return False
    return len([p for p in net.pods if p.namespace == NAMESPACE]) == pods


def timed(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"p50": statistics.median(ordered), "p90": ordered[int(0.9 * (len(ordered) - 1))], "max": ordered[-1],
            "n": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", help="an existing lab (default: a scratch lab, removed after)")
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    with existing_or_scratch_lab(args.name, "bn") as (lab, _created):
        asyncio.run(populate(lab, args.pods, args.services))
        wait_for(lambda: programmed(lab, args.pods, args.services), 600, 2.0,
                 what=f"{args.pods} pods behind {args.services} Services in every node's rules")
        net = read_lab(lab)
        rules = sum(len(list(t.rules())) for n in net.nodes for t in n.ruleset.tables.values())
        snapshot = summary(timed(lambda: read_lab(lab), args.repeat))
        with contextlib.redirect_stdout(io.StringIO()):
            command = summary(timed(lambda: run(["net", "--name", lab.name]), args.repeat))

        def cli(*argv: str) -> None:
            subprocess.run([sys.executable, "-m", "labctl", *argv], capture_output=True, check=True)

        cli_net = summary(timed(lambda: cli("net", "--name", lab.name), 5))
        cli_start = summary(timed(lambda: cli("--version"), 5))
    result = {"machine": platform.platform(), "cpus": os.cpu_count(), "load": os.getloadavg(),
              "date": time.strftime("%Y-%m-%d"), "nodes": len(net.nodes), "pods": len(net.pods),
              "service_ports": len(net.nodes[0].services), "rules": rules, "snapshot": snapshot,
              "command": command, "cli": cli_net, "cli_startup": cli_start, "goal_seconds": 0.5}
    print(f"{len(net.nodes)} nodes, {len(net.pods)} pods, {len(net.nodes[0].services)} Service ports, "
          f"{rules} rules in all (load {os.getloadavg()[0]:.1f})")
    for label, key in (("snapshot (library)", "snapshot"), ("labctl net, in process", "command"),
                       ("labctl net, whole CLI", "cli"), ("labctl --version (start-up)", "cli_startup")):
        s = result[key]
        print(f"  {label:30} p50 {s['p50'] * 1000:6.0f} ms   p90 {s['p90'] * 1000:6.0f} ms   "
              f"max {s['max'] * 1000:6.0f} ms")
    print(f"goal ≤ 500 ms: snapshot {'met' if snapshot['p50'] <= 0.5 else 'NOT met'}, "
          f"command {'met' if command['p50'] <= 0.5 else 'NOT met'}")
    write_json(args.out, result)


if __name__ == "__main__":
    main()
