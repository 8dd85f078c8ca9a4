"""The exercise format's one definition: ``exercise.schema.json``, and a validator for it.

The schema is shipped for editors (``exercises/exercise.schema.json`` points here) and is
also what the loader checks every ``exercise.yaml`` against, so the two cannot drift. This
module implements the part of JSON Schema (2020-12) the file uses — ``type``, ``enum``,
``const``, ``properties``/``required``/``additionalProperties``, ``items``, the numeric and
string bounds, ``pattern``, ``$ref`` into ``$defs``, ``allOf``, ``if``/``then`` and
``oneOf`` — and reports every problem with its field path (``checks[2].with.service.type``),
which a student or an author can act on; the unit tests hold it to the ``jsonschema``
library's verdicts.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

__all__ = ["SCHEMA_PATH", "load_schema", "validate"]

SCHEMA_PATH = Path(__file__).with_name("exercise.schema.json")

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "number": (int, float),
    "boolean": (bool,), "null": (type(None),),
}


@cache
def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


def validate(document: Any, schema: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    """Every problem of ``document`` as ``(field path, what is wrong)``; empty when it is valid."""
    root = schema or load_schema()
    problems: list[tuple[str, str]] = []
    _check(document, root, root, "", problems)
    return problems


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, _TYPES[name])


def _describe(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _check(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str,
           problems: list[tuple[str, str]]) -> None:
    where = path or "(top level)"
    if "$ref" in schema:
        _check(value, _resolve(root, schema["$ref"]), root, path, problems)
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_is_type(value, n) for n in names):
            problems.append((where, f"must be {' or '.join(names)}, not {_describe(value)}"))
            return
    if "const" in schema and value != schema["const"]:
        problems.append((where, f"must be {_describe(schema['const'])}"))
    if "enum" in schema and value not in schema["enum"]:
        problems.append((where, f"{_describe(value)} is not one of: {', '.join(map(str, schema['enum']))}"))
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            problems.append((where, "must not be empty"))
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append((where, f"{_describe(value)} does not match {schema['pattern']}"))
    if _is_type(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            problems.append((where, f"{value} is less than {schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            problems.append((where, f"{value} is more than {schema['maximum']}"))
    if isinstance(value, list):
        _check_array(value, schema, root, path, problems)
    if isinstance(value, dict):
        _check_object(value, schema, root, path, problems)
    for sub in schema.get("allOf", ()):
        _check(value, sub, root, path, problems)
    if "if" in schema and not _errors(value, schema["if"], root):
        _check(value, schema.get("then", {}), root, path, problems)
    if "oneOf" in schema:
        _check_one_of(value, schema["oneOf"], root, path, problems)


def _check_array(value: list, schema: dict[str, Any], root: dict[str, Any], path: str,
                 problems: list[tuple[str, str]]) -> None:
    where = path or "(top level)"
    if len(value) < schema.get("minItems", 0):
        problems.append((where, f"needs at least {schema['minItems']} item(s)"))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        problems.append((where, f"takes at most {schema['maxItems']} item(s)"))
    if "items" in schema:
        for i, item in enumerate(value):
            _check(item, schema["items"], root, _join(path, i), problems)


def _check_object(value: dict, schema: dict[str, Any], root: dict[str, Any], path: str,
                  problems: list[tuple[str, str]]) -> None:
    properties = schema.get("properties", {})
    for key in schema.get("required", ()):
        if key not in value:
            problems.append((_join(path, key), "is required"))
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if key in properties:
            _check(item, properties[key], root, _join(path, key), problems)
        elif extra is False:
            known = ", ".join(properties) or "none"
            problems.append((_join(path, str(key)), f"is not a known field (known: {known})"))
        elif isinstance(extra, dict):
            _check(item, extra, root, _join(path, str(key)), problems)


def _check_one_of(value: Any, branches: list[dict[str, Any]], root: dict[str, Any], path: str,
                  problems: list[tuple[str, str]]) -> None:
    """Exactly one branch must hold; when none does, report the branch the value was meant for
    (the one whose required keys it has), else the choices."""
    results = [_errors(value, b, root, path) for b in branches]
    if sum(not r for r in results) == 1:
        return
    if isinstance(value, dict):
        meant = [r for b, r in zip(branches, results, strict=True)
                 if b.get("required") and all(k in value for k in b["required"])]
        if len(meant) == 1:
            problems.extend(meant[0])
            return
    keys = [k for b in branches for k in b.get("required", ())]
    problems.append((path or "(top level)", f"must have exactly one of: {', '.join(keys)}"))


def _errors(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "") -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    _check(value, schema, root, path, found)
    return found


def _resolve(root: dict[str, Any], ref: str) -> dict[str, Any]:
    if not ref.startswith("#/"):
        raise ValueError(f"only local $refs are supported, not {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node
