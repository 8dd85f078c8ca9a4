#!/usr/bin/env python3
"""``labctl trace``: a live trace (goal: ≤ 2 s) and ``--explain``, pod → ClusterIP of the course's ex1-svc.

In a lab (a scratch 1 control-plane + 2 worker lab unless ``--name``) running the course's
``example-1`` behind ``ex1-svc``, from one of its pods to the Service, times:

* **live** — :func:`labctl.inspect.trace` in this process: the snapshot, trace rules and
  monitors on every node on the path, the probe from the pod's netns, the collection and the
  cleanup (every run checks that no trace rule is left);
* **explain** — the same with ``explain_only`` (snapshot + the computed walk);
* **cli** — ``python -m labctl trace`` as a student runs it (start-up and imports included).

    python bench/trace.py [--name LAB] [--repeat 10] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _common import existing_or_scratch_lab, write_json  # noqa: E402

from labctl.client.waiting import wait_for  # noqa: E402
from labctl.cluster import Lab  # noqa: E402
from labctl.inspect import read_lab, run_trace  # noqa: E402

COURSE = ROOT / "exercises" / "course"


def apply_course(lab: Lab) -> None:
    docs = [d for name in ("replicaset-example-1.yaml", "services-ex1.yaml")
            for d in yaml.safe_load_all((COURSE / name).read_text()) if d]
    lab.kubectl().run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))


def ready(lab: Lab) -> str:
    """A client pod of example-1 once every node serves ex1-svc with its 4 endpoints ("" before)."""
    net = read_lab(lab)
    ports = [next((p for p in n.services if p.name == "default/ex1-svc:web"), None) for n in net.nodes]
    if not all(p is not None and len(p.endpoints) == 4 for p in ports):
        return ""
    return next((p.name for p in net.pods if p.name.startswith("example-1-")), "")


def summary(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {"p50": statistics.median(ordered), "p90": ordered[int(0.9 * (len(ordered) - 1))], "max": ordered[-1],
            "n": len(ordered)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", help="an existing lab running example-1 and ex1-svc (default: a scratch lab)")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    live, explain, cli, endpoints = [], [], [], set()
    with existing_or_scratch_lab(args.name, "bt") as (lab, created):
        if created:
            apply_course(lab)
        client = wait_for(lambda: ready(lab), 300, 1.0, what="example-1 behind ex1-svc on every node")
        for _ in range(args.repeat):
            started = time.perf_counter()
            t = run_trace(lab, client, "ex1-svc")
            live.append(time.perf_counter() - started)
            assert t.verdict.result == "delivered" and t.trace_rules_left == 0, t.verdict
            endpoints.add(t.chosen.endpoint if t.chosen else "")
            started = time.perf_counter()
            run_trace(lab, client, "ex1-svc", explain_only=True)
            explain.append(time.perf_counter() - started)
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "labctl", "trace", "--name", lab.name, client, "ex1-svc"],
                           capture_output=True, check=True)
            cli.append(time.perf_counter() - started)
    result = {"machine": platform.platform(), "cpus": os.cpu_count(), "load": os.getloadavg(),
              "date": time.strftime("%Y-%m-%d"), "live": summary(live), "explain": summary(explain),
              "cli": summary(cli), "endpoints_reached": len(endpoints), "goal_seconds": 2.0}
    print(f"pod → ClusterIP of ex1-svc (4 endpoints, {len(endpoints)} reached; load {os.getloadavg()[0]:.1f})")
    for label, key in (("live trace (library)", "live"), ("--explain (library)", "explain"),
                       ("labctl trace, whole CLI", "cli")):
        s = result[key]
        print(f"  {label:26} p50 {s['p50'] * 1000:6.0f} ms   p90 {s['p90'] * 1000:6.0f} ms   "
              f"max {s['max'] * 1000:6.0f} ms")
    print(f"goal ≤ 2 s: live {'met' if result['live']['p50'] <= 2.0 else 'NOT met'}")
    write_json(args.out, result)


if __name__ == "__main__":
    main()
