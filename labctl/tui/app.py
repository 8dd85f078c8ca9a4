"""The app: it wires the views (one Textual mode each), the keys every view shares, and the state
source to the state model. What each view shows and does lives in ``screens/``.

Messages from the source change the state model here, on the UI thread; the topics they
touched are passed on to the views on screen, at most once per turn of the message loop, so a
burst of watch events costs one redraw.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.screen import Screen

from . import VIEWS
from .messages import (
    ConnectionChanged,
    ExerciseRead,
    HealthRead,
    NetworkRead,
    ObjectsChanged,
    TopicsChanged,
    TrafficRead,
)
from .screens.dialogs import HelpScreen, JumpScreen
from .screens.events import EventsScreen
from .screens.exercise import ExerciseScreen
from .screens.network import NetworkScreen
from .screens.overview import OverviewScreen
from .screens.pods import PodsScreen
from .screens.services import ServicesScreen
from .screens.traffic import TrafficScreen
from .screens.workloads import WorkloadsScreen
from .source import StateSource
from .state import ExerciseReport, LabState
from .traffic import Target, TrafficPlan
from .widgets.view_tabs import LABELS

__all__ = ["LabApp"]


class LabApp(App[None]):
    """``labctl tui``: ``LabApp(source, view="pods", node="worker").run()``."""

    CSS_PATH = "app.tcss"
    TITLE = "labctl tui"
    ENABLE_COMMAND_PALETTE = False
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]  # noqa: RUF012 (Textual's class attribute)
    MODES: ClassVar[dict[str, str | Callable[[], Screen]]] = {
        "overview": OverviewScreen, "pods": PodsScreen, "workloads": WorkloadsScreen, "services": ServicesScreen,
        "network": NetworkScreen, "traffic": TrafficScreen, "events": EventsScreen, "exercise": ExerciseScreen}
    BINDINGS: ClassVar[list[BindingType]] = [
        *(Binding(str(i), f"view('{view}')", LABELS[view], show=False) for i, view in enumerate(VIEWS, 1)),
        Binding("question_mark", "help", "help", key_display="?"),
        Binding("colon", "jump", "jump", key_display=":"),
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", "quit", show=False, priority=True),
    ]

    def __init__(self, source: StateSource, view: str = "overview", node: str | None = None) -> None:
        super().__init__()
        if view not in VIEWS:
            raise ValueError(f"no view {view!r}: {', '.join(VIEWS)}")
        self.source = source
        self.state = LabState(source.lab, source.clock)
        self.initial_view = view
        self.initial_node = node
        #: targets the Services view hands to the Traffic view (``t`` on a Service)
        self.traffic_targets: tuple[Target, ...] = ()
        self._dirty: set[str] = set()
        self._flush_pending = False

    def on_mount(self) -> None:
        self.switch_mode(self.initial_view)
        self.source.start(self.post_message)

    def delay_update(self, delay: float = 0.05) -> None:
        """Draw a view as soon as its key is read. Textual holds the screen back 50 ms when the mode
        switches, to hide a new screen being laid out; our views are mounted once and then only
        resumed, and the budget from a key to the screen is 100 ms."""

    def on_unmount(self) -> None:
        self.source.stop()

    # -- keys ---------------------------------------------------------------------------------

    def action_view(self, view: str) -> None:
        if view in VIEWS and self.current_mode != view:
            self.switch_mode(view)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

    def action_jump(self) -> None:
        self.push_screen(JumpScreen(), lambda view: self.action_view(view) if view else None)

    # -- the source's messages, into the state model ------------------------------------------

    def on_objects_changed(self, message: ObjectsChanged) -> None:
        listed = self.state.synced
        self._changed(self.state.apply(message.events, message.synced))
        if self.state.synced and not listed:
            # The first listing is most of what the app will ever hold, and it lives on: out of the
            # collector's way, a full collection no longer walks it in the middle of a key press.
            self.set_timer(1.0, gc.freeze)

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        self._changed(self.state.set_connection(message.problem))

    def on_network_read(self, message: NetworkRead) -> None:
        self._changed(self.state.set_network(message.network, message.error))

    def on_health_read(self, message: HealthRead) -> None:
        self._changed(self.state.set_health(message.health))

    def on_exercise_read(self, message: ExerciseRead) -> None:
        self.exercise_read(message.report)

    def on_traffic_read(self, message: TrafficRead) -> None:
        if message.plan is not None:
            self.state.start_traffic(message.plan)
        self._changed(self.state.add_traffic(message.samples, message.running))

    def exercise_read(self, report: ExerciseReport) -> None:
        self._changed(self.state.set_exercise(report))

    def traffic_started(self, plan: TrafficPlan) -> None:
        self._changed(self.state.start_traffic(plan))

    def _changed(self, topics: set[str]) -> None:
        if not topics:
            return
        self._dirty |= topics
        if not self._flush_pending:
            self._flush_pending = True
            self.call_later(self._pass_topics)

    def _pass_topics(self) -> None:
        self._flush_pending = False
        topics, self._dirty = frozenset(self._dirty), set()
        for screen in self.screen_stack:
            screen.post_message(TopicsChanged(topics))
