"""One call for a whole trace: read the lab, resolve FROM and TO, then probe live or explain.

What ``labctl trace``, the grader and the TUI call; the steps are :mod:`.gather`,
:mod:`.targets`, :mod:`.live` and :mod:`.explain`.
"""

from __future__ import annotations

import asyncio
import time

from ..cluster import Lab
from .explain import explain
from .gather import snapshot
from .live import live_trace
from .model import LabNetwork
from .targets import resolve_destination, resolve_source
from .tracemodel import Trace

__all__ = ["run_trace", "trace"]


async def trace(lab: Lab, source: str, destination: str, *, port: int | str | None = None, protocol: str = "tcp",
                explain_only: bool = False, network: LabNetwork | None = None) -> Trace:
    """Trace one packet from ``source`` (a pod, a node or ``host``) to ``destination``.

    Live by default (a real probe, kernel tracing on every node on the path, every trace
    rule removed afterwards); ``explain_only`` computes the path from the rules and routes
    without sending anything. ``network`` reuses a snapshot the caller already has.
    """
    started = time.perf_counter()
    protocol = protocol.lower()
    net = network or await snapshot(lab)
    src = resolve_source(net, source)
    dst, service = resolve_destination(net, destination, port, protocol)
    if explain_only:
        result = explain(net, src, dst, protocol, service)
    else:
        result = await live_trace(lab, net, src, dst, protocol, service)
    result.seconds = time.perf_counter() - started
    return result


def run_trace(lab: Lab, source: str, destination: str, *, port: int | str | None = None, protocol: str = "tcp",
              explain_only: bool = False) -> Trace:
    """:func:`trace` for callers without an event loop."""
    return asyncio.run(trace(lab, source, destination, port=port, protocol=protocol, explain_only=explain_only))
