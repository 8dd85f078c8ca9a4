"""What the ``labctl exercise`` commands do, as library calls on an open :class:`~labctl.cluster.Lab`.

One exercise is active per lab. ``start`` gives it a fresh namespace of its own (so nothing
left from earlier work counts, and ``reset`` is "delete the namespace, set up again"),
points the lab's kubectl context at that namespace, picks the parameter values, applies the
setup and starts the during probes — all before the student acts. The state lives in the
lab (:mod:`.state`); the probes run in the control-plane node (:mod:`.supervisor`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from ..client.rest import APIClient, APIStatusError, resource_path
from ..cluster.lab import Lab
from ..errors import LabctlError
from ..kubeconfig import context_name
from ..progress import NoProgress, Progress
from .grader import grade
from .loader import Definition, load_definition
from .model import CheckSpec, Exercise, Grade, Status
from .state import ExerciseState, LabStore
from .steps import run_steps
from .supervisor import start_probes, stop_probes

__all__ = ["Active", "SelftestResult", "active", "answer", "check", "hint", "reset", "selftest", "solve", "start"]

#: the label on an exercise's namespace
EXERCISE_LABEL = "labctl.dev/exercise"
NAMESPACE_GONE_TIMEOUT = 120


@dataclass
class Active:
    """The lab's active exercise: its state and its definition built with the lab's values."""

    state: ExerciseState
    exercise: Exercise


def active(lab: Lab) -> tuple[LabStore, Active]:
    """The exercise started in ``lab``, or :class:`LabctlError` when there is none."""
    store = LabStore(lab)
    state = store.read_state()
    if state is None:
        raise LabctlError(f"no exercise is started in lab {lab.name!r}",
                          hint="`labctl exercise list` shows them; `labctl exercise start ID` starts one")
    return store, Active(state, load_definition(state.exercise).build(state.parameters))


async def start(lab: Lab, exercise_id: str, progress: Progress = NoProgress()) -> Active:
    """Start ``exercise_id`` in ``lab``, ending the active one: new parameter values, a fresh
    namespace, the kubectl context pointed at it, the setup applied, the probes watching."""
    definition = load_definition(exercise_id)
    store = LabStore(lab)
    async with _step(progress, f"Starting exercise {exercise_id}"):
        return await _start(lab, store, definition, progress)


async def _start(lab: Lab, store: LabStore, definition: Definition, progress: Progress) -> Active:
    exercise_id = definition.id
    previous = store.read_state()
    await stop_probes(store)
    state = ExerciseState.new(exercise_id, "", definition.choose_parameters())
    exercise = definition.build(state.parameters)
    state.namespace = exercise.namespace
    async with lab.api() as api:
        if previous is not None and previous.namespace != exercise.namespace:
            await _delete_namespace(api, previous.namespace)
        await _fresh_namespace(api, exercise)
    await _point_context(lab, exercise.namespace)
    state.started_at = time.time()
    await store.write_state(state)
    await _set_up(lab, store, exercise, state, progress)
    return Active(state, exercise)


async def reset(lab: Lab, progress: Progress = NoProgress()) -> Active:
    """Back to the state right after ``start``: same values, a fresh namespace, probes restarted.
    Answers are cleared (they were about objects that are gone); hints already seen stay counted."""
    store, current = active(lab)
    async with _step(progress, f"Resetting exercise {current.exercise.id}"):
        await stop_probes(store)
        async with lab.api() as api:
            await _fresh_namespace(api, current.exercise)
        await _point_context(lab, current.exercise.namespace)
        current.state.started_at, current.state.answers = time.time(), {}
        await store.write_state(current.state)
        await _set_up(lab, store, current.exercise, current.state, progress)
    return current


async def _set_up(lab: Lab, store: LabStore, exercise: Exercise, state: ExerciseState, progress: Progress) -> None:
    await run_steps(lab, store, exercise, state, exercise.setup, progress)
    if exercise.probes:
        progress.update(f"starting {len(exercise.probes)} during probe(s)")
        await start_probes(store, exercise)


async def solve(lab: Lab, exercise_id: str, progress: Progress = NoProgress()) -> Active:
    """Apply the reference solution (starting the exercise first unless it is the active one)."""
    store = LabStore(lab)
    state = store.read_state()
    if state is None or state.exercise != exercise_id:
        current = await start(lab, exercise_id, progress)
    else:
        current = Active(state, load_definition(exercise_id).build(state.parameters))
    async with _step(progress, f"Applying the reference solution of {exercise_id}"):
        await run_steps(lab, store, current.exercise, current.state, current.exercise.solution, progress)
    return current


@asynccontextmanager
async def _step(progress: Progress, message: str) -> AsyncIterator[None]:
    """A step of ``progress`` that ends ✗ when its body raises."""
    progress.start(message)
    try:
        yield
    except BaseException:
        progress.end(False)
        raise
    progress.end(True)


async def check(lab: Lab) -> Grade:
    """Grade the active exercise now."""
    store, current = active(lab)
    return await grade(lab, store, current.exercise, current.state)


async def hint(lab: Lab, check_id: str | None = None) -> tuple[CheckSpec, int, str]:
    """Release the next hint tier of ``check_id`` (default: the first check that does not pass)."""
    store, current = active(lab)
    checks = current.exercise.checks
    if check_id is None:
        result = await grade(lab, store, current.exercise, current.state)
        failing = [r.id for r in result.checks if r.status is not Status.PASS]
        with_hints = [c for c in checks if c.id in failing and c.hints] or [c for c in checks if c.hints]
        if not with_hints:
            raise LabctlError("this exercise has no hints")
        spec = with_hints[0]
    else:
        named = [c for c in checks if c.id == check_id]
        if not named:
            raise LabctlError(f"no check {check_id!r}", hint=f"checks: {', '.join(c.id for c in checks)}")
        spec = named[0]
    if not spec.hints:
        raise LabctlError(f"check {spec.id!r} has no hints")
    tier = min(current.state.hints.get(spec.id, 0) + 1, len(spec.hints))
    current.state.hints[spec.id] = tier
    await store.write_state(current.state)
    return spec, tier, spec.hints[tier - 1]


async def answer(lab: Lab, key: str, value: str) -> CheckSpec:
    """Record the student's answer to question ``key`` (checked against the cluster by ``check``)."""
    store, current = active(lab)
    spec = next((c for c in current.exercise.checks if c.kind == "question" and c.params.get("key") == key), None)
    if spec is None:
        keys = [c.params["key"] for c in current.exercise.checks if c.kind == "question"]
        raise LabctlError(f"exercise {current.exercise.id} asks no question {key!r}",
                          hint=f"its questions: {', '.join(keys) or 'none'}")
    current.state.answers[key] = value.strip()
    await store.write_state(current.state)
    return spec


