"""Finding and loading exercises: ``exercises/<id>/exercise.yaml`` → :class:`~.model.Exercise`.

Loading validates everything an author can get wrong before a student ever sees it — the
schema (:mod:`.schema`), then what a schema cannot say: the id is the folder's name, the
task and manifest files exist and parse, ids are unique, every ``${name}`` is a parameter,
every probe a check or step names exists — and reports each problem as
``file: field.path: what is wrong``, all of them at once.

Where exercises live: ``$LABCTL_EXERCISES``, else the checkout's top-level ``exercises/``.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ..errors import LabctlError
from . import params as parameters
from .model import CheckSpec, Exercise, ProbeSpec, Step, WorkloadRef
from .schema import validate

__all__ = ["Definition", "ExerciseError", "exercises_root", "list_definitions", "load_definition",
           "read_manifest"]

EXERCISE_FILE = "exercise.yaml"


class ExerciseError(LabctlError):
    """An exercise that does not load; ``problems`` are ``(file, field path, what is wrong)``."""

    def __init__(self, problems: list[tuple[str, str, str]]) -> None:
        self.problems = problems
        lines = [f"{file}: {path}: {what}" if path else f"{file}: {what}" for file, path, what in problems]
        super().__init__("invalid exercise:\n  " + "\n  ".join(lines),
                         hint="the format is in docs/exercises.md; editors can use exercises/exercise.schema.json")


def exercises_root() -> Path:
    """``$LABCTL_EXERCISES``, else ``exercises/`` of the checkout labctl runs from."""
    configured = os.environ.get("LABCTL_EXERCISES")
    root = Path(configured) if configured else Path(__file__).resolve().parents[2] / "exercises"
    if not root.is_dir():
        raise LabctlError(f"no exercises at {root}",
                          hint="set LABCTL_EXERCISES to the exercises/ folder of a labctl checkout")
    return root


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice (the second would silently win)."""


def _no_duplicates(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    for key in keys:
        if keys.count(key) > 1:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicates)


@dataclass(frozen=True)
class Definition:
    """A validated ``exercise.yaml`` before parameters are chosen: what ``list`` shows, what ``start`` builds from."""

    id: str
    directory: Path
    raw: dict[str, Any]

    @property
    def title(self) -> str:
        return str(self.raw["title"])

    def choose_parameters(self, rng: random.Random | None = None) -> dict[str, Any]:
        return parameters.choose(self.raw.get("parameters") or {}, rng)

    def build(self, values: dict[str, Any]) -> Exercise:
        """The exercise with ``values`` substituted (values a lab stored at ``start``)."""
        raw = parameters.substitute(self.raw, values)
        task = parameters.substitute((self.directory / raw["task"]).read_text(), values)
        return Exercise(
            id=raw["id"], title=raw["title"], topics=tuple(raw["topics"]), difficulty=raw["difficulty"],
            minutes=raw["minutes"], task=task, namespace=raw.get("namespace") or raw["id"],
            directory=self.directory, parameters=dict(values),
            setup=tuple(_steps(raw.get("setup") or [])),
            probes=tuple(ProbeSpec(p["id"], WorkloadRef.parse(p["workload"]), p["via"], p["until"],
                                   p.get("rate", 25), p.get("path", "/")) for p in raw.get("probes") or []),
            checks=tuple(CheckSpec(c["id"], c["title"], c["kind"], c.get("weight", 1), tuple(c.get("hints") or ()),
                                   c.get("message"), dict(c.get("with") or {})) for c in raw["checks"]),
            solution=tuple(_steps(raw["solution"])))


def _steps(raw: list[dict[str, Any]]) -> list[Step]:
    return [Step(*next(iter(step.items()))) for step in raw]


def list_definitions(root: Path | None = None) -> list[Definition]:
    """Every exercise under ``root``, by id; one that does not load raises :class:`ExerciseError`."""
    root = root or exercises_root()
    return [load_definition(p.parent.name, root) for p in sorted(root.glob(f"*/{EXERCISE_FILE}"))]


def load_definition(exercise_id: str, root: Path | None = None) -> Definition:
    """The exercise ``exercise_id``, validated; :class:`ExerciseError` lists every problem."""
    root = root or exercises_root()
    directory = root / exercise_id
    path = directory / EXERCISE_FILE
    if not path.is_file():
        known = sorted(p.parent.name for p in root.glob(f"*/{EXERCISE_FILE}"))
        raise LabctlError(f"no exercise {exercise_id!r} in {root}",
                          hint=f"exercises: {', '.join(known) or 'none'} (`labctl exercise list`)")
    shown = _shown(path, root)
    try:
        raw = yaml.load(path.read_text(), Loader=_UniqueKeyLoader)
    except yaml.YAMLError as err:
        raise ExerciseError([(shown, "", f"is not valid YAML: {err}".replace("\n", " "))]) from None
    problems = [(shown, where, what) for where, what in validate(raw)]
    if not problems:
        problems = [(shown, where, what) for where, what in _semantic_problems(raw, directory, root)]
    if problems:
        raise ExerciseError(problems)
    return Definition(exercise_id, directory, raw)


def read_manifest(exercise: Exercise, relative: str) -> list[dict[str, Any]]:
    """The objects of a manifest beside the exercise, with the lab's parameter values substituted."""
    path = exercise.directory / relative
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    return parameters.substitute(docs, exercise.parameters)


