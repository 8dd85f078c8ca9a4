"""The lab drawn: each node with its health, InternalIP, podCIDR, ``cni0`` and its pods' IPs, and the
routes that join the nodes' pod networks (host-gw: another node's podCIDR via its InternalIP).

Pods come and go with the watches; the bridge and the routes are read from the nodes
themselves (the inspection library) while this view is visible, and a route that should be
there but is not is shown as missing.
"""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import HorizontalScroll, VerticalScroll
from textual.widgets import Static

from ..widgets.node_card import NodeCard
from .base import ViewScreen

__all__ = ["OverviewScreen", "lab_network_line", "route_lines"]


def route_lines(state: Any) -> list[str]:
    """Each node's route to every other node's podCIDR: ✓ there (via whom), ✗ missing."""
    nodes = [state.get("nodes", "", n) for n in state.node_names()]
    cidrs = {n["metadata"]["name"]: (n.get("spec") or {}).get("podCIDR", "") for n in nodes}
    network = state.network
    lines = ["Routes between the nodes (host-gw: each podCIDR via its node's InternalIP):"]
    if network is None:
        detail = f" — {state.network_error}" if state.network_error else ""
        return [*lines, f"  (reading the nodes' routing tables…){detail}"]
    for name in cidrs:
        node = network.node(name)
        if node is None:
            lines.append(f"  ■ {name}: not running: its routes cannot be read")
            continue
        for other, cidr in cidrs.items():
            if other == name or not cidr:
                continue
            route = next((r for r in node.routes if r.destination == cidr), None)
            if route is None:
                lines.append(f"  ✗ {name:<14} has no route to {cidr} ({other}'s pods)")
            else:
                via = f"via {route.gateway}" if route.gateway else f"dev {route.device}"
                lines.append(f"  ✓ {name:<14} → {cidr:<15} {via:<18} = {route.node or other}")
    return lines


def lab_network_line(network: Any) -> str:
    """The Docker network every node's eth0 is on, and its gateway (this machine)."""
    if network is None:
        return "lab network: reading…"
    subnet = next((r.destination for n in network.nodes for r in n.routes if r.leads_to == "lab-network"), "?")
    return f"═ lab network {subnet}, gateway {network.gateway or '?'} (this machine): every node's eth0 ═"


class OverviewScreen(ViewScreen):
    VIEW = "overview"
    TOPICS = frozenset({"nodes", "pods", "network", "health"})
    ABOUT = ("the lab's nodes side by side — health, InternalIP, podCIDR, cni0 and each pod's IP — and the "
             "routes between them.")

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="overview"):
            yield Static(id="lab-network", markup=False)
            yield HorizontalScroll(id="cards")
            yield Static(id="routes", markup=False)

    def idle_command(self) -> str:
        return f"kubectl get nodes,pods -A -o wide; labctl net --name {self.state.lab}"

    def draw(self, topics: frozenset[str]) -> None:
        names = self.state.node_names() or sorted(self.state.health)
        cards = self.query_one("#cards", HorizontalScroll)
        shown = [c.node_name for c in cards.query(NodeCard)]
        if shown != names:
            cards.remove_children()
            cards.mount_all([NodeCard(n) for n in names])
            self.call_after_refresh(self.draw, topics)
            return
        pods_by_node: dict[str, list[dict[str, Any]]] = {}
        for pod in self.state.listed("pods"):
            pods_by_node.setdefault((pod.get("spec") or {}).get("nodeName") or "", []).append(pod)
        network = self.state.network
        for card in cards.query(NodeCard):
            name = card.node_name
            card.show(self.state.get("nodes", "", name), pods_by_node.get(name, []), self.state.health.get(name),
                      network.node(name) if network else None)
        self.query_one("#routes", Static).update("\n".join(route_lines(self.state)))
        self.query_one("#lab-network", Static).update(lab_network_line(network))
