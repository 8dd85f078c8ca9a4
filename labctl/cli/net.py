"""``labctl net`` and ``labctl trace``: the lab's network and one packet's path, in a student's words.

Both only parse options, call :mod:`labctl.inspect` and print: rich text by default, the
documented JSON with ``--json`` (``docs/net.md``, ``docs/trace.md``). ``main.py`` registers
them with :func:`register`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from typing import TYPE_CHECKING

import typer
from rich.console import Console, Group
from rich.text import Text

if TYPE_CHECKING:  # rich's trees (and tables) load with the commands that print them, not with every `labctl`
    from rich.tree import Tree

    from ..cluster import Lab
    from ..inspect import IsolatedPod, LabNetwork, NodeNetwork, ServicePort, Trace

__all__ = ["register"]

out = Console(width=None if sys.stdout.isatty() else 200)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 200)

_LEADS_TO = {"bridge": "this node's pods (on cni0)", "lab-network": "the lab network (the other nodes)",
             "host": "out of the lab (Docker's gateway: the host)"}
_VERDICT_STYLE = {"delivered": "green", "rejected": "red", "dropped": "red", "unreachable": "red",
                  "no-answer": "yellow", "refused": "yellow", "partly-delivered": "yellow"}


def register(app: typer.Typer) -> None:
    """Add ``net`` and ``trace`` to the CLI."""
    app.command("net")(net)
    app.command("trace")(trace)


def net(nodes: list[str] | None = typer.Argument(None, help="nodes to show (default: all)"),
        name: str | None = typer.Option(None, "--name", "-n", help="the lab's name (default: lab, or the only lab)"),
        as_json: bool = typer.Option(False, "--json", help="print the documented JSON (docs/net.md)")) -> None:
    """Show each node's bridge and veths (with their pods), routes (with the node each leads to) and Services' rules."""
    from ..cluster import Lab
    from ..errors import LabctlError
    from ..inspect import read_lab, to_jsonable

    with Lab.open(name) as lab:
        network = read_lab(lab)
    shown = network.nodes
    if nodes:
        unknown = [n for n in nodes if network.node(n) is None]
        if unknown:
            raise LabctlError(f"lab {network.lab!r} has no running node {', '.join(unknown)}",
                              hint="its running nodes: " + ", ".join(n.node for n in network.nodes))
        shown = [n for n in network.nodes if n.node in nodes or n.container in nodes]
    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(dataclasses.replace(network, nodes=shown)), indent=2) + "\n")
        return
    printed: dict[tuple, str] = {}
    for node in shown:
        out.print(_node_tree(network, node, printed))
        out.print()


def trace(source: str = typer.Argument(..., metavar="FROM", help="a pod ([ns/]name), a node, or host"),
          destination: str = typer.Argument(..., metavar="TO", help="a pod, a Service ([ns/]name or DNS name), a "
                                            "ClusterIP, NODE_IP:NODEPORT, 127.0.0.1:HOSTPORT or a LoadBalancer IP"),
          port: str | None = typer.Option(None, "--port", "-p", help="the port (number, or a Service port's name)"),
          proto: str = typer.Option("tcp", "--proto", help="tcp or udp"),
          explain: bool = typer.Option(False, "--explain", help="compute the path from the rules; send nothing"),
          rules: bool = typer.Option(False, "--rules", help="print each rule's text and every chain policy too"),
          as_json: bool = typer.Option(False, "--json", help="print the documented JSON (docs/trace.md)"),
          name: str | None = typer.Option(None, "--name", "-n", help="the lab's name")) -> None:
    """Trace one packet FROM → TO hop by hop: live (a real probe, the rules the kernel saw it match) or --explain."""
    from ..cluster import Lab
    from ..errors import LabctlError
    from ..inspect import run_trace, to_jsonable
    from .interrupts import signals_interrupt

    if proto.lower() not in ("tcp", "udp"):
        raise LabctlError(f"unknown protocol {proto!r}", hint="--proto tcp or --proto udp")
    with signals_interrupt() as interrupted, Lab.open(name) as lab:
        try:
            result = run_trace(lab, source, destination, port=port, protocol=proto, explain_only=explain)
            if interrupted:
                raise KeyboardInterrupt
        except BaseException:
            if not explain:
                _sweep(lab)
            raise
    if as_json:
        sys.stdout.write(json.dumps(to_jsonable(result), indent=2) + "\n")
    else:
        _print_trace(result, rules)


def _sweep(lab: Lab) -> None:
    """After an interrupted live trace: make sure no node keeps a trace rule (the tracers remove theirs too)."""
    from ..inspect import remove_trace_rules

    try:
        left = asyncio.run(remove_trace_rules(lab))
    except Exception as error:
        err.print(f"WARNING: could not check the nodes for trace rules: {error}", highlight=False)
        return
    if left:
        err.print(f"WARNING: {left} trace rule(s) could not be removed", highlight=False)


# -- labctl net ------------------------------------------------------------------------------------
def _node_tree(network: LabNetwork, node: NodeNetwork, printed: dict[tuple, str]) -> Tree:
    from rich.tree import Tree

    tree = Tree(Text.assemble((f"node {node.node}", "bold"), f"  {node.role}, InternalIP {node.internal_ip}, "
                              f"podCIDR {node.pod_cidr or '?'}"))
    tree.add(_bridge(node))
    tree.add(_routes(node))
    signature = tuple(_service_signature(p) for p in node.services)
    if signature in printed:
        tree.add(Text(f"Services: the same {len(node.services)} Service ports and rules as on node "
                      f"{printed[signature]} (every node's proxy writes the same rules)", style="dim"))
    else:
        printed[signature] = node.node
        tree.add(Group(Text("Services (kube-proxy's nat rules; -> endpoints with their probability)", style="bold"),
                       _services(network, node.services)))
    if node.policies:
        tree.add(Group(Text("Network policies (labctl's filter rules; what each isolated pod may send or accept)",
                            style="bold"), _policies(node.policies)))
    sysctls = ", ".join(f"{k}={v}" for k, v in node.sysctls.items())
    tree.add(Text(f"sysctls: {sysctls}", style="dim"))
    return tree


def _bridge(node: NodeNetwork) -> Group | Text:
    if node.bridge is None:
        return Text("no bridge cni0", style="yellow")
    bridge = node.bridge
    title = Text.assemble(("bridge cni0 ", "bold"), ", ".join(str(a) for a in bridge.addresses) or "no address",
                          f"  ({bridge.mac}, {len(bridge.ports)} ports)")
    from rich.table import Table

    table = Table("VETH", "STATE", "HAIRPIN", "POD", "POD IP", box=None, padding=(0, 2, 0, 0))
    for veth in bridge.ports:
        table.add_row(veth.name, veth.port_state, "on" if veth.hairpin else "off",
                      str(veth.pod) if veth.pod else Text("no pod (leftover)", style="yellow"),
                      veth.pod.ip if veth.pod else "")
    return Group(title, table)


def _routes(node: NodeNetwork) -> Group:
    from rich.table import Table

    table = Table("DESTINATION", "VIA", "DEV", "LEADS TO", box=None, padding=(0, 2, 0, 0))
    for r in node.routes:
        leads = f"node {r.node}'s pods (host-gw)" if r.leads_to == "node" else _LEADS_TO.get(r.leads_to, r.leads_to)
        table.add_row(r.destination, r.gateway or "-", r.device, leads)
    return Group(Text("routes", style="bold"), table)


def _services(network: LabNetwork, ports: list[ServicePort]) -> Text:
    """Every Service port as one block of lines (one Text, not a Tree per port: 5x faster to print)."""
    block = Text(no_wrap=True, overflow="ignore")
    for i, port in enumerate(ports):
        last_port = i == len(ports) - 1
        addresses = [f"ClusterIP {port.cluster_ip}:{port.port}"] if port.cluster_ip else []
        addresses += [f"NodePort {port.node_port}"] if port.node_port else []
        addresses += [f"LoadBalancer {ip}:{port.port}" for ip in port.load_balancer_ips]
        addresses += [f"external IP {ip}:{port.port}" for ip in port.external_ips]
        block.append("└── " if last_port else "├── ", style="dim")
        block.append(port.name, style="bold cyan")
        block.append(f"  {port.protocol}  {', '.join(addresses)}\n")
        lines = [Text(_chain_line(port, chain.chain, chain.role, chain.rules)) for chain in port.chains]
        for e in port.endpoints:
            pod = f"pod {e.pod} on {e.pod.node}" if e.pod else _owner(network, e.ip)
            lines.append(Text.assemble(f"-> {e.address}  ", (pod, "green"),
                                       f"  probability {_probability(e.written, e.probability)}",
                                       (f"  {e.chain}", "dim")))
        lines += [Text(f"{r.target} in filter {r.chain}: {r.comment}", style="red") for r in port.reject_rules]
        for j, line in enumerate(lines):
            block.append("    " if last_port else "│   ", style="dim")
            block.append("└── " if j == len(lines) - 1 else "├── ", style="dim")
            block.append_text(line)
            block.append("\n")
    block.rstrip()
    return block


def _policies(pods: list[IsolatedPod]) -> Text:
    """Each isolated pod, its policies' rules, and what each rule allows (no rule: the pod is default-denied)."""
    block = Text(no_wrap=True, overflow="ignore")
    for i, pod in enumerate(pods):
        indent = "    " if i == len(pods) - 1 else "│   "
        block.append("└── " if i == len(pods) - 1 else "├── ", style="dim")
        block.append(f"pod {pod.pod} {pod.ip}", style="bold cyan")
        block.append(f"  isolated for {pod.direction} by {', '.join(pod.policies)}  ")
        block.append(pod.chain + "\n", style="dim")
        for rule in pod.rules:
            block.append(f"{indent}├── ", style="dim")
            block.append(f"policy {rule.policy} {rule.direction} rule {rule.index}  ")
            block.append(rule.chain + "\n", style="dim")
            allows = [(f"allows {what}", "green") for what in rule.allows] or [
                ("allows nothing here (no pod or address matches its peers)", "dim")]
            for j, (text, style) in enumerate(allows):
                block.append(f"{indent}│   {'└── ' if j == len(allows) - 1 else '├── '}", style="dim")
                block.append(text + "\n", style=style)
        block.append(f"{indent}└── ", style="dim")
        block.append("anything else: DROP\n", style="red")
    block.rstrip()
    return block


