"""Cluster DNS: queries/s and latency for cluster names, answered from the informer caches.

Runs ``labctl.dns.server.DNSServer`` over a ``ClusterZone`` filled with N Services (and a
headless one with endpoints) on 127.0.0.1, then fires UDP queries from a client process
(so client and server do not share one event loop) with a fixed number in flight.
Also times ``ClusterZone.answer`` alone, the pure part.

    python bench/dns.py [--services 1000] [--queries 20000] [--concurrency 16] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dnslib import DNSRecord

from labctl.dns.records import ClusterZone
from labctl.dns.server import DNSServer, Forwarder


def build_caches(n: int) -> tuple[dict, dict]:
    services, endpoints = {}, {}
    for i in range(n):
        ns = f"ns{i % 10}"
        services[(ns, f"svc{i}")] = {"metadata": {"name": f"svc{i}", "namespace": ns},
                                     "spec": {"clusterIP": f"10.96.{i // 250}.{i % 250 + 2}",
                                              "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}
    services[("default", "headless")] = {"metadata": {"name": "headless", "namespace": "default"},
                                         "spec": {"clusterIP": "None",
                                                  "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}}
    endpoints[("default", "headless")] = {"subsets": [{
        "addresses": [{"ip": f"10.244.1.{i}", "hostname": f"h{i}"} for i in range(1, 11)],
        "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}]}
    return services, endpoints


def question_mix(n: int) -> list[tuple[str, str]]:
    """Mostly A lookups of Services, plus what a search path produces: NXDOMAINs, SRV, headless."""
    mix = []
    for i in range(n):
        kind = i % 10
        svc = random.randrange(n)
        if kind < 6:
            mix.append((f"svc{svc}.ns{svc % 10}.svc.cluster.local", "A"))
        elif kind < 8:
            mix.append((f"svc{svc}.ns{svc % 10}.svc.cluster.local.ns0.svc.cluster.local", "A"))  # NXDOMAIN
        elif kind == 8:
            mix.append((f"_http._tcp.svc{svc}.ns{svc % 10}.svc.cluster.local", "SRV"))
        else:
            mix.append(("headless.default.svc.cluster.local", "A"))
    return mix


def bench_pure(zone: ClusterZone, mix: list[tuple[str, str]]) -> float:
    start = time.perf_counter()
    for name, qtype in mix:
        zone.answer(name, qtype)
    return len(mix) / (time.perf_counter() - start)


def serve(port_out, services: int) -> None:
    async def main() -> None:
        svcs, eps = build_caches(services)
        server = DNSServer(ClusterZone(svcs, eps), Forwarder([]))
        port_out.put(await server.listen("127.0.0.1", 0))
        await asyncio.Event().wait()
    asyncio.run(main())


def client(port: int, packets: list[bytes], concurrency: int) -> tuple[float, list[float]]:
    """Keep ``concurrency`` queries in flight on one socket; ids map replies to send times."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(2)
    sent: dict[int, float] = {}
    latencies: list[float] = []
    queue = list(enumerate(packets))
    start = time.perf_counter()

    def send_one() -> None:
        qid, packet = queue.pop()
        qid &= 0xFFFF
        sent[qid] = time.perf_counter()
        sock.send(qid.to_bytes(2, "big") + packet[2:])

    for _ in range(min(concurrency, len(queue))):
        send_one()
    while sent:
        data = sock.recv(4096)
        latencies.append(time.perf_counter() - sent.pop(int.from_bytes(data[:2], "big")))
        if queue:
            send_one()
    return time.perf_counter() - start, latencies


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--services", type=int, default=1000)
    p.add_argument("--queries", type=int, default=20000)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    random.seed(1)
    svcs, eps = build_caches(args.services)
    mix = question_mix(args.queries)
    pure_qps = bench_pure(ClusterZone(svcs, eps), mix)
    packets = [DNSRecord.question(name, qtype).pack() for name, qtype in mix]

    port_q: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(port_q, args.services), daemon=True)
    server.start()
    try:
        port = port_q.get(timeout=20)
        client(port, packets[:1000], args.concurrency)  # warm up
        elapsed, latencies = client(port, packets, args.concurrency)
    finally:
        server.terminate()
        server.join(5)
    latencies.sort()
    result = {
        "services": args.services, "queries": args.queries, "concurrency": args.concurrency,
        "records_answer_per_s": round(pure_qps),
        "udp_queries_per_s": round(len(latencies) / elapsed),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 3),
    }
    for key, value in result.items():
        print(f"{key:>22}: {value}")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
