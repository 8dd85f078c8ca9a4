"""What a state source tells the app (posted from the source's thread; Textual queues them safely).

Deltas (objects, traffic samples) must all arrive, in order; snapshots (the network, node
health, the connection) may be coalesced: a newer one replaces one still queued
(``can_replace``), so a busy UI never works through stale pictures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from textual.message import Message

from .state import ExerciseReport, NodeHealth
from .traffic import Sample, TrafficPlan

if TYPE_CHECKING:
    from ..inspect import LabNetwork

__all__ = ["ConnectionChanged", "ExerciseRead", "HealthRead", "LogRead", "NetworkRead", "ObjectsChanged",
           "TopicsChanged", "TrafficRead"]


@dataclass
class ObjectsChanged(Message):
    """Watch events ``(plural, ADDED|MODIFIED|DELETED, object)`` in order; ``synced`` once every kind was listed."""

    events: list[tuple[str, str, dict[str, Any]]]
    synced: bool = False


@dataclass
class ConnectionChanged(Message):
    """The source's trouble (the API server does not answer, the lab is gone), or ``""`` when it works."""

    problem: str

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, ConnectionChanged)


@dataclass
class NetworkRead(Message):
    """A new snapshot of the nodes' network (``network`` None with ``error`` when reading failed)."""

    network: LabNetwork | None
    error: str = ""

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, NetworkRead)


@dataclass
class HealthRead(Message):
    """Node containers' state, CPU and memory, by node name."""

    health: dict[str, NodeHealth]

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, HealthRead)


@dataclass
class ExerciseRead(Message):
    """The active exercise graded again (or why it could not be)."""

    report: ExerciseReport


@dataclass
class TrafficRead(Message):
    """Answers to the traffic run's requests since the last batch; ``running`` False once it stopped.
    ``plan`` comes with a run's first batch when the source (not the UI) started it: a recorded run."""

    samples: list[Sample]
    running: bool = True
    plan: TrafficPlan | None = None


@dataclass
class LogRead(Message):
    """Bytes of a followed log (posted to the screen that follows it); ``ended`` when the stream closed."""

    text: str
    ended: bool = False
    error: str = ""


@dataclass
class TopicsChanged(Message, bubble=False):
    """Sent by the app to the visible view: these topics of the state model changed."""

    topics: frozenset[str]

    def can_replace(self, message: Message) -> bool:
        return False
