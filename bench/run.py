#!/usr/bin/env python3
"""Run every benchmark under ``bench/`` and rewrite ``docs/benchmarks.md``'s generated section.

Each script runs as its own process with ``--out bench/results/<script>.json`` and a time
limit; one that fails or times out is reported as such on the page, and the run goes on.
``--quick`` gives every script sizes that make the whole set fit in 15 minutes on two cores
(and leaves out the three that cannot: a cold image build, the fault drills, the signal
experiment — run them with ``--full`` or on their own). The benchmarks that need a running
lab (``pod_startup.py``) share one scratch lab made here and removed at the end.

The page's figures are rendered by ``bench/report.py`` from the JSON files alone (the plots
go to ``docs/benchmarks/``), so ``--render-only`` re-renders a page from an earlier run.

    bench/run --quick            # ≈ 15 min on 2 cores
    bench/run --only up --only apiserver
    bench/run --render-only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from report import load_results, render_section, splice

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
PAGE = ROOT / "docs" / "benchmarks.md"
IMAGES = ROOT / "docs" / "benchmarks"


@dataclass(frozen=True)
class Benchmark:
    """A script, its arguments for ``--quick`` and for a full run (``None``: not run in that mode)."""

    script: str
    quick: list[str] | None
    full: list[str] | None = field(default_factory=list)
    timeout: float = 300.0
    lab: bool = False  # gets ``--cluster NAME --kubeconfig FILE`` of the shared scratch lab

    @property
    def name(self) -> str:
        return self.script.removesuffix(".py")


#: every script under bench/, in the order they run (the quick sizes were timed on the 2-core machine)
BENCHMARKS = [
    Benchmark("up.py", ["--topology", "default", "--runs", "3", "--settle", "3"], ["--topology", "default",
              "--topology", "single", "--topology", "large", "--runs", "5"], timeout=420),
    Benchmark("apiserver.py", ["--objects", "1000", "--events", "500"], timeout=240),
    Benchmark("pod_startup.py", ["--sizes", "1", "10", "50", "--pause", "3"], timeout=420, lab=True),
    Benchmark("rollout.py", ["--lab", "--sizes", "4,20", "--deletes", "20"], ["--lab"], timeout=600),
    Benchmark("cni_add.py", ["--pods", "10", "--flavours", "labctl-daemon,reference"], timeout=240),
    Benchmark("proxy_sync.py", ["--sizes", "10,100,1000", "--repeat", "1"], timeout=300),
    Benchmark("netpol_sync.py", ["--policies", "50", "--repeat", "2"], timeout=240),
    Benchmark("scheduler_burst.py", [], timeout=180),
    Benchmark("dns.py", ["--services", "200", "--queries", "3000"], timeout=180),
    Benchmark("services_latency.py", ["--requests", "300", "--seconds", "2"], timeout=240),
    Benchmark("ingress_latency.py", ["--requests", "300", "--seconds", "2"], timeout=240),
    Benchmark("portforward.py", ["--mb", "32", "--requests", "50", "--rounds", "2"], timeout=240),
    Benchmark("podproxy.py", ["--rounds", "3", "--log-mb", "5"], timeout=180),
    Benchmark("net.py", ["--pods", "20", "--repeat", "5"], timeout=240),
    Benchmark("trace.py", ["--repeat", "3"], timeout=240),
    Benchmark("exercise_check.py", ["--runs", "1"], timeout=420),
    Benchmark("tui.py", ["--presses", "100", "--idle", "5", "--runs", "1"], timeout=240),
    Benchmark("bench_openapi_patch.py", [], timeout=120),
    Benchmark("bench_protobuf.py", ["--rounds", "500"], timeout=120),
    Benchmark("bench_selectors_printers.py", ["--pods", "1000"], timeout=120),
    Benchmark("bench_validation.py", ["--n", "500"], timeout=120),
    Benchmark("serviceaccount_tokens.py", ["--repeat", "500"], timeout=120),
    Benchmark("images_build.py", None, [], timeout=900),        # rebuilds images: minutes
    Benchmark("faults.py", None, [], timeout=1800),             # ten faults, up to 90 s each
    Benchmark("up_signals.py", None, ["--runs", "20"], timeout=1800),  # a lab per run
]
#: under bench/ but not a benchmark of this tree on its own
NOT_RUN = {"apiserver_ab.py": "compares two source trees (give it both)", "_common.py": "helpers",
           "report.py": "renders the page", "run.py": "this"}


def machine() -> dict[str, str]:
    """CPU model and cores, memory, kernel, Docker and Python versions."""
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
                 platform.processor() or "?")
    mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal"))
    docker = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"], capture_output=True,
                            text=True).stdout.strip() or "?"
    return {"cpu": model, "cores": str(os.cpu_count()), "memory": f"{mem_kib / 2**20:.0f} GiB",
            "kernel": platform.release(), "docker": docker, "python": platform.python_version()}


class SharedLab:
    """One scratch lab (1 control plane + 2 workers) for the benchmarks that need a running one."""

    def __init__(self) -> None:
        from labctl.cluster.scratch import unique_name, write_topology

        self.name = unique_name("bench")
        self.dir = Path(tempfile.mkdtemp(prefix="bench-run-"))
        self.kubeconfig = self.dir / "kubeconfig"
        self.env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        self.topology = write_topology(self.dir / "topology.yaml", self.name)
        self.up = False

    def args(self) -> list[str]:
        if not self.up:
            subprocess.run([sys.executable, "-m", "labctl", "up", "-q", "-t", str(self.topology)], env=self.env,
                           check=True, timeout=300)
            self.up = True
        return ["--cluster", self.name, "--kubeconfig", str(self.kubeconfig)]

    def remove(self) -> None:
        if self.up:
            subprocess.run([sys.executable, "-m", "labctl", "down", "-q", "--name", self.name], env=self.env)


def run_one(bench: Benchmark, args: list[str], lab: SharedLab) -> dict:
    out = RESULTS / f"{bench.name}.json"
    argv = [*args, *(lab.args() if bench.lab else []), "--out", str(out)]
    print(f"== bench/{bench.script} {' '.join(argv)}", flush=True)
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, str(BENCH / bench.script), *argv], timeout=bench.timeout, cwd=ROOT)
        outcome = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    except subprocess.TimeoutExpired:
        outcome = f"timed out after {bench.timeout:.0f} s"
    return {"script": bench.script, "args": args, "seconds": round(time.monotonic() - start, 1), "outcome": outcome}


def render(run: dict) -> None:
    section = render_section(load_results(RESULTS), run, IMAGES, "benchmarks")
    PAGE.write_text(splice(PAGE.read_text(), section))
    print(f"wrote {PAGE.relative_to(ROOT)} and its plots in {IMAGES.relative_to(ROOT)}/")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="sizes that fit in 15 minutes on 2 cores")
    mode.add_argument("--full", action="store_true", help="each script's own default sizes, and the long ones")
    p.add_argument("--only", action="append", help="run only this benchmark (script name without .py; repeatable)")
    p.add_argument("--render-only", action="store_true", help="re-render the page from bench/results/ and run.json")
    args = p.parse_args()
    RESULTS.mkdir(parents=True, exist_ok=True)
    run_file = RESULTS / "run.json"
    if args.render_only:
        render(json.loads(run_file.read_text()) if run_file.exists() else {})
        return 0
    run: dict = {"date": time.strftime("%Y-%m-%d"), "quick": not args.full, "machine": machine(),
                 "load": {"start": list(os.getloadavg())}, "benchmarks": []}
    started = time.monotonic()
    lab = SharedLab()
    try:
        for bench in BENCHMARKS:
            wanted = bench.full if args.full else bench.quick
            if args.only and bench.name not in args.only:
                continue
            if wanted is None:
                run["benchmarks"].append({"script": bench.script, "args": [], "seconds": 0,
                                          "outcome": "not in --quick (run it with --full or on its own)"})
                continue
            run["benchmarks"].append(run_one(bench, wanted, lab))
    finally:
        lab.remove()
    run["load"]["end"] = list(os.getloadavg())
    run["seconds"] = round(time.monotonic() - started, 1)
    run_file.write_text(json.dumps(run, indent=2) + "\n")
    render(run)
    return 0 if all(b["outcome"].startswith(("ok", "not in")) for b in run["benchmarks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
