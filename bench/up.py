#!/usr/bin/env python3
"""``labctl up`` until cluster DNS answers from a pod, its floor, ``labctl down``, idle memory.

Images must already be built (``labctl images build``); each run uses a unique lab name and
removes the lab afterwards. Per run:

- **up**: the whole ``labctl up`` process (Python's start, imports, PKI, Docker, the wait for
  the nodes and for cluster DNS), from spawning it to its exit; its steps' own times
  (the `` ✓ step (1.2s)`` lines) are the *phases* (``cli`` is what no step covers: Python's
  start and imports, loading the topology);
- **pod DNS**: right after ``up`` returns, a busybox pod runs ``nslookup kubernetes`` (what a
  student types first); ``dns_from_pod_ok`` says whether that first try answered, and
  ``to_pod_answer_s`` is ``up`` plus that pod's whole run;
- **floor**: in the same run, ``docker run -d`` of the same node image, as many containers as
  the lab has nodes, at once, with a no-op command: what Docker alone needs to start the
  node containers, and less than any lab can take;
- **CPU**: the CPU-seconds spent until ``up`` returned, which the load of a shared machine
  changes far less than the wall clock: ``lab_cpu_s`` is every container of the lab (nodes
  and pods: their cgroups' usage, read the moment ``up`` exits; absent where the cgroups
  cannot be read), ``cli_cpu_s`` the ``up`` process itself, ``engine_cpu_s`` the Docker engine's
  processes (dockerd, containerd, the containers' shims and their runc; on a shared machine
  other work's containers too, so read it on a quiet one). Their sum over the cores is the
  least wall-clock time that CPU could take;
- **down**: the whole ``labctl down -q`` process; **memory**: ``docker stats`` of the control
  plane and a worker after ``--settle`` idle seconds.

Prints a table and the load average; ``--out FILE`` writes JSON (shape: :data:`SHAPE`).

    python bench/up.py --topology default --runs 3 --out bench/results/up.json
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from _common import write_json

ROOT = Path(__file__).resolve().parents[1]
GOAL_UP_S = 2.0
GOAL_DOWN_S = 1.5
#: seconds the first pod's ``kubectl run`` may take before it counts as hung
POD_TIMEOUT = 60.0

#: The JSON written by ``--out`` (what ``bench/report.py`` reads).
SHAPE = """{"benchmark": "up", "date": "YYYY-MM-DD", "cores": 2, "load_before": [1m, 5m, 15m], "load_after": [...],
 "topologies": {"default": {"nodes": 3, "goal_s": 2.0, "up_s_median": 1.9, "floor_s_median": 0.6, "ratio": 3.2,
   "down_s_median": 1.1, "down_goal_s": 1.5, "dns_from_pod_ok": true, "to_pod_answer_s_median": 2.6,
   "lab_cpu_s_median": 3.1, "cli_cpu_s_median": 0.9, "engine_cpu_s_median": 0.8,
   "control_plane_mib": 131, "idle_worker_mib": 56, "phases_median": {"images": 0.1, "plan": 0.05, ...},
   "runs": [{"up_s": ..., "floor_s": ..., "down_s": ..., "phases": {...}, "dns_from_pod_ok": true, ...}]}}}"""

#: the `up` step lines' start (the longest that fits) → a short phase name
PHASES = {"Ensuring lab images": "images", "Choosing the lab network": "plan+pki", "Creating lab network": "network",
          "Creating ": "create", "Starting nodes": "start", "Waiting for ": "nodes ready",
          "Installing cluster add-ons": "add-ons", "Waiting for cluster DNS": "dns", "Writing kubeconfig": "kubeconfig"}
STEP = re.compile(r"^ ✓ (?P<what>.*) \((?P<s>[\d.]+)s\)$")
#: what ``up`` itself says at the end: its clock starts after Python's start and the CLI's imports
SAYS = re.compile(r"is ready in (?P<s>[\d.]+)s")


def topology_file(name: str, lab: str, tmp: Path) -> tuple[Path, int, str]:
    """The shipped topology renamed to ``lab`` on a free API port; its path, node count and node image."""
    doc = yaml.safe_load((ROOT / "labctl" / "topologies_data" / f"{name}.yaml").read_text())
    doc["name"] = lab
    doc.setdefault("networking", {})["apiServerPort"] = 0  # never collide with a student's lab
    doc.pop("portMappings", None)
    path = tmp / f"{lab}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path, len(doc.get("nodes") or [{}]), doc.get("nodeImage", "")


def phases_of(stderr: str, total: float) -> dict[str, float]:
    """``{phase: seconds}`` from ``up``'s step lines; ``cli`` is the rest of ``total``."""
    found: dict[str, float] = {}
    for line in stderr.splitlines():
        m = STEP.match(line)
        if not m:
            continue
        starts = [start for start in PHASES if m["what"].startswith(start)]
        name = PHASES[max(starts, key=len)] if starts else m["what"][:20]
        found[name] = found.get(name, 0.0) + float(m["s"])
    found["cli"] = max(0.0, total - sum(found.values()))
    return {k: round(v, 3) for k, v in found.items()}


