"""Decode Kubernetes protobuf request bodies into the dicts the JSON encoding would give.

kubectl 1.37 sends ``Content-Type: application/vnd.kubernetes.protobuf`` for its typed
commands (``create configmap|secret|namespace|serviceaccount|deployment|service``) and
does not fall back to JSON on 415, so the API server must read that format.  A body is
the magic ``k8s\\x00`` followed by a ``runtime.Unknown`` message: ``typeMeta`` (apiVersion,
kind), ``raw`` (the object itself, e.g. a serialized ``v1.ConfigMap``), ``contentEncoding``
and ``contentType``.  See docs/protobuf.md.

The wire format is decoded by hand (varint, 64-bit, length-delimited, 32-bit) against a
compact schema generated from Kubernetes' own ``generated.proto`` files
(``tools/gen_protobuf_schema.py`` -> ``protobuf_data/schema.json.gz``).  Kubernetes'
special types become their JSON forms: ``Time`` -> RFC 3339, ``MicroTime`` -> RFC 3339
with microseconds, ``Duration`` -> Go duration text, ``Quantity`` -> its string,
``IntOrString`` -> int or string, ``RawExtension``/``FieldsV1`` -> the embedded JSON,
``bytes`` -> base64.  Field numbers the schema does not know are skipped, as protobuf's
forward compatibility demands.  Embedded JSON is read with orjson (which stops at 1,024
levels instead of recursing on) and an embedded object may hold another at most
:data:`MAX_EMBEDDED` deep, so no body can exhaust the stack; the caller then applies
the API server's nesting limit to the result (:mod:`labctl.apiserver.decode`).

Omitted values follow Go's JSON encoder, which is what a JSON body from kubectl would
carry: gogo-protobuf writes the zero value of every non-pointer scalar (``12 00`` for an
empty ``generateName``), and Go's ``omitempty`` drops those.  So a zero scalar (``""``,
``0``, ``false``) is dropped unless the field is a Go pointer (``replicas: 0``,
``gracePeriodSeconds: 0`` mean something) or required (not ``omitempty``, e.g.
``containerPort``).  Nested messages are kept even when empty (``"resources": {}``,
``"emptyDir": {}``), as Go never omits structs -- except a zero ``Time``, which Go writes
as ``null`` and which is dropped here.
"""

from __future__ import annotations

import base64
import gzip
import json
import struct
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any, NamedTuple

import orjson

from labctl.apiserver import errors
from labctl.kube.meta import micro_timestamp, timestamp

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
MAX_EMBEDDED = 8  # runtime.Unknown inside RawExtension inside runtime.Unknown ...
_EMBEDDING: ContextVar[int] = ContextVar("protobuf_embedding", default=0)  # per thread and task

META = "k8s.io.apimachinery.pkg.apis.meta.v1."
# Option and status kinds live in meta/v1 whatever group version they are sent as.
_META_KINDS = {"DeleteOptions", "CreateOptions", "UpdateOptions", "PatchOptions", "GetOptions",
               "ListOptions", "Status", "WatchEvent"}
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_WIRE_OF = {"double": _I64, "fixed64": _I64, "sfixed64": _I64, "float": _I32, "fixed32": _I32,
            "sfixed32": _I32, "string": _LEN, "bytes": _LEN}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Field(NamedTuple):
    """One schema field: JSON name, type (scalar or message full name) and Go traits."""

    name: str
    type: str
    repeated: bool
    inline: bool  # Go embedded struct, `json:",inline"`
    keep_zero: bool  # Go pointer or required field: an explicit zero is kept
    map_key: str | None = None


class _DecodeError(Exception):
    """Malformed input; ``path`` is filled in on the way out."""

    def __init__(self, detail: str, path: str = "") -> None:
        super().__init__(detail)
        self.detail, self.path = detail, path


def is_protobuf(content_type: str) -> bool:
    """True for ``application/vnd.kubernetes.protobuf`` (parameters ignored)."""
    return content_type.split(";")[0].strip().lower() == MEDIA_TYPE


@cache
def schema() -> dict[str, dict[int, Field]]:
    """The generated schema: message full name -> field number -> Field (loaded once)."""
    raw = resources.files("labctl.apiserver.protobuf_data").joinpath("schema.json.gz").read_bytes()
    messages = json.loads(gzip.decompress(raw))["messages"]
    out: dict[str, dict[int, Field]] = {}
    for name, fields in messages.items():
        table: dict[int, Field] = {}
        for number, entry in fields.items():
            flags = entry[2]
            keep = "p" in flags or "q" in flags
            if entry[1] == "map":
                table[int(number)] = Field(entry[0], entry[4], False, False, keep, entry[3])
            else:
                table[int(number)] = Field(entry[0], entry[1], "r" in flags, "i" in flags, keep)
        out[name] = table
    return out


