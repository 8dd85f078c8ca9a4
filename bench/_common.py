"""Helpers the benchmark scripts share (run as ``python bench/<name>.py``, so this is importable)."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path


def per_second(fn: Callable[[], object], seconds: float = 0.5) -> float:
    """Calls of ``fn`` per second, timed over at least ``seconds``."""
    count, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        fn()
        count += 1
    return count / elapsed


def write_json(out: Path | None, result: dict) -> None:
    """Write the figures to ``--out FILE`` (if given), creating its folder."""
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")


@contextlib.contextmanager
def existing_or_scratch_lab(name: str | None, prefix: str) -> Iterator[tuple[object, bool]]:
    """``--name``'s lab, or a scratch lab made for the run and removed after; yields (lab, made here)."""
    from labctl.cluster import Lab, down, up
    from labctl.cluster.scratch import scratch_topology, unique_name
    from labctl.topology.schema import parse_topology

    created = None
    if name:
        lab = Lab.open(name)
    else:
        created = unique_name(prefix)
        os.environ["KUBECONFIG"] = str(Path(tempfile.mkdtemp()) / "kubeconfig")
        lab = up(parse_topology(scratch_topology(created), "<scratch>"))
    try:
        yield lab, created is not None
    finally:
        lab.close()
        if created:
            down(created)
