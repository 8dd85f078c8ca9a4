"""The exercise at hand: its task, its checks turning ✓ live (✗ failed, ! the grader could not judge)
with what the grader saw, hints, "check now" and the score.

The grader (:mod:`labctl.exercises.grader`, what ``labctl exercise check`` runs) grades
again every few seconds while this view is visible; ``c`` grades now, ``h`` releases the
selected check's next hint (counted in the result, as ``labctl exercise hint`` does).
"""

from __future__ import annotations

import json
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Markdown, Static

from ...exercises.model import Status
from ..rows import Row
from ..state import ExerciseReport
from ..widgets.command_bar import CommandBar
from ..widgets.object_table import ObjectTable
from .base import TROUBLE, ViewScreen

__all__ = ["ExerciseScreen", "check_rows"]

CHECK_COLUMNS = ("", "CHECK", "WEIGHT")
MARKS = {"pass": ("✓ pass", "ok"), "fail": ("✗ fail", "bad"), "error": ("! error", "busy")}


def check_rows(report: ExerciseReport) -> list[Row]:
    if report.exercise is None:
        return []
    results = {c.id: c for c in (report.grade.checks if report.grade else [])}
    rows = []
    for spec in report.exercise.checks:
        result = results.get(spec.id)
        mark, style = MARKS[result.status.value] if result else ("… not graded", "")
        rows.append(Row(spec.id, (mark, spec.title, str(spec.weight)), mark=style))
    return rows


class ExerciseScreen(ViewScreen):
    VIEW = "exercise"
    TOPICS = frozenset({"exercise"})
    ABOUT = ("the active exercise: its task, its checks graded live with what the grader saw, hints and the "
             "score.")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "check", "check now"),
        Binding("h", "hint", "hint"),
    ]

    def compose_body(self) -> ComposeResult:
        yield Static(id="exercise-title", markup=False)
        yield Static(id="exercise-score", markup=False)
        with Horizontal(id="exercise-panes"):
            with Vertical(id="exercise-left"):
                yield ObjectTable(CHECK_COLUMNS, id="exercise-checks")
                with VerticalScroll(id="exercise-detail-pane"):
                    yield Static(id="exercise-detail", markup=False)
            with VerticalScroll(id="exercise-task-pane"):
                yield Markdown(id="exercise-task")

    def idle_command(self) -> str:
        return "labctl exercise status"

    def draw(self, topics: frozenset[str]) -> None:
        report = self.state.exercise
        title, score = self.query_one("#exercise-title", Static), self.query_one("#exercise-score", Static)
        if report is None:
            title.update("Grading…")
            return
        if report.exercise is None:
            title.update(report.error or "No exercise is started.")
            score.update("`labctl exercise list` shows the exercises; `labctl exercise start ID` starts one.")
            return
        ex = report.exercise
        title.update(f"{ex.id} — {ex.title} ({ex.difficulty}, ~{ex.minutes} min, namespace {ex.namespace})")
        grade = report.grade
        if grade is None:
            score.update("not graded yet — c grades now")
        else:
            verdict = "PASSED ✓" if grade.passed else "not passed yet"
            counts = " ".join(f"{MARKS[s.value][0].split()[0]}{grade.count(s)}" for s in Status)
            score.update(f"score {grade.score}/{grade.max_score} — {verdict} · {counts} · graded "
                         f"{grade.checked_at} · c check now · h hint")
        self.query_one("#exercise-checks", ObjectTable).show(check_rows(report))
        task = self.query_one("#exercise-task", Markdown)
        if getattr(task, "_shown_task", None) != ex.task:
            task._shown_task = ex.task  # type: ignore[attr-defined]
            task.update(ex.task)
        self._draw_detail()

    def _draw_detail(self) -> None:
        report = self.state.exercise
        row = self.query_one("#exercise-checks", ObjectTable).selected
        out = self.query_one("#exercise-detail", Static)
        if report is None or report.exercise is None or row is None:
            out.update("")
            return
        spec = next(c for c in report.exercise.checks if c.id == row.key)
        result = next((c for c in (report.grade.checks if report.grade else []) if c.id == spec.id), None)
        lines = [f"{spec.title} (weight {spec.weight})"]
        if result is not None:
            lines.append(f"{MARKS[result.status.value][0]}: {result.message}")
            if result.evidence:
                evidence = json.dumps(result.evidence, sort_keys=True, default=str)
                lines.append(f"evidence: {evidence[:600]}{'…' if len(evidence) > 600 else ''}")
        shown = report.hints.get(spec.id, [])
        for i, text in enumerate(shown, 1):
            lines.append(f"hint {i}/{len(spec.hints)}: {text}")
        if len(shown) < len(spec.hints):
            lines.append(f"(h: hint {len(shown) + 1} of {len(spec.hints)})")
        out.update("\n".join(lines))

    def on_object_table_selected(self, message: ObjectTable.Selected) -> None:
        self._draw_detail()

    def action_check(self) -> None:
        self._ask("labctl exercise check", None)

    def action_hint(self) -> None:
        row = self.query_one("#exercise-checks", ObjectTable).selected
        if row is not None:
            self._ask(f"labctl exercise hint {row.key}", row.key)

    @work(exclusive=True, group="grade")
    async def _ask(self, command: str, hint_for: str | None) -> None:
        bar = self.query_one(CommandBar)
        bar.show_action(command, "grading…")
        try:
            report = await (self.source.hint(hint_for) if hint_for else self.source.check())
        except TROUBLE as err:
            bar.show_action(command, str(err), ok=False)
            return
        self.lab_app.exercise_read(report)
        grade = report.grade
        if hint_for is not None and report.hints.get(hint_for):
            shown = report.hints[hint_for]
            bar.show_action(command, f"hint {len(shown)}: {shown[-1]}")
            return
        bar.show_action(command, f"{grade.score}/{grade.max_score}" if grade else report.error or "done",
                        ok=grade.passed if grade else None)