def message_name(api_version: str, kind: str) -> str | None:
    """The proto message for an apiVersion/kind (``apps/v1`` ``Deployment`` ->
    ``k8s.io.api.apps.v1.Deployment``), or None when the schema has none."""
    group, _, version = api_version.rpartition("/")
    if kind in _META_KINDS or group == "meta.k8s.io":
        name = META + kind
    elif group in ("", "core"):
        name = f"k8s.io.api.core.{version}.{kind}"
    else:  # apps -> apps, coordination.k8s.io -> coordination, rbac.authorization.k8s.io -> rbac
        short = group.split(".")[0]
        name = f"k8s.io.api.{short}.{version}.{kind}"
    return name if name in schema() else None


def decode_object(body: bytes, api_version_hint: str | None = None, kind_hint: str | None = None) -> dict:
    """Decode one ``application/vnd.kubernetes.protobuf`` request body into a JSON-style dict.

    The type comes from the body's ``runtime.Unknown`` typeMeta; the hints (from the URL)
    are used only when the body leaves them empty.  Raises a 400 ``APIError`` on malformed
    input and a 415 for kinds the schema does not cover.
    """
    if not body.startswith(MAGIC):
        raise errors.bad_request("failed to decode protobuf body: it does not start with the 'k8s\\x00' magic")
    depth = _EMBEDDING.get()
    if depth >= MAX_EMBEDDED:
        raise errors.bad_request(f"failed to decode protobuf body: objects embedded more than {MAX_EMBEDDED} deep")
    token = _EMBEDDING.set(depth + 1)
    try:
        return _decode_unknown(body, api_version_hint, kind_hint)
    finally:
        _EMBEDDING.reset(token)


def _decode_unknown(body: bytes, api_version_hint: str | None, kind_hint: str | None) -> dict:
    try:
        env = _read_envelope(body[len(MAGIC) :])
    except _DecodeError as err:
        raise errors.bad_request(f"failed to decode protobuf envelope: {err.detail}") from None
    api_version = env.get("apiVersion") or api_version_hint or ""
    kind = env.get("kind") or kind_hint or ""
    if env.get("contentEncoding"):
        encoding = env["contentEncoding"]
        raise errors.bad_request(f"failed to decode protobuf body: unsupported contentEncoding {encoding!r}")
    raw, content_type = env.get("raw", b""), env.get("contentType", "")
    if content_type and not is_protobuf(content_type):
        return _decode_embedded_json(raw, content_type)
    if not api_version or not kind:
        raise errors.bad_request("failed to decode protobuf body: it names no apiVersion and kind")
    name = message_name(api_version, kind)
    if name is None:
        raise errors.unsupported_media_type(MEDIA_TYPE)
    try:
        obj = _decode_message(raw, name, "")
    except _DecodeError as err:
        where = f" at {err.path!r}" if err.path else ""
        raise errors.bad_request(f"failed to decode protobuf {api_version} {kind}{where}: {err.detail}") from None
    return {"kind": kind, "apiVersion": api_version, **obj}


def _read_envelope(data: bytes) -> dict[str, Any]:
    """Read ``runtime.Unknown``: typeMeta{apiVersion=1, kind=2}, raw=2, contentEncoding=3, contentType=4."""
    env: dict[str, Any] = {}
    for number, wire, value in _iter_fields(data):
        if wire != _LEN:
            continue
        if number == 1:
            for sub, sub_wire, sub_value in _iter_fields(value):
                if sub in (1, 2) and sub_wire == _LEN:
                    env["apiVersion" if sub == 1 else "kind"] = _scalar("string", sub_value)
        elif number == 2:
            env["raw"] = value
        elif number in (3, 4):
            env["contentEncoding" if number == 3 else "contentType"] = _scalar("string", value)
    return env


def _decode_embedded_json(raw: bytes, content_type: str) -> dict:
    if content_type.split(";")[0].strip() != "application/json":
        raise errors.bad_request(f"failed to decode protobuf body: unsupported contentType {content_type!r}")
    try:
        obj = orjson.loads(raw)
    except ValueError as err:
        raise errors.bad_request(f"failed to decode protobuf body: embedded JSON is invalid: {err}") from None
    if not isinstance(obj, dict):
        raise errors.bad_request("failed to decode protobuf body: embedded JSON is not an object")
    return obj


