"""``labctl trace`` live: send one real probe and let the kernel say which rules it matched.

1. The path is computed first (:mod:`.explain`): it names the nodes the packet can reach and
   the addresses it arrives with there.
2. On each of those nodes a tracer (:data:`TRACER_SCRIPT`, one ``docker exec`` kept open)
   inserts ``-j TRACE`` rules in the ``raw`` table matching only the probe (its source port,
   or the addresses it arrives with), starts ``xtables-monitor --trace``, and says ``READY``
   once a canary datagram shows the monitor is listening.
3. The probe (:mod:`.probe`) runs in the source pod's network namespace (``nsenter`` on the
   node), on the node, or on the host.
4. Each tracer is told to stop: it waits for a second canary (so every event before it was
   printed), stops the monitor, **deletes its rules**, and prints the events, conntrack's
   table and how many trace rules are left. From the host, the node where the probe enters
   first awaits its packet: Docker's proxy accepts the probe itself and connects to the node
   on its own time, so a connected probe there says nothing until the node's kernel saw it.

Cleanup does not depend on this process: a tracer removes its rules when its stdin closes —
after the probe, on Ctrl-C, or when this process dies and Docker drops the connection — and
after 30 s in any case. :func:`remove_trace_rules` sweeps every node for leftovers, and runs
whenever a tracer did not report a clean exit.
"""

from __future__ import annotations

import asyncio
import json
import random
import secrets
import time
from dataclasses import dataclass, replace
from pathlib import Path

import docker.errors

from ..cluster import Lab, Node, NodeInfo
from ..engine.streams import DockerEngine, FrameDemuxer
from ..errors import LabctlError
from . import probe as probe_module
from .conntrack import ConntrackEntry, parse_conntrack
from .explain import Path as ExplainedPath
from .explain import explain, walk_paths
from .hops import address, netfilter_hop
from .model import LabNetwork
from .services import ServicePort
from .tracemodel import Candidate, Hop, Peer, Probe, Trace, Verdict
from .xtrace import TracedHook, packets_of, parse_monitor

__all__ = ["TRACER_SCRIPT", "TRACE_TAG", "TraceRule", "assemble", "live_trace", "plan_trace_rules",
           "remove_trace_rules"]

TRACE_TAG = "labctl-trace"
_MARK = "@@labctl-trace "
_READY_TIMEOUT = 10.0
#: the probe results that mean the packet got through
DELIVERED = ("connected", "answered")
#: tracer: bash -c SCRIPT labctl-trace ID PROTO HOOK MATCH [HOOK MATCH …]
TRACER_SCRIPT = f"""
id=$1; proto=$2; shift 2
tag="{TRACE_TAG}:$id"; out="/tmp/{TRACE_TAG}-$id"; mon=""; added=()
cleanup() {{
  trap - EXIT
  if [ -n "$mon" ]; then kill "$mon" 2>/dev/null; wait "$mon" 2>/dev/null; mon=""; fi
  for r in "${{added[@]}}"; do iptables -w 5 -t raw -D $r 2>/dev/null; done
  added=(); rm -f "$out"
}}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP PIPE
canary() {{ echo labctl > /dev/udp/127.0.0.1/9; }} 2>/dev/null
seen() {{ grep -c -- "$tag-canary" "$out" 2>/dev/null || true; }}
xtables-monitor --trace > "$out" 2>&1 & mon=$!
while [ $# -ge 2 ]; do
  r="$1 $2 -m comment --comment $tag -j TRACE"; shift 2
  iptables -w 5 -t raw -I $r || exit 3
  added+=("$r")
done
c="OUTPUT -p udp -d 127.0.0.1 --dport 9 -m comment --comment $tag-canary -j TRACE"
iptables -w 5 -t raw -I $c || exit 3
added+=("$c")
for i in $(seq 300); do canary; [ "$(seen)" -gt 0 ] && break; sleep 0.01; done
echo READY
read -r -t 30 cmd || true
if [ "$cmd" = expect ]; then  # the probe went through a proxy that connects on its own time: await its packet
  for i in $(seq 300); do [ "$(grep -- "$tag" "$out" | grep -vc -- "$tag-canary")" -gt 0 ] && break; sleep 0.01; done
fi
n=$(seen); canary
for i in $(seq 300); do [ "$(seen)" -gt "$n" ] && break; sleep 0.01; done
printf '{_MARK}events\\n'; cat "$out"
cleanup
printf '\\n{_MARK}conntrack\\n'; conntrack -L -p "$proto" -o extended 2>/dev/null
printf '\\n{_MARK}left\\n'; iptables-save -t raw | grep -c -- "--comment {TRACE_TAG}:" || true
"""
#: removes every trace rule (any trace's) from the node; prints how many are left
SWEEP_SCRIPT = f"""
iptables-save -t raw | grep -- "--comment {TRACE_TAG}:" | sed 's/^-A /-D /' | while read -r r; do
  eval "iptables -w 5 -t raw $r"
done
iptables-save -t raw | grep -c -- "--comment {TRACE_TAG}:" || true
"""


