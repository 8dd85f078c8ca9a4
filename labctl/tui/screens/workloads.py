"""Deployments and their ReplicaSets; for the selected Deployment, its rollout drawn over time and its history.

Setting an image starts a rollout the chart then follows: the new ReplicaSet's pods rise
while the old ones fall, never above replicas + maxSurge and never below replicas −
maxUnavailable available. ``kubectl rollout history`` is the list under it.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.widgets import Static

from ..actions import Action
from ..rollout import bounds, revisions, snapshots
from ..rows import WORKLOAD_COLUMNS, Row, workload_rows
from ..widgets.rollout_chart import RolloutChart
from .base import TableView

__all__ = ["WorkloadsScreen"]


class WorkloadsScreen(TableView):
    VIEW = "workloads"
    TOPICS = frozenset({"workloads", "pods"})
    COLUMNS = WORKLOAD_COLUMNS
    ABOUT = ("Deployments with their ReplicaSets (▶ current revision); the selected Deployment's rollout "
             "as old and new pods over time, within its surge/unavailable bounds, and its revision history.")
    BINDINGS: ClassVar[list[BindingType]] = [
        *TableView.BINDINGS,
        Binding("s", "scale", "scale"),
        Binding("i", "set_image", "set image"),
        Binding("r", "restart", "restart"),
        Binding("u", "undo", "undo"),
        Binding("ctrl+d", "delete", "delete"),
    ]

    def compose_detail(self) -> ComposeResult:
        with Vertical(id="rollout"):
            yield Static(id="rollout-title", markup=False)
            yield RolloutChart(id="rollout-chart")
            yield Static(id="rollout-history", markup=False)

    def rows(self) -> list[Row]:
        return workload_rows(self.state)

    def idle_command(self) -> str:
        return "kubectl get deployments,replicasets -A"

    def _deployment(self) -> dict | None:
        ref = self.selected_ref()
        if ref is None:
            return None
        if ref.kind == "ReplicaSet":
            rs = self.state.get("replicasets", ref.namespace, ref.name) or {}
            owner = next((o for o in rs.get("metadata", {}).get("ownerReferences") or [] if o.get("controller")), None)
            return self.state.get("deployments", ref.namespace, owner["name"]) if owner else None
        return self.state.get("deployments", ref.namespace, ref.name) if ref.kind == "Deployment" else None

    def draw_detail(self) -> None:
        deployment = self._deployment()
        chart, title, history = (self.query_one(RolloutChart), self.query_one("#rollout-title", Static),
                                 self.query_one("#rollout-history", Static))
        if deployment is None:
            title.update("Select a Deployment (or one of its ReplicaSets) to see its rollout.")
            chart.plot([], None)
            history.update("")
            return
        meta = deployment["metadata"]
        key = f"{meta.get('namespace', '')}/{meta['name']}"
        samples = self.state.rollouts.samples(key)
        b = bounds(deployment)
        status = "✓ rollout complete" if samples and samples[-1].complete else "⟳ rolling out"
        title.update(f"deployment/{meta['name']} {status} · {b.strategy}"
                     + (f" surge {b.surge} unavailable {b.unavailable}" if b.strategy == "RollingUpdate" else ""))
        chart.plot(samples, b)
        snap = snapshots([deployment], self.state.listed("replicasets"), [])[meta.get("namespace", "")]
        lines = [f"{'REV':<4}{'REPLICASET':<30}{'PODS':>5}  IMAGES / CHANGE-CAUSE"]
        for r in revisions(snap, deployment)[-4:]:
            mark = "▶" if r.current else " "
            lines.append(f"{mark}{r.revision:<3}{r.replicaset:<30}{r.replicas:>5}  {r.images}"
                         + (f" — {r.change_cause}" if r.change_cause else ""))
        history.update("\n".join(lines))

    def action_scale(self) -> None:
        ref = self.selected_ref()
        if ref is None or ref.kind not in ("Deployment", "ReplicaSet"):
            return
        obj = self.state.get(ref.plural, ref.namespace, ref.name) or {}
        replicas = str((obj.get("spec") or {}).get("replicas", 1))
        self.ask(f"kubectl scale {ref.slug} --replicas=", replicas,
                 lambda value: self.change(Action("scale", ref, value, self.state.lab)))

    def action_set_image(self) -> None:
        ref = self.selected_ref()
        if ref is None or ref.kind != "Deployment":
            return
        obj = self.state.get(ref.plural, ref.namespace, ref.name) or {}
        containers = (((obj.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or [{}]
        current = f"{containers[0].get('name', '')}={containers[0].get('image', '')}"
        self.ask(f"kubectl set image {ref.slug} CONTAINER=IMAGE (nginx:1.16.1 runs nginx v2 here)", current,
                 lambda value: self.change(Action("set-image", ref, value, self.state.lab)))

    def action_restart(self) -> None:
        ref = self.selected_ref()
        if ref is not None and ref.kind == "Deployment":
            self.change(Action("rollout-restart", ref, lab=self.state.lab))

    def action_undo(self) -> None:
        ref = self.selected_ref()
        if ref is not None and ref.kind == "Deployment":
            self.change(Action("rollout-undo", ref, lab=self.state.lab))
