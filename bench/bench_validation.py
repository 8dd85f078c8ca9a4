"""What checking a write costs: decoding within limits, the type check, defaulting + validation, per kind.

Also how fast hostile bodies are refused (alias bomb, deep nesting): in microseconds, not seconds.

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
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import orjson
import yaml
from test_validation import deployment, pod, replicaset, service

from labctl.apiserver import decode, typecheck
from labctl.apiserver.errors import APIError
from labctl.apiserver.strategies import strategy_for
from support.hostile import alias_bomb, nested_json, nested_yaml_block, nested_yaml_flow

KINDS = {"pods": ("v1", "Pod"), "services": ("v1", "Service"), "replicasets": ("apps/v1", "ReplicaSet"),
         "deployments": ("apps/v1", "Deployment")}


def measure(label: str, n: int, fn) -> dict:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    per_op_us = (time.perf_counter() - start) / n * 1e6
    return {"case": label, "n": n, "per_op_us": round(per_op_us, 1)}


def _refused(data: bytes, content_type: str) -> None:
    try:
        decode.typed_object(data, content_type, "v1", "Pod", "Strict")
    except APIError as err:
        assert err.code == 400
        return
    raise AssertionError("a hostile body was accepted")


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
        api_version, kind = KINDS[resource]
        typecheck.checker(api_version, kind)  # compiled once per process, not part of a request
        results.append(measure(f"{resource}: type check (one walk, strict)", args.n,
                               lambda base=base, api_version=api_version, kind=kind:
                               typecheck.check(api_version, kind, base)))
        as_json, as_yaml = orjson.dumps(base), yaml.safe_dump(base).encode()
        results.append(measure(f"{resource}: JSON body -> typed object (Strict)", args.n,
                               lambda data=as_json, api_version=api_version, kind=kind:
                               decode.typed_object(data, "application/json", api_version, kind, "Strict")))
        results.append(measure(f"{resource}: YAML body -> typed object (Strict)", args.n // 4,
                               lambda data=as_yaml, api_version=api_version, kind=kind:
                               decode.typed_object(data, "application/yaml", api_version, kind, "Strict")))
    old = copy.deepcopy(pod())
    strategy_for("pods").default(old)
    new = copy.deepcopy(old)
    new["spec"]["containers"][0]["image"] = "nginx:1.26"
    pods = strategy_for("pods")
    results.append(measure("pods: validate_update (image change)", args.n, lambda: pods.validate_update(old, new)))
    for label, data, ctype in (("YAML alias bomb", alias_bomb(), "application/yaml"),
                               ("JSON nested 1,000 deep", nested_json(1000), "application/json"),
                               ("YAML nested 5,000 deep (flow)", nested_yaml_flow(5000), "application/yaml"),
                               ("YAML nested 1,000 deep (block)", nested_yaml_block(1000), "application/yaml")):
        results.append(measure(f"refused: {label} ({len(data)} B)", max(args.n // 20, 10),
                               lambda data=data, ctype=ctype: _refused(data, ctype)))
    for r in results:
        print(f"{r['case']:<60} {r['per_op_us']:>8.1f} µs/op  (n={r['n']})")
    if args.out:
        args.out.write_text(json.dumps({"benchmark": "validation", "results": results}, indent=2))


if __name__ == "__main__":
    main()
