"""Running ``setup`` and ``solution`` steps in a lab: apply, kubectl, wait, answer, deletePod.

Steps act as a student would: through the real kubectl, in the exercise's namespace, with
the lab's parameter values substituted. A step that does not complete raises
:class:`~labctl.errors.LabctlError` naming the step, so a broken exercise says where.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from typing import Any

from ..client.rest import resource_path
from ..cluster.lab import Lab
from ..errors import LabctlError
from ..progress import NoProgress, Progress
from .checks import Context
from .checks.during import describe_event
from .checks.questions import expected_answers
from .grader import grade
from .loader import read_manifest
from .model import Exercise, Status, Step, WorkloadRef
from .relations import find_workload, pods_of, serving_pods, take_snapshot
from .state import ExerciseState, LabStore
from .supervisor import read_probe

__all__ = ["run_steps"]

DEFAULT_TIMEOUT = 240


async def run_steps(lab: Lab, store: LabStore, exercise: Exercise, state: ExerciseState, steps: tuple[Step, ...],
                    progress: Progress = NoProgress()) -> None:
    for i, step in enumerate(steps, 1):
        progress.update(f"step {i}/{len(steps)}: {step.action} {_short(step.value)}")
        if step.action == "apply":
            docs = read_manifest(exercise, step.value)
            await _kubectl(lab, exercise, ["apply", "-f", "-"],
                           json.dumps({"apiVersion": "v1", "kind": "List", "items": docs}))
        elif step.action == "kubectl":
            await _kubectl(lab, exercise, list(step.value))
        elif step.action == "wait":
            await _wait(lab, store, exercise, step.value)
        elif step.action == "answer":
            await _answer(lab, store, exercise, state, step.value)
        elif step.action == "deletePod":
            await _delete_pod(lab, exercise, WorkloadRef.parse(step.value))


def _short(value: Any) -> str:
    text = " ".join(value) if isinstance(value, list) else json.dumps(value) if isinstance(value, dict) else str(value)
    return text[:70]


async def _kubectl(lab: Lab, exercise: Exercise, args: list[str], stdin: str | None = None,
                   timeout: float = DEFAULT_TIMEOUT) -> str:
    kubectl = lab.kubectl()
    proc = await asyncio.to_thread(kubectl.run, "-n", exercise.namespace, *args, input=stdin, check=False,
                                   timeout=timeout + 20)
    if proc.returncode != 0:
        raise LabctlError(f"exercise {exercise.id}: kubectl {' '.join(args)} failed: "
                          f"{(proc.stderr or proc.stdout).strip()[-500:]}")
    return proc.stdout


async def _wait(lab: Lab, store: LabStore, exercise: Exercise, wait: dict[str, Any]) -> None:
    timeout = wait.get("timeout", DEFAULT_TIMEOUT)
    what = wait["for"]
    if what == "rollout":
        ref = WorkloadRef.parse(wait["workload"])
        name = ref.name or await _only_workload(lab, exercise, ref)
        await _kubectl(lab, exercise, ["rollout", "status", f"{ref.kind.lower()}/{name}", f"--timeout={timeout}s"],
                       timeout=timeout)
        return
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        if what == "ready":
            last = await _all_ready(lab, exercise, WorkloadRef.parse(wait["workload"]))
        elif what == "check":
            last = await _check_passes(lab, store, exercise, wait["check"])
            if last is True:
                return
        else:
            result = read_probe(store, wait["probe"]) or {}
            last = {k: result.get(k) for k in ("state", "requests", "failed")}
            if what == "probe-done":
                if result.get("state") == "done":
                    return
                if result.get("state") in ("expired", "failed", "stopped"):
                    raise LabctlError(f"exercise {exercise.id}: probe {wait['probe']} ended {result['state']}")
                failed = [e for e in result.get("events") or [] if e.get("outcome") in ("failed", "superseded")]
                if failed:
                    raise LabctlError(f"exercise {exercise.id}: probe {wait['probe']} saw the event fail: "
                                      f"{describe_event(failed[-1])}")
                last = None
            else:
                last = _answering(result)
        if last:
            return
        await asyncio.sleep(0.5)
    raise LabctlError(f"exercise {exercise.id}: timed out after {timeout}s waiting for {what} ({last})")


def _answering(result: dict[str, Any]) -> bool:
    """The probe has had only answers for the last two whole seconds (the way in works)."""
    seconds = result.get("seconds") or []
    recent = [s for s in seconds if s[0] >= time.time() - 3.5][-2:]
    return len(recent) == 2 and all(s[1] > 0 and s[2] == 0 for s in recent)


async def _only_workload(lab: Lab, exercise: Exercise, ref: WorkloadRef) -> str:
    async with lab.api() as api:
        found, why = find_workload(await take_snapshot(api, exercise.namespace), ref)
    if found is None:
        raise LabctlError(f"exercise {exercise.id}: {why}")
    return str(found["metadata"]["name"])


async def _all_ready(lab: Lab, exercise: Exercise, ref: WorkloadRef) -> bool:
    async with lab.api() as api:
        snap = await take_snapshot(api, exercise.namespace)
    found, _ = find_workload(snap, ref)
    if found is None:
        return False
    want = (found.get("spec") or {}).get("replicas", 1)
    return len(serving_pods(pods_of(snap, found, ref.kind))) == want


async def _check_passes(lab: Lab, store: LabStore, exercise: Exercise, check_id: str) -> bool | str:
    """True once the check passes; else what it says (for the timeout's message)."""
    spec = next(c for c in exercise.checks if c.id == check_id)
    one = dataclasses.replace(exercise, checks=(spec,))
    state = store.read_state()
    if state is None:
        raise LabctlError(f"exercise {exercise.id} is not started")
    result = (await grade(lab, store, one, state)).checks[0]
    return True if result.status is Status.PASS else f"{result.status.value}: {result.message}"


async def _delete_pod(lab: Lab, exercise: Exercise, ref: WorkloadRef) -> None:
    async with lab.api() as api:
        snap = await take_snapshot(api, exercise.namespace)
        found, why = find_workload(snap, ref)
        if found is None:
            raise LabctlError(f"exercise {exercise.id}: {why}")
        pods = serving_pods(pods_of(snap, found, ref.kind))
        if not pods:
            raise LabctlError(f"exercise {exercise.id}: {ref.describe()} has no serving pod to delete")
        await api.delete(resource_path("pods", exercise.namespace, pods[0]["metadata"]["name"]))


async def _answer(lab: Lab, store: LabStore, exercise: Exercise, state: ExerciseState, key: str) -> None:
    check = next(c for c in exercise.checks if c.kind == "question" and c.params.get("key") == key)
    async with lab.api() as api:
        ctx = Context(lab, store, exercise, state, api, await take_snapshot(api, exercise.namespace))
        right = sorted(await expected_answers(ctx, check.params))
    if not right:
        raise LabctlError(f"exercise {exercise.id}: no right answer to {key} exists yet")
    state.answers[key] = right[0]
    await store.write_state(state)
