#!/usr/bin/env python3
"""A/B of two API server source trees, measured side by side: creates/s, get and list latency.

On a shared machine the load of the moment moves every figure by tens of percent between
runs, so two runs one after the other compare noise. This starts both servers at once
(``python -m labctl.apiserver`` with each tree on ``PYTHONPATH``), fills them alike, then
alternates every measurement between them (a GET on A, the same GET on B, …), so both see
the same moments; each figure is the median of its samples. The servers' CPU time over the
whole workload (``/proc/<pid>/stat``) is reported too: it depends far less on what else
runs than a latency does. Typical use, comparing a change
with the commit before it::

    git worktree add --detach /tmp/before HEAD~1
    git worktree add --detach /tmp/after HEAD
    python bench/apiserver_ab.py /tmp/before /tmp/after [--as-serviceaccount] [--out FILE]

``--as-serviceaccount`` talks with a ServiceAccount token bound to ``edit`` (every request
through RBAC) instead of the admin certificate (``system:masters``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import write_json
from apiserver import pct, pod, serviceaccount_token, ssl_context

from support.apiserver import APIServerProcess

TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}


class Side:
    """One server under test and the session that talks to it."""

    def __init__(self, name: str, tree: Path, data_dir: Path) -> None:
        self.name, self.tree = name, tree
        self.server = APIServerProcess(data_dir)
        self.session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        os.environ["PYTHONPATH"] = str(self.tree)  # the server process imports labctl from the tree
        try:
            self.server.start()
        finally:
            os.environ.pop("PYTHONPATH", None)

    async def connect(self, as_serviceaccount: bool) -> None:
        pki, headers = self.server.data_dir / "pki", {}
        if as_serviceaccount:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context(pki))) as admin:
                headers = {"Authorization": f"Bearer {await serviceaccount_token(admin, self.server.url)}"}
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=ssl_context(pki, not as_serviceaccount), limit=64), headers=headers)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far."""
        assert self.server.proc is not None
        fields = Path(f"/proc/{self.server.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def get_ms(self, path: str, headers: dict | None = None) -> float:
        assert self.session is not None
        start = time.perf_counter()
        async with self.session.get(self.server.url + path, headers=headers or {}) as r:
            await r.read()
            assert r.status == 200, r.status
        return (time.perf_counter() - start) * 1000

    async def create_rate(self, first: int, count: int, concurrency: int = 16) -> float:
        assert self.session is not None
        sem = asyncio.Semaphore(concurrency)

        async def one(i: int) -> None:
            async with sem:
                async with self.session.post(f"{self.server.url}/api/v1/namespaces/default/pods",  # type: ignore[union-attr]
                                             json=pod(f"p{i:05d}")) as r:
                    assert r.status == 201, await r.text()

        start = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(first, first + count)))
        return count / (time.perf_counter() - start)


async def measure(a: Side, b: Side, args: argparse.Namespace) -> dict:
    samples: dict[str, dict[str, list[float]]] = {s.name: {} for s in (a, b)}
    cpu_start = {s.name: s.cpu_seconds() for s in (a, b)}

    def add(side: Side, key: str, value: float) -> None:
        samples[side.name].setdefault(key, []).append(value)

    batch = 50
    for round_ in range(args.objects // batch):
        for side in (a, b) if round_ % 2 == 0 else (b, a):
            add(side, "creates_per_s", await side.create_rate(round_ * batch, batch))
    checks = [("get_ms", "/api/v1/namespaces/default/pods/p00000", None, args.gets),
              (f"list_{args.objects}_ms", "/api/v1/namespaces/default/pods", None, args.lists),
              (f"list_{args.objects}_table_ms", "/api/v1/namespaces/default/pods", TABLE, args.lists),
              (f"list_{args.objects}_label_selector_ms", "/api/v1/namespaces/default/pods?labelSelector=app%3Dbench",
               None, args.lists)]
    for key, path, headers, repeat in checks:
        for i in range(repeat):
            for side in (a, b) if i % 2 == 0 else (b, a):
                add(side, key, await side.get_ms(path, headers))
    for side in (a, b):
        add(side, "server_cpu_s", side.cpu_seconds() - cpu_start[side.name])
    out: dict = {}
    for key in samples[a.name]:
        before, after = samples[a.name][key], samples[b.name][key]
        mb, ma = statistics.median(before), statistics.median(after)
        out[key] = {"before": round(mb, 3), "after": round(ma, 3), "change_pct": round(100 * (ma - mb) / mb, 1)}
        if key == "get_ms":
            out["get_ms_p99"] = {"before": round(pct(before, 99), 3), "after": round(pct(after, 99), 3)}
    return out


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        sides = [Side(name, tree, Path(tmp) / name) for name, tree in (("before", args.before), ("after", args.after))]
        for side in sides:
            side.server.data_dir.mkdir()
            side.start()
        try:
            for side in sides:
                await side.connect(args.as_serviceaccount)
            figures = await measure(*sides, args)
        finally:
            for side in sides:
                if side.session is not None:
                    await side.session.close()
                side.server.stop()
    return {"identity": "serviceaccount (edit)" if args.as_serviceaccount else "admin (system:masters)",
            "objects": args.objects, **figures}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("before", type=Path, help="source tree A (a git worktree)")
    p.add_argument("after", type=Path, help="source tree B")
    p.add_argument("--objects", type=int, default=1000)
    p.add_argument("--gets", type=int, default=2000)
    p.add_argument("--lists", type=int, default=40)
    p.add_argument("--as-serviceaccount", action="store_true")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    result = asyncio.run(run(args))
    for key, value in result.items():
        print(f"{key:36} {value}")
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
