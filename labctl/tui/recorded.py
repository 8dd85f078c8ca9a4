"""A recorded lab: everything the views show, saved as JSON and replayed at a fixed clock.

Snapshot tests, the screenshots in docs/tui.md and the key-press benchmark run on a
recording, so they draw the same picture on every machine and every day. A recording keeps
the *inputs*, not the pictures: the API objects as listed and the watch events of the recorded
seconds (so a rollout replays through the same code as a live one), each node's raw tool output (the
sections of :data:`labctl.inspect.gather.SNAPSHOT_SCRIPT`, parsed again on replay by the
inspection library's own :func:`~labctl.inspect.gather.build_network`), node health, the
exercise with its parameters and a grade (:func:`labctl.exercises.results.to_json`'s shape),
a traffic run's answers and pods' logs. :mod:`labctl.tui.recorder` makes one from a running lab.
This module replays it and imports neither the Docker SDK nor the API client, so a replay paints
its first frame without them.

A recorded source cannot change anything: actions answer with the command they would run.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import LabctlError
from .actions import Action, Ref
from .messages import ConnectionChanged, ExerciseRead, HealthRead, LogRead, NetworkRead, ObjectsChanged, TrafficRead
from .source import Sink
from .state import KINDS, ExerciseReport, NodeHealth
from .traffic import Sample, Target, TrafficPlan

__all__ = ["RECORDING_VERSION", "RecordedSource", "grade_from_json", "load_recording"]

RECORDING_VERSION = "labctl.dev/tui-recording/v1"


def load_recording(path: Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text())
    if data.get("apiVersion") != RECORDING_VERSION:
        raise LabctlError(f"{path} is not a TUI recording ({RECORDING_VERSION})")
    return data


class RecordedSource:
    """Replays a recording (:func:`load_recording`); the clock stands still at the recording's time."""

    live = False

    def __init__(self, recording: dict[str, Any]) -> None:
        self.recording = recording
        self.lab = recording["lab"]
        at = float(recording["clock"])
        self.clock: Callable[[], float] = lambda: at
        self._exercise: ExerciseReport | None = None
        self._network: Any = None

    def start(self, sink: Sink) -> None:
        """Post everything at once, on the caller's thread: the first frame already shows it all."""
        rec = self.recording
        sink(ObjectsChanged([(kind, "ADDED", obj) for kind in KINDS for obj in rec["objects"].get(kind, [])],
                            synced=True))
        for batch in rec.get("timeline") or []:  # the watch events of the recorded minutes, in order
            sink(ObjectsChanged([(kind, typ, obj) for kind, typ, obj in batch]))
        sink(ConnectionChanged(""))
        sink(HealthRead({name: NodeHealth(h["state"], h.get("cpuPercent"), h.get("memoryBytes"))
                         for name, h in (rec.get("health") or {}).items()}))
        if rec.get("network"):
            self._network = build_recorded_network(rec["lab"], rec["network"])
            sink(NetworkRead(self._network))
        self._exercise = exercise_report(rec.get("exercise"))
        sink(ExerciseRead(self._exercise))
        if rec.get("traffic"):
            plan = _plan(rec["traffic"]["plan"])
            sink(TrafficRead([Sample(**s) for s in rec["traffic"]["samples"]], running=False, plan=plan))

    def stop(self) -> None:
        pass

    def watch(self, topics: frozenset[str]) -> None:
        pass

    async def run(self, action: Action) -> str:
        raise LabctlError(f"a recorded lab cannot change; on a live lab this runs: {action.command}")

    async def trace(self, source: str, destination: str, *, port: str | None = None, live: bool = False) -> Any:
        """Computed from the recorded rules and routes (``--explain``): a recording cannot send a probe."""
        from ..inspect.explain import explain
        from ..inspect.targets import resolve_destination, resolve_source

        if self._network is None:
            raise LabctlError("this recording has no network snapshot")
        src = resolve_source(self._network, source)
        dst, service = resolve_destination(self._network, destination, port, "tcp")
        return explain(self._network, src, dst, "tcp", service)

    async def check(self) -> ExerciseReport:
        return self._exercise or ExerciseReport(None, error="this recording has no exercise")

    async def hint(self, check_id: str) -> ExerciseReport:
        report = await self.check()
        if report.exercise is not None:
            spec = next(c for c in report.exercise.checks if c.id == check_id)
            shown = report.hints.setdefault(check_id, [])
            if len(shown) < len(spec.hints):
                shown.append(spec.hints[len(shown)])
        return report

    def start_traffic(self, plan: TrafficPlan) -> None:
        raise LabctlError("a recorded lab answers no requests")

    def set_traffic_rate(self, rate: int) -> None:
        pass

    def stop_traffic(self) -> None:
        pass

    def follow_logs(self, ref: Ref, sink: Sink) -> Callable[[], None]:
        text = (self.recording.get("logs") or {}).get(f"{ref.namespace}/{ref.name}", "")
        sink(LogRead(text, ended=True))
        return lambda: None

    def shell(self, ref: Ref) -> list[str] | None:
        return None


def build_recorded_network(lab: str, data: dict[str, Any]) -> Any:
    """The recorded nodes' tool output through the inspection library's own parser."""
    from ..cluster import NodeInfo
    from ..inspect.gather import NodeOutput, build_network
    from ..inspect.links import SandboxLabels
    from ..inspect.model import PortMapping

    outputs = [NodeOutput(NodeInfo(**n["info"]), n["sections"]) for n in data["nodes"]]
    sandboxes = {s["containerId"]: SandboxLabels(s["containerId"], s["namespace"], s["name"], s["uid"])
                 for s in data["sandboxes"]}
    mappings = [PortMapping(**m) for m in data.get("portMappings") or []]
    return build_network(lab, outputs, sandboxes, data.get("gateway", ""), mappings)


def exercise_report(data: dict[str, Any] | None) -> ExerciseReport:
    if not data:
        return ExerciseReport(None, error="no exercise is started in this lab — `labctl exercise start ID`")
    from ..exercises.loader import load_definition

    exercise = load_definition(data["id"]).build(data["parameters"])
    hints = {c.id: list(c.hints[:data.get("hints", {}).get(c.id, 0)]) for c in exercise.checks}
    return ExerciseReport(exercise, grade_from_json(data["grade"]) if data.get("grade") else None, hints)


def grade_from_json(data: dict[str, Any]) -> Any:
    """A :class:`~labctl.exercises.model.Grade` from :func:`labctl.exercises.results.to_json`'s shape."""
    from ..exercises.model import CheckResult, Grade, Status

    checks = [CheckResult(c["id"], c["title"], c["kind"], c["weight"], Status(c["status"]), c["message"],
                          c.get("evidence") or {}, c.get("seconds", 0.0)) for c in data["checks"]]
    return Grade(data["exercise"], data["title"], data["lab"], data["namespace"], data.get("startedAt"),
                 data["checkedAt"], checks, dict(data.get("hintsUsed") or {}), data.get("seconds", 0.0))


def _plan(data: dict[str, Any]) -> TrafficPlan:
    return TrafficPlan(tuple(Target(**t) for t in data["targets"]), data.get("source", "host"),
                       data.get("rate", 10), data.get("path", "/"))