def _shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def _semantic_problems(raw: dict[str, Any], directory: Path, root: Path) -> list[tuple[str, str]]:
    """What the schema cannot say, as ``(field path, what is wrong)``."""
    problems: list[tuple[str, str]] = []
    if raw["id"] != directory.name:
        problems.append(("id", f"{raw['id']!r} must be the folder's name, {directory.name!r}"))
    if not (directory / raw["task"]).is_file():
        problems.append(("task", f"file {raw['task']} not found beside exercise.yaml"))
    names = set(raw.get("parameters") or {})
    for name, spec in (raw.get("parameters") or {}).items():
        if sum(k in spec for k in ("value", "choices", "range")) != 1:
            problems.append((f"parameters.{name}", "needs exactly one of: value, choices, range"))
        elif "range" in spec and spec["range"][0] > spec["range"][1]:
            problems.append((f"parameters.{name}.range", "low is above high"))
    for field_path, value in (("setup", raw.get("setup")), ("probes", raw.get("probes")),
                              ("checks", raw.get("checks")), ("solution", raw.get("solution"))):
        for unknown in sorted(parameters.unknown_names(value or [], names)):
            known = ", ".join(sorted(names)) or "none"
            problems.append((field_path, f"${{{unknown}}} is not a parameter (parameters: {known})"))
    probe_ids = [p["id"] for p in raw.get("probes") or []]
    problems += _duplicates("probes", probe_ids)
    problems += _duplicates("checks", [c["id"] for c in raw["checks"]])
    keys = [c["with"]["key"] for c in raw["checks"] if c["kind"] == "question" and "with" in c]
    problems += _duplicates("checks", keys, what="question key")
    for i, check in enumerate(raw["checks"]):
        problems += _check_problems(f"checks[{i}]", check, probe_ids)
    for section in ("setup", "solution"):
        for i, step in enumerate(raw.get(section) or []):
            problems += _step_problems(f"{section}[{i}]", step, directory, root, probe_ids, keys,
                                       [c["id"] for c in raw["checks"]])
    return problems


def _duplicates(path: str, ids: list[str], what: str = "id") -> list[tuple[str, str]]:
    return [(path, f"{what} {i!r} is used more than once") for i in sorted({i for i in ids if ids.count(i) > 1})]


#: the check kinds whose ``with`` is required by their meaning (the schema makes ``with`` optional)
_NEEDS_WITH = {"workload", "service", "endpoints", "new-revision", "http", "dns", "during", "question", "script",
               "pod-veth", "service-chains", "conntrack"}


def _check_problems(path: str, check: dict[str, Any], probe_ids: list[str]) -> list[tuple[str, str]]:
    with_ = check.get("with")
    if with_ is None:
        return [(f"{path}.with", f"is required for kind {check['kind']}")] if check["kind"] in _NEEDS_WITH else []
    if check["kind"] == "dns" and "expect" not in with_ and "workload" not in with_:
        return [(f"{path}.with", "needs expect, or a workload and service whose ClusterIP the name must resolve to")]
    if check["kind"] == "http" and with_["from"] == "host" and with_["via"] == "ClusterIP":
        return [(f"{path}.with.via", "a ClusterIP is not reachable from the host: use from: node, or NodePort")]
    if check["kind"] == "during" and with_["probe"] not in probe_ids:
        return [(f"{path}.with.probe", f"no probe {with_['probe']!r} (probes: {', '.join(probe_ids) or 'none'})")]
    if check["kind"] == "question" and "workload" not in with_:
        return [(f"{path}.with.workload", f"is required to ask {with_['ask']}")]
    if check["kind"] == "question" and with_["ask"] in ("cluster-ip", "node-port", "svc-chain", "sep-chain") \
            and "service" not in with_:
        return [(f"{path}.with.service", f"is required to ask {with_['ask']}")]
    return []


def _step_problems(path: str, step: dict[str, Any], directory: Path, root: Path, probe_ids: list[str],
                   keys: list[str], check_ids: list[str]) -> list[tuple[str, str]]:
    if "apply" in step:
        manifest = (directory / step["apply"]).resolve()
        if not manifest.is_relative_to(root.resolve()):
            return [(f"{path}.apply", f"{step['apply']} is outside the exercises folder")]
        if not manifest.is_file():
            return [(f"{path}.apply", f"file {step['apply']} not found")]
        try:
            docs = [d for d in yaml.safe_load_all(manifest.read_text()) if d]
        except yaml.YAMLError as err:
            return [(f"{path}.apply", f"{step['apply']} is not valid YAML: {err}".replace("\n", " "))]
        bad = [i for i, d in enumerate(docs) if not isinstance(d, dict) or "kind" not in d or "metadata" not in d]
        return [(f"{path}.apply", f"{step['apply']}: document {i + 1} is not a Kubernetes object") for i in bad]
    if "wait" in step:
        wait = step["wait"]
        if wait["for"].startswith("probe-") and wait.get("probe") not in probe_ids:
            known = ", ".join(probe_ids) or "none"
            return [(f"{path}.wait.probe", f"no probe {wait.get('probe')!r} (probes: {known})")]
        if wait["for"] in ("rollout", "ready") and "workload" not in wait:
            return [(f"{path}.wait.workload", f"is required to wait for {wait['for']}")]
        if wait["for"] == "check" and wait.get("check") not in check_ids:
            return [(f"{path}.wait.check", f"no check {wait.get('check')!r}")]
    if "answer" in step and step["answer"] not in keys:
        return [(f"{path}.answer", f"no question with key {step['answer']!r}")]
    return []
