"""Where the state model's data comes from: the :class:`StateSource` protocol.

The app talks to a lab only through this. A source *feeds* the app by posting
:mod:`.messages` to a ``sink`` (the app's ``post_message``: safe from any thread) — watch
events as they come, and for the *polled* topics the visible view needs (:meth:`StateSource.watch`)
a snapshot every few seconds — and *answers requests*: actions, traces, grading, hints, a
traffic run, a followed log, the command a shell runs.

Two sources: :class:`~.live.LiveSource` (a lab on this machine, through informers, the
inspection library and the grader, all on a thread of its own) and
:class:`~.recorded.RecordedSource` (a JSON snapshot, at a fixed clock).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from textual.message import Message

if TYPE_CHECKING:
    from ..inspect import Trace
    from .actions import Action, Ref
    from .state import ExerciseReport
    from .traffic import TrafficPlan

__all__ = ["POLLED", "Sink", "StateSource"]

#: a message goes to the app (or to the screen that asked), from any thread
Sink = Callable[[Message], object]
#: topics a source reads on demand, only while a visible view shows them
POLLED = frozenset({"network", "health", "exercise"})


class StateSource(Protocol):
    """What the TUI needs of a lab."""

    lab: str
    #: the time ages and charts are drawn at (epoch seconds)
    clock: Callable[[], float]
    #: true when the source can change the lab (a recording cannot)
    live: bool

    def start(self, sink: Sink) -> None:
        """Begin feeding ``sink``; returns at once (a live source works on a thread of its own)."""

    def stop(self) -> None:
        """Stop feeding and release the lab (traffic and followed logs end too)."""

    def watch(self, topics: frozenset[str]) -> None:
        """The visible view shows these topics: poll the :data:`POLLED` ones among them, and only those."""

    async def run(self, action: Action) -> str:
        """Do ``action``; a sentence saying what was done (an exception saying why not)."""

    async def trace(self, source: str, destination: str, *, port: str | None = None, live: bool = False) -> Trace:
        """``labctl trace SOURCE DESTINATION [--explain]``."""

    async def check(self) -> ExerciseReport:
        """Grade the active exercise now (the report is also posted as an ``ExerciseRead``)."""

    async def hint(self, check_id: str) -> ExerciseReport:
        """Release the next hint of ``check_id`` (``labctl exercise hint CHECK``)."""

    def start_traffic(self, plan: TrafficPlan) -> None:
        """Start sending requests as ``plan`` says (a run already going is stopped first)."""

    def set_traffic_rate(self, rate: int) -> None:
        """Requests a second, from now on."""

    def stop_traffic(self) -> None:
        """Stop sending (the answers still on their way are counted)."""

    def follow_logs(self, ref: Ref, sink: Sink) -> Callable[[], None]:
        """Post a pod's log to ``sink`` as ``LogRead`` messages (the last lines, then new ones); returns a stopper."""

    def shell(self, ref: Ref) -> list[str] | None:
        """The command that opens a shell in a pod or a node (the app suspends while it runs); None if none can."""
