"""Structural schemas of CustomResourceDefinitions: checking one, pruning and validating objects by it.

A CRD's ``openAPIV3Schema`` is the only Go struct its custom objects have. kube-apiserver
(``apiextensions-apiserver/pkg/apiserver/schema``) requires it to be *structural* (every
node typed, arrays with ``items``, no ``properties`` beside ``additionalProperties``), prunes
from each object what the schema does not declare (unless ``x-kubernetes-preserve-unknown-fields``),
and validates what is left (types, required, enum, pattern, bounds) with kube-openapi's
words. This module is that subset, pure: schemas and objects in, paths and field errors out.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import FieldError, duplicate, forbidden, invalid, not_supported, required

__all__ = ["TYPES", "apply_defaults", "check_structural", "prune", "validate_value"]

Schema = dict[str, Any]
TYPES = ("array", "boolean", "integer", "number", "object", "string")
PRESERVE = "x-kubernetes-preserve-unknown-fields"
INT_OR_STRING = "x-kubernetes-int-or-string"
#: the schema keywords labctl honours; a schema using another one is refused rather than ignored
_HONOURED = frozenset({
    "type", "format", "description", "title", "properties", "items", "additionalProperties", "required",
    "enum", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
    "minItems", "maxItems", "nullable", "default", "example", PRESERVE, INT_OR_STRING,
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys", "x-kubernetes-map-type",
})
def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


#: the JSON type each keyword's value must have (JSONSchemaProps' Go types), so no check meets a surprise
_KEYWORD_TYPES: dict[str, tuple[Any, str]] = {
    "required": (_is_names, "a list of field names"),
    "x-kubernetes-list-map-keys": (_is_names, "a list of field names"),
    "enum": (lambda v: isinstance(v, list), "a list of values"),
    "pattern": (lambda v: isinstance(v, str), "a string"),
    "format": (lambda v: isinstance(v, str), "a string"),
    "minimum": (_is_number, "a number"),
    "maximum": (_is_number, "a number"),
    "exclusiveMinimum": (lambda v: isinstance(v, bool), "a boolean"),
    "exclusiveMaximum": (lambda v: isinstance(v, bool), "a boolean"),
    "minLength": (_is_count, "a non-negative integer"),
    "maxLength": (_is_count, "a non-negative integer"),
    "minItems": (_is_count, "a non-negative integer"),
    "maxItems": (_is_count, "a non-negative integer"),
    "nullable": (lambda v: isinstance(v, bool), "a boolean"),
    PRESERVE: (lambda v: isinstance(v, bool), "a boolean"),
    INT_OR_STRING: (lambda v: isinstance(v, bool), "a boolean"),
    "x-kubernetes-list-type": (lambda v: v in ("atomic", "map", "set"), 'one of "atomic", "map", "set"'),
    "x-kubernetes-map-type": (lambda v: v in ("atomic", "granular"), 'one of "atomic", "granular"'),
}
#: what controller-gen writes beside x-kubernetes-int-or-string (resource quantities, ports)
_INT_OR_STRING_ANY_OF = [{"type": "integer"}, {"type": "string"}]
#: the formats labctl checks (kube-openapi's strfmt registry has more; a schema naming another is refused)
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
FORMATS = ("date-time", "double", "float", "int32", "int64", "password")
#: at the root, metadata may only constrain these (upstream: "must not specify anything other than name and generateName")
_ROOT_META = frozenset({"name", "generateName"})


# -- the schema itself ------------------------------------------------------------------------
def check_structural(schema: Any, path: str) -> list[FieldError]:
    """The CRD's ``openAPIV3Schema`` at ``path``: structural, of keywords labctl honours, an object at the root."""
    if not isinstance(schema, dict):
        return [required(path, "")]
    errs = _check_node(schema, path)
    if schema.get("type") != "object":
        errs.append(invalid(f"{path}.type", schema.get("type", ""), "must be object at the root"))
    props = schema.get("properties")
    meta = props.get("metadata") if isinstance(props, dict) else None
    if isinstance(meta, dict):
        extra = sorted(set(meta.get("properties") or {}) - _ROOT_META)
        if extra or set(meta) - {"type", "properties", "description"}:
            errs.append(forbidden(f"{path}.properties[metadata]",
                                  "must not specify anything other than name and generateName, but metadata is "
                                  "implicitly specified"))
    return errs


