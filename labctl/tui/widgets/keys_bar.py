"""The bottom line: the keys that work here and now, each clickable.

Textual's ``Footer`` lays itself out again (one widget per key) every time a view comes on
screen, which made switching views cost more than drawing them; this is one line of text,
redrawn only when the keys that apply change (the selected row is another kind of object).
"""

from __future__ import annotations

from textual.app import App
from textual.content import Content
from textual.style import Style
from textual.widgets import Static

__all__ = ["KeysBar"]

#: how keys are written on the line
_NAMES = {"slash": "/", "question_mark": "?", "colon": ":", "escape": "esc", "space": "space", "plus": "+",
          "minus": "-", "left_square_bracket": "[", "right_square_bracket": "]", "enter": "enter",
          "ctrl+d": "^d", "ctrl+c": "^c"}


class KeysBar(Static):
    """``/ filter  d describe  …  ? help  : jump  q quit``; :meth:`refresh_keys` after the selection changes."""

    def on_mount(self) -> None:
        self.refresh_keys()

    def refresh_keys(self) -> None:
        parts: list[str | tuple[str, Style]] = []
        seen = set()
        for key, active in self.screen.active_bindings.items():
            binding = active.binding
            if not binding.show or not active.enabled or binding.action in seen:
                continue
            seen.add(binding.action)
            namespace = "app" if isinstance(active.node, App) else "screen"
            click = Style.from_meta({"@click": f"{namespace}.{binding.action}"})
            parts += [("  " if parts else ""), (binding.key_display or _NAMES.get(key, key), Style(bold=True) + click),
                      (f" {binding.description}", click)]
        self.update(Content.assemble(*parts))
