"""One object in full: ``d`` describe, ``y`` YAML, ``l`` logs (followed), each under its kubectl command.

Describe and YAML are drawn from the state model and follow the object live (they redraw
when it changes); logs are followed through the state source (``kubectl logs -f``), on its
thread, and appended as they arrive.
"""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Log, Static

from ..actions import Ref, kubectl
from ..describe import describe, to_yaml
from ..messages import LogRead, TopicsChanged
from ..state import KINDS
from ..widgets.keys_bar import KeysBar

__all__ = ["DetailScreen"]


class DetailScreen(Screen[None]):
    """``mode`` is describe, yaml or logs; ``d``, ``y`` and ``l`` switch between them, ``esc`` goes back."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "back"),
        Binding("d", "mode('describe')", "describe"),
        Binding("y", "mode('yaml')", "yaml"),
        Binding("l", "mode('logs')", "logs"),
    ]

    def __init__(self, ref: Ref, mode: str) -> None:
        super().__init__()
        self.ref, self.mode = ref, mode
        self._stop_logs = lambda: None

    def compose(self) -> ComposeResult:
        yield Static(id="detail-title", markup=False)
        with VerticalScroll(id="detail-text"):
            yield Static(id="detail-body", markup=False)
        yield Log(id="detail-log", max_lines=5000)
        yield KeysBar(id="keys")

    def on_mount(self) -> None:
        self._show()

    def on_unmount(self) -> None:
        self._stop_logs()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "mode" and parameters == ("logs",):
            return self.ref.kind == "Pod"
        return True

    def action_mode(self, mode: str) -> None:
        if mode != self.mode:
            self.mode = mode
            self._show()

    def command(self) -> str:
        kind = self.ref.kind.lower()
        if self.mode == "describe":
            return kubectl("describe", kind, self.ref.name, ref=self.ref)
        if self.mode == "yaml":
            return kubectl("get", kind, self.ref.name, "-o", "yaml", ref=self.ref)
        return kubectl("logs", "-f", "--tail=500", self.ref.name, ref=self.ref)

    def _show(self) -> None:
        self._stop_logs()
        self._stop_logs = lambda: None
        self.query_one("#detail-title", Static).update(f"$ {self.command()}")
        logs = self.mode == "logs"
        self.query_one("#detail-text").display = not logs
        log = self.query_one(Log)
        log.display = logs
        if logs:
            log.clear()
            self._stop_logs = self.app.source.follow_logs(self.ref, self.post_message)  # type: ignore[attr-defined]
            log.focus()
        else:
            self._draw_text()
            self.query_one("#detail-text").focus()

    def _draw_text(self) -> None:
        state = self.app.state  # type: ignore[attr-defined]
        if self.mode == "describe":
            text = describe(state, self.ref)
        else:
            obj = state.get(self.ref.plural, self.ref.namespace, self.ref.name)
            text = to_yaml(obj) if obj is not None else f"{self.ref.slug} is gone"
        self.query_one("#detail-body", Static).update(text)

    @on(TopicsChanged)
    def _on_topics(self, message: TopicsChanged) -> None:
        if self.mode != "logs" and message.topics & {KINDS[self.ref.plural], "events"}:
            self._draw_text()

    @on(LogRead)
    def _on_log(self, message: LogRead) -> None:
        log = self.query_one(Log)
        if message.text:
            log.write(message.text)
        if message.ended:
            log.write_line(f"--- {message.error or 'the log ended'} ---")
