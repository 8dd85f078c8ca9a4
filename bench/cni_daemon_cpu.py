#!/usr/bin/env python3
"""The CNI daemon's own CPU per ADD and DEL, without the thin client, the socket or the other threads.

Runs ``labctl.cni.daemon.answer`` (what a daemon thread does for one call) for N fresh pod
netns, ADD then DEL, inside a throwaway node netns, and prints the calling thread's CPU
(``CLOCK_THREAD_CPUTIME_ID``: user + system, the kernel's netlink work included) per call:
far less noisy on a loaded machine than wall time, and at µs resolution where
``bench/cni_add.py`` reads the daemon's share in 10 ms ticks. ``--profile FILE`` also writes
a ``cProfile`` of the calls after the first (which creates the bridge), on thread CPU time,
and prints its top functions. Needs root.

    sudo python3 bench/cni_daemon_cpu.py --pods 30 [--profile /tmp/cni-daemon.prof]
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from labctl.cni import daemon, shim  # noqa: E402


def _netconf(data_dir: str) -> bytes:
    return json.dumps({
        "cniVersion": "1.0.0", "name": "labctl", "type": "labctl-bridge", "bridge": "cni0", "isGateway": True,
        "ipMasq": False, "hairpinMode": True, "mtu": 1500,
        "ipam": {"type": "labctl-host-local", "ranges": [[{"subnet": "10.244.1.0/24", "gateway": "10.244.1.1"}]],
                 "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data_dir},
    }).encode()


def measure(pods: list[str], profile: cProfile.Profile | None) -> dict[str, list[float]]:
    """Thread CPU seconds of every ADD, then every DEL, through ``daemon.answer`` in this (node) netns."""
    conf, own = _netconf(tempfile.mkdtemp(prefix="cni-daemon-cpu-")), shim.netns_id()
    cpu: dict[str, list[float]] = {"ADD": [], "DEL": []}
    for command in ("ADD", "DEL"):
        for i, pod in enumerate(pods):
            env = {"CNI_COMMAND": command, "CNI_CONTAINERID": f"c{i}", "CNI_NETNS": f"/run/netns/{pod}",
                   "CNI_IFNAME": "eth0", "CNI_PATH": "/nonexistent"}
            request = shim.encode_request("labctl-bridge", env, conf)
            start = time.thread_time()
            if profile is not None and i > 0:
                profile.enable()
            answer = daemon.answer(request, own)
            if profile is not None:
                profile.disable()
            cpu[command].append(time.thread_time() - start)
            if not answer.startswith(b"0\0"):
                raise SystemExit(f"ERROR: {command} c{i}: {answer[:500]!r}")
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--profile", help="write a cProfile (thread CPU time) of the calls to this file")
    parser.add_argument("--in-node", action="store_true", help=argparse.SUPPRESS)  # the re-exec inside the node netns
    opts = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("ERROR: needs root (creates network namespaces)")
    tag = uuid.uuid4().hex[:6]
    if not opts.in_node:
        node = f"lcdn{tag}"
        subprocess.run(["ip", "netns", "add", node], check=True)
        try:
            code = subprocess.run(["nsenter", f"--net=/run/netns/{node}", sys.executable, __file__, "--in-node",
                                   *sys.argv[1:]]).returncode
        finally:
            subprocess.run(["ip", "netns", "del", node], capture_output=True)
        raise SystemExit(code)
    pods = [f"lcdp{tag}{i}" for i in range(opts.pods)]
    for pod in pods:
        subprocess.run(["ip", "netns", "add", pod], check=True)
    profile = cProfile.Profile(time.thread_time) if opts.profile else None
    try:
        cpu = measure(pods, profile)
    finally:
        for pod in pods:
            subprocess.run(["ip", "netns", "del", pod], capture_output=True)
    print(f"load average (1 min): {os.getloadavg()[0]:.1f}; daemon thread CPU per call, {opts.pods} pods:")
    for command, values in cpu.items():
        rest = sorted(values[1:])  # the first ADD also creates the bridge
        print(f"  {command}: min {rest[0] * 1e3:.2f} ms, p50 {rest[len(rest) // 2] * 1e3:.2f} ms, "
              f"mean {sum(rest) / len(rest) * 1e3:.2f} ms")
    if profile is not None:
        profile.dump_stats(opts.profile)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
