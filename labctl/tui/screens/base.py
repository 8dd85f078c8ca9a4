"""What every view shares: the tabs line, the command bar, the keys line, redrawing on state changes,
and the actions on the selected object (describe, YAML, logs, shell, delete…).

A view declares the state topics it draws (``TOPICS``) and redraws only when one of them
changed (``TopicsChanged`` from the app) or when it comes back on screen and something
changed while it was hidden. Actions run in workers: the command bar shows the equivalent
command at once and the outcome when the lab answered; nothing waits on the UI thread.
"""

from __future__ import annotations

import subprocess
from collections import Counter
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input

from ...client.rest import APIStatusError
from ...errors import LabctlError
from ..actions import Action, Ref
from ..messages import TopicsChanged
from ..rows import Row, filter_rows
from ..source import POLLED
from ..widgets.command_bar import CommandBar
from ..widgets.keys_bar import KeysBar
from ..widgets.object_table import ObjectTable
from ..widgets.view_tabs import ViewTabs

if TYPE_CHECKING:
    from ..app import LabApp
    from ..source import StateSource
    from ..state import LabState

__all__ = ["TROUBLE", "TableView", "ViewScreen"]

#: what an action or a request may fail with (shown in the command bar; anything else is a bug). The
#: Docker SDK's API errors are ``requests`` errors, i.e. OSErrors.
TROUBLE = (LabctlError, APIStatusError, OSError, ValueError, TimeoutError)

#: seconds of no typing after which the filter is applied
FILTER_PAUSE = 0.08

#: the kinds each selection-bound action applies to (others hide its key)
APPLIES_TO: dict[str, frozenset[str]] = {
    "describe": frozenset({"Pod", "Node", "Deployment", "ReplicaSet", "Service", "Event"}),
    "yaml": frozenset({"Pod", "Node", "Deployment", "ReplicaSet", "Service", "Event"}),
    "logs": frozenset({"Pod"}),
    "shell": frozenset({"Pod", "Node"}),
    "delete": frozenset({"Pod", "Deployment", "ReplicaSet", "Service"}),
    "cordon": frozenset({"Node"}), "uncordon": frozenset({"Node"}),
    "stop_node": frozenset({"Node"}), "start_node": frozenset({"Node"}),
    "scale": frozenset({"Deployment", "ReplicaSet"}), "set_image": frozenset({"Deployment"}),
    "restart": frozenset({"Deployment"}), "undo": frozenset({"Deployment"}),
    "traffic_to": frozenset({"Service"}),
}