@dataclass
class SelftestResult:
    """One exercise's selftest: the do-nothing attempt must fail, the reference solution pass."""

    exercise: str
    untouched: Grade | None = None
    solved: Grade | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


async def selftest(lab: Lab, exercise_ids: list[str], progress: Progress = NoProgress()) -> list[SelftestResult]:
    """Prove each exercise: started and untouched it fails (without grader errors), solved it passes."""
    results = []
    for exercise_id in exercise_ids:
        result = SelftestResult(exercise_id)
        try:
            await start(lab, exercise_id, progress)
            result.untouched = await check(lab)
            if result.untouched.passed:
                result.problems.append("the do-nothing attempt passes")
            result.problems += [f"right after start, check {c.id} is an error: {c.message}"
                                for c in result.untouched.checks if c.status is Status.ERROR]
            await solve(lab, exercise_id, progress)
            result.solved = await check(lab)
            result.problems += [f"after the reference solution, check {c.id} is {c.status.value}: {c.message}"
                                for c in result.solved.checks if c.status is not Status.PASS]
        except LabctlError as err:
            result.problems.append(str(err))
        results.append(result)
    return results


async def _fresh_namespace(api: APIClient, exercise: Exercise) -> None:
    await _delete_namespace(api, exercise.namespace)
    await api.create(resource_path("namespaces"), {
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": exercise.namespace, "labels": {EXERCISE_LABEL: exercise.id}}})


async def _delete_namespace(api: APIClient, namespace: str) -> None:
    """Delete a namespace and wait until it and its pods are gone (NodePorts are free again)."""
    path = resource_path("namespaces", name=namespace)
    try:
        await api.delete(path)
    except APIStatusError as err:
        if err.code == 404:
            return
        raise
    deadline = time.monotonic() + NAMESPACE_GONE_TIMEOUT
    while time.monotonic() < deadline:
        try:
            await api.get(path)
        except APIStatusError as err:
            if err.code == 404:
                return
            raise
        await asyncio.sleep(0.5)
    raise LabctlError(f"namespace {namespace} was not deleted within {NAMESPACE_GONE_TIMEOUT}s")


async def _point_context(lab: Lab, namespace: str) -> None:
    """``kubectl`` with the lab's context now works in the exercise's namespace (like ``kubens``)."""
    kubectl = lab.kubectl()
    proc = await asyncio.to_thread(kubectl.run, "config", "set-context", context_name(lab.name),
                                   f"--namespace={namespace}", check=False)
    if proc.returncode != 0:
        raise LabctlError(f"failed to point context {context_name(lab.name)} at namespace {namespace}: "
                          f"{proc.stderr.strip()}")
