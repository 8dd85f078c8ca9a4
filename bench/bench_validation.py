"""How long defaulting + validation adds to a create, per kind (the API server does both on every write).

Usage: python3 bench/bench_validation.py [--n 2000] [--out FILE]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "unit"))

from labctl.apiserver.strategies import strategy_for  # noqa: E402
from test_validation import deployment, pod, replicaset, service  # noqa: E402


def measure(label: str, n: int, fn) -> dict:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    per_op_us = (time.perf_counter() - start) / n * 1e6
    return {"case": label, "n": n, "per_op_us": round(per_op_us, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    results = []
    for resource, factory in (("pods", pod), ("services", service), ("replicasets", replicaset),
                              ("deployments", deployment)):
        base = factory()

        def create(resource=resource, base=base):
            obj = copy.deepcopy(base)
            strategy_for(resource).default(obj)
            assert not strategy_for(resource).validate(obj)

        results.append(measure(f"{resource}: deepcopy+defaults+validate_create", args.n, create))
    old = copy.deepcopy(pod())
    strategy_for("pods").default(old)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    pods = strategy_for("pods")
    results.append(measure("pods: validate_update (image change)", args.n, lambda: pods.validate_update(old, new)))
    for r in results:
        print(f"{r['case']:<50} {r['per_op_us']:>8.1f} µs/op  (n={r['n']})")
    if args.out:
        args.out.write_text(json.dumps({"benchmark": "validation", "results": results}, indent=2))


if __name__ == "__main__":
    main()