def _iter_fields(data: bytes) -> Iterator[tuple[int, int, Any]]:
    """Yield (field number, wire type, value); value is an int (varint) or bytes."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _DecodeError("field number 0 is invalid")
        value: int | bytes
        if wire == _VARINT:
            value, pos = _varint(data, pos)
        elif wire == _LEN:
            size, pos = _varint(data, pos)
            if pos + size > end:
                raise _DecodeError(f"field {number} claims {size} bytes but only {end - pos} remain")
            value, pos = data[pos : pos + size], pos + size
        elif wire in (_I64, _I32):
            size = 8 if wire == _I64 else 4
            if pos + size > end:
                raise _DecodeError(f"field {number} is truncated")
            value, pos = data[pos : pos + size], pos + size
        else:
            raise _DecodeError(f"field {number} has unsupported wire type {wire}")
        yield number, wire, value


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    if pos < len(data) and data[pos] < 0x80:  # fast path: most keys and lengths are one byte
        return data[pos], pos + 1
    result = shift = 0
    while True:
        if pos >= len(data):
            raise _DecodeError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise _DecodeError("varint is longer than 10 bytes")


def _decode_message(data: bytes, message: str, path: str) -> dict[str, Any]:
    """Decode one message into a dict of JSON names, applying the omitempty rule."""
    fields = schema().get(message)
    if fields is None:
        raise _DecodeError(f"no schema for message {message}", path)
    out: dict[str, Any] = {}
    inline: list[dict[str, Any]] = []
    for number, wire, value in _iter_fields(data):
        f = fields.get(number)
        if f is None:
            continue  # unknown field: skipped for forward compatibility
        here = f"{path}.{f.name}" if path else f.name
        try:
            if f.map_key is not None:
                key, val = _map_entry(f, wire, value, here)
                out.setdefault(f.name, {})[key] = val
            elif f.repeated:
                items = out.setdefault(f.name, [])
                items.extend(_repeated_values(f, wire, value, f"{here}[{len(items)}]"))
            elif f.inline:
                inline.append(_value(f.type, wire, value, here.rpartition(".")[0]))
            else:
                out[f.name] = _value(f.type, wire, value, here)
        except _DecodeError as err:
            err.path = err.path or here
            raise
    for sub in inline:
        out.update(sub)
    by_name = fields_by_name(message)
    return {k: v for k, v in out.items() if not _omitted(by_name.get(k), v)}


@cache
def fields_by_name(message: str) -> dict[str, Field]:
    """Fields of a message (and of its inline members) by JSON name."""
    by_name: dict[str, Field] = {}
    for f in schema().get(message, {}).values():
        by_name[f.name] = f
        if f.inline:
            by_name.update(fields_by_name(f.type))
    return by_name


def _omitted(f: Field | None, value: Any) -> bool:
    """Go's ``omitempty`` on a decoded value (see the module docstring)."""
    if value is None:
        return True  # zero Time, empty RawExtension: Go writes null
    if f is None or f.keep_zero or f.repeated or f.map_key is not None:
        return False
    if isinstance(value, bool):
        return value is False
    if isinstance(value, (int, float, str)):
        return value in (0, "") and f.type in _SCALAR_TYPES
    return False


def _map_entry(f: Field, wire: int, value: Any, path: str) -> tuple[Any, Any]:
    if wire != _LEN:
        raise _DecodeError(f"map entry has wire type {wire}, want 2", path)
    key: Any = _zero(f.map_key or "string")
    val: Any = _zero(f.type)
    for number, w, v in _iter_fields(value):
        if number == 1:
            key = _value(f.map_key or "string", w, v, path)
        elif number == 2:
            val = _value(f.type, w, v, f"{path}[{key!r}]")
    return key, val


def _repeated_values(f: Field, wire: int, value: Any, path: str) -> list[Any]:
    if wire == _LEN and f.type not in ("string", "bytes") and f.type in _SCALAR_TYPES:
        return _packed(f.type, value, path)  # packed numbers: proto3 style, accepted too
    return [_value(f.type, wire, value, path)]


def _packed(type_: str, data: bytes, path: str) -> list[Any]:
    wire = _WIRE_OF.get(type_, _VARINT)
    out, pos = [], 0
    while pos < len(data):
        raw: int | bytes
        if wire == _VARINT:
            raw, pos = _varint(data, pos)
        else:
            size = 8 if wire == _I64 else 4
            raw, pos = data[pos : pos + size], pos + size
            if len(raw) != size:
                raise _DecodeError("packed field is truncated", path)
        out.append(_scalar(type_, raw))
    return out


def _value(type_: str, wire: int, value: Any, path: str) -> Any:
    """Decode one field value of any type (scalar, special or plain message)."""
    if type_ in _SCALAR_TYPES:
        want = _WIRE_OF.get(type_, _VARINT)
        if wire != want:
            raise _DecodeError(f"wire type {wire} does not fit a {type_} (want {want})", path)
        return _scalar(type_, value)
    if wire != _LEN:
        raise _DecodeError(f"wire type {wire} does not fit a message (want 2)", path)
    special = _SPECIAL.get(type_)
    if special is not None:
        return special(value, path)
    return _decode_message(value, type_, path)