class ViewScreen(Screen[None]):
    """A view of the lab (one Textual mode); subclasses compose their body and :meth:`draw` it."""

    VIEW: ClassVar[str] = ""
    TOPICS: ClassVar[frozenset[str]] = frozenset()
    #: one sentence for the help screen: what this view shows
    ABOUT: ClassVar[str] = ""
    #: nothing takes the focus by itself: the keys go to the view, which moves its table's cursor
    AUTO_FOCUS = ""
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "move('cursor_up')", "up", show=False),
        Binding("down", "move('cursor_down')", "down", show=False),
        Binding("pageup", "move('page_up')", "page up", show=False),
        Binding("pagedown", "move('page_down')", "page down", show=False),
        Binding("home", "move('first')", "first", show=False),
        Binding("end", "move('last')", "last", show=False),
        Binding("escape", "blur", "back to the table", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self._drawn: Counter[str] = Counter()

    def compose(self) -> ComposeResult:
        yield ViewTabs(self.VIEW, id="tabs")
        yield from self.compose_body()
        yield CommandBar(id="command")
        yield KeysBar(id="keys")

    def compose_body(self) -> ComposeResult:
        raise NotImplementedError

    # -- the app, the state, the source -------------------------------------------------------

    @property
    def lab_app(self) -> LabApp:
        return self.app  # type: ignore[return-value]

    @property
    def state(self) -> LabState:
        return self.lab_app.state

    @property
    def source(self) -> StateSource:
        return self.lab_app.source

    # -- drawing -----------------------------------------------------------------------------

    def on_mount(self) -> None:
        self.query_one(CommandBar).show_idle(self.idle_command())

    def on_screen_resume(self) -> None:
        self.source.watch(self.TOPICS & POLLED)
        stale = {t for t in self.TOPICS | {"connection"} if self.state.versions[t] != self._drawn[t]}
        if stale or not self._drawn:
            self._redraw(frozenset(stale or self.TOPICS))

    @on(TopicsChanged)
    def _on_topics(self, message: TopicsChanged) -> None:
        if self.is_current and message.topics & (self.TOPICS | {"connection"}):
            self._redraw(message.topics)

    def _redraw(self, topics: frozenset[str]) -> None:
        for topic in self.TOPICS | {"connection"}:
            self._drawn[topic] = self.state.versions[topic]
        if "connection" in topics or not self._drawn.get("_status"):
            self._drawn["_status"] = 1
            self.query_one(ViewTabs).set_status(self.state.lab, self.state.connection)
            self.query_one(CommandBar).show_problem(self.state.connection)
        self.draw(topics & self.TOPICS or self.TOPICS)

    def draw(self, topics: frozenset[str]) -> None:
        """Redraw what shows ``topics``."""

    def idle_command(self) -> str:
        """The command that shows by hand what this view shows."""
        return ""

    # -- actions on the selected object -----------------------------------------------------

    def selected_ref(self) -> Ref | None:
        return None

    def action_blur(self) -> None:
        """Leave a scrolled pane (``tab`` focuses one): the arrows move the table's selection again."""
        self.set_focus(None)

    def action_move(self, how: str) -> None:
        """An arrow key: the cursor of the view's (first) table moves."""
        table = self.query(ObjectTable).first() if self.query(ObjectTable) else None
        if table is None:
            return
        if how in ("first", "last"):
            table.move_cursor(row=0 if how == "first" else table.row_count - 1, animate=False)
        else:
            getattr(table, f"action_{how}")()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        kinds = APPLIES_TO.get(action)
        if kinds is None:
            return True
        ref = self.selected_ref()
        return ref is not None and ref.kind in kinds

    def action_describe(self) -> None:
        if (ref := self.selected_ref()) is not None:
            from .detail import DetailScreen

            self.app.push_screen(DetailScreen(ref, "describe"))

    def action_yaml(self) -> None:
        if (ref := self.selected_ref()) is not None:
            from .detail import DetailScreen

            self.app.push_screen(DetailScreen(ref, "yaml"))

    def action_logs(self) -> None:
        if (ref := self.selected_ref()) is not None and ref.kind == "Pod":
            from .detail import DetailScreen

            self.app.push_screen(DetailScreen(ref, "logs"))

    def action_shell(self) -> None:
        ref = self.selected_ref()
        if ref is None:
            return
        argv = self.source.shell(ref)
        command = f"kubectl exec -it -n {ref.namespace} {ref.name} -- sh" if ref.kind == "Pod" else (
            f"labctl shell {ref.name} --name {self.state.lab}")
        bar = self.query_one(CommandBar)
        if argv is None:
            bar.show_action(command, "a recorded lab has no shell", ok=False)
            return
        bar.show_action(command, "the UI is suspended while the shell runs; exit it to come back")
        try:
            with self.app.suspend():
                # the terminal belongs to the shell until it exits; Textual redraws afterwards
                code = subprocess.run(argv, check=False).returncode
        except Exception as err:  # SuspendNotSupported (no terminal, e.g. under test), a missing binary
            bar.show_action(command, f"cannot open a shell here: {err or type(err).__name__}", ok=False)
            return
        bar.show_action(command, f"shell exited ({code})", ok=code == 0)

    def action_delete(self) -> None:
        if (ref := self.selected_ref()) is not None:
            self.change(Action("delete", ref, lab=self.state.lab))

    def change(self, action: Action) -> None:
        """Show the command; ask first when it destroys; then do it in a worker."""
        bar = self.query_one(CommandBar)
        if not action.destructive:
            self._perform(action)
            return
        from .dialogs import ConfirmScreen

        bar.show_action(action.command, "confirm?")

        def answered(yes: bool | None) -> None:
            if yes:
                self._perform(action)
            else:
                bar.show_action(action.command, "cancelled", ok=False)

        self.app.push_screen(ConfirmScreen(f"{action.command}\n\nReally {action.verb.replace('-', ' ')} "
                                           f"{action.ref.kind.lower()} {action.ref}?"), answered)

    @work(group="actions")
    async def _perform(self, action: Action) -> None:
        bar = self.query_one(CommandBar)
        bar.show_action(action.command)
        try:
            outcome = await self.source.run(action)
        except TROUBLE as err:
            bar.show_action(action.command, str(err) or type(err).__name__, ok=False)
            return
        bar.show_action(action.command, outcome, ok=True)

    def ask(self, title: str, value: str, done: Any) -> None:
        """Prompt for one value (replicas, CONTAINER=IMAGE); ``done(text)`` when given."""
        from .dialogs import PromptScreen

        self.app.push_screen(PromptScreen(title, value), lambda text: text and done(text))


class TableView(ViewScreen):
    """A view that is a table of objects: ``/`` filters it, the cursor picks the object actions apply to."""

    COLUMNS: ClassVar[tuple[str, ...]] = ()
    _filtering: Timer | None = None
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "filter"),
        Binding("escape", "clear_filter", "clear", show=False),
        Binding("d", "describe", "describe"),
        Binding("y", "yaml", "yaml"),
        Binding("enter", "describe", "describe", show=False),
    ]

    def compose_body(self) -> ComposeResult:
        yield Input(placeholder="filter: type to narrow the rows, enter to keep, esc to clear", id="filter")
        yield ObjectTable(self.COLUMNS, id="table")
        yield from self.compose_detail()

    def compose_detail(self) -> ComposeResult:
        return iter(())

    def rows(self) -> list[Row]:
        raise NotImplementedError

    @property
    def table(self) -> ObjectTable:
        return self.query_one(ObjectTable)

    def draw(self, topics: frozenset[str]) -> None:
        self.table.show(filter_rows(self.rows(), self.query_one("#filter", Input).value))
        self.draw_detail()

    def draw_detail(self) -> None:
        """Redraw the part that shows the selected object (if the view has one)."""

    def selected_ref(self) -> Ref | None:
        row = self.table.selected if self.is_mounted else None
        return row.ref if row is not None else None

    @on(ObjectTable.Selected)
    def _on_selected(self, message: ObjectTable.Selected) -> None:
        self.query_one(KeysBar).refresh_keys()
        self.draw_detail()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.add_class("shown")
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.remove_class("shown")
        self.set_focus(None)

    @on(Input.Changed, "#filter")
    def _on_filter(self) -> None:
        # typing shows at once; the rows follow when the typing pauses, so a word filters once
        if self._filtering is not None:
            self._filtering.stop()
        self._filtering = self.set_timer(FILTER_PAUSE, lambda: self.draw(self.TOPICS))

    @on(Input.Submitted, "#filter")
    def _on_filter_done(self) -> None:
        if not self.query_one("#filter", Input).value:
            self.query_one("#filter", Input).remove_class("shown")
        self.set_focus(None)