@dataclass(frozen=True)
class TraceRule:
    """A ``-j TRACE`` rule: the ``raw`` chain it goes in and what it matches."""

    hook: str  # PREROUTING | OUTPUT
    match: str


def plan_trace_rules(net: LabNetwork, source: Peer, paths: list[ExplainedPath], protocol: str,
                     sport: int) -> dict[str, list[TraceRule]]:
    """Node → the trace rules that catch the probe there, and only the probe (pure).

    Where the packet is born or enters, the match is exact (the source port, or for traffic
    from the host the address it arrives at); on the nodes it may reach next, it is the
    addresses it arrives with (after the first node's DNAT and masquerade), which only new
    connections to those endpoints share.
    """
    plan: dict[str, list[TraceRule]] = {}
    first = ""
    syn = " --syn" if protocol == "tcp" else ""
    for path in paths:
        for node, dst, dport in _arrivals(path):
            if not first:
                first = node
                if source.kind == "pod":
                    rule = TraceRule("PREROUTING", f"-s {source.ip}/32 -p {protocol} -m {protocol} --sport {sport}")
                elif source.kind == "node":
                    rule = TraceRule("OUTPUT", f"-p {protocol} -m {protocol} --sport {sport}")
                else:
                    rule = TraceRule("PREROUTING", f"-s {net.gateway}/32 -d {dst}/32 -p {protocol} -m {protocol}"
                                                   f" --dport {dport}")
                plan.setdefault(node, []).append(rule)
            elif node != first:
                rule = TraceRule("PREROUTING", f"-d {dst}/32 -p {protocol} -m {protocol} --dport {dport}{syn}")
                if rule not in plan.setdefault(node, []):
                    plan[node].append(rule)
    return plan


def _arrivals(path: ExplainedPath) -> list[tuple[str, str, int]]:
    """Where the path enters each node: (node, destination, port), from its first netfilter hop there."""
    out, current = [], None
    for hop in path.hops:
        if hop.kind != "netfilter" or hop.node == current:
            continue
        current = hop.node
        ip, _, port = hop.dst.rpartition(":")
        out.append((hop.node, ip or hop.dst, int(port or 0)))
    return out


