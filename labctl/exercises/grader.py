"""Grading: every check of the started exercise against one snapshot of the lab, into a :class:`Grade`.

The grader never lets its own trouble count against the student: when the lab is stopped or
its API server does not answer, every check is *error*; when one check cannot judge (a node
is down, a probe is gone), that check is *error* and the others still run. All checks of one
grading read the same snapshot, so they agree with each other, and the same lab state gives
the same verdicts every time.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import aiohttp

from ..client.rest import APIStatusError
from ..cluster.lab import Lab
from ..errors import LabctlError
from ..kube.meta import timestamp
from .checks import KINDS, CannotJudge, Context, Unmet, Verdict
from .model import CheckResult, CheckSpec, Exercise, Grade, Status
from .relations import take_snapshot
from .state import ExerciseState, LabStore

__all__ = ["grade"]

#: what the grader's own trouble looks like (anything else is a bug in a check and propagates)
GRADER_TROUBLE = (CannotJudge, LabctlError, APIStatusError, aiohttp.ClientError, OSError, TimeoutError)


async def grade(lab: Lab, store: LabStore, exercise: Exercise, state: ExerciseState) -> Grade:
    started = time.monotonic()
    try:
        api = lab.api()
    except LabctlError as err:
        return _finish(lab, exercise, state, _all_errors(exercise, f"the lab cannot be graded: {err}"), started)
    async with api:
        try:
            snapshot = await asyncio.wait_for(take_snapshot(api, exercise.namespace), 20)
        except GRADER_TROUBLE as err:
            return _finish(lab, exercise, state,
                           _all_errors(exercise, f"the lab's API server did not answer: {_text(err)}"), started)
        ctx = Context(lab, store, exercise, state, api, snapshot)
        results = await asyncio.gather(*(_run(ctx, spec) for spec in exercise.checks))
    return _finish(lab, exercise, state, list(results), started)


async def _run(ctx: Context, spec: CheckSpec) -> CheckResult:
    started = time.monotonic()
    try:
        verdict = await KINDS[spec.kind](ctx, spec)
    except Unmet as unmet:
        verdict = Verdict(Status.FAIL, unmet.message, unmet.evidence)
    except GRADER_TROUBLE as err:
        verdict = Verdict(Status.ERROR, f"the grader could not judge: {_text(err)}")
    message = verdict.message
    if verdict.status is Status.FAIL and spec.message:
        message = spec.message.replace("{detail}", verdict.message)
    return CheckResult(spec.id, spec.title, spec.kind, spec.weight, verdict.status, message, verdict.evidence,
                       round(time.monotonic() - started, 3))


def _text(err: BaseException) -> str:
    return str(err) or type(err).__name__


def _all_errors(exercise: Exercise, message: str) -> list[CheckResult]:
    return [CheckResult(c.id, c.title, c.kind, c.weight, Status.ERROR, message) for c in exercise.checks]


def _finish(lab: Lab, exercise: Exercise, state: ExerciseState, results: list[CheckResult], started: float) -> Grade:
    return Grade(exercise.id, exercise.title, lab.name, exercise.namespace,
                 timestamp(dt.datetime.fromtimestamp(state.started_at, dt.UTC)), timestamp(), results,
                 dict(state.hints), round(time.monotonic() - started, 3))