def _chain_line(port: ServicePort, chain: str, role: str, rules: tuple) -> str:
    if role == "external":
        return f"{chain} (NodePort/LoadBalancer traffic): marked for masquerade, then {port.svc_chain}"
    if role == "service":
        masq = any(r.target == "KUBE-MARK-MASQ" for r in rules)
        return chain + (" (clients outside the pod network are marked for masquerade)" if masq else "")
    return f"{chain} ({role})"


def _owner(network: LabNetwork, ip: str) -> str:
    node = network.node_by_ip(ip)
    return f"node {node.node}" if node else "outside the pod network"


def _service_signature(port: ServicePort) -> tuple:
    return (port.name, port.protocol, port.cluster_ip, port.port, port.node_port, tuple(port.load_balancer_ips),
            tuple((e.address, e.written) for e in port.endpoints), tuple(r.text for r in port.reject_rules))


def _probability(written: str, p: float) -> str:
    """``0.33333333349 = 1/3`` as kube-proxy writes it; the last rule has no statistic match: ``1 (last rule)``."""
    from fractions import Fraction

    return f"{written} = {Fraction(p).limit_denominator(1000)}" if written else "1 (last rule)"


# -- labctl trace ----------------------------------------------------------------------------------
def _print_trace(t: Trace, rules: bool) -> None:
    src, dst = t.source, t.destination
    source = f"host ({src.ip} on the lab network)" if src.kind == "host" else f"{src.kind} {src.object} {src.ip}"
    out.print(Text.assemble((f"trace ({t.mode}) ", "bold"), source,
                            f":{t.probe.sport}" if t.probe and src.kind != "host" else "", " → ",
                            f"{dst.kind} {dst.object or dst.spec} {dst.ip}:{dst.port}/{t.protocol}"))
    printed = _print_hops(t.hops, rules, start=1)
    if t.candidates:
        out.print(Text("\nendpoints the rules choose from (each new connection draws again):", style="bold"))
        for c in t.candidates:
            chosen = t.chosen is not None and c.chain == t.chosen.chain
            out.print(Text.assemble(("  ➜ " if chosen else "    "), f"{c.endpoint}  ",
                                    (f"pod {c.pod}" if c.pod else "(not a pod)", "green"), f" on {c.node or '?'}  ",
                                    f"probability {_probability(c.written, c.probability)}, "
                                    f"share {c.share:.0%}", ("  ← chosen by the kernel" if chosen else "", "bold")))
            if t.mode == "explain" and c.hops:
                _print_hops(c.hops, rules, start=printed + 1, indent="      ")
                if c.verdict:
                    out.print(Text(f"      {c.verdict.result}: {c.verdict.reason}",
                                   style=_VERDICT_STYLE.get(c.verdict.result, "")))
    if t.probe:
        out.print(Text(f"\nprobe: {t.probe.protocol} from {t.probe.src}:{t.probe.sport} to {t.probe.dst}:"
                       f"{t.probe.dport}: {t.probe.result}" + (f" ({t.probe.detail})" if t.probe.detail else ""),
                       style="dim"))
    style = "bold " + _VERDICT_STYLE.get(t.verdict.result, "")
    out.print(Text.assemble(("verdict: ", "bold"), (t.verdict.result, style),
                            f" — {t.verdict.reason}"))
    for note in t.notes:
        out.print(Text(f"note: {note}", style="yellow"))
    if t.mode == "live":
        left = "every trace rule removed" if not t.trace_rules_left else f"{t.trace_rules_left} trace rules LEFT"
        out.print(Text(f"({left}; {t.seconds:.2f}s)", style="dim"))


def _print_hops(hops: list, rules: bool, start: int, indent: str = "") -> int:
    """Print the hops (chain policies that let the packet through only with ``--rules``); how many were printed."""
    from rich.table import Table

    table = Table("#", "NODE", "WHERE", "HOP", box=None, padding=(0, 1, 0, 0), show_header=not indent)
    shown = [h for h in hops if rules or not (h.kind == "netfilter" and h.summary.endswith("policy ACCEPT"))]
    for i, hop in enumerate(shown, start):
        style = "red" if hop.verdict in ("REJECT", "DROP", "dropped", "unreachable") else (
            "cyan" if hop.kind == "netfilter" else "green" if hop.kind == "conntrack" else "")
        text = Text(f"{hop.summary}", style=style)
        if hop.kind in ("route", "link", "bridge", "mapping") and (hop.src or hop.dst):
            text.append(f"   [{hop.src or '?'} → {hop.dst or '?'}]", style="dim")
        if rules and hop.rule:
            text.append(f"\n{hop.rule}", style="dim")
        table.add_row(f"{indent}{i}", hop.node or "(host)", hop.netns if hop.netns != "node" else "", text)
    out.print(table)
    return len(shown)