async def live_trace(lab: Lab, net: LabNetwork, source: Peer, destination: Peer, protocol: str,
                     service: ServicePort | None = None, timeout: float = 1.5) -> Trace:
    """Probe once with kernel tracing on along the path; the hops the kernel reported."""
    started = time.perf_counter()
    computed = explain(net, source, destination, protocol, service)
    sport = random.randint(20000, 32000)  # below the kernel's ephemeral range: no collision with real clients
    paths = walk_paths(net, source, destination, protocol, sport)
    plan = plan_trace_rules(net, source, paths, protocol, sport)
    if not plan:  # nothing can even leave (the host has no route): there is nothing to probe
        computed.mode, computed.seconds = "live", time.perf_counter() - started
        computed.notes.append("nothing was sent: the packet cannot reach any node")
        return computed
    trace_id = secrets.token_hex(4)
    containers = {n.node: n.container for n in net.nodes}
    tracers = {name: _Tracer(containers[name], trace_id, protocol, rules) for name, rules in plan.items()}
    try:
        started_all = await asyncio.gather(*(t.start() for t in tracers.values()), return_exceptions=True)
        failed = next((r for r in started_all if isinstance(r, BaseException)), None)
        if failed is not None:
            raise failed
        report = await _send_probe(lab, net, source, destination, protocol, sport, timeout)
        # From the host, Docker's proxy accepts the probe itself and opens its own connection to the node
        # a moment later: the node where it enters awaits that packet before its tracer stops.
        awaited = next(iter(tracers)) if source.kind == "host" and report.get("result") in DELIVERED else ""
        outputs = dict(zip(tracers, await asyncio.gather(*(t.finish(expect=name == awaited)
                                                           for name, t in tracers.items())), strict=True))
    finally:
        await asyncio.gather(*(t.close() for t in tracers.values()), return_exceptions=True)
    left = sum(int(o.get("left", "0").strip() or 0) for o in outputs.values())
    if left or any(not o.get("left", "").strip() for o in outputs.values()):
        left = await remove_trace_rules(lab, list(tracers))
    trace = assemble(net, source, destination, protocol, sport, computed, paths, outputs, report)
    trace.trace_rules_left = left
    trace.seconds = time.perf_counter() - started
    return trace


async def remove_trace_rules(lab: Lab, nodes: list[str] | None = None) -> int:
    """Delete every ``labctl-trace`` rule on the lab's (or the named) running nodes; how many are left."""
    infos = [n for n in await asyncio.to_thread(lab.nodes)
             if n.state == "running" and (nodes is None or n.name in nodes)]
    results = await asyncio.gather(*(Node(lab, n).exec(["bash", "-c", SWEEP_SCRIPT]) for n in infos))
    return sum(int(r.stdout.decode().strip() or 0) for r in results)


class _Tracer:
    """One node's tracer session: started, told to stop, its sections read; closing it always cleans up."""

    def __init__(self, container: str, trace_id: str, protocol: str, rules: list[TraceRule]) -> None:
        self.container = container
        self.argv = ["bash", "-c", TRACER_SCRIPT, TRACE_TAG, trace_id, protocol]
        for rule in rules:
            self.argv += [rule.hook, rule.match]
        self.engine = DockerEngine.from_env()
        self.writer: asyncio.StreamWriter | None = None
        self.reader: asyncio.StreamReader | None = None
        self.demuxer = FrameDemuxer()
        self.out, self.err = bytearray(), bytearray()

    async def start(self) -> None:
        exec_id = await self.engine.exec_create(self.container, self.argv, stdin=True, stdout=True, stderr=True,
                                                tty=False)
        self.reader, self.writer = await self.engine.exec_start(exec_id, tty=False)
        try:
            # asyncio.timeout, not wait_for: Python 3.11's wait_for drops a cancellation (Ctrl-C) that
            # lands as the read completes, and the trace then ended as if nobody had interrupted it
            async with asyncio.timeout(_READY_TIMEOUT):
                await self._read_until(b"READY\n")
        except TimeoutError:
            raise LabctlError(f"the kernel trace did not start on {self.container}: "
                              f"{self.err.decode(errors='replace').strip()[:300]}") from None

    async def finish(self, expect: bool = False) -> dict[str, str]:
        """Tell the tracer the probe is done (``expect``: its packet is still to come, so wait up to 3 s for it);
        its events, conntrack table and leftover count."""
        assert self.writer is not None
        self.writer.write(b"expect\n" if expect else b"done\n")
        await self.writer.drain()
        async with asyncio.timeout(_READY_TIMEOUT):
            await self._read_until(None)
        text = self.out.decode(errors="replace")
        return {chunk.partition("\n")[0].strip(): chunk.partition("\n")[2]
                for chunk in text.split(_MARK)[1:]}

    async def close(self) -> None:
        """Close stdin (the tracer then removes its rules, whatever happened) and the engine session."""
        if self.writer is not None:
            try:
                if self.writer.can_write_eof():
                    self.writer.write_eof()
            except (OSError, RuntimeError):
                pass
            self.writer.close()
        await self.engine.close()

    async def _read_until(self, marker: bytes | None) -> None:
        assert self.reader is not None
        while marker is None or marker not in self.out:
            chunk = await self.reader.read(65536)
            if not chunk:
                if marker is not None:
                    raise LabctlError(f"the kernel trace failed on {self.container}: "
                                      f"{self.err.decode(errors='replace').strip()[:300]}")
                return
            for stream, data in self.demuxer.feed(chunk):
                (self.err if stream == 2 else self.out).extend(data)