def _scalar(type_: str, raw: Any) -> Any:
    if type_ == "string":
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _DecodeError("string field is not valid UTF-8") from None
    if type_ == "bytes":
        return base64.b64encode(raw).decode("ascii")
    if type_ == "bool":
        return raw != 0
    if type_ in ("int32", "int64"):
        raw = raw - (1 << 64) if raw >= 1 << 63 else raw
        return ((raw + (1 << 31)) % (1 << 32)) - (1 << 31) if type_ == "int32" else raw
    if type_ == "uint32":
        return raw & 0xFFFFFFFF
    if type_ == "uint64":
        return raw
    if type_ in ("sint32", "sint64"):
        return (raw >> 1) ^ -(raw & 1)
    return struct.unpack(_STRUCT[type_], raw)[0]


_STRUCT = {"double": "<d", "float": "<f", "fixed64": "<Q", "sfixed64": "<q", "fixed32": "<I", "sfixed32": "<i"}
_SCALAR_TYPES = set(_STRUCT) | {"string", "bytes", "bool", "int32", "int64", "uint32", "uint64", "sint32", "sint64"}


def _zero(type_: str) -> Any:
    """The value a map entry gets when its key or value field is absent."""
    if type_ in ("string", "bytes"):
        return ""
    if type_ == "bool":
        return False
    if type_ in _SCALAR_TYPES:
        return 0
    special = _SPECIAL.get(type_)
    return special(b"", "") if special else {}


def _raw_fields(data: bytes) -> dict[int, Any]:
    """Last value per field number: enough for the small special messages."""
    return {number: value for number, _, value in _iter_fields(data)}


def _signed(value: Any) -> int:
    if not isinstance(value, int):
        raise _DecodeError("expected a varint")
    return value - (1 << 64) if value >= 1 << 63 else value


def _time(data: bytes, path: str, micro: bool = False) -> str | None:
    fields = _raw_fields(data)
    seconds, nanos = _signed(fields.get(1, 0)), _signed(fields.get(2, 0))
    if seconds == 0 and nanos == 0:
        return None  # Go's zero Time is JSON null
    try:
        when = _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000)
    except OverflowError:
        raise _DecodeError(f"timestamp {seconds}s is out of range", path) from None
    return micro_timestamp(when) if micro else timestamp(when)


def _micro_time(data: bytes, path: str) -> str | None:
    return _time(data, path, micro=True)


def go_duration(nanoseconds: int) -> str:
    """Go's ``time.Duration.String()``: ``1h2m3.5s``, ``1.5ms``, ``0s``."""
    if nanoseconds == 0:
        return "0s"
    sign, n = ("-" if nanoseconds < 0 else ""), abs(nanoseconds)
    if n < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if n >= size:
                return sign + _fraction(n, size) + unit
    hours, rest = divmod(n, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _fraction(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    return f"{sign}{minutes}m{text}" if minutes else sign + text


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(unit)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"


def _duration(data: bytes, path: str) -> str:
    return go_duration(_signed(_raw_fields(data).get(1, 0)))


def _quantity(data: bytes, path: str) -> str:
    text = _raw_fields(data).get(1, b"")
    return _scalar("string", text) if text else "0"


def _int_or_string(data: bytes, path: str) -> int | str:
    fields = _raw_fields(data)
    if fields.get(1, 0) == 1:  # intstr.String
        return _scalar("string", fields.get(3, b""))
    return _scalar("int32", fields.get(2, 0))


def _raw_json(data: bytes, path: str) -> Any:
    raw = _raw_fields(data).get(1, b"")
    if not raw:
        return None
    if isinstance(raw, bytes) and raw.startswith(MAGIC):
        return decode_object(raw)
    try:
        return orjson.loads(raw)
    except (ValueError, TypeError):
        raise _DecodeError("embedded object is neither JSON nor Kubernetes protobuf", path) from None


def _fields_v1(data: bytes, path: str) -> Any:
    value = _raw_json(data, path)
    return {} if value is None else value


def _verbs(data: bytes, path: str) -> list[str]:
    return [_scalar("string", v) for n, w, v in _iter_fields(data) if n == 1 and w == _LEN]


_SPECIAL = {
    META + "Time": _time,
    META + "Timestamp": _time,
    META + "MicroTime": _micro_time,
    META + "Duration": _duration,
    META + "FieldsV1": _fields_v1,
    META + "Verbs": _verbs,
    "k8s.io.apimachinery.pkg.api.resource.Quantity": _quantity,
    "k8s.io.apimachinery.pkg.util.intstr.IntOrString": _int_or_string,
    "k8s.io.apimachinery.pkg.runtime.RawExtension": _raw_json,
}
