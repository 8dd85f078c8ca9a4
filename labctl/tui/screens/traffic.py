"""A steady stream of requests to a Service, and what answered: latency and errors per second, the
share of answers per backend pod and per version, and every failure with its time.

``t`` picks the way in (a ClusterIP, every node's NodePort, a LoadBalancer IP), ``f`` where
the requests come from (this machine, or inside a pod), space starts and stops, ``+``/``-``
change the rate. Each request is a new connection, so the shares are kube-proxy's
probabilities at work; during a rollout the versions strip shows v1 giving way to v2, and
with a good strategy the failure count stays at 0.
"""

from __future__ import annotations

import datetime as dt
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Label, Sparkline, Static

from ..traffic import Target, TrafficPlan, service_targets
from ..widgets.bars import ShareBars
from ..widgets.command_bar import CommandBar
from .base import TROUBLE, ViewScreen

__all__ = ["TrafficScreen", "equivalent_command"]

RATES = (1, 2, 5, 10, 20, 25, 50, 100)


def equivalent_command(plan: TrafficPlan, rate: int) -> str:
    """The shell loop that sends the same requests (one connection each) by hand."""
    target = plan.targets[0]
    pause = f"{1 / rate:.2g}"
    if plan.source == "host":
        return f"while sleep {pause}; do curl -s -m 2 http://{target}{plan.path}; done"
    namespace, _, pod = plan.source.rpartition("/")
    return (f"kubectl exec -n {namespace} {pod} -- sh -c "
            f"'while sleep {pause}; do wget -q -T 2 -O- http://{target}{plan.path}; done'")


def _clock(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).strftime("%H:%M:%S.%f")[:-3] + "Z"


