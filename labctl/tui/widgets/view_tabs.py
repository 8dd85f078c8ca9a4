"""The top line: the lab, whether its data is current, and the views (click one, or press its number)."""

from __future__ import annotations

from textual.markup import escape
from textual.widgets import Static

from .. import VIEWS

__all__ = ["LABELS", "ViewTabs"]

#: what the line shows for each view (and what ``:`` accepts)
LABELS = {"overview": "Overview", "pods": "Pods", "workloads": "Workloads", "services": "Services",
          "network": "Network", "traffic": "Traffic", "events": "Events", "exercise": "Exercise"}


class ViewTabs(Static):
    """``lab ● │ Overview Pods [Workloads] …``: the current view in brackets (it shows without colour),
    ● the data is current, … still listing, ✗ a problem (the line below says which)."""

    def __init__(self, current: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.current = current
        self.lab = ""
        self.problem = "connecting…"

    def on_mount(self) -> None:
        self.update(self._markup())

    def set_status(self, lab: str, problem: str) -> None:
        self.lab, self.problem = lab, problem
        self.update(self._markup())

    def _markup(self) -> str:
        mark = "●" if not self.problem else ("…" if self.problem.endswith("…") else "✗")
        labels = [f"[b reverse]\\[{LABELS[view]}][/]" if view == self.current
                  else f"[@click=app.view('{view}')]{LABELS[view]}[/]" for view in VIEWS]
        # one space between the views: 80 columns hold the lab's name and all eight
        return f"[b]{escape(self.lab or 'lab')} {mark}[/b] │ " + " ".join(labels)
