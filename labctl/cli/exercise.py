"""``labctl exercise …``: graded exercises. Each command parses its options and calls
:mod:`labctl.exercises.session`; printing is all that happens here."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import typer
from rich.console import Group

from ..errors import LabctlError
from .status import Status

exercise_app = typer.Typer(help="Graded exercises: start one, work in the lab, check it.", no_args_is_help=True)

NameOption = typer.Option(None, "--name", "-n", help="the lab's name (default: lab, or the only lab there is)")
MARKS = {"pass": "[green]✓ pass[/green]", "fail": "[red]✗ fail[/red]", "error": "[yellow]! error[/yellow]"}


def _consoles():
    from .main import err, out  # one pair of consoles for the whole CLI

    return out, err


def _lab(name: str | None):
    from ..cluster import Lab

    return Lab.open(name)


@exercise_app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help="machine-readable"),
          name: str | None = typer.Option(None, "--name", "-n", help="also mark the exercise active in this lab")
          ) -> None:
    """List the exercises: id, title, topics, difficulty, minutes."""
    from ..exercises.loader import list_definitions
    from ..exercises.state import LabStore

    out, _ = _consoles()
    definitions = list_definitions()
    current = None
    if name is not None:
        with _lab(name) as lab:
            state = LabStore(lab).read_state()
            current = state.exercise if state else None
    if as_json:
        rows = [{"id": d.id, "title": d.title, "topics": d.raw["topics"], "difficulty": d.raw["difficulty"],
                 "minutes": d.raw["minutes"], "checks": len(d.raw["checks"]),
                 "maxScore": sum(c.get("weight", 1) for c in d.raw["checks"]), "active": d.id == current}
                for d in definitions]
        sys.stdout.write(json.dumps(rows, indent=1) + "\n")
        return
    from rich.table import Table

    table = Table("", "ID", "TITLE", "TOPICS", "LEVEL", "MIN", box=None)
    for d in definitions:
        table.add_row("*" if d.id == current else "", d.id, d.title, ", ".join(d.raw["topics"]),
                      d.raw["difficulty"], str(d.raw["minutes"]))
    out.print(table)


@exercise_app.command()
def start(exercise_id: str = typer.Argument(..., metavar="ID"), name: str | None = NameOption) -> None:
    """Start an exercise: a fresh namespace, its setup, its during probes; prints the task."""
    from rich.markdown import Markdown  # markdown-it and pygments: only the commands that print Markdown

    from ..exercises import session

    out, err = _consoles()
    with _lab(name) as lab:
        current = asyncio.run(session.start(lab, exercise_id, Status(err)))
    out.print(Markdown(current.exercise.task))
    out.print(f"\nYou work in namespace [bold]{current.exercise.namespace}[/bold] (kubectl's context "
              f"labctl-{lab.name} points there now). `labctl exercise check` grades; `labctl exercise hint` helps.",
              highlight=False)


@exercise_app.command()
def check(as_json: bool = typer.Option(False, "--json", help="print the result as JSON"),
          junit: Path | None = typer.Option(None, "--junit", help="also write a JUnit XML report to FILE"),
          name: str | None = NameOption) -> None:
    """Grade the active exercise now; exit 0 when every check passes."""
    from ..exercises import session
    from ..exercises.results import to_json, to_junit

    out, _ = _consoles()
    with _lab(name) as lab:
        grade = asyncio.run(session.check(lab))
    if junit is not None:
        junit.write_text(to_junit(grade))
    if as_json:
        sys.stdout.write(json.dumps(to_json(grade), indent=1) + "\n")
    else:
        out.print(_grade_view(grade))
    raise typer.Exit(0 if grade.passed else 1)


def _grade_view(grade) -> Group:
    from rich.table import Table

    table = Table("", "CHECK", "WEIGHT", "WHAT THE GRADER SAW", box=None, show_lines=False)
    for c in grade.checks:
        table.add_row(MARKS[c.status.value], c.title, str(c.weight), c.message)
    verdict = "[green]passed[/green]" if grade.passed else "[red]not passed yet[/red]"
    hints = sum(grade.hints_used.values())
    return Group(table, f"\n[bold]{grade.exercise}[/bold]: {grade.score}/{grade.max_score} — {verdict}"
                        + (f" ({hints} hint{'s' if hints != 1 else ''} used)" if hints else ""))


@exercise_app.command()
def status(interval: float = typer.Option(2.0, "--interval", help="seconds between gradings"),
           once: bool = typer.Option(False, "--once", help="grade once and exit"),
           name: str | None = NameOption) -> None:
    """The checks, live: graded again every few seconds until Ctrl-C."""
    from rich.live import Live

    from ..exercises import session

    out, _ = _consoles()
    with _lab(name) as lab:
        grade = asyncio.run(session.check(lab))
        if once:
            out.print(_grade_view(grade))
            return
        with Live(_grade_view(grade), console=out, refresh_per_second=4) as live:
            try:
                while True:
                    time.sleep(interval)
                    grade = asyncio.run(session.check(lab))
                    live.update(Group(_grade_view(grade), f"[dim]graded {grade.checked_at} · Ctrl-C to stop[/dim]"))
            except KeyboardInterrupt:
                pass


@exercise_app.command()
def hint(check_id: str | None = typer.Argument(None, metavar="[CHECK]", help="default: the first failing check"),
         name: str | None = NameOption) -> None:
    """Show the next hint (tiers: a nudge first, the answer last); hints used are in the result."""
    from rich.markdown import Markdown

    from ..exercises import session

    out, _ = _consoles()
    with _lab(name) as lab:
        spec, tier, text = asyncio.run(session.hint(lab, check_id))
    out.print(f"[bold]{spec.title}[/bold] — hint {tier}/{len(spec.hints)}")
    out.print(Markdown(text))


@exercise_app.command()
def answer(key: str = typer.Argument(...), value: str = typer.Argument(...), name: str | None = NameOption) -> None:
    """Answer a question of the exercise; `check` compares it with the live cluster."""
    from ..exercises import session

    out, _ = _consoles()
    with _lab(name) as lab:
        spec = asyncio.run(session.answer(lab, key, value))
    out.print(f"Answer to [bold]{key}[/bold] ({spec.title}) recorded; `labctl exercise check` grades it.")


@exercise_app.command()
def solve(exercise_id: str = typer.Argument(..., metavar="ID"), name: str | None = NameOption) -> None:
    """Apply the reference solution (for teachers; starts the exercise when it is not the active one)."""
    from ..exercises import session

    _, err = _consoles()
    with _lab(name) as lab:
        asyncio.run(session.solve(lab, exercise_id, Status(err)))
    err.print("Solution applied; `labctl exercise check` grades it.")


@exercise_app.command()
def reset(name: str | None = NameOption) -> None:
    """Back to the state right after start: a fresh namespace, the setup again, probes restarted."""
    from ..exercises import session

    _, err = _consoles()
    with _lab(name) as lab:
        current = asyncio.run(session.reset(lab, Status(err)))
    err.print(f"Exercise {current.exercise.id} reset: namespace {current.exercise.namespace} is as start left it.")


@exercise_app.command()
def selftest(exercise_ids: list[str] | None = typer.Argument(None, metavar="[ID...]", help="default: every exercise"),
             name: str | None = NameOption) -> None:
    """For each exercise: right after start the do-nothing attempt fails, the reference solution passes."""
    from ..exercises import session
    from ..exercises.loader import list_definitions

    out, err = _consoles()
    ids = exercise_ids or [d.id for d in list_definitions()]
    with _lab(name) as lab:
        results = asyncio.run(session.selftest(lab, ids, Status(err)))
    from rich.table import Table

    table = Table("", "EXERCISE", "DO NOTHING", "SOLVED", "PROBLEMS", box=None)
    for r in results:
        untouched = f"{r.untouched.score}/{r.untouched.max_score}" if r.untouched else "-"
        solved = f"{r.solved.score}/{r.solved.max_score}" if r.solved else "-"
        table.add_row(MARKS["pass" if r.ok else "fail"], r.exercise, untouched, solved, "\n".join(r.problems))
    out.print(table)
    if not all(r.ok for r in results):
        raise LabctlError(f"selftest failed for {', '.join(r.exercise for r in results if not r.ok)}")