async def _send_probe(lab: Lab, net: LabNetwork, source: Peer, destination: Peer, protocol: str, sport: int,
                      timeout: float) -> dict:
    domain = next((n.cluster.cluster_domain for n in net.nodes if n.cluster), "cluster.local")
    args = [protocol, destination.ip, str(destination.port), str(sport), str(timeout), domain]
    if source.kind == "host":
        return await asyncio.to_thread(probe_module.probe, protocol, destination.ip, destination.port, sport,
                                       timeout, domain)
    node = net.node(source.node)
    assert node is not None
    code = Path(probe_module.__file__).read_text()
    argv = ["python3", "-S", "-c", code, *args]
    if source.kind == "pod":
        pod = net.pod_by_ip(source.ip)
        assert pod is not None
        try:
            info = await asyncio.to_thread(lab.docker.api.inspect_container, pod.sandbox)
        except docker.errors.NotFound:
            raise LabctlError(f"the sandbox of pod {pod} is gone (the pod was just deleted or restarted)",
                              hint="run the trace again") from None
        netns = await asyncio.to_thread(lab.pod_netns, info)
        argv = ["nsenter", f"--net={netns}", *argv]
    result = await Node(lab, NodeInfo(node.node, node.role, node.container, node.internal_ip, "running")).exec(argv)
    try:
        return json.loads(result.stdout.decode().strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"result": "error", "detail": result.stderr.decode(errors="replace").strip()[:300], "seconds": 0.0}


def assemble(net: LabNetwork, source: Peer, destination: Peer, protocol: str, sport: int, computed: Trace,
             paths: list[ExplainedPath], outputs: dict[str, dict[str, str]], report: dict) -> Trace:
    """The trace from the tracers' outputs and the probe's report (pure): the kernel's events, placed on the
    computed skeleton of the path actually taken, the endpoint it chose, conntrack's entries, the verdict."""
    hooks = {node: parse_monitor(o.get("events", "")) for node, o in outputs.items()}
    entries = {node: parse_conntrack(o.get("conntrack", "")) for node, o in outputs.items()}
    first = next(iter(outputs))
    ip_id = _probe_ip_id(hooks[first], net, source, destination, protocol, sport)
    traced = {node: packets_of(h, protocol, ip_id) if ip_id else [] for node, h in hooks.items()}
    sep = next((e.rule.chain for t in traced[first] for e in t.events
                if e.verdict == "DNAT" and e.rule and e.rule.chain.startswith("KUBE-SEP-")), "")
    chosen = next((c for c in computed.candidates if c.chain == sep), None)
    skeleton = next((p for p in paths if any(h.chain == sep for h in p.hops)), paths[0]) if sep else paths[0]
    hops = _merge(net, skeleton.hops, traced)
    if hops and hops[0].kind == "route" and hops[0].netns.startswith("pod") and report.get("route"):
        hops[0] = _kernel_route(hops[0], report["route"][0])
    flows = _flows(entries, traced, source, sport)
    for node, entry in flows:
        hops.append(_conntrack_hop(net, node, entry))
    probe = Probe(protocol, source.ip, sport, destination.ip, destination.port, report.get("result", "error"),
                  float(report.get("seconds", 0.0)), report.get("detail", ""))
    verdict = _verdict(hops, probe, chosen, destination, skeleton)
    if destination.kind == "host-port" and verdict.result == "delivered" and not traced[first]:
        # Docker's proxy accepts on the host whatever happens behind it: only the node's kernel can say
        verdict = Verdict("no-answer", f"Docker's proxy accepted the connection, but no packet of it reached "
                                       f"node {first}", first, 0)
    on_path = {h.node for h in skeleton.hops if h.kind == "netfilter"}
    notes = [f"node {n}: the kernel reported nothing for the probe (it did not get there)"
             for n in outputs if n in on_path and not traced[n]] if ip_id else [
        "the kernel reported no packet of the probe"]
    return Trace("live", net.lab, protocol, source, destination, hops, verdict,
                 [replace(c, hops=[], verdict=None) for c in computed.candidates],
                 replace(chosen, hops=[], verdict=None) if chosen else None, probe, [e for _, e in flows],
                 computed.notes + notes)