def memory_mib(container: str) -> float:
    out = subprocess.run(["docker", "stats", "--no-stream", "--format", "{{.MemUsage}}", container],
                         capture_output=True, text=True, check=True).stdout.split("/")[0].strip()
    value = float(out[:-3])
    return {"KiB": value / 1024, "MiB": value, "GiB": value * 1024}[out[-3:]]


def lab_cpu_seconds(lab: str) -> float | None:
    """CPU-seconds used so far by every running container of ``lab`` (cgroup v1 or v2), or None."""
    ids = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter", f"label=io.labctl.cluster={lab}"],
                         capture_output=True, text=True, check=True).stdout.split()
    total = 0.0
    for cid in ids:
        v1 = Path(f"/sys/fs/cgroup/cpuacct/docker/{cid}/cpuacct.usage")
        v2 = [Path(f"/sys/fs/cgroup/system.slice/docker-{cid}.scope/cpu.stat"),
              Path(f"/sys/fs/cgroup/docker/{cid}/cpu.stat")]
        try:
            if v1.exists():
                total += int(v1.read_text()) / 1e9
                continue
            stat = next(p for p in v2 if p.exists()).read_text().split()
            total += int(stat[stat.index("usage_usec") + 1]) / 1e6
        except (OSError, StopIteration, ValueError):
            return None
    return round(total, 3) if ids else None


ENGINE = ("dockerd", "containerd", "containerd-shim", "docker-proxy")  # /proc/PID/comm, 15 characters at most


def engine_cpu() -> dict[int, float]:
    """CPU-seconds so far of each Docker engine process (the daemons, every container's shim with the
    ``runc`` it waited for, the port proxies), by PID: what the lab costs outside its own cgroups."""
    tick = os.sysconf("SC_CLK_TCK")
    used: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        comm, fields = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if comm.startswith(ENGINE):
            used[int(stat.parent.name)] = sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
    return used


def engine_cpu_since(before: dict[int, float]) -> float:
    """CPU-seconds the engine spent since ``before`` (processes started since count whole; a shim that
    already exited is lost, so this is a lower bound)."""
    return round(sum(t - before.get(pid, 0.0) for pid, t in engine_cpu().items()), 3)


def node_image() -> str:
    """The node image ``up`` runs (its content-hash tag), built first when missing: a run
    times ``up`` with its images built, as the goal says."""
    out = subprocess.run([sys.executable, "-m", "labctl", "images", "build"], capture_output=True, text=True,
                         check=True).stdout
    return next(line.split()[1] for line in out.splitlines() if line.split()[:1] == ["node"])


def floor_run(image: str, count: int) -> float:
    """Seconds for ``docker run -d`` of ``count`` no-op containers of ``image`` at once (then removed)."""
    names = [f"upfloor{uuid.uuid4().hex[:8]}" for _ in range(count)]

    def run(name: str) -> None:
        subprocess.run(["docker", "run", "-d", "--name", name, "--entrypoint", "true", image],
                       capture_output=True, check=True)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(run, names))
    took = time.perf_counter() - start
    subprocess.run(["docker", "rm", "-f", *names], capture_output=True)
    return took


