"""How library code reports progress on long work, without knowing who listens.

``labctl up`` and the other long operations call ``start`` for each step, ``update`` with
what the step is doing now, and ``end`` when done. The CLI's spinner
(:class:`labctl.cli.status.Status`) is one implementation, the terminal UI another; tests
and scripts use :class:`NoProgress`. Library code reports through this and never prints.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives the steps of a long operation."""

    def start(self, message: str) -> None:
        """Begin a step (ending the previous one as successful)."""

    def update(self, detail: str) -> None:
        """What the current step is doing now (e.g. ``2/3 Ready``)."""

    def end(self, ok: bool) -> None:
        """End the current step, successfully or not."""


class NoProgress:
    """Progress that goes nowhere."""

    def start(self, message: str) -> None:
        pass

    def update(self, detail: str) -> None:
        pass

    def end(self, ok: bool) -> None:
        pass