class TrafficScreen(ViewScreen):
    VIEW = "traffic"
    TOPICS = frozenset({"traffic", "services", "nodes", "pods"})
    ABOUT = ("requests to a Service at a steady rate, each on a new connection: latency, errors, the share of "
             "answers per backend pod and per version, and every failure.")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("t", "pick_target", "target"),
        Binding("f", "pick_source", "from"),
        Binding("space", "start_stop", "start/stop"),
        Binding("plus,equals_sign", "faster", "rate+", key_display="+"),
        Binding("minus", "slower", "rate-", key_display="-"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.targets: tuple[Target, ...] = ()
        self.source_name = "host"
        self.rate = 10

    def compose_body(self) -> ComposeResult:
        yield Static(id="traffic-head", markup=False)
        yield Static(id="traffic-summary", markup=False)
        with Horizontal(classes="spark-row"):
            yield Label("latency ms", classes="spark-label")
            yield Sparkline([], id="latency", summary_function=max)
        with Horizontal(classes="spark-row"):
            yield Label("errors/s", classes="spark-label")
            yield Sparkline([], id="errors", summary_function=max)
        yield Static(id="traffic-versions", markup=False)
        with Horizontal(id="traffic-panes"):
            yield ShareBars(id="traffic-backends", label_width=30, max_rows=6)
            yield ShareBars(id="traffic-shares", label_width=8, max_rows=3)
        with VerticalScroll(id="traffic-failures-pane"):
            yield Static(id="traffic-failures", markup=False)

    def on_screen_resume(self) -> None:
        chosen = self.lab_app.traffic_targets
        if chosen:
            self.lab_app.traffic_targets = ()
            self.targets = chosen
            if self.source_name == "host":
                self.targets = tuple(t for t in chosen if t.kind != "ClusterIP") or chosen
        super().on_screen_resume()

    def idle_command(self) -> str:
        plan = self._plan()
        return equivalent_command(plan, self.rate) if plan else "t picks a Service's way in; space starts"

    def _plan(self) -> TrafficPlan | None:
        if self.targets:
            kind = self.targets[0].kind
            return TrafficPlan(tuple(t for t in self.targets if t.kind == kind), self.source_name, self.rate)
        return self.state.traffic.plan

    def draw(self, topics: frozenset[str]) -> None:
        stats = self.state.traffic
        plan = self._plan()
        running = f"▶ running {stats.seconds:.0f}s" if stats.running else (
            f"■ stopped after {stats.seconds:.0f}s" if stats.requests else "■ not started")
        rate = self.rate if self.targets or plan is None else plan.rate
        head = (f"{running} · {rate}/s · {plan.description}" if plan else
                "No target yet: t picks one (or t on a Service in the Services view).")
        self.query_one("#traffic-head", Static).update(head)
        failed = f"{100 * stats.errors / stats.requests:.1f}%" if stats.requests else "0%"
        mean, slowest = stats.latency_summary()
        self.query_one("#traffic-summary", Static).update(
            f"{stats.requests} requests · ✓ {stats.answered} ok · ✗ {stats.errors} failed ({failed}) · "
            f"latency {mean:.1f} ms mean, {slowest:.0f} max")
        self.query_one("#latency", Sparkline).data = stats.latency_ms()
        self.query_one("#errors", Sparkline).data = stats.errors_per_second()
        total = sum(stats.by_version.values())
        run = " ".join(f"{v} {100 * n / total:.0f}%" for v, n in sorted(stats.by_version.items())) if total else "-"
        self.query_one("#traffic-versions", Static).update(
            f"version/s  {stats.version_strip()}\n           whole run: {run} · 1 = v1, 2 = v2, * both, · none; "
            "a second each, newest right")
        self.query_one("#traffic-backends", ShareBars).show(("answers per backend pod (whole run):", stats.by_pod))
        self.query_one("#traffic-shares", ShareBars).show(("answers per version, last 5 s:", stats.recent_versions()))
        failures = [f"{_clock(s.at)} {s.target:<21} {s.error}" for s in reversed(stats.failures)]
        self.query_one("#traffic-failures", Static).update(
            "\n".join([f"failures ({stats.errors}), newest first:", *(failures or ["  none ✓"])]))
        self.query_one(CommandBar).show_idle(self.idle_command())

    def action_pick_target(self) -> None:
        from .dialogs import PickerScreen

        groups: dict[str, tuple[Target, ...]] = {}
        for svc in self.state.listed("services"):
            for target in service_targets(svc, self.state.listed("nodes")):
                key = f"{target.service}|{target.kind}"
                groups[key] = (*groups.get(key, ()), target)
        choices = []
        for key, targets in groups.items():
            service, kind = key.split("|")
            where = ", ".join(str(t) for t in targets[:3]) + (" …" if len(targets) > 3 else "")
            note = " (pods only: pick a pod with f)" if kind == "ClusterIP" and self.source_name == "host" else ""
            choices.append((key, f"{service} {kind} {where}{note}"))

        def picked(key: str | None) -> None:
            if key:
                self.targets = groups[key]
                self.draw(self.TOPICS)

        self.app.push_screen(PickerScreen("Send requests to", choices), picked)

    def action_pick_source(self) -> None:
        from .dialogs import PickerScreen

        pods = [f"{p['metadata']['namespace']}/{p['metadata']['name']}" for p in self.state.listed("pods")
                if (p.get("status") or {}).get("phase") == "Running"]
        choices = [("host", "host (this machine: NodePorts, LoadBalancer IPs)"), *((p, f"pod {p}") for p in pods)]

        def picked(source: str | None) -> None:
            if source:
                self.source_name = source
                self.draw(self.TOPICS)

        self.app.push_screen(PickerScreen("Send requests from", choices), picked)

    def action_start_stop(self) -> None:
        bar = self.query_one(CommandBar)
        if self.state.traffic.running:
            self.source.stop_traffic()
            bar.show_action(self.idle_command(), "stopping (answers on their way still count)")
            return
        plan = self._plan()
        if plan is None:
            self.action_pick_target()
            return
        try:
            self.source.start_traffic(plan)
        except TROUBLE as err:
            bar.show_action(equivalent_command(plan, self.rate), str(err), ok=False)
            return
        self.lab_app.traffic_started(plan)
        bar.show_action(equivalent_command(plan, self.rate), f"sending {self.rate}/s")

    def action_faster(self) -> None:
        self._step_rate(1)

    def action_slower(self) -> None:
        self._step_rate(-1)

    def _step_rate(self, step: int) -> None:
        index = min(range(len(RATES)), key=lambda i: abs(RATES[i] - self.rate))
        self.rate = RATES[min(max(index + step, 0), len(RATES) - 1)]
        self.source.set_traffic_rate(self.rate)
        self.draw(self.TOPICS)
