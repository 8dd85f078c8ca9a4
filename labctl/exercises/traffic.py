"""Requests the grader sends itself: one HTTP GET per new TCP connection, and what answered.

A new connection per request is the point: it is a new conntrack entry, so the service
proxy draws a backend again, and a backend that is gone shows as a failed request instead
of hiding behind a kept-alive connection. The lab's web and nginx images answer
``web|nginx <version> pod=<name> ip=<pod IP>``; :class:`Answer` reads the version and the pod
from that (any other body counts as its first line, for other apps). Standard library only:
the during probe runs this inside the control-plane node.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

__all__ = ["Answer", "get", "sample"]


@dataclass(frozen=True)
class Answer:
    """One request: when it started (epoch seconds), where it went, and what came back."""

    at: float
    target: str
    ok: bool
    status: int = 0
    body: str = ""
    error: str = ""

    @property
    def version(self) -> str:
        """``v2`` from ``web v2 pod=…`` or ``nginx v2 pod=…``; else the body's first line (what tells
        versions apart)."""
        words = self.body.split()
        if len(words) >= 2 and words[0] in ("web", "nginx"):
            return words[1]
        return self.body.splitlines()[0][:60] if self.body else ""

    @property
    def pod(self) -> str:
        for word in self.body.split():
            if word.startswith("pod="):
                return word[4:]
        return ""


async def get(host: str, port: int, path: str = "/", timeout: float = 3.0) -> Answer:
    """``GET path`` on a new connection to ``host:port``; never raises: a failure is an :class:`Answer` too."""
    started = time.time()
    target = f"{host}:{port}"
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(f"GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: labctl-grader\r\n\r\n".encode())
            await writer.drain()
            raw = await reader.read(64 * 1024)
            while chunk := await reader.read(64 * 1024):
                raw += chunk
    except TimeoutError:
        return Answer(started, target, False, error=f"no answer within {timeout:g}s")
    except OSError as err:
        return Answer(started, target, False, error=err.strerror or type(err).__name__)
    finally:
        if writer is not None:
            writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return Answer(started, target, False, error="not an HTTP answer" if raw else "connection closed")
    text = body.decode(errors="replace").strip()
    if status >= 400:
        return Answer(started, target, False, status, text, f"HTTP {status}")
    return Answer(started, target, True, status, text)


async def sample(targets: list[tuple[str, int]], count: int, path: str = "/", timeout: float = 3.0,
                 parallel: int = 8) -> list[Answer]:
    """``count`` requests spread over ``targets`` in turn, ``parallel`` at a time."""
    gate = asyncio.Semaphore(parallel)

    async def one(i: int) -> Answer:
        host, port = targets[i % len(targets)]
        async with gate:
            return await get(host, port, path, timeout)

    return list(await asyncio.gather(*(one(i) for i in range(count))))


def main(argv: list[str]) -> int:
    """``python -m labctl.exercises.traffic COUNT PATH HOST:PORT…``: one JSON line per answer (the
    grader runs this in a node to send requests from there)."""
    import json
    import sys

    count, path, targets = int(argv[0]), argv[1], [(t.rsplit(":", 1)[0], int(t.rsplit(":", 1)[1])) for t in argv[2:]]
    for answer in asyncio.run(sample(targets, count, path)):
        sys.stdout.write(json.dumps(answer.__dict__) + "\n")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
