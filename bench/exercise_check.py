#!/usr/bin/env python3
"""Grading speed: the time of ``labctl exercise check`` per exercise (goal: p50 across the pack ≤ 1 s).

For each exercise: ``start`` it, time ``--runs`` checks of the do-nothing attempt, apply the
reference solution, time ``--runs`` checks of the solved one. Two figures per check:

* **grade** — :func:`labctl.exercises.session.check` in this process (open the lab, read the
  state, one snapshot, every check; HTTP from the nodes and the host included);
* **cli** — the whole ``labctl exercise check --json`` command, as a student runs it
  (Python start-up and imports included).

The during probes' own duration (they run for as long as the student works) is not part of
a check: a check reads the probe's last result. Creates a scratch lab unless ``--name``.

    python bench/exercise_check.py --out bench/results/exercise_check.json
"""

from __future__ import annotations

import argparse
import asyncio
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

from labctl.cluster import Lab  # noqa: E402
from labctl.exercises import session  # noqa: E402
from labctl.exercises.loader import list_definitions  # noqa: E402


def time_checks(lab: Lab, runs: int) -> tuple[list[float], list[float], bool]:
    """(grade seconds, cli seconds, passed) over ``runs`` checks."""
    grades, clis, passed = [], [], False
    for _ in range(runs):
        started = time.perf_counter()
        result = asyncio.run(session.check(lab))
        grades.append(time.perf_counter() - started)
        passed = result.passed
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "labctl", "exercise", "check", "--json", "--name", lab.name],
                       capture_output=True, check=False)
        clis.append(time.perf_counter() - started)
    return grades, clis, passed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", help="an existing lab (default: a scratch lab, removed after)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    rows = []
    with existing_or_scratch_lab(args.name, "bx") as (lab, _created):
        for definition in list_definitions():
            asyncio.run(session.start(lab, definition.id))
            g0, c0, p0 = time_checks(lab, args.runs)
            asyncio.run(session.solve(lab, definition.id))
            g1, c1, p1 = time_checks(lab, args.runs)
            row = {"exercise": definition.id, "grade_p50": statistics.median(g0 + g1),
                   "cli_p50": statistics.median(c0 + c1), "grade_max": max(g0 + g1), "cli_max": max(c0 + c1),
                   "untouched_passed": p0, "solved_passed": p1}
            rows.append(row)
            print(f"{definition.id:26} grade p50 {row['grade_p50']*1000:6.0f} ms (max {row['grade_max']*1000:5.0f})"
                  f"   cli p50 {row['cli_p50']*1000:6.0f} ms (max {row['cli_max']*1000:5.0f})"
                  f"   do-nothing {'passed?!' if p0 else 'fails'}, solved {'passes' if p1 else 'FAILS'}", flush=True)
    summary = {"grade_p50_across_pack": statistics.median(r["grade_p50"] for r in rows),
               "cli_p50_across_pack": statistics.median(r["cli_p50"] for r in rows)}
    print(f"\np50 across the pack: grade {summary['grade_p50_across_pack']*1000:.0f} ms, "
          f"cli {summary['cli_p50_across_pack']*1000:.0f} ms (goal ≤ 1000 ms)")
    write_json(args.out, {"machine": platform.platform(), "cpus": os.cpu_count(), "load": os.getloadavg(),
                          "runs": args.runs, "exercises": rows, **summary})


if __name__ == "__main__":
    main()
