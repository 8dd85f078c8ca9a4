"""The line above the keys: the command that does by hand what the UI shows or just did.

Every view shows its ``kubectl``/``labctl`` equivalent while idle; an action shows its
command before it runs and its outcome after (✓ done, ✗ refused, with the reason), so a
student learns the CLI from the UI.
"""

from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static

__all__ = ["CommandBar"]


class CommandBar(Static):
    """``$ kubectl get pods -A -o wide`` — or ``$ kubectl scale … → ✓ scaled``."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.idle = ""
        self.problem = ""

    def show_idle(self, command: str) -> None:
        """The view's own equivalent; shown until an action replaces it."""
        self.idle = command
        self.update(self._line(command, ""))

    def show_action(self, command: str, outcome: str = "…", ok: bool | None = None) -> None:
        mark = {True: "✓", False: "✗", None: ""}[ok]
        self.update(self._line(command, f"{mark} {outcome}".strip()))

    def show_problem(self, problem: str) -> None:
        """The source's trouble (the API server does not answer…) wins over the idle command."""
        self.problem = problem
        self.update(self._line(self.idle, ""))

    def _line(self, command: str, outcome: str) -> str:
        if self.problem and not outcome:
            mark = "…" if self.problem.endswith("…") else "✗"
            return f"[b]{mark}[/b] {escape(self.problem.rstrip('…'))}"
        text = f"[b]$[/b] {escape(command)}" if command else ""
        return f"{text}  [dim]→[/dim] {escape(outcome)}" if outcome else text
