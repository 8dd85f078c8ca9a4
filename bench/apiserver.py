#!/usr/bin/env python3
"""API server benchmark: creates/s, get and list latency, watch fan-out.

Starts ``python -m labctl.apiserver`` as a real process on a temp data dir and talks HTTPS
with the admin client certificate, like kubectl (``system:masters``: authorized without RBAC
work), or with ``--as-serviceaccount`` a ServiceAccount token bound to ``edit``, so every
request goes through RBAC as a student's pod's would. Prints a table; ``--out FILE`` writes JSON.

    python bench/apiserver.py --objects 1000 --watchers 10 --out bench/results/apiserver.json
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _common import write_json

from support.apiserver import APIServerProcess


def pod(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "bench", "tier": "web"}},
            "spec": {"containers": [{"name": "web", "image": "labctl/web:v1",
                                     "ports": [{"containerPort": 80}],
                                     "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}}}]}}


def ssl_context(pki: Path, client_cert: bool = True) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if client_cert:
        ctx.load_cert_chain(pki / "admin.crt", pki / "admin.key")
    return ctx


async def serviceaccount_token(session: aiohttp.ClientSession, url: str) -> str:
    """A token of ``default/default``, bound to ``edit`` in ``default`` (a server without RBAC answers 404: fine)."""
    binding = {"metadata": {"name": "bench-edit"}, "subjects": [{"kind": "ServiceAccount", "name": "default"}],
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"}}
    async with session.post(f"{url}/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
                            json=binding) as r:
        assert r.status in (201, 404), await r.text()
    async with session.post(f"{url}/api/v1/namespaces/default/serviceaccounts/default/token",
                            json={"spec": {"expirationSeconds": 3600}}) as r:
        assert r.status == 201, await r.text()
        return (await r.json())["status"]["token"]


async def creates(session: aiohttp.ClientSession, url: str, n: int, concurrency: int) -> float:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            async with session.post(f"{url}/api/v1/namespaces/default/pods", json=pod(f"p{i:05d}")) as r:
                assert r.status == 201, await r.text()

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - start)


async def timed(session: aiohttp.ClientSession, url: str, repeat: int, headers: dict | None = None) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        async with session.get(url, headers=headers or {}) as r:
            await r.read()
            assert r.status == 200
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def fan_out(session: aiohttp.ClientSession, url: str, watchers: int, events: int) -> float:
    """Events per second delivered to all watchers (sum over watchers)."""
    async with session.get(f"{url}/api/v1/namespaces/default/configmaps") as r:
        rv = (await r.json())["metadata"]["resourceVersion"]
    received = [0] * watchers
    done = asyncio.Event()

    async def watch(idx: int) -> None:
        async with session.get(f"{url}/api/v1/namespaces/default/configmaps",
                               params={"watch": "true", "resourceVersion": rv}) as r:
            async for _line in r.content:
                received[idx] += 1
                if received[idx] >= events:
                    break
        if all(c >= events for c in received):
            done.set()

    tasks = [asyncio.create_task(watch(i)) for i in range(watchers)]
    await asyncio.sleep(0.5)
    start = time.perf_counter()
    sem = asyncio.Semaphore(16)

    async def write(i: int) -> None:
        async with sem:
            async with session.post(f"{url}/api/v1/namespaces/default/configmaps",
                                    json={"metadata": {"name": f"cm{i:05d}"}, "data": {"i": str(i)}}) as r:
                assert r.status == 201

    await asyncio.gather(*(write(i) for i in range(events)))
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - start
    for t in tasks:
        t.cancel()
    return watchers * events / elapsed


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run(args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        server = APIServerProcess(Path(tmp))
        server.start()
        try:
            pki = Path(tmp) / "pki"
            url = server.url
            headers = {}
            if args.as_serviceaccount:
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=ssl_context(pki))) as admin:
                    headers = {"Authorization": f"Bearer {await serviceaccount_token(admin, url)}"}
            connector = aiohttp.TCPConnector(ssl=ssl_context(pki, not args.as_serviceaccount), limit=64)
            async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
                create_rate = await creates(session, url, args.objects, args.concurrency)
                get_ms = await timed(session, f"{url}/api/v1/namespaces/default/pods/p00000", 200)
                list_ms = await timed(session, f"{url}/api/v1/namespaces/default/pods", 20)
                table_ms = await timed(session, f"{url}/api/v1/namespaces/default/pods", 10,
                                       {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
                selector_ms = await timed(session, f"{url}/api/v1/namespaces/default/pods?labelSelector=app%3Dbench", 10)
                watch_rate = await fan_out(session, url, args.watchers, args.events)
        finally:
            server.stop()
    return {
        "machine": f"{platform.node()} {platform.machine()} {platform.python_version()}",
        "date": time.strftime("%Y-%m-%d"),
        "identity": "serviceaccount (edit)" if args.as_serviceaccount else "admin (system:masters)",
        "objects": args.objects,
        "creates_per_s": round(create_rate, 1),
        "get_ms_p50": round(statistics.median(get_ms), 2), "get_ms_p99": round(pct(get_ms, 99), 2),
        f"list_{args.objects}_ms_p50": round(statistics.median(list_ms), 1),
        f"list_{args.objects}_table_ms_p50": round(statistics.median(table_ms), 1),
        f"list_{args.objects}_label_selector_ms_p50": round(statistics.median(selector_ms), 1),
        "watchers": args.watchers,
        "watch_events_per_s_total": round(watch_rate, 1),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--objects", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--watchers", type=int, default=10)
    p.add_argument("--events", type=int, default=1000)
    p.add_argument("--as-serviceaccount", action="store_true",
                   help="talk as default/default with a token bound to edit (every request through RBAC)")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    result = asyncio.run(run(args))
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value}")
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
