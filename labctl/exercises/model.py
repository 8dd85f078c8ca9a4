"""What an exercise is, and what grading it gives: plain dataclasses, no I/O.

An :class:`Exercise` is ``exercise.yaml`` after validation, with its parameters substituted
(:func:`labctl.exercises.loader.load_exercise` builds it). A check's outcome is a
:class:`CheckResult` — pass, fail or *error*: error means the grader could not judge (the
lab is down, a probe is not running), never that the student got it wrong — and a
:class:`Grade` adds them up with their weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

__all__ = ["CheckResult", "CheckSpec", "Exercise", "Grade", "ProbeSpec", "ServiceRef", "Status", "Step",
           "WorkloadRef"]


class Status(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"


@dataclass(frozen=True)
class WorkloadRef:
    """A workload by kind, and by name only where the task names it (else any of that kind)."""

    kind: str
    name: str | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> WorkloadRef:
        return cls(raw["kind"], raw.get("name"))

    def describe(self) -> str:
        return f"{self.kind} {self.name}" if self.name else f"a {self.kind}"


@dataclass(frozen=True)
class ServiceRef:
    """A Service found by relation (its selector matches the workload's pods), narrowed by these."""

    name: str | None = None
    type: str | None = None
    node_port: int | None = None

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> ServiceRef:
        raw = raw or {}
        port = raw.get("nodePort")
        return cls(raw.get("name"), raw.get("type"), int(port) if port is not None else None)

    def describe(self) -> str:
        kind = f"{self.type} Service" if self.type else "Service"
        return f"{kind} {self.name}" if self.name else f"a {kind}"


@dataclass(frozen=True)
class Step:
    """One action of ``setup`` or ``solution``: ``apply``, ``kubectl``, ``wait`` or ``answer``."""

    action: str
    value: Any


@dataclass(frozen=True)
class ProbeSpec:
    """A during probe: requests through the way in (``via``) to ``workload`` until its event."""

    id: str
    workload: WorkloadRef
    via: str
    until: str
    rate: int = 25
    path: str = "/"


@dataclass(frozen=True)
class CheckSpec:
    id: str
    title: str
    kind: str
    weight: int = 1
    hints: tuple[str, ...] = ()
    message: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    topics: tuple[str, ...]
    difficulty: str
    minutes: int
    task: str                       # the markdown text, parameters substituted
    namespace: str
    directory: Path
    parameters: dict[str, Any]      # the values this lab got
    setup: tuple[Step, ...]
    probes: tuple[ProbeSpec, ...]
    checks: tuple[CheckSpec, ...]
    solution: tuple[Step, ...]

    def probe(self, probe_id: str) -> ProbeSpec:
        return next(p for p in self.probes if p.id == probe_id)

    @property
    def max_score(self) -> int:
        return sum(c.weight for c in self.checks)


@dataclass
class CheckResult:
    """One check's verdict, with what the grader saw (``evidence``: JSON-able) and said (``message``)."""

    id: str
    title: str
    kind: str
    weight: int
    status: Status
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def score(self) -> int:
        return self.weight if self.status is Status.PASS else 0


@dataclass
class Grade:
    """All checks of one ``check``: the JSON result and the JUnit report are made from this."""

    exercise: str
    title: str
    lab: str
    namespace: str
    started_at: str | None
    checked_at: str
    checks: list[CheckResult]
    hints_used: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def score(self) -> int:
        return sum(c.score for c in self.checks)

    @property
    def max_score(self) -> int:
        return sum(c.weight for c in self.checks)

    @property
    def passed(self) -> bool:
        return all(c.status is Status.PASS for c in self.checks)

    def count(self, status: Status) -> int:
        return sum(c.status is status for c in self.checks)
