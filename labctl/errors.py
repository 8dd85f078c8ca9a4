"""The base of every error a labctl user should read as a message, not as a traceback.

Library code raises :class:`LabctlError` subclasses with a message that names what failed
(``failed to create network "lab"``, ``topologies/bad.yaml: nodes[2].role: …``) and, where
the user can do something about it, a ``hint``. Only the CLI's top level prints them:
``ERROR: <message>`` and then the hint; a traceback only at ``-v``. Anything that is not a
``LabctlError`` is a bug in labctl and is shown with its traceback.
"""

from __future__ import annotations

__all__ = ["LabctlError"]


class LabctlError(Exception):
    """A user-facing error: ``str(err)`` is the message, ``err.hint`` says what to do (or ``None``)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message