def pod_nslookup(env: dict[str, str], lab: str) -> tuple[bool, float, str]:
    """A student's first command after ``up``: (answered, seconds of the whole ``kubectl run``, its output)."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(["kubectl", "--context", f"labctl-{lab}", "run", "dnsfirst", "--image=busybox", "--rm",
                               "-i", "--restart=Never", "--", "nslookup", "kubernetes"],
                              capture_output=True, text=True, env=env, timeout=POD_TIMEOUT)
    except subprocess.TimeoutExpired as hung:  # seen: the attach to a pod that already finished
        out = (hung.stdout or b"").decode() if isinstance(hung.stdout, bytes) else (hung.stdout or "")
        return False, time.perf_counter() - start, f"kubectl run hung for {POD_TIMEOUT:.0f} s; output: {out!r}"
    answered = proc.returncode == 0 and "10.96.0.1" in proc.stdout
    return answered, time.perf_counter() - start, "" if answered else proc.stdout + proc.stderr


def one_run(topology: str, tmp: Path, settle: float, image: str) -> dict:
    lab = f"bench{uuid.uuid4().hex[:6]}"
    path, count, _ = topology_file(topology, lab, tmp)
    env = {**os.environ, "KUBECONFIG": str(tmp / "kubeconfig")}
    floor = floor_run(image, count)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    engine = engine_cpu()
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "labctl", "up", "-t", str(path)], capture_output=True,
                          text=True, env=env)
    seconds = time.perf_counter() - start
    lab_cpu = lab_cpu_seconds(lab)
    engine_cpu_s = engine_cpu_since(engine)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cli_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    result: dict = {}
    try:
        if proc.returncode != 0:
            raise SystemExit(f"labctl up failed: {proc.stderr}")
        answered, pod_s, trouble = pod_nslookup(env, lab)
        says = SAYS.search(proc.stderr)
        result |= {"up_s": round(seconds, 3), "says_s": float(says["s"]) if says else 0.0,
                   "floor_s": round(floor, 3), "phases": phases_of(proc.stderr, seconds),
                  "dns_from_pod_ok": answered, "to_pod_answer_s": round(seconds + pod_s, 3),
                  "cli_cpu_s": round(cli_cpu, 3), "engine_cpu_s": engine_cpu_s}
        if lab_cpu is not None:
            result["lab_cpu_s"] = lab_cpu
        if trouble:
            result["dns_from_pod_trouble"] = trouble
        time.sleep(settle)
        result["control_plane_mib"] = memory_mib(f"{lab}-control-plane")
        if count > 1:
            result["worker_mib"] = memory_mib(f"{lab}-worker")
        return result
    finally:
        start = time.perf_counter()
        down = subprocess.run([sys.executable, "-m", "labctl", "down", "-q", "--name", lab], capture_output=True,
                              text=True, env=env)
        if down.returncode == 0 and not down.stderr:
            result["down_s"] = round(time.perf_counter() - start, 3)


def summarise(runs: list[dict], count: int) -> dict:
    def median(key: str) -> float:
        return round(statistics.median(r[key] for r in runs if key in r), 3)

    phases = {name: round(statistics.median(r["phases"].get(name, 0.0) for r in runs), 3)
              for name in dict.fromkeys(n for r in runs for n in r["phases"])}
    out = {"nodes": count, "goal_s": GOAL_UP_S, "up_s_median": median("up_s"), "says_s_median": median("says_s"),
           "floor_s_median": median("floor_s"),
           "down_goal_s": GOAL_DOWN_S, "dns_from_pod_ok": all(r["dns_from_pod_ok"] for r in runs),
           "to_pod_answer_s_median": median("to_pod_answer_s"), "control_plane_mib": round(median("control_plane_mib"), 1),
           "phases_median": phases, "runs": runs}
    out["ratio"] = round(out["up_s_median"] / out["floor_s_median"], 2) if out["floor_s_median"] else None
    out["cli_cpu_s_median"] = median("cli_cpu_s")
    if any("engine_cpu_s" in r for r in runs):
        out["engine_cpu_s_median"] = median("engine_cpu_s")
    if any("lab_cpu_s" in r for r in runs):
        out["lab_cpu_s_median"] = median("lab_cpu_s")
    if any("down_s" in r for r in runs):
        out["down_s_median"] = median("down_s")
    if any("worker_mib" in r for r in runs):
        out["idle_worker_mib"] = round(median("worker_mib"), 1)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--topology", action="append", help="default, single, large (repeatable; default: default)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--settle", type=float, default=5.0, help="seconds idle before reading memory")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    image = node_image()
    results: dict = {"benchmark": "up", "date": time.strftime("%Y-%m-%d"), "cores": os.cpu_count(),
                     "load_before": list(os.getloadavg()),
                     "topologies": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for topo in args.topology or ["default"]:
            count = topology_file(topo, "x", Path(tmp))[1]
            runs = [one_run(topo, Path(tmp), args.settle, image) for _ in range(args.runs)]
            summary = results["topologies"][topo] = summarise(runs, count)
            print(f"{topo:8} up {summary['up_s_median']:.2f}s (it says {summary['says_s_median']:.1f}s; all "
                  f"{[r['up_s'] for r in runs]}), floor "
                  f"{summary['floor_s_median']:.2f}s, ratio {summary['ratio']}×, goal ≤ {GOAL_UP_S}s; "
                  f"down {summary.get('down_s_median')}s (goal ≤ {GOAL_DOWN_S}s); first pod nslookup "
                  f"{'answered' if summary['dns_from_pod_ok'] else 'FAILED'}; memory control plane "
                  f"{summary['control_plane_mib']} MiB, worker {summary.get('idle_worker_mib')} MiB", flush=True)
            print(f"         CPU until up returned (median): lab {summary.get('lab_cpu_s_median')} s, "
                  f"up's process {summary['cli_cpu_s_median']} s, Docker engine {summary.get('engine_cpu_s_median')} s "
                  f"(on {os.cpu_count()} cores)", flush=True)
            print("         phases (median s): " + ", ".join(f"{k} {v:.2f}" for k, v in summary["phases_median"].items()))
    results["load_after"] = list(os.getloadavg())
    print(f"load average: {' '.join(f'{v:.1f}' for v in results['load_before'])} before, "
          f"{' '.join(f'{v:.1f}' for v in results['load_after'])} after")
    write_json(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
