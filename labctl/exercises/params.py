"""Exercise parameters: values picked per lab at ``start`` and substituted as ``${name}``.

Names and ports may differ from student to student (so answers cannot be passed around),
but must stay the same for one lab: ``start`` picks them once and stores them with the
lab's exercise state, and every later ``check`` substitutes the stored values.
"""

from __future__ import annotations

import random
import re
from typing import Any

__all__ = ["choose", "substitute", "unknown_names"]

_REF = re.compile(r"\$\{([A-Za-z][A-Za-z0-9_]*)\}")


def choose(specs: dict[str, dict[str, Any]], rng: random.Random | None = None) -> dict[str, Any]:
    """A value for every parameter: its ``value``, one of its ``choices``, or an integer in its ``range``."""
    rng = rng or random.Random()
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        if "value" in spec:
            values[name] = spec["value"]
        elif "choices" in spec:
            values[name] = rng.choice(spec["choices"])
        elif "range" in spec:
            low, high = spec["range"]
            values[name] = rng.randint(low, high)
        else:
            raise ValueError(f"parameter {name!r} has no value, choices or range")
    return values


def substitute(value: Any, values: dict[str, Any]) -> Any:
    """``value`` with every ``${name}`` replaced, through dicts and lists; a string that is only
    ``${name}`` takes the value's own type (``nodePort: ${port}`` stays an integer)."""
    if isinstance(value, str):
        whole = _REF.fullmatch(value)
        if whole and whole.group(1) in values:
            return values[whole.group(1)]
        return _REF.sub(lambda m: str(values.get(m.group(1), m.group(0))), value)
    if isinstance(value, list):
        return [substitute(v, values) for v in value]
    if isinstance(value, dict):
        return {k: substitute(v, values) for k, v in value.items()}
    return value


def unknown_names(value: Any, names: set[str]) -> set[str]:
    """The ``${…}`` names in ``value`` that are not parameters (the loader reports them)."""
    if isinstance(value, str):
        return {m.group(1) for m in _REF.finditer(value)} - names
    if isinstance(value, list):
        return set().union(*(unknown_names(v, names) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(unknown_names(v, names) for v in value.values())) if value else set()
    return set()
