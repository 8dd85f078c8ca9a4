#!/usr/bin/env python3
"""Service proxy sync time vs a plain ``iptables-restore`` of the same ruleset (the floor).

For N services x 4 endpoints it measures, inside throwaway network namespaces (the host's
iptables are never touched):

  build       build_ruleset() alone (pure Python, full ruleset)
  1st sync    the first Proxier.sync() into empty tables (iptables-save + build + restore)
  1st raw     `iptables-restore --noflush` of that same text into another empty netns
  full sync   Proxier.sync(full=True) after one endpoint changed: save + build + restore, every chain
  raw         `iptables-restore --noflush` of exactly that text, into the same populated tables
  partial     Proxier.sync() after one endpoint changed: shared chains + that service's chains only

Goal: sync <= 1.5 x raw at 1,000 services.

    sudo python3 bench/proxy_sync.py [--sizes 10,100,1000,5000] [--repeat 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Netns

from labctl.proxy import Proxier
from labctl.proxy.iptables import IPTables
from labctl.proxy.rules import build_ruleset

ENDPOINTS_PER_SERVICE = 4


def make_objects(n: int) -> tuple[list[dict], list[dict]]:
    services, endpoints = [], []
    for i in range(n):
        meta = {"namespace": "bench", "name": f"svc-{i}"}
        services.append({"metadata": meta, "spec": {
            "type": "ClusterIP", "clusterIP": f"10.96.{i // 250}.{i % 250 + 1}",
            "ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 8080}]}})
        ips = [f"10.244.{(i * 4 + k) // 250 % 250}.{(i * 4 + k) % 250 + 1}" for k in range(ENDPOINTS_PER_SERVICE)]
        endpoints.append({"metadata": {**meta, "name": f"svc-{i}-abcde", "labels": {"kubernetes.io/service-name": f"svc-{i}"}},
                          "addressType": "IPv4",
                          "endpoints": [{"addresses": [ip], "conditions": {"ready": True}, "nodeName": "node1"} for ip in ips],
                          "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}]})
    return services, endpoints


def bench_size(n: int, repeat: int) -> dict:
    services, endpoints = make_objects(n)
    with Netns("lpxbench", "a") as ns, Netns("lpxbench", "b") as raw_ns:
        # iptables-nft --noflush is ~quadratic: 5,000 services take minutes, past the default 60 s timeout.
        ipt = IPTables(prefix=("ip", "netns", "exec", ns.name), timeout=1800)
        p = Proxier("node1", iptables=ipt, command_prefix=ipt.prefix)
        for s, e in zip(services, endpoints):
            p.on_service_add(s)
            p.on_endpoint_slice_add(e)
        p.on_synced()
        start = time.perf_counter()
        p.sync()
        first_sync = time.perf_counter() - start
        first_raw = raw_ns.restore(p.last_ruleset)  # same text into empty tables
        rules = sum(1 for line in p.last_ruleset.splitlines() if line.startswith(("-A", "-I")))
        builds, fulls, raws, partials = [], [], [], []
        for r in range(repeat):
            t = time.perf_counter()
            build_ruleset(p.services, p.endpoints, p.node, p._applied, ())
            builds.append(time.perf_counter() - t)
            change_one_endpoint(p, endpoints, 2 * r)
            t = time.perf_counter()
            p.sync(full=True)
            fulls.append(time.perf_counter() - t)
            raws.append(ns.restore(p.last_ruleset))  # same full text, same populated tables
            change_one_endpoint(p, endpoints, 2 * r + 1)
            t = time.perf_counter()
            p.sync()
            partials.append(time.perf_counter() - t)
    med = statistics.median
    return {
        "services": n, "endpoints": n * ENDPOINTS_PER_SERVICE, "rules": rules,
        "build_s": med(builds), "first_sync_s": first_sync, "first_raw_s": first_raw,
        "full_sync_s": med(fulls), "raw_s": med(raws), "full_ratio": med(fulls) / med(raws),
        "partial_sync_s": med(partials), "partial_ratio": med(partials) / med(raws),
    }


def change_one_endpoint(p: Proxier, endpoints: list[dict], r: int) -> None:
    """Replace one endpoint of one service, as a pod restart does."""
    i = r % len(endpoints)
    old = endpoints[i]
    new = json.loads(json.dumps(old))
    new["endpoints"][0]["addresses"] = [f"10.250.{r // 250}.{r % 250 + 1}"]
    endpoints[i] = new
    p.on_endpoint_slice_update(old, new)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100,1000,5000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("ERROR: needs root (creates network namespaces)", file=sys.stderr)
        return 1
    results = []
    header = (f"{'services':>8} {'rules':>7} {'build':>7} {'1st sync':>9} {'1st raw':>8}"
              f" {'full sync':>9} {'raw':>7} {'ratio':>6} {'partial':>8} {'ratio':>6}")
    print(header)
    for n in (int(s) for s in args.sizes.split(",")):
        r = bench_size(n, args.repeat)
        results.append(r)
        print(f"{r['services']:>8} {r['rules']:>7} {r['build_s']:>6.3f}s {r['first_sync_s']:>8.3f}s"
              f" {r['first_raw_s']:>7.3f}s {r['full_sync_s']:>8.3f}s {r['raw_s']:>6.3f}s {r['full_ratio']:>5.2f}x"
              f" {r['partial_sync_s']:>7.3f}s {r['partial_ratio']:>5.2f}x")
    if args.out:
        args.out.write_text(json.dumps({"benchmark": "proxy_sync", "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