def _probe_ip_id(hooks: list[TracedHook], net: LabNetwork, source: Peer, destination: Peer, protocol: str,
                 sport: int) -> str:
    """The IP id of the probe's first packet, as the node where it starts (or enters) saw it."""
    for h in hooks:
        if not h.first_packet or not h.events:
            continue
        if source.kind in ("pod", "node") and h.get("SPORT") == str(sport):
            return h.get("ID")
        if source.kind == "host" and h.get("SRC") == net.gateway and (destination.kind == "host-port"
                                                                      or h.get("SPORT") == str(sport)):
            return h.get("ID")
    return ""


def _merge(net: LabNetwork, skeleton: list[Hop], traced: dict[str, list[TracedHook]]) -> list[Hop]:
    """The computed hops with each node's netfilter hops replaced by what its kernel reported, up to the first
    node on the path that did not see the probe."""
    out: list[Hop] = []
    i = 0
    while i < len(skeleton):
        node = skeleton[i].node
        j = i
        while j < len(skeleton) and skeleton[j].node == node:
            j += 1
        segment = skeleton[i:j]
        i = j
        if node not in traced or not any(h.kind == "netfilter" for h in segment):
            out += segment
            continue
        if not traced[node]:
            break  # the kernel of this node never saw the probe: the path ends before it
        nf = [k for k, h in enumerate(segment) if h.kind == "netfilter"]
        before = segment[:nf[0]]
        between = [h for h in segment[nf[0]:nf[-1]] if h.kind != "netfilter"]
        after = segment[nf[-1] + 1:]
        out += before
        placed = False
        for t in traced[node]:
            if not placed and t.hook in ("FORWARD", "INPUT", "POSTROUTING"):
                out += [_confirm_route(h, t) for h in between]
                placed = True
            out += _kernel_hops(net, node, t)
        if not placed:
            out += between
        out += after
    return out


def _kernel_hops(net: LabNetwork, node: str, hook: TracedHook) -> list[Hop]:
    src = address(hook.get("SRC"), int(hook.get("SPORT") or 0))
    dst = address(hook.get("DST"), int(hook.get("DPORT") or 0))
    hops = []
    for e in hook.events:
        if e.rule is not None and e.rule.comment.startswith(TRACE_TAG):
            continue  # our own TRACE rule
        if e.verdict == "DNAT" and e.rule is not None:
            dst = e.rule.target_option("to-destination") or dst
        hops.append(netfilter_hop(net, node, e.table, e.chain, e.rule, e.verdict, src, dst))
    return hops


