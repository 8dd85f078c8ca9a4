"""``labctl tui``: the terminal UI. Parses its options, opens the lab and runs :mod:`labctl.tui`
(imported here, lazily: the other commands never load Textual). ``main.py`` registers it."""

from __future__ import annotations

from pathlib import Path

import typer

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``tui`` to the CLI."""
    app.command("tui")(tui)


def tui(name: str | None = typer.Option(None, "--name", "-n", help="the lab's name (default: lab, or the only lab)"),
        view: str = typer.Option("overview", "--view", help="the view to open: overview, pods, workloads, services, "
                                 "network, traffic, events, exercise"),
        node: str | None = typer.Option(None, "--node", help="the node the Network and Pods views start at"),
        replay: Path | None = typer.Option(None, "--replay", metavar="FILE",
                                           help="show a recording (python -m labctl.tui.recorder) instead of a lab")
        ) -> None:
    """A live dashboard of the lab: nodes, pods, rollouts, Services, the network, traffic, the exercise."""
    from ..tui import VIEWS

    if view not in VIEWS:
        raise typer.BadParameter(f"{view!r} is not one of {', '.join(VIEWS)}", param_hint="--view")
    from ..tui.app import LabApp
    from ..tui.source import StateSource

    source: StateSource
    if replay is not None:
        from ..tui.recorded import RecordedSource, load_recording

        source = RecordedSource(load_recording(replay))
    else:
        from ..cluster import Lab
        from ..tui.live import LiveSource

        source = LiveSource(Lab.open(name))
    LabApp(source, view, node).run()
