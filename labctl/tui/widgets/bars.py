"""Shares drawn as bars with their numbers: answers per backend pod, per version."""

from __future__ import annotations

from collections import Counter

from textual.widgets import Static

__all__ = ["ShareBars", "bar", "share_lines"]


def bar(fraction: float, width: int) -> str:
    """``███████░░░`` for ``fraction`` of ``width`` cells (eighths at the edge)."""
    fraction = min(max(fraction, 0.0), 1.0)
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if part else ""
    return ("█" * full + partial).ljust(width, "░")[:width]


def share_lines(counts: Counter[str], width: int, label_width: int = 28) -> list[str]:
    """One line per key, largest first: ``name  ███░░ 34%  102``."""
    total = sum(counts.values())
    if not total:
        return []
    bar_width = max(width - label_width - 13, 4)
    out = []
    for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        name = key if len(key) <= label_width else key[: label_width - 1] + "…"
        out.append(f"{name:<{label_width}} {bar(count / total, bar_width)} {100 * count / total:3.0f}% {count:>6}")
    return out


class ShareBars(Static):
    """Titled groups of share lines, drawn to the widget's own width (so a resize redraws them)."""

    def __init__(self, *, label_width: int = 28, max_rows: int = 8, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        self.label_width = label_width
        self.max_rows = max_rows
        self._groups: list[tuple[str, Counter[str]]] = []

    def show(self, *groups: tuple[str, Counter[str]]) -> None:
        self._groups = list(groups)
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        width = self.content_size.width or 60
        lines = []
        for title, counts in self._groups:
            shares = share_lines(counts, width, self.label_width) or ["  (none yet)"]
            if len(shares) > self.max_rows:
                shares = [*shares[: self.max_rows - 1], f"  … and {len(shares) - self.max_rows + 1} more"]
            lines += [title, *shares]
        self.update("\n".join(lines))
