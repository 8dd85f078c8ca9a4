"""A rollout drawn as old and new pods over time, between the strategy's bounds.

One column per change the state saw (newest on the right); each column stacks the
Deployment's pods: ``█`` new and ready, ``▓`` new and starting, ``▒`` old and ready, ``░``
old and not ready. The ``┄`` line is the most pods the rollout may run (replicas + maxSurge);
the right-hand labels give it and the fewest that must stay available (replicas −
maxUnavailable), so a student sees the controller keep within them. Glyphs, not colours,
tell the parts apart.
"""

from __future__ import annotations

from textual.widgets import Static

from ..rollout import Bounds, RolloutSample

__all__ = ["RolloutChart", "draw_rollout"]

NEW_READY, NEW_STARTING, OLD_READY, OLD_NOT_READY, LIMIT = "█", "▓", "▒", "░", "┄"
LEGEND = f"{NEW_READY} new ready  {NEW_STARTING} new starting  {OLD_READY} old ready  {OLD_NOT_READY} old not ready"
#: room on the right for the bounds' labels
LABEL_WIDTH = 30


def draw_rollout(samples: list[RolloutSample], bounds: Bounds, width: int, height: int) -> list[str]:
    """The chart's lines (``height`` rows of stacked pods, a baseline and the legend) in ``width`` columns."""
    top = max([bounds.max_total, *(s.new_total + s.old_total for s in samples)] or [1])
    rows = max(min(height - 2, top), 1)
    per_row = -(-top // rows)  # pods per row, rounded up
    columns = max(width - LABEL_WIDTH - 2, 1)
    cell = 2 if 2 * len(samples) <= columns else 1  # a wider column per change while there is room
    shown = samples[-(columns // cell):]
    lines = []
    for level in range(rows, 0, -1):
        pods_at = level * per_row
        cells = []
        for s in shown:
            stack = ([NEW_READY] * s.new_ready + [NEW_STARTING] * (s.new_total - s.new_ready)
                     + [OLD_READY] * s.old_ready + [OLD_NOT_READY] * (s.old_total - s.old_ready))
            glyph = stack[pods_at - 1] if pods_at - 1 < len(stack) else (
                LIMIT if pods_at == bounds.max_total else " ")
            cells.append(glyph * cell)
        if pods_at == bounds.max_total or (level == rows and pods_at > bounds.max_total):
            label = f"≤{bounds.max_total} pods = {bounds.replicas}+{bounds.surge} surge"
        elif pods_at == bounds.min_available and bounds.strategy == "RollingUpdate":
            label = f"≥{bounds.min_available} must be available"
        elif level == 1 and per_row > 1:
            label = f"{per_row} pods a row"
        else:
            label = ""
        lines.append("".join(cells).ljust(columns) + " │" + label)
    first, last = (shown[0], shown[-1]) if shown else (None, None)
    span = "no samples yet" if last is None else (
        f"rev {first.revision}→{last.revision}" if first and first.revision != last.revision else f"rev {last.revision}")
    lines.append("─" * columns + "─┘ " + span + ", a column a change")
    lines.append(LEGEND)
    return lines


class RolloutChart(Static):
    """The chart of one Deployment; :meth:`plot` redraws it."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        self._data: tuple[list[RolloutSample], Bounds] | None = None

    def plot(self, samples: list[RolloutSample], bounds: Bounds | None) -> None:
        self._data = (samples, bounds) if bounds is not None else None
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        if self._data is None:
            self.update("Select a Deployment to see its rollout.")
            return
        width, height = self.content_size
        self.update("\n".join(draw_rollout(*self._data, width or 60, max(height, 4))))