def _check_node(node: Any, path: str) -> list[FieldError]:
    if not isinstance(node, dict):
        return [invalid(path, node, "must be an object")]
    errs = [forbidden(f"{path}.{key}", "labctl does not serve this schema keyword")
            for key in sorted(node) if key not in _HONOURED
            and not (key == "anyOf" and node.get(INT_OR_STRING) and node[key] == _INT_OR_STRING_ANY_OF)]
    errs += [invalid(f"{path}.{key}", node[key], f"must be {what}")
             for key, (fits, what) in _KEYWORD_TYPES.items() if key in node and not fits(node[key])]
    typ = node.get("type")
    if typ is None or typ == "":
        if not node.get(INT_OR_STRING) and not node.get(PRESERVE):
            errs.append(required(f"{path}.type", "must not be empty for specified object fields"))
    elif typ not in TYPES:
        errs.append(not_supported(f"{path}.type", typ, list(TYPES)))
    props = node.get("properties")
    if props is not None:
        if not isinstance(props, dict):
            errs.append(invalid(f"{path}.properties", props, "must be an object"))
        else:
            for name, sub in props.items():
                errs += _check_node(sub, f"{path}.properties[{name}]")
        if "additionalProperties" in node:
            errs.append(forbidden(f"{path}.additionalProperties",
                                  "additionalProperties and properties are mutual exclusive"))
    extra = node.get("additionalProperties")
    if extra is not None and not isinstance(extra, (dict, bool)):
        errs.append(invalid(f"{path}.additionalProperties", extra, "must be a schema or a boolean"))
    if isinstance(extra, dict):
        errs += _check_node(extra, f"{path}.additionalProperties")
    if typ == "array":
        if not isinstance(node.get("items"), dict):
            errs.append(required(f"{path}.items", "must be specified"))
        else:
            errs += _check_node(node["items"], f"{path}.items")
    fmt = node.get("format")
    if isinstance(fmt, str) and fmt not in FORMATS:
        errs.append(not_supported(f"{path}.format", fmt, list(FORMATS)))
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        try:
            re.compile(pattern)
        except re.error as err:
            errs.append(invalid(f"{path}.pattern", pattern, f"must be a valid regular expression, but isn't: {err}"))
    return errs


# -- pruning ----------------------------------------------------------------------------------
def prune(obj: dict, schema: Schema) -> list[str]:
    """Drop from ``obj`` (in place) every field ``schema`` does not declare; returns their paths.

    apiVersion, kind and metadata are always kept at the root (metadata is ObjectMeta's,
    checked by the decoder). The paths are strict decoding's: ``spec.foo``, ``spec.items[0].bar``.
    """
    found: list[str] = []
    for key in list(obj):
        if key in ("apiVersion", "kind", "metadata"):
            continue
        _prune_field(obj, key, schema, "", found)
    return found


def _prune_field(parent: dict, key: str, schema: Schema, path: str, found: list[str]) -> None:
    where = f"{path}.{key}" if path else key
    props = schema.get("properties")
    if props is not None and key in props:
        _prune_value(parent[key], props[key], where, found)
    elif isinstance(schema.get("additionalProperties"), dict):
        _prune_value(parent[key], schema["additionalProperties"], where, found)
    elif schema.get(PRESERVE) or schema.get("additionalProperties") is True:
        return
    else:
        del parent[key]
        found.append(where)


def _prune_value(value: Any, schema: Schema, path: str, found: list[str]) -> None:
    if isinstance(value, dict) and (schema.get("type") == "object" or "properties" in schema
                                    or "additionalProperties" in schema):
        if schema.get(PRESERVE) and "properties" not in schema and "additionalProperties" not in schema:
            return
        for key in list(value):
            _prune_field(value, key, schema, path, found)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _prune_value(item, schema["items"], f"{path}[{i}]", found)


