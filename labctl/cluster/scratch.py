"""Throwaway labs for tests, benchmarks and the grader: a unique name and a topology that fits
beside anything else on the machine.

A scratch topology publishes the API server on a free port (``apiServerPort: 0``) and no
host port mappings, so several scratch labs and a student's own ``lab`` coexist; its node
lifecycle timings are short, so node-failure checks finish in seconds; and ``nginx`` images
run as the lab's own ``labctl/web`` (no registry needed). Create it with
:func:`labctl.cluster.up` (or ``labctl up -t FILE``) and remove it with ``down(name)``.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import yaml

from ..topology import API_VERSION, KIND

__all__ = ["scratch_topology", "unique_name", "write_topology"]


def unique_name(prefix: str = "t") -> str:
    """A lab name no other run uses: ``t3f9a2c``."""
    return f"{prefix}{uuid.uuid4().hex[:6]}"


def scratch_topology(name: str, workers: int = 2, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The topology document of a scratch lab (``extra`` replaces whole top-level sections)."""
    doc: dict[str, Any] = {
        "apiVersion": API_VERSION, "kind": KIND, "name": name,
        "nodes": [{"role": "control-plane"}] + [{"role": "worker"}] * workers,
        "networking": {"apiServerPort": 0},
        "nodeLifecycle": {"nodeMonitorGracePeriod": "8s", "podEvictionTimeout": "10s",
                          "leaseDurationSeconds": 8, "leaseRenewInterval": "2s"},
        "images": {"aliases": {"nginx": "labctl/web:v1", "nginx:1.14.2": "labctl/web:v1",
                               "nginx:1.16.1": "labctl/web:v2"}},
    }
    doc.update(extra or {})
    return doc


def write_topology(path: Path, name: str, workers: int = 2, extra: dict[str, Any] | None = None) -> Path:
    """Write :func:`scratch_topology` to ``path`` (for ``labctl up -t PATH``) and return ``path``."""
    path.write_text(yaml.safe_dump(scratch_topology(name, workers, extra), sort_keys=False))
    return path
