#!/usr/bin/env python3
"""SIGINT, SIGTERM and SIGHUP at random moments of `labctl up`: how many runs leave anything behind or hang.

The issue's experiment (51 runs of SIGINT: 4 left the lab network and bridge, 1 printed
`RuntimeError: release unlocked lock`, 1 hung for 12 minutes; SIGTERM/SIGHUP left running
nodes), repeated with all three signals. Each run creates a scratch lab (control plane + one
worker) with a unique name, sends the signal a random moment after `up` starts creating it
(spread evenly over --span seconds; by default the duration of one
uninterrupted `up` measured first), waits at most --timeout seconds for it to exit, then
looks for anything left: containers, networks, volumes labelled with the lab, its host bridge,
its kubeconfig context. A run whose `up` finished before the signal counts as "completed" and
its lab is removed. Prints a table; ``--out FILE`` writes JSON.

    python bench/up_signals.py --runs 50 --out bench/results/up_signals.json
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_json

from labctl.cluster.scratch import Interrupted, interrupt_up, unique_name, write_topology

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def outcome(run: Interrupted) -> str:
    if run.returncode is None:
        return "hung"
    if run.completed:
        return "completed"
    if run.rolled_back:
        return "rolled back"
    if run.left:
        return "left objects"
    return "traceback" if "Traceback" in run.stderr else "other exit"


def step_hit(stderr: str) -> str:
    """The step of `up` the signal interrupted: the last one begun before the roll-back's."""
    steps = [line.strip(" •.\n") for line in stderr.splitlines() if line.startswith(" • ")]
    steps = [step for step in steps if not step.startswith("Removing what was made")]
    return steps[-1].rstrip(" .").split(" (")[0] if steps else "(before the first step)"


def measure_up() -> float:
    """Seconds one uninterrupted `labctl up` of the same scratch lab takes (from its first line)."""
    with tempfile.TemporaryDirectory(prefix="up-signals-") as tmp:
        name = unique_name("sig")
        topology = write_topology(Path(tmp) / "t.yaml", name, workers=1)
        env = {**os.environ, "KUBECONFIG": str(Path(tmp) / "kubeconfig")}
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "labctl", "up", "-q", "-t", str(topology)], check=True, env=env,
                       capture_output=True)
        took = time.monotonic() - started
        subprocess.run([sys.executable, "-m", "labctl", "down", "--name", name], env=env, capture_output=True)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--span", type=float, default=None,
                        help="signal moments spread over 0..SPAN seconds (default: one measured `up`)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds after the signal that count as a hang")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    span = args.span if args.span is not None else measure_up()
    print(f"signal moments spread over 0..{span:.1f} s", flush=True)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    moments = [rng.uniform(i * span / args.runs, (i + 1) * span / args.runs) for i in range(args.runs)]
    rng.shuffle(moments)
    rows = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="up-signals-") as tmp:
        for i, delay in enumerate(moments):
            sig = SIGNALS[i % len(SIGNALS)]
            name = unique_name("sig")
            run = interrupt_up(name, Path(tmp), sig, delay, timeout=args.timeout)
            result = outcome(run)
            if result != "rolled back":  # the next run starts clean, whatever this one did
                subprocess.run([sys.executable, "-m", "labctl", "down", "--name", name], capture_output=True,
                               env={**os.environ, "KUBECONFIG": str(Path(tmp) / "kubeconfig")})
            step = step_hit(run.stderr) if not run.completed else "(finished)"
            rows.append({"signal": run.signal, "delay_s": round(delay, 2), "outcome": result, "step": step,
                         "exit": run.returncode, "exit_after_s": round(run.seconds, 2), "left": run.left,
                         "stderr_tail": run.stderr[-600:] if result not in ("rolled back", "completed") else ""})
            print(f"{i + 1:3}/{len(moments)} {run.signal:7} at {delay:5.1f}s: {result:12} "
                  f"exit {run.returncode} after {run.seconds:.1f}s, in {step!r} "
                  f"{'' if run.completed else run.left or ''}", flush=True)

    print(f"\n{'signal':8} {'runs':>5} {'rolled back':>12} {'completed':>10} {'left objects':>13} {'hung':>5} "
          f"{'other':>6} {'exit p50/max':>14}")
    summary = {}
    for name in [s.name for s in SIGNALS] + ["all"]:
        mine = [r for r in rows if name in ("all", r["signal"])]
        counts = {k: sum(r["outcome"] == k for r in mine) for k in ("rolled back", "completed", "left objects",
                                                                       "hung")}
        other = len(mine) - sum(counts.values())
        exits = [r["exit_after_s"] for r in mine if r["outcome"] == "rolled back"]
        p50 = statistics.median(exits) if exits else 0.0
        worst = max(exits) if exits else 0.0
        summary[name] = {"runs": len(mine), **counts, "other": other, "exit_p50_s": p50, "exit_max_s": worst}
        print(f"{name:8} {len(mine):5} {counts['rolled back']:12} {counts['completed']:10} "
              f"{counts['left objects']:13} {counts['hung']:5} {other:6} {p50:6.1f}/{worst:5.1f} s")
    steps: dict[str, int] = {}
    for r in rows:
        steps[r["step"]] = steps.get(r["step"], 0) + 1
    print("\nsteps interrupted: " + ", ".join(f"{k} ×{v}" for k, v in sorted(steps.items(), key=lambda kv: -kv[1])))
    write_json(args.out, {"seed": seed, "span_s": round(span, 1), "machine": platform.platform(),
                          "cores": os.cpu_count(), "load": os.getloadavg(), "date": time.strftime("%Y-%m-%d"),
                          "wall_s": round(time.monotonic() - started, 1), "summary": summary, "steps": steps,
                          "runs": rows})


if __name__ == "__main__":
    main()
