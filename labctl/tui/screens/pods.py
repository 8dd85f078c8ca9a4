"""Pods, grouped under the node that runs them: IP, ready, status, restarts, age, owner.

A node's heading row is the node itself (select it to cordon, uncordon, stop or start its
container, or open a shell in it); the pods under it are the ones ``kubectl get pods -A -o
wide`` lists with that NODE.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType

from ..actions import Action
from ..rows import POD_COLUMNS, Row, pod_rows
from .base import TableView

__all__ = ["PodsScreen"]


class PodsScreen(TableView):
    VIEW = "pods"
    TOPICS = frozenset({"pods", "nodes"})
    COLUMNS = POD_COLUMNS
    ABOUT = "every pod under the node that runs it, with its IP from that node's podCIDR."
    BINDINGS: ClassVar[list[BindingType]] = [
        *TableView.BINDINGS,
        Binding("l", "logs", "logs"),
        Binding("s", "shell", "shell"),
        Binding("ctrl+d", "delete", "delete"),
        Binding("c", "cordon", "cordon"),
        Binding("u", "uncordon", "uncordon"),
        Binding("x", "stop_node", "stop node"),
        Binding("X", "start_node", "start node"),
    ]

    def rows(self) -> list[Row]:
        return pod_rows(self.state)

    def idle_command(self) -> str:
        return "kubectl get pods -A -o wide"

    def on_mount(self) -> None:
        super().on_mount()
        if self.lab_app.initial_node:
            self.call_after_refresh(self.table.select_key, f"node/{self.lab_app.initial_node}")

    def _node_action(self, verb: str) -> None:
        ref = self.selected_ref()
        if ref is not None and ref.kind == "Node":
            self.change(Action(verb, ref, lab=self.state.lab))

    def action_cordon(self) -> None:
        self._node_action("cordon")

    def action_uncordon(self) -> None:
        self._node_action("uncordon")

    def action_stop_node(self) -> None:
        self._node_action("stop-node")

    def action_start_node(self) -> None:
        self._node_action("start-node")
