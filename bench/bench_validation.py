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

from labctl.apiserver.defaults import apply_defaults  # noqa: E402
from labctl.apiserver.validation import validate_create, validate_update  # noqa: E402
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
            apply_defaults(resource, obj)
            assert not validate_create(resource, obj)

        results.append(measure(f"{resource}: deepcopy+defaults+validate_create", args.n, create))
    old = copy.deepcopy(pod())
    apply_defaults("pods", old)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    results.append(measure("pods: validate_update (image change)", args.n, lambda: validate_update("pods", old, new)))
    for r in results:
        print(f"{r['case']:<50} {r['per_op_us']:>8.1f} µs/op  (n={r['n']})")
    if args.out:
        args.out.write_text(json.dumps({"benchmark": "validation", "results": results}, indent=2))


if __name__ == "__main__":
    main()
