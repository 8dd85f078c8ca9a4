"""Events as they happen, newest first: what the scheduler, the kubelets and the controllers did."""

from __future__ import annotations

from ..rows import EVENT_COLUMNS, Row, event_rows
from .base import TableView

__all__ = ["EventsScreen"]


class EventsScreen(TableView):
    VIEW = "events"
    TOPICS = frozenset({"events"})
    COLUMNS = EVENT_COLUMNS
    ABOUT = "the cluster's events, live, newest first (⚠ marks a Warning)."

    def rows(self) -> list[Row]:
        return event_rows(self.state)

    def idle_command(self) -> str:
        return "kubectl get events -A --watch"
