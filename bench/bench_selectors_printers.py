"""Speed of the API server's pure building blocks: selector parsing/matching and Table printing.

A ``kubectl get pods -l app=web`` on a namespace of N pods costs one parse plus N label
matches plus one ``build_table`` over the matches; these figures bound that work.

    python bench/bench_selectors_printers.py [--pods 5000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import per_second

from labctl.apiserver.selectors import parse_field_selector, parse_label_selector
from labctl.kube.printers import POD_TABLE, build_table

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def make_pod(i: int) -> dict:
    started = (NOW - timedelta(seconds=60 + i)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "metadata": {"name": f"web-{i}", "namespace": "default", "creationTimestamp": started,
                     "labels": {"app": "web" if i % 2 else "db", "tier": f"t{i % 5}", "pod-template-hash": "5d8f7"}},
        "spec": {"nodeName": f"lab-worker{i % 3}", "containers": [{"name": "web", "image": "lab/web:1"}]},
        "status": {"phase": "Running", "podIPs": [{"ip": f"10.244.{i % 3}.{i % 250}"}],
                   "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [{"name": "web", "ready": True, "restartCount": i % 3,
                                          "state": {"running": {"startedAt": started}},
                                          "lastState": {"terminated": {"finishedAt": started}}}]},
    }




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=5000)
    parser.add_argument("--out", type=Path, help="write the figures as JSON to FILE")
    args = parser.parse_args(argv)
    pods = [make_pod(i) for i in range(args.pods)]
    selector = parse_label_selector("app=web,tier in (t1,t2,t3),!canary")
    fields = parse_field_selector("spec.nodeName=lab-worker1,status.phase=Running", "pods")

    start = time.perf_counter()
    matched = [p for p in pods if selector.matches(p["metadata"]["labels"]) and fields.matches(p)]
    filter_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    build_table(POD_TABLE, pods, now=NOW)
    table_ms = (time.perf_counter() - start) * 1000

    figures = {
        "label_selector_parses_per_s": round(per_second(
            lambda: parse_label_selector("app=web,tier in (t1,t2,t3),!canary,env notin (dev)"))),
        "field_selector_parses_per_s": round(per_second(
            lambda: parse_field_selector("spec.nodeName=lab-worker1,status.phase!=Failed", "pods"))),
        "pods": args.pods,
        "pods_matched": len(matched),
        "filter_label_and_field_ms": round(filter_ms, 2),
        "build_pod_table_ms": round(table_ms, 2),
        "build_pod_table_us_per_row": round(table_ms * 1000 / args.pods, 1),
    }
    for key, value in figures.items():
        print(f"{key:32} {value}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
