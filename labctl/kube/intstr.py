"""``IntOrString`` fields as numbers: a Deployment's ``maxSurge`` and ``maxUnavailable``.

A port of apimachinery's ``intstr.GetScaledValueFromIntOrPercent`` and of the Deployment
controller's ``ResolveFenceposts``, shared by the Deployment controller (which rolls out
within these bounds) and the terminal UI (which draws them next to the rollout).
"""

from __future__ import annotations

import math

__all__ = ["resolve_fenceposts", "scaled_value"]


def scaled_value(value: int | str | None, total: int, round_up: bool) -> int:
    """``intstr.GetScaledValueFromIntOrPercent``."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value)
    if not text.endswith("%"):
        raise ValueError(f"invalid value for IntOrString: invalid type: string is not a percentage: {text!r}")
    percent = int(text[:-1])
    exact = percent * total / 100
    return math.ceil(exact) if round_up else math.floor(exact)


def resolve_fenceposts(max_surge: int | str | None, max_unavailable: int | str | None, desired: int) -> tuple[int, int]:
    """(surge, unavailable) as absolute numbers; both zero would deadlock, so unavailable becomes 1."""
    surge = scaled_value(max_surge if max_surge is not None else 0, desired, True)
    unavailable = scaled_value(max_unavailable if max_unavailable is not None else 0, desired, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1
    return surge, unavailable
