#!/usr/bin/env python3
"""CNI ADD/DEL latency: labctl-bridge + labctl-host-local vs the reference bridge + host-local.

Runs each plugin pair exactly as a runtime would (exec, env, stdin) inside a
throwaway "node" netns against N fresh pod netns, one pod at a time, and
prints p50/p99 per command and labctl's ADD p50 over the reference's (goal: ≤ 2).
Needs root. ``--out FILE`` writes the figures as JSON.

Flavours: ``labctl-daemon`` (what a node runs: the executables are thin clients in
Perl (:func:`labctl.cni.shim.client_script`) of a CNI daemon serving in the node netns,
which does the work over netlink), ``labctl-nosite`` (the plugins doing the work
themselves, as without a daemon: ``python -S``, ``ip`` commands, IPAM exec'd),
``labctl`` (the same as pip's console scripts: ``site`` and every ``.pth`` file run
first) and ``reference`` (Debian's Go ``bridge`` + ``host-local``).
``--concurrent N`` also times N ADDs started at once (a node starting N pods).

    sudo python3 bench/cni_add.py --pods 30 --concurrent 20 --out /tmp/cni-bench.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labctl.cni import shim  # noqa: E402

REFERENCE_DIR = Path("/usr/lib/cni")
FLAVOURS = {"labctl-daemon": ("labctl-bridge", "labctl-host-local"),
            "labctl": ("labctl-bridge", "labctl-host-local"),
            "labctl-nosite": ("labctl-bridge-S", "labctl-host-local-S"),
            "reference": ("bridge", "host-local")}
DAEMON = "labctl-daemon"
PLUGIN_MODULES = {"labctl-bridge": "labctl.cni.bridge", "labctl-host-local": "labctl.cni.ipam.plugin"}


def netconf(bridge_type: str, ipam_type: str, data_dir: str) -> bytes:
    """The node agent's network config with the given plugin types."""
    return json.dumps({
        "cniVersion": "1.0.0", "name": "labctl", "type": bridge_type, "bridge": "cni0", "isGateway": True,
        "ipMasq": False, "hairpinMode": True, "mtu": 1500,
        "ipam": {"type": ipam_type, "ranges": [[{"subnet": "10.244.1.0/24", "gateway": "10.244.1.1"}]],
                 "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data_dir},
    }).encode()


def make_cni_path(d: Path) -> None:
    """labctl wrappers (what the console scripts will be), ``-S`` variants, links to the reference plugins."""
    for name, module in PLUGIN_MODULES.items():
        for suffix, flags in (("", ""), ("-S", " -S")):
            (d / f"{name}{suffix}").write_text(f"#!{sys.executable}{flags}\nimport sys\n"
                                               f"sys.path.insert(0, {str(REPO)!r})\nfrom {module} import main\nmain()\n")
            (d / f"{name}{suffix}").chmod(0o755)
    for name in ("bridge", "host-local"):
        (d / name).symlink_to(REFERENCE_DIR / name)


@contextlib.contextmanager
def daemon_for(flavour: str, node: str, work: Path, shared: Path) -> Iterator[tuple[Path, int | None]]:
    """The flavour's CNI_PATH and daemon pid; for ``labctl-daemon`` thin clients of a daemon started in ``node``."""
    if flavour != DAEMON:
        yield shared, None
        return
    d = Path(tempfile.mkdtemp(prefix="d", dir=work))
    sock = str(d / "s")  # unix socket paths are limited to 108 bytes
    for name, module in PLUGIN_MODULES.items():
        (d / name).write_text(shim.client_script(name, module, sock, sys.executable, str(REPO)))
        (d / name).chmod(0o755)
    proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{node}", sys.executable, "-m", "labctl.cni.daemon", sock],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            cwd=REPO)  # `-m` puts the current directory first on sys.path: this REPO's daemon
    try:
        if proc.stdout is None or not proc.stdout.readline().startswith("listening"):
            raise SystemExit("ERROR: the CNI daemon did not start")
        yield d, proc.pid  # nsenter execs the daemon: same pid
    finally:
        proc.terminate()
        proc.wait()


def process_cpu(pid: int | None) -> float:
    """user+sys seconds of process ``pid`` so far (0 without one)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def call(cni_path: Path, node: str, plugin: str, command: str, cid: str, netns: str, conf: bytes,
         daemon_pid: int | None = None) -> tuple[float, float]:
    """One plugin call inside the node netns; return (wall, CPU) seconds.

    CPU is user+sys of every process the call ran (plugin, IPAM, ip, nsenter) and, with
    a daemon, what the daemon spent meanwhile: it barely depends on how loaded the shared
    machine is, unlike wall time. The daemon's share is counted in clock ticks (10 ms), so
    compare its CPU by the mean over the calls, not the p50.
    """
    daemon_before = process_cpu(daemon_pid)
    env = {"PATH": os.environ.get("PATH", ""), "CNI_COMMAND": command, "CNI_CONTAINERID": cid,
           "CNI_NETNS": netns, "CNI_IFNAME": "eth0", "CNI_PATH": str(cni_path)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(["nsenter", f"--net=/run/netns/{node}", str(cni_path / plugin)], input=conf, env=env,
                          capture_output=True)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"ERROR: {plugin} {command} failed: {proc.stdout.decode()} {proc.stderr.decode()}")
    daemon_cpu = process_cpu(daemon_pid) - daemon_before
    return elapsed, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime) + daemon_cpu


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(runs: list[tuple[float, float]]) -> dict[str, float]:
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    return {"p50_ms": percentile(walls, 0.5) * 1e3, "p99_ms": percentile(walls, 0.99) * 1e3,
            "min_ms": min(walls) * 1e3, "mean_ms": statistics.fmean(walls) * 1e3,
            "cpu_p50_ms": percentile(cpus, 0.5) * 1e3, "cpu_mean_ms": statistics.fmean(cpus) * 1e3, "n": len(runs)}


def bench_flavours(flavours: list[str], pods: int, cni_path: Path, work: Path) -> dict[str, dict[str, Any]]:
    """ADD then DEL ``pods`` pods per flavour, one call at a time, flavours interleaved.

    Interleaving pod by pod means every flavour sees the same (shared, varying) machine load.
    """
    tag = uuid.uuid4().hex[:6]
    nodes = {f: f"lcbn{tag}{k}" for k, f in enumerate(flavours)}
    pod_names = {f: [f"lcbp{tag}{k}x{i}" for i in range(pods)] for k, f in enumerate(flavours)}
    confs = {f: netconf(*FLAVOURS[f], str(work / f"ipam-{f}-{tag}")) for f in flavours}
    names = [*nodes.values(), *(p for ps in pod_names.values() for p in ps)]
    runs: dict[str, dict[str, list[tuple[float, float]]]] = {f: {"ADD": [], "DEL": []} for f in flavours}
    for ns in names:
        subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        with contextlib.ExitStack() as stack:
            paths = {f: stack.enter_context(daemon_for(f, nodes[f], work, cni_path)) for f in flavours}
            for command in ("ADD", "DEL"):
                for i in range(pods):
                    for f in flavours:
                        runs[f][command].append(call(paths[f][0], nodes[f], FLAVOURS[f][0], command, f"c{i}",
                                                     f"/run/netns/{pod_names[f][i]}", confs[f], paths[f][1]))
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    return {f: {cmd: summary(r) for cmd, r in runs[f].items()} for f in flavours}


def burst(flavour: str, pods: int, cni_path: Path, work: Path) -> dict[str, float]:
    """Start ``pods`` ADDs at once, as a node starting many pods does; check no IP is shared."""
    bridge, ipam = FLAVOURS[flavour]
    tag = uuid.uuid4().hex[:6]
    node, pod_names = f"lcbn{tag}", [f"lcbp{tag}{i}" for i in range(pods)]
    conf = netconf(bridge, ipam, str(work / f"ipam-{flavour}-{tag}"))
    for ns in (node, *pod_names):
        subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        with daemon_for(flavour, node, work, cni_path) as (path, _):
            start = time.perf_counter()
            with ThreadPoolExecutor(max_workers=pods) as pool:
                adds = [wall for wall, _ in pool.map(
                    lambda i: call(path, node, bridge, "ADD", f"c{i}", f"/run/netns/{pod_names[i]}", conf),
                    range(pods))]
            wall = time.perf_counter() - start
            ips = [p.name for p in (work / f"ipam-{flavour}-{tag}" / "labctl").iterdir() if p.name[0].isdigit()]
            for i, p in enumerate(pod_names):
                call(path, node, bridge, "DEL", f"c{i}", f"/run/netns/{p}", conf)
    finally:
        for ns in (node, *pod_names):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    if len(set(ips)) != pods:
        raise SystemExit(f"ERROR: {flavour}: {pods} concurrent ADDs reserved {len(set(ips))} distinct IPs")
    return {"pods": pods, "wall_ms": wall * 1e3, "add_p50_ms": percentile(adds, 0.5) * 1e3,
            "add_p99_ms": percentile(adds, 0.99) * 1e3, "distinct_ips": len(set(ips))}


def floor_ms(argv: list[str], runs: int = 10) -> float:
    """p50 wall time of ``python ARGV`` (or of ``ARGV`` if it names a program): what a plugin call pays to start."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv if argv[0].startswith("/") else [sys.executable, *argv], check=True)
        times.append(time.perf_counter() - start)
    return percentile(times, 0.5) * 1e3


def floors() -> dict[str, float]:
    """Interpreter start-up with and without ``site``, and with the plugins' own imports."""
    plugins = f"import sys; sys.path.insert(0, {str(REPO)!r}); import labctl.cni.bridge, labctl.cni.ipam.plugin"
    return {"compiled_exec_p50_ms": floor_ms(["/bin/true"]),  # the start-up of a compiled client (Go, C)
            "perl_start_p50_ms": floor_ms(["/usr/bin/perl", "-e", "1"]),  # labctl's thin client's interpreter
            "python_SE_start_p50_ms": floor_ms(["-SE", "-c", "pass"]),  # what the thin client was before
            "python_start_p50_ms": floor_ms(["-c", "pass"]),
            "python_S_start_p50_ms": floor_ms(["-S", "-c", "pass"]),
            "python_plus_plugin_imports_p50_ms": floor_ms(["-c", plugins]),
            "python_S_plus_plugin_imports_p50_ms": floor_ms(["-S", "-c", plugins]),
            "python_start_plus_pyroute2_p50_ms": floor_ms(["-c", "import pyroute2"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=20, help="pods per plugin pair (default 20)")
    parser.add_argument("--flavours", default="labctl-daemon,labctl-nosite,reference",
                        help=f"comma list of: {', '.join(FLAVOURS)}")
    parser.add_argument("--concurrent", type=int, default=0, help="also time this many ADDs started at once")
    parser.add_argument("--out", help="write the figures as JSON to this file")
    opts = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("ERROR: needs root (creates network namespaces)")
    flavours = opts.flavours.split(",")
    results: dict[str, Any] = {"pods": opts.pods, "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="cni-bench-") as tmp:
        work = Path(tmp)
        (work / "bin").mkdir()
        make_cni_path(work / "bin")
        results.update(bench_flavours(flavours, opts.pods, work / "bin", work))
        for flavour in flavours:
            if opts.concurrent:
                results[flavour]["burst"] = burst(flavour, opts.concurrent, work / "bin", work)
    results["floor"] = floors()
    results["load_avg_1m_end"] = os.getloadavg()[0]
    print(f"load average (1 min): {results['load_avg_1m']:.1f} at start, {results['load_avg_1m_end']:.1f} at end")
    print(f"{'plugins':<14} {'cmd':<5} {'p50 ms':>8} {'p99 ms':>8} {'min ms':>8} {'CPU p50':>8} {'CPU mean':>8}")
    for flavour in flavours:
        for cmd in ("ADD", "DEL"):
            s = results[flavour][cmd]
            print(f"{flavour:<14} {cmd:<5} {s['p50_ms']:>8.1f} {s['p99_ms']:>8.1f} {s['min_ms']:>8.1f} "
                  f"{s['cpu_p50_ms']:>8.1f} {s['cpu_mean_ms']:>8.1f}")
        if "burst" in results[flavour]:
            b = results[flavour]["burst"]
            print(f"{flavour:<14} {b['pods']} concurrent ADDs: {b['wall_ms']:.0f} ms wall, per ADD p50 "
                  f"{b['add_p50_ms']:.0f} ms p99 {b['add_p99_ms']:.0f} ms, {b['distinct_ips']} distinct IPs")
    if DAEMON in flavours and "reference" in flavours:
        ratio = results[DAEMON]["ADD"]["p50_ms"] / results["reference"]["ADD"]["p50_ms"]
        results["add_p50_ratio"] = ratio
        print(f"ADD p50 {DAEMON} / reference: {ratio:.2f} (goal ≤ 2)")
    print("floor (p50 ms): " + ", ".join(f"{k.removesuffix('_p50_ms')} {v:.0f}" for k, v in results["floor"].items()))
    if opts.out:
        Path(opts.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
