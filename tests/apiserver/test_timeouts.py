"""Connections that do not send a request in time are closed; requests in progress are not.

A slowloris client holds connections by never finishing a request (or a TLS handshake).
The server under test runs with 1 s limits so every case takes about a second.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import aiohttp
import pytest

from support.apiserver import APIServerProcess

TIMEOUT = 1.0  # the server's TLS-handshake, request-header and idle timeouts in these tests
MARGIN = 1.5  # scheduling slack on a busy 2-core machine
LIMITS = ["--tls-handshake-timeout", str(TIMEOUT), "--request-header-timeout", str(TIMEOUT),
          "--idle-timeout", str(TIMEOUT)]


def _start(path: Path, extra: list[str]):
    server = APIServerProcess(path, extra_args=extra)
    server.data_dir.mkdir()
    server.start()
    return server


@pytest.fixture(scope="module")
def quick_server(tmp_path_factory):
    server = _start(tmp_path_factory.mktemp("timeouts") / "apiserver", LIMITS)
    try:
        yield server
    finally:
        server.stop()


def _tls(server, client_cert: bool) -> ssl.SSLContext:
    pki = server.data_dir / "pki"
    ctx = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    if client_cert:
        ctx.load_cert_chain(pki / "admin.crt", pki / "admin.key")
    return ctx


async def _closed_after(reader: asyncio.StreamReader, started: float) -> float:
    """Seconds from ``started`` until the server closes the connection."""
    try:
        while await reader.read(4096):
            pass
    except (ConnectionError, ssl.SSLError):
        pass
    return time.monotonic() - started


async def _slowloris(server, tls: bool) -> float:
    """Trickle a request's headers, a line every 0.3 s, never ending them; seconds until closed."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port, ssl=_tls(server, False) if tls else None)
    closed = asyncio.create_task(_closed_after(reader, started))
    if tls:
        writer.write(b"GET /api/v1/namespaces HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        line = 0
        while not closed.done():
            writer.write(b"X-Slow-%d: y\r\n" % line)
            line += 1
            await asyncio.wait([closed], timeout=0.3)
    # a plain TCP client never starts the TLS handshake
    seconds = await closed
    writer.close()
    return seconds


def test_slow_requests_and_handshakes_are_closed_while_a_watch_and_requests_go_on(quick_server):
    async def scenario():
        url = quick_server.url
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_tls(quick_server, True))) as http:
            async with http.get(f"{url}/api/v1/namespaces/default/configmaps") as r:
                rv = (await r.json())["metadata"]["resourceVersion"]
            watch = await http.get(f"{url}/api/v1/namespaces/default/configmaps",
                                   params={"watch": "true", "resourceVersion": rv})
            watch_opened = time.monotonic()

            slow = [asyncio.create_task(_slowloris(quick_server, tls=i % 4 != 0)) for i in range(40)]
            # meanwhile an authenticated request is answered at once
            started = time.monotonic()
            async with http.get(f"{url}/api/v1/namespaces") as r:
                assert r.status == 200
            assert time.monotonic() - started < 0.5

            held = await asyncio.gather(*slow)
            assert max(held) < TIMEOUT + MARGIN, sorted(held)
            assert min(held) > TIMEOUT * 0.8, sorted(held)

            # the watch outlived every timeout and still delivers
            assert time.monotonic() - watch_opened > TIMEOUT
            async with http.post(f"{url}/api/v1/namespaces/default/configmaps",
                                 json={"metadata": {"name": "after-slowloris"}}) as r:
                assert r.status == 201
            line = await asyncio.wait_for(watch.content.readline(), 5)
            assert b'"ADDED"' in line and b"after-slowloris" in line
            watch.close()

    asyncio.run(scenario())


def test_idle_connections_are_closed_after_the_idle_timeout(quick_server):
    async def held_after_request(client_cert: bool) -> tuple[bytes, float]:
        reader, writer = await asyncio.open_connection("127.0.0.1", quick_server.port,
                                                       ssl=_tls(quick_server, client_cert))
        writer.write(b"GET /api/v1/namespaces/default HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        status = await reader.readline()
        seconds = await _closed_after(reader, time.monotonic())
        writer.close()
        return status, seconds

    async def scenario():
        return await asyncio.gather(held_after_request(True), held_after_request(False))

    (admin_status, admin_held), (anonymous_status, anonymous_held) = asyncio.run(scenario())
    assert admin_status.startswith(b"HTTP/1.1 200") and anonymous_status.startswith(b"HTTP/1.1 401")
    assert TIMEOUT * 0.8 < admin_held < TIMEOUT + MARGIN
    assert TIMEOUT * 0.8 < anonymous_held < TIMEOUT + MARGIN


def test_the_oldest_unauthenticated_connections_make_room_for_new_ones(tmp_path):
    cap = 5
    tokens = tmp_path / "tokens.csv"
    tokens.write_text('watcher-token,watcher,1,"system:masters"\n')
    server = _start(tmp_path / "apiserver", ["--request-header-timeout", "60", "--token-auth-file", str(tokens),
                                             "--max-unauthenticated-connections", str(cap)])
    try:
        async def scenario():
            url = f"{server.url}/api/v1/namespaces/default/configmaps"
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=_tls(server, False)),
                                             headers={"Authorization": "Bearer watcher-token"}) as http:
                # a bearer-token watch: its connection authenticates with its request, which lasts
                watch = await http.get(url, params={"watch": "true", "resourceVersion": "1"})
                admin = await asyncio.open_connection("127.0.0.1", server.port, ssl=_tls(server, True))
                quiet = [await asyncio.open_connection("127.0.0.1", server.port, ssl=_tls(server, False))
                         for _ in range(cap + 7)]
                evicted = [asyncio.create_task(_closed_after(reader, 0)) for reader, _ in quiet[:7]]
                await asyncio.wait_for(asyncio.gather(*evicted), 10)

                # the newest ones and the certificate-authenticated one still serve requests
                statuses = []
                for reader, writer in [*quiet[7:], admin]:
                    writer.write(b"GET /api/v1/namespaces/default HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                    statuses.append((await asyncio.wait_for(reader.readline(), 5)).split()[1])
                for _, writer in [*quiet, admin]:
                    writer.close()
                assert statuses == [b"401"] * cap + [b"200"]

                async with http.post(url, json={"metadata": {"name": "after-flood"}}) as r:
                    assert r.status == 201
                while b"after-flood" not in (line := await asyncio.wait_for(watch.content.readline(), 5)):
                    assert line, "the watch ended"
                watch.close()

        asyncio.run(scenario())
    finally:
        server.stop()
