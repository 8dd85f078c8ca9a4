"""Helpers the benchmark scripts share (run as ``python bench/<name>.py``, so this is importable)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
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
