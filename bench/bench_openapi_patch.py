"""Speed of the OpenAPI documents and the patch engines.

The first ``/openapi/v3`` request pays for loading the documents; every ``kubectl apply``,
``edit``, ``scale`` or ``label`` then costs one strategic merge patch on the server.

    python bench/bench_openapi_patch.py [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _common import per_second

from labctl.apiserver import openapi
from labctl.apiserver.patch import json_patch, merge_patch, strategic_merge_patch


def deployment(containers: int) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "front"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                         {"name": f"c{i}", "image": "nginx:1.25", "ports": [{"containerPort": 8000 + i}],
                          "env": [{"name": f"E{j}", "value": str(j)} for j in range(10)]}
                         for i in range(containers)]}}}}


def apply_patch(containers: int) -> dict:
    """What ``kubectl apply`` sends after changing one image and removing one env var."""
    order = [{"name": f"c{i}"} for i in range(containers)]
    return {"metadata": {"labels": {"tier": None}}, "spec": {"template": {"spec": {
        "$setElementOrder/containers": order,
        "containers": [{"name": "c0", "image": "nginx:1.27", "$setElementOrder/env": [{"name": f"E{j}"} for j in range(9)],
                        "env": [{"$patch": "delete", "name": "E9"}]}]}}}}




def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the figures as JSON to FILE")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    openapi.v3_index()
    load_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    openapi.patch_meta("v1", "Pod")
    schemas_ms = (time.perf_counter() - start) * 1000
    small, large = deployment(2), deployment(20)
    ops = json.dumps([{"op": "replace", "path": "/spec/replicas", "value": 5}]).encode()
    def smp(obj: dict, patch: dict) -> dict:
        return strategic_merge_patch(obj, patch, "apps/v1", "Deployment")

    figures = {
        "load_documents_ms": round(load_ms, 1),
        "index_schemas_ms": round(schemas_ms, 1),
        "smp_apply_2_containers_per_s": round(per_second(lambda: smp(small, apply_patch(2)))),
        "smp_apply_20_containers_per_s": round(per_second(lambda: smp(large, apply_patch(20)))),
        "smp_scale_per_s": round(per_second(lambda: smp(small, {"spec": {"replicas": 5}}))),
        "merge_patch_per_s": round(per_second(lambda: merge_patch(small, {"spec": {"replicas": 5}}))),
        "json_patch_per_s": round(per_second(lambda: json_patch(small, ops))),
    }
    for name, value in figures.items():
        print(f"{name:32} {value}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
