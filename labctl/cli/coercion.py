"""Option values that need no coercion skip typer's pydantic layer.

typer (0.2x) coerces each option's value through a pydantic ``TypeAdapter`` that it builds
when the command line is parsed, so every ``labctl`` run imported pydantic (0.1–0.2 s of CPU
on this project's 2-core machines, a tenth of ``labctl down``'s whole run: docs/benchmarks.md)
although a ``str`` option's value is a ``str`` already, an ``int`` option's default or count
an ``int`` and a flag's a ``bool``. Those values, and an option left unset, are taken as they are; any other
(a number typed on the command line, a list, a path, a custom parser, a bounded number)
goes through typer's own adapter, so what typer accepts and how it words an error stay
exactly typer's. A typer without that layer is left as it is.
"""

from __future__ import annotations

from typing import Any

import typer.core

__all__ = ["skip_plain_coercion"]

#: annotations whose values arrive from click already of that very type (or as None: unset, or
#: ``--help``'s flag before it is given)
_PLAIN = (str, int, bool)


class _PlainFirst:
    """A parameter's coercion: a plain value or no value as is, anything else typer's (built then)."""

    def __init__(self, parameter: Any, build: Any) -> None:
        self._parameter = parameter
        self._build = build

    def coerce(self, value: Any, param: Any, ctx: Any) -> Any:
        descriptor = self._parameter.type_descriptor
        info = descriptor.parameter_info
        multi = param.multiple or param.nargs == -1
        plain = (descriptor.annotation in _PLAIN and not multi and getattr(info, "parser", None) is None
                 and getattr(info, "min", None) is None and getattr(info, "max", None) is None)
        if plain and (value is None or type(value) is descriptor.annotation):
            return value  # what typer's adapter returns for it, without pydantic
        return self._build(self._parameter).coerce(value, param=param, ctx=ctx)


#: typer releases whose private ``_TyperParameter.get_runtime_param`` this was read against (a
#: later one may change what it returns: it then keeps its own coercion, pydantic and all)
KNOWN_TYPER = ("0.29.",)


def skip_plain_coercion() -> None:
    """Install the shortcut on typer's parameters (idempotent)."""
    if not getattr(typer, "__version__", "").startswith(KNOWN_TYPER):
        return
    parameter = getattr(typer.core, "_TyperParameter", None)
    build = getattr(parameter, "get_runtime_param", None)
    if build is None or getattr(build, "plain_first", False):
        return

    def get_runtime_param(self: Any) -> Any:
        return _PlainFirst(self, build)

    get_runtime_param.plain_first = True  # type: ignore[attr-defined]
    parameter.get_runtime_param = get_runtime_param  # type: ignore[union-attr]