def _kernel_route(hop: Hop, route: dict) -> Hop:
    """The source pod's own routing decision, as ``ip route get`` answered it in the pod's netns."""
    via = f" via {route['gateway']}" if route.get("gateway") else ""
    src = f" src {route['prefsrc']}" if route.get("prefsrc") else ""
    return replace(hop, summary=f"route get {route.get('dst', '')}{via} dev {route.get('dev', '')}{src} "
                                f"(the pod's kernel; {hop.summary.partition('(')[2].rstrip(')')})")


def _confirm_route(hop: Hop, traced: TracedHook) -> Hop:
    out_iface = traced.get("OUT")
    if hop.kind != "route" or not out_iface:
        return hop
    return replace(hop, summary=f"{hop.summary}; the kernel sent it out {out_iface}")


def _flows(entries: dict[str, list[ConntrackEntry]], traced: dict[str, list[TracedHook]], source: Peer,
           sport: int) -> list[tuple[str, ConntrackEntry]]:
    """Each traced node's conntrack entry for the probe: matched by the tuple its kernel saw first."""
    out = []
    for node, hooks in traced.items():
        if not hooks:
            continue
        first = hooks[0]
        want = (first.get("SRC"), int(first.get("SPORT") or 0), first.get("DST"), int(first.get("DPORT") or 0))
        entry = next((e for e in entries.get(node, [])
                      if (e.original.src, e.original.sport, e.original.dst, e.original.dport) == want), None)
        if entry is not None:
            out.append((node, entry))
    return out


def _conntrack_hop(net: LabNetwork, node: str, e: ConntrackEntry) -> Hop:
    o, r = e.original, e.reply
    what = []
    if e.dnat:
        pod = net.pod_by_ip(r.src)
        what.append(f"DNAT: replies come from {address(r.src, r.sport)}" + (f" (pod {pod})" if pod else ""))
    if e.snat:
        what.append(f"SNAT: replies go to {address(r.dst, r.dport)}")
    state = f" {e.state}" if e.state else ""
    return Hop("conntrack", node, "node",
               f"conntrack on {node}: {e.protocol}{state} {address(o.src, o.sport)} → {address(o.dst, o.dport)}"
               + (f"; {'; '.join(what)}" if what else "; no NAT"), rule=e.text, src=address(o.src, o.sport),
               dst=address(r.src, r.sport))


def _verdict(hops: list[Hop], probe: Probe, chosen: Candidate | None, destination: Peer,
             skeleton: ExplainedPath) -> Verdict:
    stop = next((i for i, h in enumerate(hops) if h.kind == "netfilter" and h.verdict in ("REJECT", "DROP")), None)
    if stop is not None:
        h = hops[stop]
        return Verdict("rejected" if h.verdict == "REJECT" else "dropped",
                       f"{h.verdict} on node {h.node}: {h.comment or h.summary}", h.node, stop, h.object)
    last = max((i for i, h in enumerate(hops) if h.kind != "conntrack"), default=None)  # where the packet got to
    if probe.result in DELIVERED:
        target = (chosen.pod if chosen else None) or skeleton.verdict.object or destination.object
        where = chosen.endpoint if chosen else address(destination.ip, destination.port)
        return Verdict("delivered", f"to {target or where} ({where}); the probe {probe.result}",
                       skeleton.verdict.node, last, target)
    if probe.result == "refused":
        return Verdict("refused", "delivered, but nothing listens on the port (the pod answered with a reset)",
                       skeleton.verdict.node, last, chosen.pod if chosen else destination.object)
    if probe.result == "timeout":
        seen = hops[last] if last is not None else None
        if seen is not None and seen.verdict in ("dropped", "unreachable"):  # e.g. no pod holds the address
            return Verdict(seen.verdict, f"{seen.summary}; {probe.detail}", seen.node, last, seen.object)
        return Verdict("no-answer", f"{probe.detail}; last seen: {seen.summary if seen else 'nowhere'}",
                       seen.node if seen else "", last)
    return Verdict(probe.result, probe.detail or probe.result)