# -- defaulting -------------------------------------------------------------------------------
def apply_defaults(value: Any, schema: Schema) -> None:
    """Fill in the schema's ``default`` of each absent property of the objects present, in place.

    As apiextensions' structural defaulting: a default applies where its parent object
    exists, so ``spec.replicas`` gets its default when ``spec`` was sent; list items and
    map values are defaulted by their ``items``/``additionalProperties`` schema.
    """
    if isinstance(value, dict):
        for name, sub in (schema.get("properties") or {}).items():
            if name not in value and "default" in sub:
                value[name] = _copy(sub["default"])
            if name in value:
                apply_defaults(value[name], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            for item in value.values():
                apply_defaults(item, extra)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(item, schema["items"])


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


# -- validation -------------------------------------------------------------------------------
def validate_value(value: Any, schema: Schema, path: str) -> list[FieldError]:
    """kube-openapi's validation of a (pruned) value, with its messages: ``spec.x in body must be of type integer``."""
    if value is None:
        if schema.get("nullable"):
            return []
        return [invalid(path, "null", f'{path} in body must be of type {schema.get("type", "object")}: "null"')]
    if schema.get(INT_OR_STRING):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            return [invalid(path, _json_type(value), f'{path} in body must be of type integer,string: '
                                                     f'"{_json_type(value)}"')]
    typ = schema.get("type")
    if typ and not _has_type(value, typ):
        # kube-openapi names the type it got, not the value
        return [invalid(path, _json_type(value), f'{path} in body must be of type {typ}: "{_json_type(value)}"')]
    errs = _validate_scalar(value, schema, path)
    if isinstance(value, dict):
        props = schema.get("properties") or {}
        for name in schema.get("required") or []:
            if name not in value:
                errs.append(required(f"{path}.{name}" if path else name, ""))
        for key, item in value.items():
            sub = props.get(key)
            if sub is None and isinstance(schema.get("additionalProperties"), dict):
                sub = schema["additionalProperties"]
            if sub is not None:
                errs += validate_value(item, sub, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        errs += _validate_items(value, schema, path)
    return errs


def _validate_items(value: list, schema: Schema, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    if "minItems" in schema and len(value) < schema["minItems"]:
        errs.append(invalid(path, len(value), f"{path} in body should have at least {schema['minItems']} items"))
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        errs.append(FieldError("FieldValueTooMany", path, len(value), f"must have at most {schema['maxItems']} items"))
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            errs += validate_value(item, items, f"{path}[{i}]")
    return errs + _unique_items(value, schema, path)


def _unique_items(value: list, schema: Schema, path: str) -> list[FieldError]:
    """``x-kubernetes-list-type``: a ``set`` holds no value twice, a ``map`` no key twice."""
    list_type = schema.get("x-kubernetes-list-type")
    keys = schema.get("x-kubernetes-list-map-keys") or []
    seen: list[Any] = []
    errs: list[FieldError] = []
    for i, item in enumerate(value):
        if list_type == "set":
            identity = item
        elif list_type == "map" and isinstance(item, dict):
            identity = {k: item.get(k) for k in keys}
        else:
            continue
        if identity in seen:
            errs.append(duplicate(f"{path}[{i}]", identity))
        seen.append(identity)
    return errs


def _validate_scalar(value: Any, schema: Schema, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    enum = schema.get("enum")
    if enum is not None and value not in enum:
        errs.append(not_supported(path, value, [str(e) if not isinstance(e, str) else e for e in enum]))
    if isinstance(value, str):
        pattern = schema.get("pattern")
        if pattern is not None and re.search(pattern, value) is None:
            errs.append(invalid(path, value, f"{path} in body should match '{pattern}'"))
        if "minLength" in schema and len(value) < schema["minLength"]:
            errs.append(invalid(path, value, f"{path} in body should be at least {schema['minLength']} chars long"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errs.append(FieldError("FieldValueTooLong", path, value,
                                   f"may not be more than {schema['maxLength']} bytes"))
        if schema.get("format") == "date-time" and not _RFC3339.match(value):
            errs.append(invalid(path, value, f'{path} in body must be of type date-time: "{value}"'))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        bounds = _INT_RANGE.get(schema.get("format", ""))
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            errs.append(invalid(path, value, f"{path} in body must be of type {schema['format']}: \"{value}\""))
        low, high = schema.get("minimum"), schema.get("maximum")
        if low is not None and (value < low or (schema.get("exclusiveMinimum") and value == low)):
            word = "greater than" if schema.get("exclusiveMinimum") else "greater than or equal to"
            errs.append(invalid(path, value, f"{path} in body should be {word} {low}"))
        if high is not None and (value > high or (schema.get("exclusiveMaximum") and value == high)):
            word = "less than" if schema.get("exclusiveMaximum") else "less than or equal to"
            errs.append(invalid(path, value, f"{path} in body should be {word} {high}"))
    return errs


def _has_type(value: Any, typ: str) -> bool:
    if typ == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if typ == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return _json_type(value) == typ


def _json_type(value: Any) -> str:
    """The OpenAPI name of a JSON value's type, as kube-openapi reports what it got."""
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"
