"""One node's network, as the node's own tools show it, tied to pods and Services (the inspection library):

- ``cni0`` with each veth and the pod at its other end (``bridge link``, ``ip link``);
- the routes, each with where it leads (``ip route``: this node's pods, another node, the host);
- the Service ports this node's kube-proxy rules serve; for the selected one, its
  ``KUBE-SVC``/``KUBE-SEP`` chains with each endpoint's probability and DNAT target;
- a trace from a pod (``f`` picks it) to the selected Service, hop by hop: ``t`` computes
  it from the rules (``labctl trace --explain``), ``T`` sends a real probe and shows the
  rules the kernel saw it match.

``[`` and ``]`` go to the other nodes. The node is read again every few seconds while this
view is visible, never while it is not.
"""

from __future__ import annotations

from typing import Any, ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Static

from ...errors import LabctlError
from ..rows import Row
from ..widgets.command_bar import CommandBar
from ..widgets.object_table import ObjectTable
from ..widgets.trace_view import draw_trace
from .base import TROUBLE, ViewScreen

__all__ = ["NetworkScreen", "bridge_lines", "chain_lines", "route_lines"]

PORT_COLUMNS = ("SERVICE PORT", "CLUSTER-IP", "NODEPORT", "ENDPOINTS")
_LEADS_TO = {"bridge": "this node's pods (cni0)", "lab-network": "the lab network (the nodes)",
             "host": "out of the lab (the host)"}


def bridge_lines(node: Any) -> list[str]:
    """``cni0`` and each veth ⇄ the pod at its other end."""
    bridge = node.bridge
    if bridge is None:
        return ["✗ no cni0 bridge on this node (no pod has started here yet?)"]
    addresses = ", ".join(str(a) for a in bridge.addresses) or "no address"
    lines = [f"cni0 {addresses} ({len(bridge.ports)} veth; ip link show master cni0)"]
    for i, veth in enumerate(bridge.ports):
        pod = f"{veth.pod.ip:<11} {veth.pod}" if veth.pod else "(no pod: a leftover)"
        state = "" if veth.port_state == "forwarding" else f" [{veth.port_state}]"
        lines.append(f"{'└' if i == len(bridge.ports) - 1 else '├'} {veth.name:<15} ⇄ {pod}{state}")
    return lines


def route_lines(node: Any) -> list[str]:
    lines = ["routes (ip route):"]
    for route in node.routes:
        how = f"via {route.gateway}" if route.gateway else f"dev {route.device}"
        to = f"node {route.node}" if route.leads_to == "node" else _LEADS_TO.get(route.leads_to, route.leads_to)
        lines.append(f"  {route.destination:<15} {how:<20} → {to}")
    return lines


def port_rows(node: Any) -> list[Row]:
    rows = []
    for port in node.services:
        ready = len(port.endpoints)
        mark, text = ("ok", f"✓ {ready}") if ready else ("bad", "✗ none (REJECT)")
        rows.append(Row(f"{port.name}/{port.protocol}",
                        (f"{port.name}/{port.protocol}", f"{port.cluster_ip}:{port.port}" if port.cluster_ip else "",
                         str(port.node_port or ""), text), mark=mark))
    return rows


def chain_lines(port: Any) -> list[str]:
    """The port's entry rules, its KUBE-SVC cascade (probability, share, DNAT target, pod) and other chains."""
    lines = [f"{port.name}/{port.protocol}: " + " · ".join(
        x for x in (f"ClusterIP {port.cluster_ip}:{port.port}" if port.cluster_ip else "",
                    f"NodePort {port.node_port}" if port.node_port else "",
                    f"LB {', '.join(port.load_balancer_ips)}" if port.load_balancer_ips else "") if x)]
    for rule in port.entry_rules:
        match = rule.value("destination").removesuffix("/32") or "any local address"
        lines.append(f"  nat {rule.chain}: {match}:{rule.value('dport')} → {rule.target}")
    for rule in port.reject_rules:
        lines.append(f"  ✗ filter {rule.chain}: {rule.target} — {rule.comment}")
    if port.endpoints:
        lines.append(f"  {port.svc_chain}: each new connection draws one of {len(port.endpoints)}:")
    for i, ep in enumerate(port.endpoints, 1):
        rule = f"p={ep.probability:.4f}" if ep.written else "last rule"
        pod = f"pod {ep.pod.name} on {ep.pod.node}" if ep.pod else "no pod known"
        lines.append(f"   {i}. {rule:<10} {ep.share:4.0%} of connections → {ep.chain}")
        lines.append(f"      DNAT → {ep.address}  ({pod})")
    for chain in port.chains:
        if chain.role != "service":
            lines.append(f"{chain.chain} ({chain.role}): {len(chain.rules)} rule(s)")
            lines += [f"  → {r.target}  {r.comment}" for r in chain.rules]
    return lines


