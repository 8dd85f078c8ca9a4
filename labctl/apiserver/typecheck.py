"""Typed decoding: checking a decoded body against its kind's OpenAPI schema, as kube's decoder does.

kube-apiserver decodes every request body into the kind's Go struct, so a field of the
wrong JSON type never reaches storage: ``metadata.labels: ["a"]`` is answered
``Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal array into Go
struct field ObjectMeta.metadata.labels of type map[string]string``. labctl stores JSON,
so this module stands in for the Go structs: the OpenAPI schemas the server publishes
(:mod:`labctl.apiserver.openapi`) are compiled once per kind into a tree of small
checkers, and one walk over the decoded object

* finds the first value whose JSON type the field cannot hold, worded as Go's
  ``encoding/json`` words it (``UnmarshalTypeError``: the innermost struct, the path of
  JSON field names without indices or map keys, the Go type), or as the custom decoders
  of ``Quantity``, ``Time`` and ``[]byte`` word theirs;
* turns ``null`` into what Go's decoder leaves: a struct field sent as ``null`` is
  dropped (its zero value is omitted on output), a ``null`` map value or list item
  becomes the zero value of its type (``labels: {a: null}`` stores ``a: ""``), so no
  later code meets a ``None`` where a dict was promised;
* drops the fields the struct does not have, as Go's decoder does, whatever
  ``fieldValidation`` says: an unknown field is never stored (a typo such as
  ``spec.replica`` must not sit in the object looking honoured), and with ``strict`` lists
  them, sigs.k8s.io/json's strict-decoding finding ``unknown field "spec.replica"``
  (duplicate fields are the decoder's business, see :mod:`labctl.apiserver.decode`).

The named Go string types (``v1.Protocol``, ``v1.ServiceType``) are plain ``string`` in
OpenAPI, so their errors say ``of type string`` where kube says ``of type v1.Protocol``.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from labctl.kube.quantity import QUANTITY_FORMAT_ERROR, parse_quantity

from . import openapi

MAX_STRICT_ERRORS = 100  # sigs.k8s.io/json stops collecting strict errors here
_REF = "#/components/schemas/"
_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})\Z")
_GO_RFC3339 = "2006-01-02T15:04:05Z07:00"
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
#: the custom resources served now, (apiVersion, kind) -> their structural schema's pruner
#: (:func:`labctl.apiserver.structural.prune`): a custom object has no Go struct, its CRD's schema is one
_CUSTOM: dict[tuple[str, str], Callable[[dict], list[str]]] = {}


@dataclass
class TypeMismatch:
    """The first value a Go struct could not hold (``UnmarshalTypeError`` or a custom decoder's error)."""

    got: str  # Go's description of the JSON value: "array", "string", "number 3000000000"
    go_type: str  # "map[string]string", "int32", "v1.PodSpec"
    struct: str  # the innermost Go struct holding the field, "" at the top
    go_field: str  # JSON field names from the root, without indices or map keys: "spec.containers.image"
    path: str  # the full path with indices and keys: "spec.containers[0].image"
    text: str = ""  # the whole message when a custom UnmarshalJSON failed (Quantity, Time, []byte)

    def go_message(self) -> str:
        """What Go's ``json.Unmarshal`` returns for it (the part after kube's "cannot be handled as")."""
        if self.text:
            return self.text
        if self.struct or self.go_field:
            return (f"json: cannot unmarshal {self.got} into Go struct field "
                    f"{self.struct}.{self.go_field} of type {self.go_type}")
        return f"json: cannot unmarshal {self.got} into Go value of type {self.go_type}"

    def apply_message(self) -> str:
        """structured-merge-diff's words, as apply says them: ``.metadata.labels: expected map, got list``."""
        if self.text:
            return f".{self.path}: {self.text}"
        if self.got.startswith("number "):  # the right kind, out of the Go type's range
            return f".{self.path}: cannot convert {self.got} to {self.go_type}"
        got = _SMD_KIND.get(self.got, self.got)
        return f".{self.path}: expected {_smd_expected(self.go_type)}, got {got}"


@dataclass
class Report:
    """What decoding one object found: a type error (fatal), else its unknown fields."""

    mismatch: TypeMismatch | None = None
    unknown: list[str] = field(default_factory=list)  # paths, sigs.k8s.io/json style


_SMD_KIND = {"array": "list", "object": "map", "bool": "boolean", "number": "numeric"}


def _smd_expected(go_type: str) -> str:
    if go_type.startswith("map["):
        return "map"
    if go_type.startswith("[]") and go_type != "[]uint8":
        return "list"
    if go_type.startswith(("int", "float")):
        return "numeric (int or float)"
    if go_type == "bool":
        return "boolean"
    if go_type in ("string", "[]uint8"):
        return "string"
    return "map"


class _Stop(Exception):
    """Unwinds the walk at the first type error (kube keeps only the first one)."""


def json_kind(value: Any) -> str:
    """How Go names a JSON value in ``cannot unmarshal X``."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return "null"


class _Walk:
    """The state of one walk: the Go error context, the strict path and what was found."""

    __slots__ = ("go_fields", "path", "report", "strict", "struct")

    def __init__(self, strict: bool) -> None:
        self.report = Report()
        self.strict = strict
        self.go_fields: list[str] = []  # Go's errorContext.FieldStack
        self.struct = ""  # Go's errorContext.Struct
        self.path: list[str] = []  # sigs.k8s.io/json's strictFieldStack

    def path_text(self, last: str | None = None) -> str:
        text = "".join(self.path)
        if last is not None:
            text = f"{text}.{last}" if text else last
        return text

    def fail(self, got: str, go_type: str, text: str = "") -> None:
        self.report.mismatch = TypeMismatch(got, go_type, self.struct, ".".join(self.go_fields),
                                            self.path_text(), text)
        raise _Stop


class _Node:
    """A compiled schema node: checks a value, returns it with ``null``\\ s normalised."""

    go_type = "interface {}"

    def zero(self) -> Any:
        return None

    def check(self, value: Any, walk: _Walk) -> Any:
        return value


class _Any(_Node):
    """No constraint: RawExtension, FieldsV1, Duration and schemas without a type."""


class _String(_Node):
    go_type = "string"

    def zero(self) -> Any:
        return ""

    def check(self, value: Any, walk: _Walk) -> Any:
        if not isinstance(value, str):
            walk.fail(json_kind(value), self.go_type)
        return value


class _Bytes(_String):
    """``[]byte``: base64 in JSON; Go's error carries no field context."""

    go_type = "[]uint8"

    def check(self, value: Any, walk: _Walk) -> Any:
        if not isinstance(value, str):
            walk.fail(json_kind(value), self.go_type)
        try:
            base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
        except (binascii.Error, ValueError):
            walk.fail("string", self.go_type, f"illegal base64 data at input byte {_bad_base64_offset(value)}")
        return value


class _Time(_String):
    """``metav1.Time``/``MicroTime``: an RFC 3339 string; Go's ``time.Parse`` error otherwise."""

    def check(self, value: Any, walk: _Walk) -> Any:
        if not isinstance(value, str):
            walk.fail(json_kind(value), "string")
        if not _RFC3339.match(value):
            walk.fail("string", "string", f'parsing time "{value}" as "{_GO_RFC3339}": cannot parse '
                                          f'"{value}" as "2006"')
        return value


class _Integer(_Node):
    def __init__(self, bits: str) -> None:
        self.go_type = bits
        self.low, self.high = _INT_RANGE[bits]

    def zero(self) -> Any:
        return 0

    def check(self, value: Any, walk: _Walk) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            walk.fail(json_kind(value), self.go_type)
        if isinstance(value, float) or not self.low <= value <= self.high:
            walk.fail(f"number {value!r}", self.go_type)
        return value


class _Number(_Node):
    go_type = "float64"

    def zero(self) -> Any:
        return 0

    def check(self, value: Any, walk: _Walk) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            walk.fail(json_kind(value), self.go_type)
        return value


class _Boolean(_Node):
    go_type = "bool"

    def zero(self) -> Any:
        return False

    def check(self, value: Any, walk: _Walk) -> Any:
        if not isinstance(value, bool):
            walk.fail(json_kind(value), self.go_type)
        return value


class _IntOrString(_Node):
    """``intstr.IntOrString``: its UnmarshalJSON decodes a non-string into an ``int32``."""

    go_type = "intstr.IntOrString"

    def zero(self) -> Any:
        return 0

    def check(self, value: Any, walk: _Walk) -> Any:
        if isinstance(value, str):
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            walk.fail(json_kind(value), "int32")
        if isinstance(value, float) or not -(2**31) <= value < 2**31:
            walk.fail(f"number {value!r}", "int32")
        return value


class _Quantity(_Node):
    """``resource.Quantity``: a string or a number that ``ParseQuantity`` accepts."""

    go_type = "resource.Quantity"

    def zero(self) -> Any:
        return "0"

    def check(self, value: Any, walk: _Walk) -> Any:
        kind = json_kind(value)
        if kind not in ("string", "number"):
            walk.fail(kind, self.go_type, QUANTITY_FORMAT_ERROR)
        try:
            parse_quantity(value.strip() if kind == "string" else repr(value))
        except ValueError as err:
            walk.fail(kind, self.go_type, str(err))
        return value


class _Array(_Node):
    def __init__(self) -> None:
        self.items: _Node = _Any()

    @property
    def go_type(self) -> str:  # type: ignore[override]
        return "[]" + self.items.go_type

    def zero(self) -> Any:
        return []

    def check(self, value: Any, walk: _Walk) -> Any:
        if not isinstance(value, list):
            walk.fail(json_kind(value), self.go_type)
        items, path = self.items, walk.path
        for i, item in enumerate(value):
            path.append(f"[{i}]")
            if item is None:
                value[i] = items.zero()
            else:
                checked = items.check(item, walk)
                if checked is not item:
                    value[i] = checked
            path.pop()
        return value


class _Map(_Node):
    """``map[string]T``: the key joins the strict path, never Go's field path."""

    def __init__(self) -> None:
        self.values: _Node = _Any()

    @property
    def go_type(self) -> str:  # type: ignore[override]
        return "map[string]" + self.values.go_type

    def zero(self) -> Any:
        return {}

    def check(self, value: Any, walk: _Walk) -> Any:
        if not isinstance(value, dict):
            walk.fail(json_kind(value), self.go_type)
        values, path = self.values, walk.path
        for key, item in value.items():
            path.append(f".{key}" if path else key)
            if item is None:
                value[key] = values.zero()
            else:
                checked = values.check(item, walk)
                if checked is not item:
                    value[key] = checked
            path.pop()
        return value


class _Struct(_Node):
    """A Go struct: known fields are checked, others are unknown fields: dropped, and listed when strict."""

    def __init__(self, name: str) -> None:
        package, _, short = name.rpartition(".")
        self.name = short
        self.go_type = f"{package.rpartition('.')[2]}.{short}"
        self.fields: dict[str, _Node] = {}

    def zero(self) -> Any:
        return {}

    def check(self, value: Any, walk: _Walk) -> Any:
        if not isinstance(value, dict):
            walk.fail(json_kind(value), self.go_type)
        strict = walk.strict
        fields, path, go_fields = self.fields, walk.path, walk.go_fields
        outer_struct, dropped = walk.struct, []
        for key, item in value.items():
            node = fields.get(key)
            if node is None:
                if strict and len(walk.report.unknown) < MAX_STRICT_ERRORS:
                    walk.report.unknown.append(walk.path_text(key))
                dropped.append(key)
                continue
            if item is None:
                dropped.append(key)
                continue
            path.append(f".{key}" if path else key)
            go_fields.append(key)
            walk.struct = self.name
            checked = node.check(item, walk)
            if checked is not item:
                value[key] = checked
            go_fields.pop()
            path.pop()
            walk.struct = outer_struct
        for key in dropped:
            del value[key]
        return value


_BASE64 = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _bad_base64_offset(text: str) -> int:
    """Where Go's ``base64.StdEncoding`` reports the corruption: the first byte outside the alphabet, else the end."""
    return next((i for i, ch in enumerate(text) if ch not in _BASE64), len(text))


# -- compiling the OpenAPI schemas ----------------------------------------------------------
_SPECIAL: dict[str, type[_Node]] = {
    "io.k8s.apimachinery.pkg.api.resource.Quantity": _Quantity,
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": _IntOrString,
    "io.k8s.apimachinery.pkg.apis.meta.v1.Time": _Time,
    "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime": _Time,
    "io.k8s.apimachinery.pkg.apis.meta.v1.FieldsV1": _Any,
    "io.k8s.apimachinery.pkg.runtime.RawExtension": _Any,
    "io.k8s.apimachinery.pkg.apis.meta.v1.Duration": _Any,
}


class _Compiler:
    """Turns schema dicts into nodes; a named schema is compiled once (recursive types included)."""

    def __init__(self, schemas: dict[str, dict[str, Any]]) -> None:
        self.schemas = schemas
        self.named: dict[str, _Node] = {}

    def compile_named(self, name: str) -> _Node:
        if name in self.named:
            return self.named[name]
        if name in _SPECIAL:
            node: _Node = _SPECIAL[name]()
            self.named[name] = node
            return node
        schema = self.schemas.get(name, {})
        if schema.get("type") == "object" and "properties" in schema:
            struct = _Struct(name)
            self.named[name] = struct  # before the fields: a recursive type finds itself
            struct.fields = {k: self.compile(v) for k, v in schema["properties"].items()}
            return struct
        node = self.compile(schema)
        self.named[name] = node
        return node

    def compile(self, schema: dict[str, Any]) -> _Node:
        ref = schema.get("$ref")
        if ref is None and len(schema.get("allOf", ())) == 1:
            ref = schema["allOf"][0].get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            return self.compile_named(ref[len(_REF):])
        typ, fmt = schema.get("type"), schema.get("format", "")
        if schema.get("x-kubernetes-preserve-unknown-fields"):
            return _Any()
        if fmt == "int-or-string":
            return _IntOrString()
        if typ == "string":
            return _Bytes() if fmt == "byte" else _Time() if fmt == "date-time" else _String()
        if typ == "integer":
            return _Integer("int32" if fmt == "int32" else "int64")
        if typ == "number":
            return _Number()
        if typ == "boolean":
            return _Boolean()
        if typ == "array":
            array = _Array()
            array.items = self.compile(schema.get("items") or {})
            return array
        if typ == "object" and isinstance(schema.get("additionalProperties"), dict):
            mapping = _Map()
            mapping.values = self.compile(schema["additionalProperties"])
            return mapping
        if typ == "object" and "properties" in schema:
            struct = _Struct("inline.Object")
            struct.fields = {k: self.compile(v) for k, v in schema["properties"].items()}
            return struct
        return _Any()


@cache
def _compiler() -> _Compiler:
    return _Compiler(openapi._schemas())


@cache
def checker(api_version: str, kind: str) -> _Node | None:
    """The compiled checker of a kind (``("v1", "Pod")``), or None when no schema describes it."""
    name = openapi.schema_name(api_version, kind)
    return _compiler().compile_named(name) if name else None


def serve_custom(api_version: str, kind: str, prune: Callable[[dict], list[str]]) -> None:
    """Decode ``kind`` objects as custom resources: ObjectMeta typed, the rest pruned by ``prune``."""
    _CUSTOM[(api_version, kind)] = prune


def forget_custom(api_version: str, kind: str) -> None:
    """``kind`` is no longer served (its CustomResourceDefinition changed or went)."""
    _CUSTOM.pop((api_version, kind), None)


def _check_custom(obj: dict, prune: Callable[[dict], list[str]], walk: _Walk) -> Report:
    """A custom object as kube's unstructured decoder sees it: typed metadata, unknown fields pruned.

    Its values' types are the CRD schema's validation (a 422), not the decoder's (a 400).
    """
    meta = obj.get("metadata")
    if meta is not None:
        walk.path.append("metadata")
        walk.go_fields.append("metadata")
        try:
            obj["metadata"] = _compiler().compile_named(_OBJECT_META).check(meta, walk)
        except _Stop:
            return walk.report
        walk.path.clear()
        walk.go_fields.clear()
    unknown = prune(obj)
    if walk.strict:
        walk.report.unknown.extend(unknown[: MAX_STRICT_ERRORS - len(walk.report.unknown)])
    return walk.report


def check(api_version: str, kind: str, obj: dict, strict: bool = True) -> Report:
    """Check ``obj`` against its kind's schema, in place: ``null``\\ s normalised, unknown fields dropped.

    ``strict`` lists the unknown fields (``fieldValidation`` Strict or Warn).
    """
    walk = _Walk(strict)
    prune = _CUSTOM.get((api_version, kind))
    if prune is not None:
        return _check_custom(obj, prune, walk)
    node = checker(api_version, kind)
    if node is None:
        return walk.report
    try:
        node.check(obj, walk)
    except _Stop:
        walk.report.unknown.clear()
    return walk.report
