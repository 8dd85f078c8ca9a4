#!/usr/bin/env python3
"""Service-account token benchmark: TokenRequests/s and the cost of authenticating a bearer token.

In process (no sockets) over a real SQLite store: how fast TokenRequest signs (what every pod
start costs the kubelet) and what ``authenticate`` adds to every request a pod makes (ES256
verify + store reads of the ServiceAccount and the bound pod).  Then, when the API server
serves the ``token`` subresource, GET latency over HTTPS with a token vs the admin certificate.

    python bench/serviceaccount_tokens.py --repeat 2000 --out bench/results/serviceaccount_tokens.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from labctl.apiserver.rest import RequestScope, RestAPI  # noqa: E402
from labctl.apiserver.serviceaccounts import ServiceAccountTokens, ensure_signing_key  # noqa: E402
from labctl.apiserver.storage import SQLiteStore  # noqa: E402
from support.apiserver import APIServerProcess  # noqa: E402


def per_call_us(fn, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e6


def in_process(data_dir: Path, repeat: int) -> dict:
    store = SQLiteStore(data_dir / "store.db")
    api = RestAPI(store)
    api.bootstrap("127.0.0.1", 6443)
    pods = api.registry.lookup("", "v1", "pods")
    pod = api.create(RequestScope(pods, "default"), {"metadata": {"name": "bench"}, "spec": {
        "containers": [{"name": "c", "image": "labctl/web:v1"}]}})
    tokens = ServiceAccountTokens(ensure_signing_key(data_dir / "pki"), store)
    bound = {"spec": {"expirationSeconds": 3607, "boundObjectRef": {
        "kind": "Pod", "apiVersion": "v1", "name": "bench", "uid": pod["metadata"]["uid"]}}}
    token = tokens.create_token("default", "default", bound)["status"]["token"]
    figures = {
        "token_request_us": per_call_us(lambda: tokens.create_token("default", "default", {}), repeat),
        "pod_bound_token_request_us": per_call_us(lambda: tokens.create_token("default", "default", bound), repeat),
        "authenticate_pod_bound_us": per_call_us(lambda: tokens.authenticate(token), repeat),
        "reject_forged_us": per_call_us(lambda: tokens.authenticate(token[:-4] + "AAAA"), repeat),
    }
    store.close()
    return figures


async def https_latency(server: APIServerProcess, repeat: int) -> dict | None:
    pki = server.data_dir / "pki"
    cert_ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    cert_ctx.load_cert_chain(pki / "admin.crt", pki / "admin.key")
    token_ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    account = f"{server.url}/api/v1/namespaces/default/serviceaccounts/default"
    # discovery, which RBAC lets every authenticated user read: what is compared is authentication
    url = f"{server.url}/api/v1"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=cert_ctx)) as admin:
        async with admin.post(account + "/token", json={"spec": {}}) as r:
            if r.status != 201:
                return None  # the server is not wired for service-account tokens yet
            token = (await r.json())["status"]["token"]
        with_cert = await _samples(admin, url, repeat, {})
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=token_ctx)) as pod:
        with_token = await _samples(pod, url, repeat, {"Authorization": f"Bearer {token}"})
    return {"get_with_client_cert_ms_p50": statistics.median(with_cert),
            "get_with_sa_token_ms_p50": statistics.median(with_token)}


async def _samples(session: aiohttp.ClientSession, url: str, repeat: int, headers: dict) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        async with session.get(url, headers=headers) as r:
            assert r.status == 200, await r.text()
            await r.read()
        out.append((time.perf_counter() - start) * 1000)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=2000)
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="labctl-bench-sa-") as tmp:
        (Path(tmp) / "inproc").mkdir()
        figures: dict = in_process(Path(tmp) / "inproc", args.repeat)
        server = APIServerProcess(Path(tmp) / "server")
        server.data_dir.mkdir()
        server.start()
        try:
            http = asyncio.run(https_latency(server, max(args.repeat // 4, 50)))
        finally:
            server.stop()
    figures.update(http or {"https": "skipped: the API server does not serve serviceaccounts/token"})
    for name, value in figures.items():
        print(f"{name:32} {value:10.1f}" if isinstance(value, float) else f"{name:32} {value}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"machine": platform.platform(), "repeat": args.repeat, **figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
