"""Fixtures for the cluster DNS integration tests.

A real API server process (``shared_apiserver``), objects created by the real kubectl,
``python -m labctl.dns`` as a real process on loopback, and, as its "node resolver", a
tiny dnslib server on loopback that knows a couple of outside names. No query ever leaves
127.0.0.1.
"""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.server import BaseResolver, DNSLogger, DNSServer

from labctl.cluster.kubectl import Kubectl

READY_PREFIX = "labctl-dns ready on "
REPO = Path(__file__).resolve().parents[2]

#: what the fake upstream resolver knows
UPSTREAM_NAMES = {"outside.example.": "192.0.2.1", "target.example.": "192.0.2.7"}


class _StaticResolver(BaseResolver):
    """Answers UPSTREAM_NAMES, NXDOMAIN for everything else, and counts queries."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def resolve(self, request, handler):
        reply = request.reply()
        name = str(request.q.qname).lower()
        self.queries.append(name)
        if name in UPSTREAM_NAMES and request.q.qtype == QTYPE.A:
            reply.add_answer(RR(name, QTYPE.A, rdata=A(UPSTREAM_NAMES[name]), ttl=60))
        elif name not in UPSTREAM_NAMES:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


@dataclass
class FakeUpstream:
    port: int
    resolver: _StaticResolver


@pytest.fixture(scope="module")
def upstream_dns():
    resolver = _StaticResolver()
    quiet = DNSLogger(logf=lambda _: None)
    udp = DNSServer(resolver, address="127.0.0.1", port=0, logger=quiet)
    port = udp.server.server_address[1]
    tcp = DNSServer(resolver, address="127.0.0.1", port=port, tcp=True, logger=quiet)
    servers = [udp, tcp]
    for server in servers:
        server.start_thread()
    try:
        yield FakeUpstream(port, resolver)
    finally:
        for server in servers:
            server.stop()
            server.server.server_close()


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class DNSProcess:
    proc: subprocess.Popen
    port: int
    health_port: int
    log_path: Path

    def query(self, name: str, qtype: str = "A", tcp: bool = False, timeout: float = 3) -> DNSRecord:
        return DNSRecord.parse(DNSRecord.question(name, qtype).send("127.0.0.1", self.port, tcp=tcp,
                                                                     timeout=timeout))

    def addresses(self, name: str, qtype: str = "A", tcp: bool = False) -> list[str]:
        return sorted(str(rr.rdata) for rr in self.query(name, qtype, tcp).rr if rr.rtype == getattr(QTYPE, qtype))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc.stdout.close()


def start_dns(kubeconfig: Path, upstream_port: int, log_dir: Path, timeout: float = 30) -> DNSProcess:
    """``python -m labctl.dns`` on a free loopback port, returned once its caches synced."""
    health_port = free_tcp_port()
    log_path = log_dir / "dns.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "labctl.dns", "--kubeconfig", str(kubeconfig), "--listen", "127.0.0.1:0",
         "--upstream", f"127.0.0.1:{upstream_port}", "--health-listen", f"127.0.0.1:{health_port}",
         "--dns-ip", "10.96.0.10"],
        stdout=subprocess.PIPE, stderr=open(log_path, "ab"), cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    line = b""
    while time.monotonic() < deadline and proc.poll() is None:
        if sel.select(timeout=0.5):
            line = proc.stdout.readline()
            if line.decode().startswith(READY_PREFIX):
                break
    text = line.decode().strip()
    if not text.startswith(READY_PREFIX):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"labctl.dns did not become ready:\n{log_path.read_text()[-3000:]}")
    return DNSProcess(proc, int(text.rsplit(":", 1)[1]), health_port, log_path)


@pytest.fixture(scope="module")
def dns_process_factory(tmp_path_factory):
    """Start labctl.dns processes (``factory(kubeconfig, upstream_port)``), stopped at module end."""
    started: list[DNSProcess] = []

    def factory(kubeconfig: Path, upstream_port: int) -> DNSProcess:
        started.append(start_dns(kubeconfig, upstream_port, tmp_path_factory.mktemp("dns")))
        return started[-1]

    try:
        yield factory
    finally:
        for process in started:
            process.stop()


@pytest.fixture(scope="module")
def dns_kubectl(shared_apiserver, kubectl_binary) -> Kubectl:
    return Kubectl(kubectl_binary, shared_apiserver.kubeconfig)
