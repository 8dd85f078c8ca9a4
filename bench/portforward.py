#!/usr/bin/env python3
"""``kubectl port-forward`` next to the pod IP, and ``kubectl run -it --rm`` to its first prompt.

In a lab (a scratch 1 control-plane + 2 worker lab unless ``--name``), one pod on a worker
serves ``/big`` (``--mb`` MB) and ``/small`` (3 bytes) with busybox httpd. Then:

* **throughput** — ``curl`` of ``/big`` through ``kubectl port-forward`` on this machine, next to
  ``curl`` of the pod IP from the control-plane node (where the API server runs); MB/s;
* **latency** — ``--requests`` sequential GETs of ``/small``, each on a new connection (so each
  is a new SPDY stream pair through port-forward), timed by the same Python loop here (through
  port-forward) and in the control-plane node (to the pod IP); p50/p90 and the ratio;
* **run -it --rm** — ``kubectl run t -it --rm --image=busybox --restart=Never -- sh`` on a
  terminal: seconds until the shell's prompt answers Enter, and until ``exit`` has ended
  kubectl and the pod is deleted.

    python bench/portforward.py [--name LAB] [--mb 256] [--requests 200] [--rounds 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
from _common import existing_or_scratch_lab, write_json  # noqa: E402

from labctl.client.waiting import wait_for  # noqa: E402
from support.terminal import on_terminal, read_until  # noqa: E402

POD = "pf-bench"
SERVE = ("mkdir -p /www && dd if=/dev/zero of=/www/big bs=1048576 count={mb} 2>/dev/null && echo ok > /www/small "
         "&& exec httpd -f -p 8080 -h /www")
#: the request loop, run here (through port-forward) and in the control-plane node (to the pod IP)
LOOP = """
import http.client, json, sys, time
host, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
times = []
for _ in range(n):
    start = time.perf_counter()
    conn = http.client.HTTPConnection(host, port, timeout=10)
    conn.request("GET", "/small")
    assert conn.getresponse().read() == b"ok\\n"
    conn.close()
    times.append(time.perf_counter() - start)
print(json.dumps(times))
"""
CURL = ["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download} %{time_total}"]


def mb_per_second(out: str) -> float:
    size, seconds = out.split()
    return int(size) / float(seconds) / 1e6


def percentiles(times: list[float]) -> dict:
    ordered = sorted(times)
    return {"p50_ms": round(1000 * statistics.median(ordered), 2),
            "p90_ms": round(1000 * ordered[int(0.9 * (len(ordered) - 1))], 2)}


def start_port_forward(kubectl: list[str]) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([*kubectl, "port-forward", f"pod/{POD}", ":8080"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    match = re.match(r"Forwarding from 127\.0\.0\.1:(\d+)", proc.stdout.readline())
    if not match:
        proc.kill()
        raise RuntimeError(f"kubectl port-forward failed: {proc.stderr.read() if proc.stderr else ''}")
    return proc, int(match.group(1))


def run_to_prompt(kubectl: list[str], name: str) -> tuple[float, float]:
    """Seconds from starting ``kubectl run -it --rm`` to a prompt answering Enter, and to kubectl's end."""
    start = time.perf_counter()
    argv = [*kubectl, "run", name, "-it", "--rm", "--image=busybox", "--restart=Never", "--", "sh"]
    with on_terminal(argv) as (proc, master):
        if b"enter." not in read_until(master, b"enter.", timeout=120):
            raise RuntimeError("kubectl run never attached")
        os.write(master, b"\n")
        if b"# " not in read_until(master, b"# "):
            raise RuntimeError("no prompt")
        prompt = time.perf_counter() - start
        os.write(master, b"exit\n")
        proc.wait(120)
    return prompt, time.perf_counter() - start


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--name", help="an existing lab (default: a scratch lab made and removed here)")
    p.add_argument("--mb", type=int, default=256, help="size of the file for the throughput test")
    p.add_argument("--requests", type=int, default=200)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    with existing_or_scratch_lab(args.name, "pfbench") as (lab, _made):
        k = lab.kubectl()
        kubectl = k._argv(())
        control_plane = next(n.container for n in lab.nodes() if n.role == "control-plane")
        worker = next(n.name for n in lab.nodes() if n.role != "control-plane")
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": POD},
               "spec": {"nodeName": worker, "terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "web", "image": "labctl/web:v1",
                                        "command": ["sh", "-c", SERVE.format(mb=args.mb)]}]}}
        k.run("apply", "-f", "-", input=json.dumps(pod))
        ip = wait_for(lambda: (k.json("get", "pod", POD).get("status") or {}).get("podIP")
                      if k.run("exec", POD, "--", "test", "-s", "/www/small", check=False).returncode == 0 else None,
                      120, 0.5, "the bench pod serving")
        in_node = ["docker", "exec", control_plane]
        result: dict = {"machine": f"{platform.node()} ({os.cpu_count()} cores)", "date": time.strftime("%Y-%m-%d"),
                        "mb": args.mb, "requests": args.requests, "rounds": args.rounds}
        forward, port = start_port_forward(kubectl)
        try:
            pf_mbps = [mb_per_second(subprocess.run([*CURL, f"http://127.0.0.1:{port}/big"], capture_output=True,
                                                    text=True, check=True).stdout) for _ in range(args.rounds)]
            pf_times = json.loads(subprocess.run([sys.executable, "-c", LOOP, "127.0.0.1", str(port),
                                                  str(args.requests)], capture_output=True, text=True,
                                                 check=True).stdout)
        finally:
            forward.terminate()
            forward.wait(10)
        direct_mbps = [mb_per_second(subprocess.run([*in_node, *CURL, f"http://{ip}:8080/big"], capture_output=True,
                                                    text=True, check=True).stdout) for _ in range(args.rounds)]
        direct_times = json.loads(subprocess.run([*in_node, "/opt/labctl/bin/python3", "-c", LOOP, ip, "8080",
                                                  str(args.requests)], capture_output=True, text=True,
                                                 check=True).stdout)
        result["throughput_mb_s"] = {"port_forward": round(statistics.median(pf_mbps), 1),
                                     "pod_ip_from_control_plane": round(statistics.median(direct_mbps), 1)}
        result["throughput_ratio"] = round(result["throughput_mb_s"]["pod_ip_from_control_plane"]
                                           / result["throughput_mb_s"]["port_forward"], 1)
        result["latency"] = {"port_forward": percentiles(pf_times),
                             "pod_ip_from_control_plane": percentiles(direct_times)}
        result["latency_ratio_p50"] = round(result["latency"]["port_forward"]["p50_ms"]
                                            / result["latency"]["pod_ip_from_control_plane"]["p50_ms"], 1)
        runs = [run_to_prompt(kubectl, f"pf-bench-run-{i}") for i in range(args.rounds)]
        result["run_it_rm_s"] = {"to_prompt_median": round(statistics.median(r[0] for r in runs), 2),
                                 "to_prompt_max": round(max(r[0] for r in runs), 2),
                                 "to_exit_median": round(statistics.median(r[1] for r in runs), 2)}
        k.run("delete", "pod", POD, "--wait=false")
    print(json.dumps(result, indent=2))
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
