"""The Traffic view's request pump: ``rate`` requests a second, each on a new connection, never waiting.

Standard library only, because it runs in two places: on the host (FROM host) and inside a
pod's network namespace (FROM a pod), where the live source starts it in the pod's node as
``nsenter --net=SANDBOX python3 -S -c BOOTSTRAP`` with this file's source and
:mod:`labctl.exercises.traffic`'s (the request itself is the grader's :func:`~labctl.exercises.traffic.get`,
passed in), so the pump is the host's version whatever the node image holds. In a pod it
prints one JSON line per answer and reads new rates (or ``stop``) from its stdin.

Like the exercises' during probe, a request that hangs never delays the next one, and a
machine too busy to keep the pace skips ahead instead of bursting to catch up.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["BOOTSTRAP", "pump", "serve"]

Get = Callable[..., Awaitable[Any]]

#: the script a pod runs: load the two sources it is given (as argv[1], argv[2]) and serve
BOOTSTRAP = """
import sys, types
def load(source, name):
    module = sys.modules[name] = types.ModuleType(name)  # dataclasses look their module up
    exec(compile(source, name, "exec"), module.__dict__)
    return module
traffic = load(sys.argv[1], "labctl_traffic")
load(sys.argv[2], "labctl_pump").serve(traffic.get, sys.argv[3:])
"""


def _sample(answer: Any, seconds: float) -> dict[str, Any]:
    return {"at": answer.at, "seconds": round(seconds, 5), "target": answer.target, "ok": answer.ok,
            "pod": answer.pod, "version": answer.version, "error": answer.error}


async def pump(get: Get, targets: list[tuple[str, int]], rate: Callable[[], float],
               emit: Callable[[dict[str, Any]], None], stopping: asyncio.Event, path: str = "/") -> None:
    """Send requests to ``targets`` in turn at ``rate()`` a second until ``stopping`` is set; ``emit`` each answer."""
    pending: set[asyncio.Task[None]] = set()

    async def one(host: str, port: int) -> None:
        started = time.perf_counter()
        answer = await get(host, port, path)
        emit(_sample(answer, time.perf_counter() - started))

    i, next_at = 0, time.monotonic()
    while not stopping.is_set():
        host, port = targets[i % len(targets)]
        i += 1
        task = asyncio.create_task(one(host, port))
        pending.add(task)
        task.add_done_callback(pending.discard)
        next_at += 1.0 / max(rate(), 0.1)
        try:
            await asyncio.wait_for(stopping.wait(), max(0.0, next_at - time.monotonic()))
        except TimeoutError:
            pass
        if next_at < time.monotonic() - 1:  # fell behind (a busy machine): do not burst to catch up
            next_at = time.monotonic()
    if pending:
        await asyncio.wait(pending, timeout=3)


def serve(get: Get, argv: list[str]) -> None:
    """In a pod: ``RATE PATH HOST:PORT…``; JSON lines out, new rates (or ``stop``, or the end) in."""
    rate, path = [float(argv[0])], argv[1]
    targets = [(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in argv[2:]]

    def emit(sample: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(sample) + "\n")
        sys.stdout.flush()

    async def control(stopping: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := (await reader.readline()).decode().strip():
            if line == "stop":
                break
            try:
                rate[0] = float(line)
            except ValueError:
                pass
        stopping.set()

    async def main() -> None:
        stopping = asyncio.Event()
        controller = asyncio.create_task(control(stopping))
        await pump(get, targets, lambda: rate[0], emit, stopping, path)
        controller.cancel()

    asyncio.run(main())
