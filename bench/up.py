#!/usr/bin/env python3
"""Lab start-up benchmark: time from `labctl up` to every node Ready, and idle memory.

Images must already be built (`labctl images build`); each run uses a unique lab name and
removes the lab afterwards. Prints a table; ``--out FILE`` writes JSON.

    python bench/up.py --topology default --topology large --runs 3 --out bench/results/up.json
"""

from __future__ import annotations

import argparse
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from _common import write_json

ROOT = Path(__file__).resolve().parents[1]


def topology_file(name: str, lab: str, tmp: Path) -> Path:
    doc = yaml.safe_load((ROOT / "topologies" / f"{name}.yaml").read_text())
    doc["name"] = lab
    doc.setdefault("networking", {})["apiServerPort"] = 0  # never collide with a student's lab
    doc.pop("portMappings", None)
    path = tmp / f"{lab}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def memory_mib(container: str) -> float:
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container],
                         capture_output=True, text=True, check=True).stdout.split("/")[0].strip()
    value = float(out[:-3])
    return {"KiB": value / 1024, "MiB": value, "GiB": value * 1024}[out[-3:]]


def one_run(topology: str, tmp: Path, settle: float) -> dict:
    lab = f"bench{uuid.uuid4().hex[:6]}"
    path = topology_file(topology, lab, tmp)
    env = {"KUBECONFIG": str(tmp / "kubeconfig"), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "labctl", "up", "-q", "-t", str(path)], capture_output=True,
                          text=True, env={**env, **dict(__import__("os").environ)})
    seconds = time.perf_counter() - start
    try:
        if proc.returncode != 0:
            raise SystemExit(f"labctl up failed: {proc.stderr}")
        time.sleep(settle)
        mem = {"control_plane_mib": memory_mib(f"{lab}-control-plane")}
        workers = [memory_mib(f"{lab}-worker")] if topology != "single" else []
        if workers:
            mem["worker_mib"] = workers[0]
        return {"seconds": seconds, **mem}
    finally:
        subprocess.run([sys.executable, "-m", "labctl", "down", "--name", lab], capture_output=True,
                       env={**dict(__import__("os").environ), **env})


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--topology", action="append", help="default, single, large (repeatable)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--settle", type=float, default=5.0, help="seconds idle before reading memory")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    results = {"machine": f"{platform.node()} {platform.machine()} {platform.python_version()}",
               "date": time.strftime("%Y-%m-%d"), "runs": args.runs, "topologies": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for topo in args.topology or ["default", "large"]:
            runs = [one_run(topo, Path(tmp), args.settle) for _ in range(args.runs)]
            summary = {"up_to_ready_s_median": round(statistics.median(r["seconds"] for r in runs), 2),
                       "up_to_ready_s_all": [round(r["seconds"], 2) for r in runs],
                       "control_plane_mib": round(statistics.median(r["control_plane_mib"] for r in runs), 1)}
            if "worker_mib" in runs[0]:
                summary["idle_worker_mib"] = round(statistics.median(r["worker_mib"] for r in runs), 1)
            results["topologies"][topo] = summary
            print(f"{topo:8} " + "  ".join(f"{k}={v}" for k, v in summary.items()), flush=True)
    write_json(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
