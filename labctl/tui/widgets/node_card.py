"""One node of the Overview's picture: its health, addresses, bridge and pods with their IPs."""

from __future__ import annotations

from typing import Any

from textual.widgets import Static

from ...kube.objects import node_address, node_is_ready, pod_is_ready
from ..rows import pod_mark
from ..state import NodeHealth

__all__ = ["NodeCard", "card_lines"]


def _bytes(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 2**20:.0f} MiB" if n < 2**30 else f"{n / 2**30:.1f} GiB"


def shorten(name: str, width: int) -> str:
    """``example-1-44k2f`` → ``exa…44k2f``: the end tells a ReplicaSet's pods apart, so it stays."""
    if len(name) <= width:
        return name
    tail = min(5, max(width - 2, 1))
    return name[: max(width - tail - 1, 0)] + "…" + name[-tail:]


def card_lines(name: str, node: dict[str, Any] | None, pods: list[dict[str, Any]], health: NodeHealth | None,
               network: Any | None, width: int = 80) -> list[str]:
    """The card's text in ``width`` columns: Ready, the container's state and load, eth0, podCIDR, then
    ``cni0`` with the pods on it (each pod's IP, from the podCIDR, on its veth)."""
    lines = []
    if node is None:
        lines.append("✗ not registered")
    else:
        cordoned = " ⊘ cordoned" if (node.get("spec") or {}).get("unschedulable") else ""
        lines.append(("✓ Ready" if node_is_ready(node) else "✗ NotReady") + cordoned)
    if health is not None:
        lines.append(f"{'▶' if health.state == 'running' else '■'} {health.state}")
        if health.cpu_percent is not None or health.memory_bytes is not None:
            cpu = f"CPU {health.cpu_percent:.0f}% " if health.cpu_percent is not None else ""
            lines.append(f"{cpu}mem {_bytes(health.memory_bytes)}")
    lines.append(f"eth0 {node_address(node) if node else '?'}")
    lines.append(f"podCIDR {((node or {}).get('spec') or {}).get('podCIDR', '?')}")
    if network is None:
        lines.append("cni0 (reading…)")
    elif network.bridge is None:
        lines.append("cni0 ✗ missing")
    else:
        address = network.bridge.addresses[0] if network.bridge.addresses else "no address"
        lines.append(f"cni0 {address}")
    for i, pod in enumerate(pods):
        status = pod.get("status") or {}
        symbol, _ = pod_mark(status.get("phase", ""), pod_is_ready(pod), bool(pod["metadata"].get("deletionTimestamp")))
        head = f"{'└' if i == len(pods) - 1 else '├'} {symbol} {status.get('podIP') or '<none>':<10} "
        lines.append(head + shorten(pod["metadata"]["name"], width - len(head)))
    if not pods:
        lines.append("└ (no pods)")
    return lines


class NodeCard(Static):
    """A node's card; the border title is the node's name. Drawn to its own width (pod names are
    shortened to fit), again on every resize."""

    def __init__(self, name: str) -> None:
        super().__init__(markup=False, classes="node-card")
        self.node_name = name
        self.border_title = name
        self._data: tuple[Any, ...] | None = None

    def show(self, node: dict[str, Any] | None, pods: list[dict[str, Any]], health: NodeHealth | None,
             network: Any | None) -> None:
        self._data = (node, pods, health, network)
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if self._data is not None:
            node, pods, health, network = self._data
            self.update("\n".join(card_lines(self.node_name, node, pods, health, network,
                                              self.content_size.width or 40)))
