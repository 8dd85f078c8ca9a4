"""What a student's keys do to a view's table, on the recorded lab (Pilot, headless)."""

from __future__ import annotations

import asyncio

from pilot_wait import until
from tui_recording import recorded_app

from labctl.tui.widgets.object_table import ObjectTable

SIZE = (160, 48)


def test_filter_narrows_the_rows_to_the_word_typed_and_escape_brings_them_back() -> None:
    async def main() -> None:
        app = recorded_app("pods")
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(ObjectTable)
            await until(pilot, lambda: sum(not r.group for r in table.rows_shown) > 2, "the pods", 10, 0.02)
            everything = table.rows_shown
            name = next(r for r in reversed(everything) if not r.group).cells[0].strip()  # a pod's

            await pilot.press("slash", *name)
            # the rows follow once the typing pauses
            await until(pilot, lambda: [r.cells[0].strip() for r in table.rows_shown if not r.group] == [name],
                        "the filtered rows", 10, 0.02)
            assert 1 < len(table.rows_shown) < len(everything)  # the pod under its node's heading

            await pilot.press("escape")
            await until(pilot, lambda: table.rows_shown == everything, "all the rows again", 10, 0.02)

    asyncio.run(main())


def test_a_table_coming_back_to_the_screen_is_drawn_in_the_current_theme() -> None:
    """Its rendered cells outlive a switch of view, never a change of style."""
    async def main() -> None:
        app = recorded_app("pods")
        async with app.run_test(size=SIZE) as pilot:
            table = app.screen.query_one(ObjectTable)
            await until(pilot, lambda: len(table.rows_shown) > 2, "the pods", 10, 0.02)
            dark = table.render_line(1)

            await pilot.press("3", "2")
            await pilot.pause()
            assert table.render_line(1) == dark

            await pilot.press("3")
            app.theme = "textual-light"
            await pilot.press("2")
            await pilot.pause()
            light = table.render_line(1)
            assert light.text == dark.text
            assert [s.style for s in light] != [s.style for s in dark]

    asyncio.run(main())
