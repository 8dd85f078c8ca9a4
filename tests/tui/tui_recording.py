"""The recorded lab every TUI test without a real lab draws: ``data/lab.json``.

It was recorded from a real 3-node lab (``python -m labctl.tui.recorder --name LAB --traffic
rollout/ex2-svc-external --seconds 45 OUT``) while ``kubectl set image`` rolled the class
exercise's Deployment from web v1 to v2 under 10 requests a second; the exercise
``class-rolling-update`` was started and passed. Replayed at the recording's clock, it draws
the same screens every time.
"""

from __future__ import annotations

from pathlib import Path

from labctl.tui.app import LabApp
from labctl.tui.recorded import RecordedSource, load_recording

RECORDING = Path(__file__).parent / "data" / "lab.json"


def recorded_app(view: str = "overview", node: str | None = None) -> LabApp:
    return LabApp(RecordedSource(load_recording(RECORDING)), view, node)
