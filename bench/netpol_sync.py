#!/usr/bin/env python3
"""Network policy sync time vs a plain ``iptables-restore`` of the same rules (the floor).

100 policies x 50 pods on the node by default, in throwaway network namespaces (the host's
iptables are never touched). The pods carry one of 10 ``app`` labels; each policy selects
one app and has three ingress rules (from another app on port 80, from a namespace on a
named port, from an ipBlock with an except) and an egress rule allowing DNS, so every pod
is isolated both ways by ~10 policies. It measures:

  build       build_ruleset() alone (pure Python, every chain)
  1st sync    the first PolicyEnforcer.sync() into empty tables (iptables-save + build + restore)
  1st raw     ``iptables-restore --noflush`` of that same text into another empty netns
  full sync   PolicyEnforcer.sync(full=True) after one pod changed labels: list FORWARD + build + every chain
  raw         ``iptables-restore --noflush`` of exactly that text, into the same populated tables
  partial     PolicyEnforcer.sync() after one pod changed labels: only the chains that changed

Goal (issue 15): sync <= 1.5 x raw.

    sudo python3 bench/netpol_sync.py [--policies 100] [--pods 50] [--repeat 5] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import Netns, write_json

from labctl.apiserver.defaults import default_network_policy
from labctl.netpol import PolicyEnforcer, build_ruleset
from labctl.proxy.iptables import IPTables

NODE = "node1"
APPS = 10


def make_pod(i: int, app: int) -> dict:
    return {"metadata": {"namespace": "bench", "name": f"pod-{i}", "labels": {"app": f"app-{app}"}},
            "spec": {"nodeName": NODE, "containers": [{"name": "c", "ports": [{"name": "http", "containerPort": 8080}]}]},
            "status": {"phase": "Running", "podIP": f"10.244.{i // 250}.{i % 250 + 2}"}}


def make_policy(k: int) -> dict:
    obj = {"metadata": {"namespace": "bench", "name": f"policy-{k}"}, "spec": {
        "podSelector": {"matchLabels": {"app": f"app-{k % APPS}"}},
        "ingress": [
            {"from": [{"podSelector": {"matchLabels": {"app": f"app-{(k + 1) % APPS}"}}}], "ports": [{"port": 80}]},
            {"from": [{"namespaceSelector": {"matchLabels": {"team": "monitoring"}}}], "ports": [{"port": "http"}]},
            {"from": [{"ipBlock": {"cidr": "172.16.0.0/12", "except": ["172.17.0.0/16"]}}]}],
        "egress": [{"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                    "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}]}}
    default_network_policy(obj)
    return obj


def loaded_enforcer(ns: Netns, pod_objs: list[dict], policies: int) -> PolicyEnforcer:
    """An enforcer writing into ``ns`` with every pod, policy and namespace listed, not yet synced."""
    enforcer = PolicyEnforcer(NODE, iptables=IPTables(prefix=("ip", "netns", "exec", ns.name), timeout=1800))
    for obj in pod_objs:
        enforcer.on_pod(None, obj)
    for k in range(policies):
        enforcer.on_policy(None, make_policy(k))
    enforcer.on_namespace(None, {"metadata": {"name": "bench", "labels": {"kubernetes.io/metadata.name": "bench"}}})
    enforcer.on_synced()
    return enforcer


def first_sync(pod_objs: list[dict], policies: int, run: int) -> tuple[float, float]:
    """(the first sync into empty tables, a raw restore of its text into other empty tables), in fresh netns."""
    with Netns("lnpbench", f"f{run}") as ns, Netns("lnpbench", f"r{run}") as raw_ns:
        enforcer = loaded_enforcer(ns, pod_objs, policies)
        start = time.perf_counter()
        enforcer.sync()
        return time.perf_counter() - start, raw_ns.restore(enforcer.last_ruleset.text)


def bench(policies: int, pods: int, repeat: int) -> dict:
    pod_objs = [make_pod(i, i % APPS) for i in range(pods)]
    firsts = [first_sync(pod_objs, policies, r) for r in range(repeat)]
    with Netns("lnpbench", "a") as ns:
        enforcer = loaded_enforcer(ns, pod_objs, policies)
        enforcer.sync()
        rules = sum(1 for line in enforcer.last_ruleset.text.splitlines() if line.startswith(("-A", "-I")))
        builds, fulls, raws, partials = [], [], [], []
        for r in range(repeat):
            t = time.perf_counter()
            build_ruleset(enforcer.policies.values(), enforcer.pods.values(), enforcer.namespaces, NODE,
                          enforcer.last_ruleset.chains, None)
            builds.append(time.perf_counter() - t)
            for full, times in ((True, fulls), (False, partials)):
                i = (2 * r + full) % pods
                new = make_pod(i, (2 * r + 3) % APPS)  # a relabelled pod: its chains and its peers' rules change
                enforcer.on_pod(pod_objs[i], new)
                pod_objs[i] = new
                t = time.perf_counter()
                enforcer.sync(full=full)
                times.append(time.perf_counter() - t)
                if full:
                    raws.append(ns.restore(enforcer.last_ruleset.text))  # same full text, same populated tables
    med = statistics.median
    first_sync_s, first_raw_s = med(f for f, _ in firsts), med(r for _, r in firsts)
    return {"policies": policies, "pods": pods, "rules": rules, "build_s": med(builds), "first_sync_s": first_sync_s,
            "first_raw_s": first_raw_s, "first_ratio": first_sync_s / first_raw_s, "full_sync_s": med(fulls),
            "raw_s": med(raws), "full_ratio": med(fulls) / med(raws), "partial_sync_s": med(partials),
            "partial_ratio": med(partials) / med(raws), "load": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--policies", type=int, default=100)
    parser.add_argument("--pods", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("ERROR: needs root (creates network namespaces)", file=sys.stderr)
        return 1
    r = bench(args.policies, args.pods, args.repeat)
    print(f"{'policies':>8} {'pods':>5} {'rules':>6} {'build':>7} {'1st sync':>9} {'1st raw':>8} {'ratio':>6}"
          f" {'full sync':>9} {'raw':>7} {'ratio':>6} {'partial':>8} {'ratio':>6}")
    print(f"{r['policies']:>8} {r['pods']:>5} {r['rules']:>6} {r['build_s']:>6.3f}s {r['first_sync_s']:>8.3f}s"
          f" {r['first_raw_s']:>7.3f}s {r['first_ratio']:>5.2f}x {r['full_sync_s']:>8.3f}s {r['raw_s']:>6.3f}s"
          f" {r['full_ratio']:>5.2f}x {r['partial_sync_s']:>7.3f}s {r['partial_ratio']:>5.2f}x"
          f"   (medians of {args.repeat}; load {r['load'][0]:.1f})")
    write_json(args.out, {"benchmark": "netpol_sync", "results": [r]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
