"""A table of objects whose rows keep their identity: the cursor stays on the object as the cluster changes.

Watch events arrive in batches several times a second during a rollout; rebuilding a
200-row table for each would cost the UI more than the events do. :meth:`ObjectTable.show`
compares the new rows with what is on screen: when the same objects are listed in the same
order only the cells that changed are updated, otherwise the rows are laid out again and the
cursor is put back on the object it was on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import DataTable

from ..rows import Row

__all__ = ["ObjectTable"]

#: the widest a column gets (an event's message): the rest of a cell is cut with …
MAX_WIDTH = 90
#: row styles by mark; the symbols in the cells say the same without colour
_STYLES = {"bad": "red", "busy": "yellow", "ok": ""}


class ObjectTable(DataTable[Text]):
    """A DataTable of :class:`~labctl.tui.rows.Row`; posts :class:`ObjectTable.Selected` when the cursor moves.

    It never takes the focus: the view passes it the arrow keys. A DataTable drops every
    rendered line when it gains or loses the focus, so a focused table was drawn again from
    scratch each time its view came back on screen.
    """

    can_focus = False

    @dataclass
    class Selected(Message):
        """The cursor is on another row (``row`` None when the table is empty)."""

        table: ObjectTable
        row: Row | None

    def __init__(self, columns: tuple[str, ...], *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self._column_names = columns
        self._rows: list[Row] = []
        self._widths: dict[str, int] = {}
        self._styles_seen: Any = None
        self._styles_checked = True

    def on_mount(self) -> None:
        self._lay_out_columns([])

    def notify_style_update(self) -> None:
        """Keep the rendered cells until a style really changed (checked at the next paint).

        Textual applies the stylesheet again to every widget of a screen when the screen comes
        back, and a DataTable then drops all its rendered cells although no style changed: each
        switch to a view rendered its whole table again (the dearest key press with 200 pods).
        The component styles (cursor, header) are only updated after this call, hence the check
        at paint time.
        """
        Widget.notify_style_update(self)
        self._styles_checked = False
        self.refresh()

    def render_lines(self, crop: Region) -> list[Strip]:
        if not self._styles_checked:
            self._styles_checked = True
            seen = (self.styles.get_render_rules(),
                    {name: styles.get_render_rules() for name, styles in self._component_styles.items()})
            if seen != self._styles_seen:
                self._styles_seen = seen
                DataTable.notify_style_update(self)  # what a style change must do: drop every render
        return super().render_lines(crop)

    @property
    def rows_shown(self) -> list[Row]:
        """The rows on screen, in order (after the view's filter)."""
        return list(self._rows)

    @property
    def selected(self) -> Row | None:
        if not self._rows or not 0 <= self.cursor_row < len(self._rows):
            return None
        return self._rows[self.cursor_row]

    def show(self, rows: list[Row]) -> None:
        """Show ``rows``: cells updated in place when the same objects are listed in the same order.

        Column widths are set here, from the cells (a column only ever widens), never measured
        by the table when the app is idle: the same rows must draw the same table whenever the
        screen is painted.
        """
        widths = _widths(self._column_names, rows)
        grows = any(w > self._widths.get(name, 0) for name, w in zip(self._column_names, widths, strict=True))
        if not grows and [r.key for r in rows] == [r.key for r in self._rows]:
            for old, new in zip(self._rows, rows, strict=True):
                if old == new:
                    continue
                for name, before, after in zip(self._column_names, old.cells, new.cells, strict=True):
                    if before != after or old.mark != new.mark:
                        self.update_cell(new.key, name, _cell(after, new))
            self._rows = rows
            return
        selected, index = self.selected, self.cursor_row
        if grows:
            self._lay_out_columns(rows)
        else:
            self.clear()
        self._rows = rows
        for row in rows:
            self.add_row(*(_cell(c, row) for c in row.cells), key=row.key)
        if selected is not None:
            index = next((i for i, r in enumerate(rows) if r.key == selected.key), index)
        if rows:
            self.move_cursor(row=min(max(index, 0), len(rows) - 1), animate=False)
        self.post_message(self.Selected(self, self.selected))

    def _lay_out_columns(self, rows: list[Row]) -> None:
        widths = _widths(self._column_names, rows)
        self._widths = {name: max(w, self._widths.get(name, 0)) for name, w in zip(self._column_names, widths,
                                                                                  strict=True)}
        self.clear(columns=True)
        for name in self._column_names:
            self.add_column(name, key=name, width=self._widths[name])

    def select_key(self, key: str) -> bool:
        """Put the cursor on the row of ``key``; False when no such row is shown."""
        for i, row in enumerate(self._rows):
            if row.key == key:
                self.move_cursor(row=i, animate=False)
                return True
        return False

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        self.post_message(self.Selected(self, self.selected))


def _widths(names: tuple[str, ...], rows: list[Row]) -> list[int]:
    """Each column's width: its widest cell or its header, at most :data:`MAX_WIDTH`."""
    return [min(max([cell_len(name), *(cell_len(r.cells[i]) for r in rows)]), MAX_WIDTH)
            for i, name in enumerate(names)]


def _cell(text: str, row: Row) -> Text:
    style = _STYLES.get(row.mark, "")
    if row.group:
        style = f"bold {style}".strip()
    return Text(text, style=style, no_wrap=True, overflow="ellipsis")
