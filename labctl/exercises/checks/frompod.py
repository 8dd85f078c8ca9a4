"""Traffic the grader sends from inside a pod: a connection to a pod on another node, a DNS query.

Both leave from the pod's own network namespace (:func:`.podnet.enter_pod`), so they take the
path the pod's own traffic takes — its veth, its node's rules, its resolver's search path:

- ``pod-to-pod``: a TCP connection from a pod of one workload to a pod of another *on another
  node*, from a source port the grader picks; then the server's node's conntrack table says
  which source address the connection arrived with. The golden rule holds when that is the
  client pod's own IP, untranslated: the backend sees the real client.
- ``pod-dns``: a name resolved as the pod's resolver would (its nameserver, its search path
  and ``ndots``, from the sandbox's DNS settings), one ``dig`` per name of the search order;
  the answer must be a Service's ClusterIP, a CNAME (an ExternalName), or nothing.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ...client.rest import APIStatusError, resource_path
from ...kube.objects import node_address
from ..model import CheckSpec, Status
from ..relations import Obj, pods_of, serving_pods
from . import CannotJudge, Context, Unmet, Verdict, kind
from .objects import workload
from .podnet import enter_pod

if TYPE_CHECKING:
    from ...inspect.conntrack import ConntrackEntry

__all__ = ["Lookup", "arrival", "parse_lookups", "patience", "search_order"]

#: the grader's source ports: above the kernel's ephemeral range start, so a clash is unlikely
SOURCE_PORTS = (40000, 60000)
CONNECT_TIMEOUT = 3.0


def _ready_pods(ctx: Context, ref: dict[str, Any]) -> tuple[str, list[Obj]]:
    found, wref = workload(ctx, {"workload": ref})
    what = f"{wref.kind} {found['metadata']['name']}"
    pods = sorted(serving_pods(pods_of(ctx.snapshot, found, wref.kind)), key=lambda p: p["metadata"]["name"])
    if not pods:
        raise Unmet(f"{what} has no Ready pod")
    return what, pods


def _declared_port(pod: Obj) -> int:
    ports = [p.get("containerPort") for c in pod["spec"].get("containers") or [] for p in c.get("ports") or []]
    return int(ports[0]) if ports and ports[0] else 80


def arrival(entries: list[ConntrackEntry], server_ip: str, port: int, sport: int) -> ConntrackEntry | None:
    """The grader's connection among a node's conntrack entries (pure): the one to ``server_ip:port``
    from source port ``sport`` (its address may have been translated; its port is what names it)."""
    to_server = [e for e in entries if e.protocol == "tcp" and e.reply.src == server_ip and e.reply.sport == port]
    return next((e for e in to_server if e.original.sport == sport), None)


@kind("pod-to-pod")
async def check_pod_to_pod(ctx: Context, spec: CheckSpec) -> Verdict:
    """A pod of ``from`` connects to a pod of ``to`` on another node, and arrives with its own IP."""
    client_what, clients = _ready_pods(ctx, spec.params["from"])
    server_what, servers = _ready_pods(ctx, spec.params["to"])
    pair = next(((c, s) for c in clients for s in servers if c["spec"].get("nodeName") != s["spec"].get("nodeName")),
                None)
    placement = {p["metadata"]["name"]: p["spec"].get("nodeName") for p in clients + servers}
    if pair is None:
        nodes = sorted({n for n in placement.values() if n})
        raise Unmet(f"every Ready pod of {client_what} and of {server_what} runs on {', '.join(nodes)}: put the "
                    f"client on another node than the server, so the connection crosses the lab network",
                    pods=placement)
    client, server = pair
    cip, sip = client["status"]["podIP"], server["status"]["podIP"]
    cnode, snode = client["spec"]["nodeName"], server["spec"]["nodeName"]
    port = int(spec.params.get("port") or _declared_port(server))
    sport = random.randrange(*SOURCE_PORTS)
    where = (f"pod {client['metadata']['name']} ({cip}, on {cnode}) → pod {server['metadata']['name']} "
             f"({sip}:{port}, on {snode})")
    evidence: dict[str, Any] = {"client": {"pod": client["metadata"]["name"], "ip": cip, "node": cnode},
                                "server": {"pod": server["metadata"]["name"], "ip": sip, "port": port, "node": snode},
                                "sourcePort": sport}
    from ...inspect import probe as probe_module  # labctl.inspect is imported only by gradings that need it
    from ...inspect.conntrack import parse_conntrack

    sandbox = await enter_pod(ctx, client)
    code = Path(probe_module.__file__).read_text()
    result = await sandbox.exec(["python3", "-S", "-c", code, "tcp", sip, str(port), str(sport), str(CONNECT_TIMEOUT)])
    try:
        report = json.loads(result.stdout.decode().strip().splitlines()[-1])
    except (IndexError, ValueError):
        raise CannotJudge(f"could not send from pod {sandbox.pod}: "
                          f"{result.stderr.decode(errors='replace').strip()[-200:]}") from None
    evidence["connect"] = {k: report.get(k) for k in ("result", "detail", "seconds")}
    if report.get("result") != "connected":
        return Verdict.failed(f"{where}: the connection failed: {report.get('detail') or report.get('result')}",
                              **evidence)
    seen = await asyncio.to_thread(ctx.lab.node, snode)
    listing = await seen.exec(["conntrack", "-L", "-p", "tcp", "-d", sip, "--dport", str(port), "-o", "extended"])
    if not listing.ok:
        raise CannotJudge(f"could not read the conntrack table of node {snode}: "
                          f"{listing.stderr.decode(errors='replace').strip()[-200:]}")
    entries = parse_conntrack(listing.stdout.decode(errors="replace"))
    entry = arrival(entries, sip, port, sport)
    if entry is None:
        others = [e.text for e in entries][:5]
        if not others:
            raise CannotJudge(f"{where} connected, but node {snode}'s conntrack table holds no connection to {sip}")
        return Verdict.failed(f"{where} connected, but no connection from source port {sport} reached node {snode} "
                              f"(its port was translated on the way)", conntrack=others, **evidence)
    evidence["conntrack"] = entry.text
    came_from = f"{entry.original.src}:{entry.original.sport}"
    if entry.original.src != cip or entry.snat:
        owner = next((f" (node {n['metadata']['name']}'s address)" for n in ctx.snapshot.nodes
                      if node_address(n) == entry.original.src), "")
        return Verdict.failed(f"{where}: node {snode} saw the connection arrive from {came_from}{owner}, not from "
                              f"the client pod's own {cip}: it was NATed on the way", **evidence)
    return Verdict.passed(f"{where}: node {snode}'s conntrack shows it arrive from {came_from}, the client pod's own "
                          f"IP, and answered to it untranslated: no NAT between pods", **evidence)


def search_order(name: str, search: tuple[str, ...], ndots: int) -> list[str]:
    """The names a stub resolver asks for ``name``, in order (resolv.conf's ``search`` and ``ndots``)."""
    if name.endswith("."):
        return [name]
    qualified = [f"{name}.{domain.rstrip('.')}." for domain in search]
    return [name + "."] + qualified if name.count(".") >= ndots else qualified + [name + "."]


@dataclass(frozen=True)
class Lookup:
    """One name of the search order, as the pod's nameserver answered it."""

    name: str
    records: tuple[tuple[str, str], ...] = ()  # (type, data), e.g. ("CNAME", "db.example.com.")
    timed_out: bool = False


def parse_lookups(text: str) -> list[Lookup]:
    """The resolve script's output → one :class:`Lookup` per name asked, in order (pure)."""
    found: list[Lookup] = []
    for block in text.split("@@ ")[1:]:
        name, _, rest = block.partition("\n")
        records, timed_out = [], False
        for line in rest.splitlines():
            fields = line.split()
            if line.startswith(";;") and ("timed out" in line or "no servers" in line):
                timed_out = True
            elif len(fields) >= 5 and not line.startswith(";") and fields[2] == "IN":
                records.append((fields[3], fields[4].lower()))
        found.append(Lookup(name.strip(), tuple(records), timed_out))
    return found


#: one dig per name of the search order, stopping at the first answer, as a stub resolver does ($0: the
#: nameserver, $1: the query type, then NAME,PATIENCE: dig's +time and +tries for that name).
_RESOLVE = """t=$1; shift; for a in "$@"; do n=${a%,*}; w=${a##*,}; echo "@@ $n"
out=$(dig +noall +answer +time=$w +tries=$w "@$0" "$n" "$t" 2>&1); echo "$out"
echo "$out" | grep -q '^[^;].*[[:space:]]IN[[:space:]]' && break; done"""


def patience(name: str, search: tuple[str, ...]) -> int:
    """How long to wait for ``name`` (dig's +time and +tries): names of the cluster's zone are answered
    from memory, so 2 × 2 s is ample; any other name goes upstream, which an offline lab never answers —
    1 s, once, and its silence counts as no answer."""
    return 2 if any(name.rstrip(".").endswith(domain.rstrip(".")) for domain in search[-1:]) else 1


@kind("pod-dns")
async def check_pod_dns(ctx: Context, spec: CheckSpec) -> Verdict:
    """A name resolved from a pod of ``from`` as its resolver would: a Service's ClusterIP, a CNAME, or nothing."""
    params, expect = spec.params, spec.params["expect"]
    _, pods = _ready_pods(ctx, params["from"])
    sandbox = await enter_pod(ctx, pods[0])
    if not sandbox.nameservers:
        raise CannotJudge(f"pod {sandbox.pod} has no nameserver (dnsPolicy: Default?)")
    name, server = params["name"], sandbox.nameservers[0]
    order = search_order(name, sandbox.search, sandbox.ndots)
    # an ExternalName is asked for its CNAME: an A query makes the DNS server chase the target upstream,
    # which an offline lab does not answer in time
    qtype = "CNAME" if "cname" in expect else "A"
    result = await sandbox.exec(["sh", "-c", _RESOLVE, server, qtype,
                                 *(f"{n},{patience(n, sandbox.search)}" for n in order)])
    lookups = parse_lookups(result.stdout.decode(errors="replace"))
    if not lookups or all(lk.timed_out for lk in lookups):
        raise CannotJudge(f"the cluster DNS ({server}) did not answer pod {sandbox.pod} "
                          f"({result.stderr.decode(errors='replace').strip()[-200:] or 'timed out'})")
    answered = next((lk for lk in lookups if lk.records), None)
    resolved, records = (answered.name, answered.records) if answered else ("", ())
    shown = ", ".join(f"{t} {d}" for t, d in records)
    tried = ", ".join(lk.name + (" (no answer)" if lk.timed_out else "") for lk in lookups)
    source = f"from pod {sandbox.pod}, `{name}`"
    evidence: dict[str, Any] = {"pod": sandbox.pod, "nameserver": server, "name": name, "type": qtype, "tried": tried,
                                "resolvedAs": resolved or None, "answers": [f"{t} {d}" for t, d in records]}
    got = f"{source} resolves as {resolved}: {shown}" if resolved else f"{source} resolves to nothing (tried {tried})"
    if expect.get("nxdomain"):
        return Verdict(Status.FAIL if resolved else Status.PASS, got, evidence)
    if "cname" in expect:
        want = expect["cname"].lower().rstrip(".") + "."
        evidence["expected"] = f"CNAME {want}"
        if ("CNAME", want) in records:
            return Verdict.passed(got, **evidence)
        return Verdict.failed(f"{got}; not a CNAME to {want}", **evidence)
    namespace = expect["service"].get("namespace") or ctx.exercise.namespace
    svc_name = f"{namespace}/{expect['service']['name']}"
    try:
        svc = await ctx.api.get(resource_path("services", namespace, expect["service"]["name"]))
    except APIStatusError as err:
        if err.code != 404:
            raise
        return Verdict.failed(f"there is no Service {svc_name}; {got}", **evidence)
    cluster_ip = (svc.get("spec") or {}).get("clusterIP", "")
    evidence["expected"] = f"A {cluster_ip}"
    if ("A", cluster_ip) in records:
        return Verdict.passed(f"{got}, the ClusterIP of Service {svc_name}", **evidence)
    return Verdict.failed(f"{got}; not {cluster_ip}, the ClusterIP of Service {svc_name}", **evidence)
