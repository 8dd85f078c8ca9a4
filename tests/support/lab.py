"""A real lab for integration tests, driven through the CLI: ``labctl up`` with a unique name,
``labctl down`` after.

The topology is a scratch one (:mod:`labctl.cluster.scratch`: a free API server port, no host
port mappings), so several labs (and a student's own) can coexist with the tests. Each lab
writes its kubeconfig to its own work directory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from labctl.client.waiting import wait_for
from labctl.cluster.kubectl import Kubectl
from labctl.cluster.scratch import unique_name, write_topology

__all__ = ["Lab", "free_port", "labctl", "unique_name"]

#: where `labctl up`'s add-ons run (labctl/addons)
ADDON_NAMESPACES = ("kube-system", "ingress-nginx", "local-path-storage")


def free_port() -> int:
    """A host port nothing listens on now: a lab's port mapping that coexists with other labs."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def labctl(*args: str, env: dict | None = None, timeout: float = 600,
           check: bool = False) -> subprocess.CompletedProcess:
    """Run the CLI as a user does (``python -m labctl ARGS``), capturing its output."""
    proc = subprocess.run([sys.executable, "-m", "labctl", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"labctl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@dataclass
class Lab:
    name: str
    workdir: Path
    kubectl_binary: str
    workers: int = 2
    extra: dict = field(default_factory=dict)

    @property
    def kubeconfig(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def env(self) -> dict:
        return {"KUBECONFIG": str(self.kubeconfig)}

    @property
    def kubectl(self) -> Kubectl:
        return Kubectl(self.kubectl_binary, self.kubeconfig)

    def up(self) -> subprocess.CompletedProcess:
        topo = write_topology(self.workdir / "topology.yaml", self.name, self.workers, self.extra)
        return labctl("up", "-t", str(topo), env=self.env)

    def down(self) -> subprocess.CompletedProcess:
        return labctl("down", "--name", self.name, env=self.env)

    def wait_for_addons(self, timeout: float = 180) -> None:
        """Until every add-on's Deployment has all its replicas available: `up` returns once cluster
        DNS answers, as kube-dns's second replica and the ingress controller start, and a test that
        compares the nodes' pods or rules before and after needs them started."""
        def available() -> bool:
            deployments = self.kubectl.json("get", "deployments", "-A")["items"]
            return all((d.get("status") or {}).get("availableReplicas", 0) >= d["spec"].get("replicas", 1)
                       for d in deployments if d["metadata"]["namespace"] in ADDON_NAMESPACES)
        wait_for(available, timeout, what="the add-ons' Deployments available")

    def exec(self, node: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["docker", "exec", f"{self.name}-{node}", *cmd], capture_output=True, text=True,
                              timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} on {node} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc
