"""Every view at 80×24 and 160×48, from the recorded lab: the SVGs under ``__snapshots__/``.

Update them (after a deliberate change) with ``pytest tests/tui/test_snapshots.py --snapshot-update``
and look at the report before committing.
"""

from __future__ import annotations

import pytest
from tui_recording import recorded_app

from labctl.tui import VIEWS

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


async def settle(pilot) -> None:
    """Let the views finish what they draw after the first frame: the replayed watch events, then the
    tables' column widths and the Markdown task, which Textual lays out when the app is idle."""
    for _ in range(3):
        await pilot.pause()
        await pilot.wait_for_scheduled_animations()
    await pilot.pause(0.2)


@pytest.mark.parametrize("size", SIZES, ids=list(SIZES))
@pytest.mark.parametrize("view", VIEWS)
def test_view(snap_compare, view: str, size: str) -> None:
    assert snap_compare(recorded_app(view), terminal_size=SIZES[size], run_before=settle)


def test_help_lists_the_keys_of_the_view(snap_compare) -> None:
    assert snap_compare(recorded_app("workloads"), press=["question_mark"], terminal_size=(80, 24),
                        run_before=settle)
