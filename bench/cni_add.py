#!/usr/bin/env python3
"""CNI ADD/DEL latency: labctl-bridge + labctl-host-local vs the reference bridge + host-local.

Runs each plugin pair exactly as a runtime would (exec, env, stdin) inside a
throwaway "node" netns against N fresh pod netns, one pod at a time, and
prints p50/p99 per command. Needs root. ``--out FILE`` writes the figures as JSON.

    sudo python3 bench/cni_add.py --pods 30 --out /tmp/cni-bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REFERENCE_DIR = Path("/usr/lib/cni")
FLAVOURS = {"labctl": ("labctl-bridge", "labctl-host-local"), "reference": ("bridge", "host-local")}


def netconf(bridge_type: str, ipam_type: str, data_dir: str) -> bytes:
    """The node agent's network config with the given plugin types."""
    return json.dumps({
        "cniVersion": "1.0.0", "name": "labctl", "type": bridge_type, "bridge": "cni0", "isGateway": True,
        "ipMasq": False, "hairpinMode": True, "mtu": 1500,
        "ipam": {"type": ipam_type, "ranges": [[{"subnet": "10.244.1.0/24", "gateway": "10.244.1.1"}]],
                 "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data_dir},
    }).encode()


def make_cni_path(d: Path) -> None:
    """labctl wrappers (what the console scripts will be) plus links to the reference plugins."""
    for name, module in (("labctl-bridge", "labctl.cni.bridge"), ("labctl-host-local", "labctl.cni.ipam.plugin")):
        (d / name).write_text(f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
                              f"from {module} import main\nmain()\n")
        (d / name).chmod(0o755)
    for name in ("bridge", "host-local"):
        (d / name).symlink_to(REFERENCE_DIR / name)


def call(cni_path: Path, node: str, plugin: str, command: str, cid: str, netns: str, conf: bytes) -> float:
    """One plugin call inside the node netns; return its wall time in seconds."""
    env = {"PATH": os.environ.get("PATH", ""), "CNI_COMMAND": command, "CNI_CONTAINERID": cid,
           "CNI_NETNS": netns, "CNI_IFNAME": "eth0", "CNI_PATH": str(cni_path)}
    start = time.perf_counter()
    proc = subprocess.run(["nsenter", f"--net=/run/netns/{node}", str(cni_path / plugin)], input=conf, env=env,
                          capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"ERROR: {plugin} {command} failed: {proc.stdout.decode()} {proc.stderr.decode()}")
    return elapsed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_flavour(flavour: str, pods: int, cni_path: Path, work: Path) -> dict[str, dict[str, float]]:
    bridge, ipam = FLAVOURS[flavour]
    tag = uuid.uuid4().hex[:6]
    node, pod_names = f"lcbn{tag}", [f"lcbp{tag}{i}" for i in range(pods)]
    conf = netconf(bridge, ipam, str(work / f"ipam-{flavour}"))
    for ns in (node, *pod_names):
        subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        adds = [call(cni_path, node, bridge, "ADD", f"c{i}", f"/run/netns/{p}", conf) for i, p in enumerate(pod_names)]
        dels = [call(cni_path, node, bridge, "DEL", f"c{i}", f"/run/netns/{p}", conf) for i, p in enumerate(pod_names)]
    finally:
        for ns in (node, *pod_names):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def summary(xs: list[float]) -> dict[str, float]:
        return {"p50_ms": percentile(xs, 0.5) * 1e3, "p99_ms": percentile(xs, 0.99) * 1e3,
                "mean_ms": statistics.fmean(xs) * 1e3, "n": len(xs)}

    return {"ADD": summary(adds), "DEL": summary(dels)}


def floor_ms(code: str, runs: int = 10) -> float:
    """p50 wall time of a bare ``python -c code``: what every labctl plugin call pays before working."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - start)
    return percentile(times, 0.5) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=20, help="pods per plugin pair (default 20)")
    parser.add_argument("--flavours", default="labctl,reference", help="comma list of: labctl, reference")
    parser.add_argument("--out", help="write the figures as JSON to this file")
    opts = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("ERROR: needs root (creates network namespaces)")
    results: dict[str, object] = {"pods": opts.pods, "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory(prefix="cni-bench-") as tmp:
        work = Path(tmp)
        (work / "bin").mkdir()
        make_cni_path(work / "bin")
        for flavour in opts.flavours.split(","):
            results[flavour] = bench_flavour(flavour, opts.pods, work / "bin", work)
    results["floor"] = {"python_start_p50_ms": floor_ms("pass"),
                        "python_start_plus_pyroute2_p50_ms": floor_ms("import pyroute2")}
    print(f"{'plugins':<10} {'cmd':<4} {'p50 ms':>8} {'p99 ms':>8} {'mean ms':>8}")
    for flavour in opts.flavours.split(","):
        for cmd, s in results[flavour].items():  # type: ignore[union-attr]
            print(f"{flavour:<10} {cmd:<4} {s['p50_ms']:>8.1f} {s['p99_ms']:>8.1f} {s['mean_ms']:>8.1f}")
    floor = results["floor"]
    print(f"floor: python start {floor['python_start_p50_ms']:.0f} ms, "  # type: ignore[index]
          f"+ import pyroute2 {floor['python_start_plus_pyroute2_p50_ms']:.0f} ms")  # type: ignore[index]
    if opts.out:
        Path(opts.out).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
