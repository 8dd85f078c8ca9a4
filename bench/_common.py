"""Helpers the benchmark scripts share (run as ``python bench/<name>.py``, so this is importable)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
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


class Netns:
    """A throwaway network namespace whose iptables a benchmark may fill (the host's are never touched)."""

    def __init__(self, prefix: str, tag: str) -> None:
        self.name = f"{prefix}{os.getpid()}{tag}"

    def __enter__(self) -> Netns:
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False)

    def restore(self, text: str) -> float:
        """Seconds for a plain ``iptables-restore --noflush`` of ``text`` here: the floor a sync is compared with."""
        start = time.perf_counter()
        subprocess.run(["ip", "netns", "exec", self.name, "iptables-restore", "--noflush"],
                       input=text, text=True, check=True, capture_output=True, timeout=1800)
        return time.perf_counter() - start
