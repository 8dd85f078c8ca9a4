"""A lab's exercise state, kept in the lab itself: on the control plane's state volume.

``/var/lib/labctl/exercises/`` on the control-plane node holds ``state.json`` (which exercise
was started when, the parameter values it got, hints released, answers given) and the
during probes' files (``probes/<id>.spec.json``, ``<id>.json`` results, ``<id>.pid``,
``<id>.log``). Keeping it there rather than on the host means any shell on the machine grades
the same lab the same way, the student's pods cannot see it (only the control-plane node
mounts that volume), and ``labctl down`` removes it with the volume. Reading works while the
lab is stopped (through the Docker engine's archive API), so ``check`` can still say which
exercise it cannot grade.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from ..cluster.lab import Lab, Node
from ..engine.sdk import read_files
from ..errors import LabctlError

__all__ = ["EXERCISES_DIR", "PROBES_DIR", "ExerciseState", "LabStore"]

EXERCISES_DIR = "/var/lib/labctl/exercises"
PROBES_DIR = f"{EXERCISES_DIR}/probes"
STATE_FILE = "state.json"


@dataclass
class ExerciseState:
    """What ``start`` decided and what the student has done since that the cluster does not hold."""

    exercise: str
    namespace: str
    started_at: float
    parameters: dict[str, Any]
    hints: dict[str, int] = field(default_factory=dict)       # check id → tiers released
    answers: dict[str, str] = field(default_factory=dict)     # question key → the student's answer

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> ExerciseState:
        raw = json.loads(data)
        return cls(raw["exercise"], raw["namespace"], float(raw["started_at"]), dict(raw["parameters"]),
                   {k: int(v) for k, v in (raw.get("hints") or {}).items()}, dict(raw.get("answers") or {}))

    @classmethod
    def new(cls, exercise: str, namespace: str, parameters: dict[str, Any]) -> ExerciseState:
        return cls(exercise, namespace, time.time(), parameters)


class LabStore:
    """The exercise files of one lab, on its control-plane node."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab

    def control_plane(self) -> Node:
        node = next((n for n in self.lab.nodes() if n.role == "control-plane"), None)
        if node is None:
            raise LabctlError(f"lab {self.lab.name!r} has no control-plane node",
                              hint=f"recreate it: `labctl down --name {self.lab.name}` then `labctl up`")
        return Node(self.lab, node)

    def read(self, directory: str, names: tuple[str, ...]) -> dict[str, bytes]:
        """Files of ``directory`` on the control plane (running or stopped); missing ones are left out."""
        node = self.control_plane()
        try:
            return read_files(self.lab.docker, node.info.container, directory, names)
        except LabctlError:  # the directory does not exist yet
            return {}

    def read_state(self) -> ExerciseState | None:
        data = self.read(EXERCISES_DIR, (STATE_FILE,)).get(STATE_FILE)
        return ExerciseState.from_json(data) if data else None

    async def write(self, path: str, data: bytes) -> None:
        """Write a file on the control plane atomically (a reader never sees half of it)."""
        script = 'mkdir -p "$(dirname "$1")" && cat > "$1.tmp" && mv "$1.tmp" "$1"'
        result = await self.control_plane().exec(["sh", "-c", script, "sh", path], stdin=data)
        if not result.ok:
            raise LabctlError(f"failed to write {path} on the control plane of lab {self.lab.name!r}: "
                              f"{result.stderr.decode(errors='replace').strip()}")

    async def write_state(self, state: ExerciseState) -> None:
        await self.write(f"{EXERCISES_DIR}/{STATE_FILE}", state.to_json())

    async def run(self, argv: list[str]) -> str:
        """Run a command on the control plane; its stdout, or :class:`LabctlError` with its stderr."""
        result = await self.control_plane().exec(argv)
        if not result.ok:
            raise LabctlError(f"failed on the control plane of lab {self.lab.name!r}: {' '.join(argv[:4])}: "
                              f"{result.stderr.decode(errors='replace').strip() or f'exit {result.exit_code}'}")
        return result.stdout.decode(errors="replace")
