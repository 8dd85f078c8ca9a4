"""The small screens over a view: help (every key), ``:`` jump, confirm, prompt, pick one of a list."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from .. import VIEWS
from ..widgets.view_tabs import LABELS

__all__ = ["ConfirmScreen", "HelpScreen", "JumpScreen", "PickerScreen", "PromptScreen"]

SYMBOLS = """\
Symbols (the same with or without colour):
  ✓ ready / passing     … on its way (Pending, ContainerCreating)   ✗ failing / NotReady
  ↓ terminating         ⊘ cordoned       ⟳ rollout in progress     ⚠ Warning event
  ▶ a ReplicaSet's current revision, · an older one    ! the grader could not judge
  ● the data is current (top line), … still listing, ✗ the lab does not answer"""


def _key(binding: Binding) -> str:
    names = {"slash": "/", "question_mark": "?", "colon": ":", "escape": "esc", "enter": "enter",
             "space": "space", "plus": "+", "minus": "-", "left_square_bracket": "[", "right_square_bracket": "]"}
    return binding.key_display or ", ".join(names.get(k, k) for k in binding.key.split(","))


class HelpScreen(ModalScreen[None]):
    """``?``: the keys of the view below and of the app, what the view shows, the symbols."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "dismiss", "close")]

    def __init__(self, view: Screen[object]) -> None:
        super().__init__()
        self.view = view

    def compose(self) -> ComposeResult:
        about = getattr(self.view, "ABOUT", "")
        lines = [f"{LABELS.get(getattr(self.view, 'VIEW', ''), 'labctl tui')}: {about}", "", "Keys of this view:"]
        seen = set()
        for binding in self.view.BINDINGS:
            if isinstance(binding, Binding) and binding.action not in seen:
                seen.add(binding.action)
                lines.append(f"  {_key(binding):<12} {binding.description or binding.action}")
        lines += ["", "Everywhere:"]
        lines += [f"  {i:<12} {LABELS[v]} view" for i, v in enumerate(VIEWS, 1)]
        lines += ["  :<view>      jump to a view by name (:pods, :net…)", "  ?            this help",
                  "  q, ctrl+c    quit", "  mouse        click a view's name, a row, a key below", "", SYMBOLS]
        with VerticalScroll(id="help"):
            yield Static("\n".join(lines), markup=False)
        yield Static("esc closes", id="help-close")


class JumpScreen(ModalScreen[str | None]):
    """``:`` then a view's name (or its start: ``:po``, ``:net``), like k9s' command prompt."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="jump"):
            yield Input(placeholder=": " + " ".join(VIEWS), id="jump-input")

    @on(Input.Submitted)
    def _jump(self, message: Input.Submitted) -> None:
        wanted = message.value.strip().lstrip(":").lower()
        aliases = {"po": "pods", "deploy": "workloads", "deployments": "workloads", "rs": "workloads",
                   "svc": "services", "net": "network", "ev": "events", "ex": "exercise"}
        view = aliases.get(wanted) or next((v for v in VIEWS if wanted and v.startswith(wanted)), None)
        if view is None:
            self.query_one(Input).value = ""
            self.notify(f"no view {wanted!r}: {', '.join(VIEWS)}", severity="warning")
            return
        self.dismiss(view)


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no (``y``/``n``, or click)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("y", "answer(True)", "yes"), Binding("n,escape", "answer(False)", "no")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Static(self.question, markup=False)
            with Horizontal(classes="buttons"):
                yield Button("yes (y)", id="yes", variant="error")
                yield Button("no (n)", id="no")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)

    @on(Button.Pressed)
    def _pressed(self, message: Button.Pressed) -> None:
        self.dismiss(message.button.id == "yes")


class PromptScreen(ModalScreen[str | None]):
    """One value, prefilled (the replicas now, the image now)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "cancel")]

    def __init__(self, title: str, value: str) -> None:
        super().__init__()
        self.title_text, self.value = title, value

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt"):
            yield Label(self.title_text, markup=False)
            yield Input(self.value, id="prompt-input")

    @on(Input.Submitted)
    def _done(self, message: Input.Submitted) -> None:
        self.dismiss(message.value.strip() or None)


class PickerScreen(ModalScreen[str | None]):
    """Pick one of ``choices`` (id, label); ``/``-style typing narrows them."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "cancel")]

    def __init__(self, title: str, choices: list[tuple[str, str]]) -> None:
        super().__init__()
        self.title_text, self.choices = title, choices

    def compose(self) -> ComposeResult:
        with Vertical(id="picker"):
            yield Label(self.title_text, markup=False)
            yield Input(placeholder="type to narrow", id="picker-filter")
            yield OptionList(*(Option(label, id=key) for key, label in self.choices), id="picker-options")

    @on(Input.Changed)
    def _narrow(self, message: Input.Changed) -> None:
        options = self.query_one(OptionList)
        options.clear_options()
        needle = message.value.lower()
        options.add_options([Option(label, id=key) for key, label in self.choices if needle in label.lower()])
        options.highlighted = 0 if options.option_count else None

    @on(Input.Submitted)
    def _first(self) -> None:
        options = self.query_one(OptionList)
        if options.option_count:
            self.dismiss(options.get_option_at_index(options.highlighted or 0).id)

    @on(OptionList.OptionSelected)
    def _picked(self, message: OptionList.OptionSelected) -> None:
        self.dismiss(message.option.id)
