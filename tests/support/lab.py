"""A real lab for integration tests: ``labctl up`` with a unique name, ``labctl down`` after.

The topology is written per test run: a free API server port (0) and no host port
mappings, so several labs (and a student's own) can coexist with the tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .kubectl import Kubectl


def unique_name(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def labctl(*args: str, env: dict | None = None, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "labctl", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
    if check and proc.returncode != 0:
        raise AssertionError(f"labctl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def write_topology(path: Path, name: str, workers: int = 2, extra: dict | None = None) -> Path:
    nodes = [{"role": "control-plane"}] + [{"role": "worker"}] * workers
    doc = {"apiVersion": "labctl.dev/v1alpha1", "kind": "Topology", "name": name, "nodes": nodes,
           "networking": {"apiServerPort": 0},
           "nodeLifecycle": {"nodeMonitorGracePeriod": "8s", "podEvictionTimeout": "10s",
                             "leaseDurationSeconds": 8, "leaseRenewInterval": "2s"},
           "images": {"aliases": {"nginx": "labctl/web:v1", "nginx:1.14.2": "labctl/web:v1",
                                  "nginx:1.16.1": "labctl/web:v2"}}}
    for key, value in (extra or {}).items():
        doc[key] = value
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


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

    def exec(self, node: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        proc = subprocess.run(["docker", "exec", f"{self.name}-{node}", *cmd], capture_output=True, text=True,
                              timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} on {node} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc
