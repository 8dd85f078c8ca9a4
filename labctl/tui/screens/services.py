"""Services: type, ClusterIP, ports and NodePorts, EXTERNAL-IP, and their endpoints ready / not ready.

Under the table, the selected Service's endpoints (pod, IP, node, ready or not) and every way
into it from where (its ClusterIP from pods, a NodePort on each node's InternalIP, a
LoadBalancer IP); ``t`` sends traffic through one of them (the Traffic view).
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from ..rows import SERVICE_COLUMNS, Row, service_rows
from ..traffic import Target, service_targets
from .base import TableView

__all__ = ["ServicesScreen"]


def ways_in(targets: list[Target]) -> list[str]:
    """Where the Service answers, one line per kind: a ClusterIP from pods, a NodePort on every node."""
    lines = []
    for kind, where in (("ClusterIP", "from pods and nodes"), ("NodePort", "from the host too"),
                        ("LoadBalancer", "from the host too")):
        of_kind = [t for t in targets if t.kind == kind]
        if of_kind:
            port = of_kind[0].port
            hosts = ", ".join(t.host for t in of_kind)
            lines.append(f"{kind} {hosts} port {port} ({where})")
    return lines or ["no way in yet (no port, no ClusterIP)"]


class ServicesScreen(TableView):
    VIEW = "services"
    TOPICS = frozenset({"services", "pods", "nodes"})
    COLUMNS = SERVICE_COLUMNS
    ABOUT = ("Services with their endpoints (✓ ready, not ready); the selected one's pods and every way in. "
             "t sends it traffic.")
    BINDINGS: ClassVar[list[BindingType]] = [
        *TableView.BINDINGS,
        Binding("t", "traffic_to", "traffic"),
        Binding("ctrl+d", "delete", "delete"),
    ]

    def compose_detail(self) -> ComposeResult:
        with VerticalScroll(id="service-detail"):
            yield Static(id="service-endpoints", markup=False)

    def rows(self) -> list[Row]:
        return service_rows(self.state)

    def idle_command(self) -> str:
        return "kubectl get services,endpoints -A"

    def draw_detail(self) -> None:
        out = self.query_one("#service-endpoints", Static)
        ref = self.selected_ref()
        svc = self.state.get("services", ref.namespace, ref.name) if ref else None
        if ref is None or svc is None:
            out.update("Select a Service to see its endpoints.")
            return
        endpoints = self.state.get("endpoints", ref.namespace, ref.name) or {}
        lines = ways_in(service_targets(svc, self.state.listed("nodes")))
        lines.append(f"kubectl get endpoints {ref.name} -n {ref.namespace}:")
        first_endpoint = len(lines)
        for subset in endpoints.get("subsets") or []:
            ports = ",".join(str(p.get("port")) for p in subset.get("ports") or [])
            for ready, key in ((True, "addresses"), (False, "notReadyAddresses")):
                for address in subset.get(key) or []:
                    target = (address.get("targetRef") or {}).get("name", "")
                    node = address.get("nodeName", "")
                    lines.append(f"  {'✓' if ready else '✗'} {address.get('ip', '')}:{ports:<6} {target:<32} {node}"
                                 + ("" if ready else "  (not ready: no traffic)"))
        if len(lines) == first_endpoint:
            lines.append("  ✗ none: no Ready pod matches the selector — requests get a REJECT")
        out.update("\n".join(lines))

    def action_traffic_to(self) -> None:
        ref = self.selected_ref()
        svc = self.state.get("services", ref.namespace, ref.name) if ref else None
        if svc is None:
            return
        self.lab_app.traffic_targets = tuple(service_targets(svc, self.state.listed("nodes")))
        self.lab_app.switch_mode("traffic")