class NetworkScreen(ViewScreen):
    VIEW = "network"
    TOPICS = frozenset({"network", "pods"})
    ABOUT = ("one node's cni0 with its veths and their pods, its routes and where they lead, the Service "
             "chains its kube-proxy rules hold, and a trace from a pod to the selected Service.")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left_square_bracket", "previous_node", "prev node", key_display="["),
        Binding("right_square_bracket", "next_node", "next node", key_display="]"),
        Binding("f", "pick_source", "trace from"),
        Binding("t", "trace(False)", "trace (explain)"),
        Binding("T", "trace(True)", "trace (live)"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.node_name = ""
        self.trace_source = ""
        self.trace_text = "f picks a pod to trace from; t traces to the selected Service (explain), T sends a probe."

    def compose_body(self) -> ComposeResult:
        yield Static(id="net-node", markup=False)
        with Horizontal(id="net-panes"):
            with VerticalScroll(id="net-node-pane"):
                yield Static(id="net-bridge", markup=False)
                yield Static(id="net-routes", markup=False)
            with Vertical(id="net-service-pane"):
                yield ObjectTable(PORT_COLUMNS, id="net-ports")
                with VerticalScroll(id="net-chains-pane"):
                    yield Static(id="net-chains", markup=False)
                    yield Static(id="net-trace", markup=False)

    def on_mount(self) -> None:
        super().on_mount()
        self.node_name = self.lab_app.initial_node or ""

    def idle_command(self) -> str:
        node = self.node_name or "worker"
        return f"labctl net {node}; labctl exec {node} -- iptables-save -t nat"

    def _node(self) -> Any:
        network = self.state.network
        if network is None or not network.nodes:
            return None
        node = network.node(self.node_name) if self.node_name else None
        if node is None:
            node = next((n for n in network.nodes if n.role != "control-plane"), network.nodes[0])
            self.node_name = node.node
        return node

    def draw(self, topics: frozenset[str]) -> None:
        node = self._node()
        header = self.query_one("#net-node", Static)
        if node is None:
            error = f": {self.state.network_error}" if self.state.network_error else "…"
            header.update(f"reading the nodes' network{error}")
            return
        names = [n.node for n in self.state.network.nodes]  # type: ignore[union-attr]
        stale = f" · ✗ last read failed: {self.state.network_error}" if self.state.network_error else ""
        header.update(f"◂ [ {node.node} ] ▸  ({' '.join(names)})  {node.role} · InternalIP {node.internal_ip} · "
                      f"podCIDR {node.pod_cidr}{stale}")
        self.query_one("#net-bridge", Static).update("\n".join(bridge_lines(node)))
        self.query_one("#net-routes", Static).update("\n".join(route_lines(node)))
        self.query_one("#net-ports", ObjectTable).show(port_rows(node))
        self._draw_chains()
        self.query_one("#net-trace", Static).update(self.trace_text)
        self.query_one(CommandBar).show_idle(self.idle_command())

    def _selected_port(self) -> Any:
        node = self._node()
        row = self.query_one("#net-ports", ObjectTable).selected
        if node is None or row is None:
            return None
        return next((p for p in node.services if f"{p.name}/{p.protocol}" == row.key), None)

    def _draw_chains(self) -> None:
        port = self._selected_port()
        self.query_one("#net-chains", Static).update(
            "\n".join(chain_lines(port)) if port else "Select a Service port to see its chains on this node.")

    def on_object_table_selected(self, message: ObjectTable.Selected) -> None:
        self._draw_chains()

    def action_previous_node(self) -> None:
        self._step_node(-1)

    def action_next_node(self) -> None:
        self._step_node(1)

    def _step_node(self, step: int) -> None:
        network = self.state.network
        if network is None or not network.nodes:
            return
        names = [n.node for n in network.nodes]
        index = names.index(self.node_name) if self.node_name in names else 0
        self.node_name = names[(index + step) % len(names)]
        self.draw(self.TOPICS)

    def _default_source(self) -> str:
        pods = [p for p in self.state.listed("pods") if (p.get("status") or {}).get("phase") == "Running"
                and p["metadata"].get("namespace") != "kube-system"]
        here = [p for p in pods if (p.get("spec") or {}).get("nodeName") == self.node_name]
        chosen = (here or pods)[:1]
        return f"{chosen[0]['metadata']['namespace']}/{chosen[0]['metadata']['name']}" if chosen else "host"

    def action_pick_source(self) -> None:
        from .dialogs import PickerScreen

        pods = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in self.state.listed("pods")
                if (p.get("status") or {}).get("podIP")]
        choices = [("host", "host (this machine)"), *((p, f"pod {p}") for p in pods)]

        def picked(source: str | None) -> None:
            if source:
                self.trace_source = source
                self.trace_text = f"trace from {source}: t explain, T live"
                self.query_one("#net-trace", Static).update(self.trace_text)

        self.app.push_screen(PickerScreen("Trace from", choices), picked)

    def action_trace(self, live: bool) -> None:
        port = self._selected_port()
        if port is None:
            self.notify("select a Service port first", severity="warning")
            return
        self._trace(self.trace_source or self._default_source(), port, live)

    @work(exclusive=True, group="trace")
    async def _trace(self, source: str, port: Any, live: bool) -> None:
        destination = f"{port.namespace}/{port.service}"
        spec = port.port_name or str(port.port)
        command = f"labctl trace {source} {destination} --port {spec}" + ("" if live else " --explain")
        bar = self.query_one(CommandBar)
        bar.show_action(command)
        self.trace_text = f"$ {command}\ntracing…"
        self.query_one("#net-trace", Static).update(self.trace_text)
        try:
            trace = await self.source.trace(source, destination, port=spec, live=live and self.source.live)
        except TROUBLE as err:
            message = str(err) + (f" — {err.hint}" if isinstance(err, LabctlError) and err.hint else "")
            self.trace_text = f"$ {command}\n✗ {message}"
            bar.show_action(command, message, ok=False)
        else:
            self.trace_text = f"$ {command}\n" + "\n".join(draw_trace(trace))
            bar.show_action(command, f"{trace.verdict.result}: {trace.verdict.reason}",
                            ok=trace.verdict.result == "delivered")
        self.query_one("#net-trace", Static).update(self.trace_text)
