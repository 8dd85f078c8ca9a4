"""Typed checks: one function per ``kind``, each returning a :class:`Verdict` with evidence.

A check reads the live cluster through the grading :class:`Context` (one snapshot of the
namespace per grading, the lab facade for nodes, the probes' results) and answers pass or
fail with what it saw. It raises :class:`CannotJudge` (or lets a :class:`LabctlError`
through) when the grader itself cannot tell — the grader turns that into *error*, never into
the student's failure. Kinds register themselves with :func:`kind`; the modules below are
imported for that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...client.rest import APIClient
from ...cluster.lab import Lab
from ..model import CheckSpec, Exercise, Status
from ..relations import Snapshot
from ..state import ExerciseState, LabStore

if TYPE_CHECKING:
    from ...inspect import LabNetwork

__all__ = ["KINDS", "CannotJudge", "Context", "Unmet", "Verdict", "kind"]


class CannotJudge(Exception):
    """The grader could not judge this check (the lab, a node or a probe is not there)."""


class Unmet(Exception):
    """The student's work does not meet the check: a fail, with ``evidence``."""

    def __init__(self, message: str, **evidence: Any) -> None:
        super().__init__(message)
        self.message = message
        self.evidence = evidence


@dataclass
class Verdict:
    status: Status
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def passed(cls, message: str, **evidence: Any) -> Verdict:
        return cls(Status.PASS, message, evidence)

    @classmethod
    def failed(cls, message: str, **evidence: Any) -> Verdict:
        return cls(Status.FAIL, message, evidence)


@dataclass
class Context:
    """What every check of one grading reads: the same snapshot, so they agree with each other,
    and the nodes' network (read once, when a check first asks)."""

    lab: Lab
    store: LabStore
    exercise: Exercise
    state: ExerciseState
    api: APIClient
    snapshot: Snapshot
    _networks: dict[bool, asyncio.Task[LabNetwork]] = field(default_factory=dict)

    async def network(self, conntrack: bool = False) -> LabNetwork:
        """Every node's links, routes and rules (:mod:`labctl.inspect`), shared by the checks of a grading."""
        if conntrack not in self._networks:
            from ...inspect import snapshot  # only gradings with node checks pay for importing it

            self._networks[conntrack] = asyncio.ensure_future(snapshot(self.lab, conntrack=conntrack))
        return await self._networks[conntrack]


CheckFunction = Callable[[Context, CheckSpec], Awaitable[Verdict]]
KINDS: dict[str, CheckFunction] = {}


def kind(name: str) -> Callable[[CheckFunction], CheckFunction]:
    def register(fn: CheckFunction) -> CheckFunction:
        KINDS[name] = fn
        return fn
    return register


def _register_all() -> None:
    from . import during, frompod, nodes, objects, podnet, questions, script, traffic  # noqa: F401 - they register their kinds


_register_all()
