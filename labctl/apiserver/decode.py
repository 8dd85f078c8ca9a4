"""Request bodies: bytes to a typed object, with the limits a hostile client cannot get past.

kube-apiserver decodes a body with Go's JSON decoder (nesting limited to 10,000), YAML
through sigs.k8s.io/yaml (goyaml's alias-expansion and depth limits), then into the kind's
Go struct (:mod:`labctl.apiserver.typecheck`). Python needs its own limits, lower ones,
because its decoders and everything after them recurse:

* nesting: :data:`MAX_DEPTH` levels of objects/arrays, for JSON, YAML and protobuf alike
  (orjson itself stops at 1,024 and serialises at most 255; Python recursion at ~1,000);
* YAML aliases: a document may grow by at most :data:`MAX_ALIAS_NODES` nodes through
  aliases, counted while composing, so a 500-byte "billion laughs" is refused after
  microseconds, before anything is expanded (goyaml's ``excessive aliasing``);
* a body larger than :data:`INLINE_BYTES` is decoded (and type-checked) in a worker
  thread, one such body at a time, so one client's 3 MiB document does not stall the event
  loop that serves everybody else (Python's decoders are slow: a 2.7 MB YAML takes ~1.5 s).

Errors are worded as kube-apiserver words them: a body it cannot even read is "the object
provided is unrecognized (must be of type Pod): ..." (400); a body of the wrong types
"Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal ..." (400);
``fieldValidation=Strict`` turns unknown and duplicate fields into a 400 ``strict decoding
error`` (nothing is stored), ``Warn`` (the default) into ``Warning`` headers, ``Ignore``
into nothing; in every mode an unknown field is dropped, never stored.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import yaml
from aiohttp import web
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

from . import errors, protobuf, typecheck

try:  # libyaml's parser: C speed for the events; composing stays ours (below), with limits
    from yaml._yaml import CParser as _Parser
except ImportError:  # pragma: no cover - PyYAML without libyaml
    from yaml.parser import Parser as _Parser  # type: ignore[assignment]
    from yaml.reader import Reader
    from yaml.scanner import Scanner

MAX_DEPTH = 100
MAX_ALIAS_NODES = 100_000
INLINE_BYTES = 64 * 1024
JSON_TYPES = ("application/json", "")
YAML_TYPES = ("application/yaml", "application/x-yaml")
PATCH_TYPES = {
    "application/json-patch+json": "json",
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/apply-patch+yaml": "apply",
}  # apply-patch+cbor needs kube's CBOR feature gate (off by default): a 415 there too
FIELD_VALIDATION = ("Ignore", "Warn", "Strict")
_FIND_KIND = ('struct { APIVersion string "json:\\"apiVersion,omitempty\\""; '
              'Kind string "json:\\"kind,omitempty\\"" }')


class DecodeError(Exception):
    """A body that cannot be read at all; ``str()`` is the decoder's own message (Go's wording)."""


@dataclass
class Body:
    """A decoded request body and what the decoder noticed on the way."""

    doc: Any
    raw: bytes = b""
    #: JSON: paths of repeated keys (``metadata.name``), sigs.k8s.io/json style; the last one wins
    duplicates: list[str] = field(default_factory=list)
    #: YAML: goyaml's strict error (``yaml: unmarshal errors: line 3: key "a" already set in map``)
    yaml_strict: list[str] = field(default_factory=list)

    def strict_errors(self, unknown: list[str]) -> list[str]:
        """The strict-decoding errors kube lists, duplicates before unknown fields (at most 100)."""
        found = self.yaml_strict + [f'duplicate field "{p}"' for p in self.duplicates]
        return (found + [f'unknown field "{p}"' for p in unknown])[:typecheck.MAX_STRICT_ERRORS]


# -- JSON ------------------------------------------------------------------------------------
def loads_json(data: bytes, find_duplicates: bool = True) -> Body:
    """Decode JSON within :data:`MAX_DEPTH`; note duplicate keys when asked (Strict/Warn)."""
    try:
        doc = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        if "depth" in str(err) or "recursion" in str(err).lower():
            raise DecodeError(_too_deep("json", "[")) from None
        raise DecodeError(str(err) if data.strip() else "unexpected end of JSON input") from None
    if data.count(b"[") + data.count(b"{") > MAX_DEPTH:
        check_depth(doc)
    body = Body(doc, data)
    if find_duplicates and data.count(b'"') >= 4 and isinstance(doc, (dict, list)):
        repeated: dict[int, list[str]] = {}
        body.doc = _reload_noting_duplicates(data, repeated)
        if repeated:
            body.duplicates = _paths_of(body.doc, repeated)
    return body


def _reload_noting_duplicates(data: bytes, repeated: dict[int, list[str]]) -> Any:
    """Decode again with the stdlib, whose hook sees every key pair (orjson keeps the last silently).

    orjson has already accepted the document and its depth is bounded, so this cannot fail;
    integers beyond 64 bits become floats as orjson makes them, so storage can encode them.
    """
    def pairs(items: list[tuple[str, Any]]) -> dict:
        obj = dict(items)
        if len(obj) != len(items):
            seen: set[str] = set()
            repeated[id(obj)] = [k for k, _ in items if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
        return obj
    return json.loads(data, object_pairs_hook=pairs, parse_int=_json_int)


def _paths_of(doc: Any, repeated: dict[int, list[str]]) -> list[str]:
    """Where the repeated keys are, in sigs.k8s.io/json's path style (``spec.containers[0].name``)."""
    found: list[str] = []
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, dict):
            found += [f"{path}.{key}" if path else key for key in repeated.get(id(value), ())]
            stack += [(v, f"{path}.{k}" if path else k) for k, v in value.items() if isinstance(v, (dict, list))]
        else:
            stack += [(v, f"{path}[{i}]") for i, v in enumerate(value) if isinstance(v, (dict, list))]
    return sorted(found)


def _json_int(text: str) -> int | float:
    number = int(text)
    return number if -(2**63) <= number < 2**64 else float(text)


def check_depth(doc: Any) -> None:
    """Refuse a decoded document nested deeper than :data:`MAX_DEPTH` (iterative: no recursion)."""
    stack: list[tuple[Any, int]] = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise DecodeError(_too_deep("json", "{" if isinstance(value, dict) else "["))
        children = value.values() if isinstance(value, dict) else value
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))


def _too_deep(syntax: str, char: str) -> str:
    if syntax == "yaml":
        return f"yaml: exceeded max depth of {MAX_DEPTH}"
    return f"invalid character '{char}' exceeded max depth of {MAX_DEPTH}"


# -- YAML ------------------------------------------------------------------------------------
class _Composer:
    """PyYAML's composer with limits: depth, alias expansion, and goyaml's strict duplicate check.

    For every node it records its *size*, the number of nodes it stands for once aliases
    are expanded, and its *height*, its expanded nesting; an alias adds its target's size to
    the running total and its height to the depth where it stands, so the expanded document
    is measured without expanding anything.
    """

    # the parser's and the resolver's methods, mixed in by _Loader
    get_event: Callable[[], Any]
    peek_event: Callable[[], Any]
    check_event: Callable[..., bool]
    resolve: Callable[[type, Any, Any], str]

    def start_composing(self) -> None:
        self.anchors: dict[str, Node] = {}
        self.measured: dict[int, tuple[int, int]] = {}  # id(node) -> (size, height), once composed
        self.expanded = 0  # nodes of the expanded document so far
        self.aliased = 0  # of which through aliases
        self.duplicate_keys: list[str] = []

    def compose_document_limited(self) -> Node | None:
        self.get_event()  # StreamStart
        if self.check_event(StreamEndEvent):
            return None
        self.get_event()  # DocumentStart
        node = self._compose(0)
        # goyaml reads only the first document, so only its end is read here
        self.get_event()  # DocumentEnd
        return node

    def _compose(self, depth: int) -> Node:
        if self.check_event(AliasEvent):
            return self._alias(self.get_event(), depth)
        if depth >= MAX_DEPTH:
            raise DecodeError(_too_deep("yaml", ""))
        if self.check_event(ScalarEvent):
            return self._scalar(self.get_event())
        if self.check_event(SequenceStartEvent):
            return self._sequence(depth)
        return self._mapping(depth)

    def _alias(self, event: Any, depth: int) -> Node:
        node = self.anchors.get(event.anchor)
        if node is None:
            raise yaml.composer.ComposerError(None, None, f"unknown anchor '{event.anchor}' referenced",
                                              event.start_mark)
        if id(node) not in self.measured:
            raise yaml.composer.ComposerError(None, None, f"anchor '{event.anchor}' value contains itself",
                                              event.start_mark)
        size, height = self.measured[id(node)]
        self.aliased += size
        self.expanded += size
        if self.aliased > MAX_ALIAS_NODES:
            raise DecodeError("yaml: document contains excessive aliasing")
        if depth + height > MAX_DEPTH:  # an alias nests its target where it stands
            raise DecodeError(_too_deep("yaml", ""))
        return node

    def _done(self, node: Node, before: int, height: int) -> Node:
        self.measured[id(node)] = (self.expanded - before + 1, height)
        self.expanded += 1
        return node

    def _scalar(self, event: Any) -> Node:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.resolve(ScalarNode, event.value, event.implicit)
        node = ScalarNode(tag, event.value, event.start_mark, event.end_mark, style=event.style)
        if event.anchor is not None:
            self.anchors[event.anchor] = node  # goyaml lets a later anchor of the same name win
        return self._done(node, self.expanded, 1)

    def _sequence(self, depth: int) -> Node:
        start = self.get_event()
        tag = start.tag
        if tag is None or tag == "!":
            tag = self.resolve(SequenceNode, None, start.implicit)
        node = SequenceNode(tag, [], start.start_mark, None, flow_style=start.flow_style)
        if start.anchor is not None:
            self.anchors[start.anchor] = node
        before = self.expanded
        while not self.check_event(SequenceEndEvent):
            node.value.append(self._compose(depth + 1))
        node.end_mark = self.get_event().end_mark
        height = 1 + max((self.measured[id(child)][1] for child in node.value), default=0)
        return self._done(node, before, height)

    def _mapping(self, depth: int) -> Node:
        start = self.get_event()
        tag = start.tag
        if tag is None or tag == "!":
            tag = self.resolve(MappingNode, None, start.implicit)
        node = MappingNode(tag, [], start.start_mark, None, flow_style=start.flow_style)
        if start.anchor is not None:
            self.anchors[start.anchor] = node
        before = self.expanded
        seen: set[str] = set()
        while not self.check_event(MappingEndEvent):
            key = self._compose(depth + 1)
            value = self._compose(depth + 1)
            if isinstance(key, ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                if key.value in seen:
                    self.duplicate_keys.append(f'line {key.start_mark.line + 1}: key "{key.value}" '
                                               f"already set in map")
                seen.add(key.value)
            node.value.append((key, value))
        node.end_mark = self.get_event().end_mark
        height = 1 + max((self.measured[id(child)][1] for pair in node.value for child in pair), default=0)
        return self._done(node, before, height)


class _JSONConstructor(SafeConstructor):
    """Constructs what sigs.k8s.io/yaml hands to the JSON decoder: JSON values only.

    Timestamps stay strings (goyaml keeps them strings for untyped targets), sets become
    maps of nulls, keys become strings (``1: a`` -> ``"1"``), integers beyond 64 bits
    become floats, and ``.inf``/``.nan`` are refused as Go's ``json.Marshal`` refuses them.
    """

    def construct_yaml_timestamp(self, node: ScalarNode) -> str:  # type: ignore[override]
        return node.value

    def construct_yaml_set(self, node: MappingNode):
        data: dict = {}
        yield data
        data.update(self.construct_mapping(node))

    def construct_yaml_binary(self, node: ScalarNode) -> str:  # type: ignore[override]
        return super().construct_yaml_binary(node).decode("utf-8", "replace")

    def construct_yaml_int(self, node: ScalarNode) -> int | float:  # type: ignore[override]
        number = super().construct_yaml_int(node)
        return number if -(2**63) <= number < 2**64 else float(number)

    def construct_yaml_float(self, node: ScalarNode) -> float:
        number = super().construct_yaml_float(node)
        if number != number or number in (float("inf"), float("-inf")):
            raise ConstructorError(None, None, f"json: unsupported value: {node.value}", node.start_mark)
        return number

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict:
        if not isinstance(node, MappingNode):
            raise ConstructorError(None, None, f"expected a mapping node, but found {node.id}", node.start_mark)
        self.flatten_mapping(node)  # `<<: *defaults` merge keys
        mapping = {}
        for key_node, value_node in node.value:
            # converted before insertion: `true` and `1` are one key to a Python dict, two in YAML
            key = _json_key(self.construct_object(key_node, deep=deep), key_node)
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping

    def construct_yaml_omap(self, node):
        data: list = []
        yield data
        data.extend(self.construct_sequence(node))

    construct_yaml_pairs = construct_yaml_omap


for _tag, _method in (("timestamp", "construct_yaml_timestamp"), ("set", "construct_yaml_set"),
                      ("binary", "construct_yaml_binary"), ("int", "construct_yaml_int"),
                      ("float", "construct_yaml_float"), ("omap", "construct_yaml_omap"),
                      ("pairs", "construct_yaml_pairs")):
    _JSONConstructor.add_constructor(f"tag:yaml.org,2002:{_tag}", getattr(_JSONConstructor, _method))


def _json_key(key: Any, node: Node) -> str:
    """sigs.k8s.io/yaml's key conversion: ints, floats and bools become their text; others fail."""
    if isinstance(key, str):
        return key
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, (int, float)):
        return str(key) if isinstance(key, int) else format(key, "g")
    raise ConstructorError(None, None, f"unsupported map key of type: {type(key).__name__}, key: {key!r}",
                           node.start_mark)


if _Parser.__module__ == "yaml._yaml":
    class _Loader(_Composer, _Parser, _JSONConstructor, Resolver):
        def __init__(self, stream: bytes) -> None:
            _Parser.__init__(self, stream)
            _JSONConstructor.__init__(self)
            Resolver.__init__(self)
else:  # pragma: no cover
    class _Loader(_Composer, Reader, Scanner, _Parser, _JSONConstructor, Resolver):  # type: ignore[no-redef]
        def __init__(self, stream: bytes) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            _Parser.__init__(self)  # type: ignore[call-arg]
            _JSONConstructor.__init__(self)
            Resolver.__init__(self)


def loads_yaml(data: bytes) -> Body:
    """Decode the first YAML document as JSON data, within the depth and alias limits."""
    loader = _Loader(data)
    loader.start_composing()
    try:
        node = loader.compose_document_limited()
        doc = None if node is None else loader.construct_document(node)
    except yaml.MarkedYAMLError as err:
        raise DecodeError(_yaml_message(err)) from None
    except yaml.YAMLError as err:
        raise DecodeError(f"yaml: {err}") from None
    finally:
        dispose = getattr(loader, "dispose", None)
        if dispose:
            dispose()
    body = Body(doc, data)
    if loader.duplicate_keys:
        body.yaml_strict = ["yaml: unmarshal errors:\n  " + "\n  ".join(loader.duplicate_keys)]
    return body


def _yaml_message(err: yaml.MarkedYAMLError) -> str:
    """goyaml's shape: ``yaml: line 2: mapping values are not allowed in this context``."""
    mark = err.problem_mark or err.context_mark
    problem = err.problem or err.context or "invalid YAML"
    return f"yaml: line {mark.line + 1}: {problem}" if mark else f"yaml: {problem}"


# -- request bodies ----------------------------------------------------------------------------
@dataclass
class Patch:
    """A PATCH request: its type (``json``, ``merge``, ``strategic``, ``apply``) and decoded body."""

    type: str
    body: Body


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


async def read_object(request: web.Request, api_version: str, kind: str,
                      field_validation: str) -> tuple[dict, list[str]]:
    """Read a create/update body as a ``kind`` object: (object, warnings), or a 4xx worded like kube's.

    Decoding and the type check run in a worker thread when the body is large.
    """
    data = await request.read()
    ctype = request.headers.get("Content-Type", "application/json")
    return await _offload(data, typed_object, data, ctype, api_version, kind, field_validation)


def patch_type_of(content_type: str) -> str:
    """``json``, ``merge``, ``strategic`` or ``apply``; an unknown patch media type is a 415 listing the others."""
    patch_type = PATCH_TYPES.get(media_type(content_type))
    if patch_type is None:
        raise errors.APIError(415, "UnsupportedMediaType",
                              "the body of the request was in an unknown format - accepted media types include: "
                              + ", ".join(PATCH_TYPES))
    return patch_type


async def read_patch(request: web.Request, patch_type: str, field_validation: str) -> Patch:
    """Read a PATCH body of ``patch_type`` within the limits."""
    data = await request.read()
    body = await _offload(data, decode_patch_body, data, patch_type, field_validation != "Ignore")
    return Patch(patch_type, body)


async def read_untyped(request: web.Request, kind: str = "") -> dict:
    """A body the server checks itself (TokenRequest, the access reviews): within the limits, no type check."""
    data = await request.read()
    ctype = request.headers.get("Content-Type", "application/json")
    doc, _ = await _offload(data, typed_object, data, ctype, "", kind, "Ignore")
    return doc


#: one large body is decoded at a time: a flood of them queues instead of multiplying the
#: CPU they take from the event loop (threads share one interpreter lock anyway)
_LARGE_BODIES = asyncio.Semaphore(1)


async def _offload(data: bytes, fn, *args: Any) -> Any:
    """Run a decoder inline for small bodies, in a worker thread for large ones."""
    if len(data) <= INLINE_BYTES:
        return fn(*args)
    async with _LARGE_BODIES:
        return await asyncio.to_thread(fn, *args)


def typed_object(data: bytes, content_type: str, api_version: str, kind: str,
                 field_validation: str) -> tuple[dict, list[str]]:
    """Bytes to a type-checked ``kind`` object and the strict-decoding warnings (see :func:`read_object`)."""
    ctype = media_type(content_type)
    try:
        if protobuf.is_protobuf(ctype):
            # kubectl's typed commands (create configmap|deployment|secret|service ...) send protobuf
            body = Body(protobuf.decode_object(data), data)
            check_depth(body.doc)
        elif ctype in YAML_TYPES:
            body = loads_yaml(data)
        elif ctype in JSON_TYPES:
            body = loads_json(data, field_validation != "Ignore")
        else:
            raise errors.unsupported_media_type(ctype)
    except DecodeError as err:
        detail = str(err) if ctype in YAML_TYPES else f"couldn't get version/kind; json parse error: {err}"
        raise unrecognized(kind, data, detail) from None
    return object_from(body, api_version, kind, field_validation)


def unrecognized(kind: str, data: bytes, detail: str) -> errors.APIError:
    """kube's ``transformDecodeError`` when the body's kind could not even be read."""
    of_type = f" (must be of type {kind})" if kind else ""
    return errors.bad_request(f"the object provided is unrecognized{of_type}: {detail} ({_summary(data)})")


def _summary(data: bytes, limit: int = 30) -> str:
    """kube's ``summarizeData``: JSON objects as text, anything else as hex, cut at 30 bytes."""
    if not data:
        return "<empty>"
    cut = data[:limit]
    text = cut.decode("utf-8", "replace") if data[:1] == b"{" else cut.hex()
    return text + " ..." if len(data) > limit else text


def object_from(body: Body, api_version: str, kind: str, field_validation: str) -> tuple[dict, list[str]]:
    """The decoded body as a ``kind`` object, type-checked: (object, warnings), or a 400 worded like kube's."""
    doc = {} if body.doc is None else body.doc  # Go decodes `null` into an empty object
    if not isinstance(doc, dict):
        raise unrecognized(kind, body.raw, "couldn't get version/kind; json parse error: json: cannot unmarshal "
                                           f"{typecheck.json_kind(doc)} into Go value of type {_FIND_KIND}")
    report = typecheck.check(api_version, kind, doc, field_validation != "Ignore")
    sent = doc.get("kind")
    prefix = (f'{sent if isinstance(sent, str) and sent else kind} in version "{api_version.rpartition("/")[2]}" '
              f"cannot be handled as a {kind}: ")
    if report.mismatch:
        raise errors.bad_request(prefix + report.mismatch.go_message())
    return doc, _strict_outcome(body.strict_errors(report.unknown), field_validation, prefix)


def check_apply_patch(patch: Patch, api_version: str, kind: str) -> None:
    """Server-side apply types its patch before merging, and refuses any unknown field whatever the mode.

    kube's field manager converts the apply body to a typed value first; a field the
    schema does not declare fails that conversion (``failed to create typed patch object
    (default/web; apps/v1, Kind=Deployment): .spec.replica: field not declared in schema``,
    a 500 in kube, a 400 here), so ``fieldValidation`` never lets one through.
    """
    doc = copy.deepcopy(patch.body.doc)
    report = typecheck.check(api_version, kind, doc, True)
    if report.mismatch:
        raise errors.bad_request(f"{_typed_patch_failure(doc, api_version, kind)}: {report.mismatch.apply_message()}")
    if report.unknown:
        found = [f".{path}: field not declared in schema" for path in report.unknown]
        detail = found[0] if len(found) == 1 else "\n  ".join(["errors:", *found])
        raise errors.bad_request(f"{_typed_patch_failure(doc, api_version, kind)}: {detail}")


def _typed_patch_failure(doc: dict, api_version: str, kind: str) -> str:
    """structured-merge-diff's prefix, naming the object as kube's ``objectGVKNN`` does."""
    meta = doc.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    group, _, version = api_version.rpartition("/")
    return (f"failed to create typed patch object ({meta.get('namespace') or ''}/{meta.get('name') or ''}; "
            f"{group}/{version}, Kind={kind})")


def patched_object(patched: dict, current: dict, patch: Patch, api_version: str, kind: str,
                   field_validation: str) -> list[str]:
    """Type-check the result of a patch, worded per patch type as kube words it; returns the warnings.

    JSON, merge and strategic patches are decoded into the Go struct after merging, and a
    type error is a 422 naming the field ``patch``. Unknown fields are dropped from the
    result (never stored) and, by ``fieldValidation``, refused or reported; those the
    stored object already had (written before unknown fields were dropped) are not the
    patch's doing and are dropped silently. Server-side apply's patch was typed before
    merging (:func:`check_apply_patch`): what is left for it is goyaml's duplicate keys,
    ``error strict decoding YAML`` as kube words it.
    """
    strict = field_validation != "Ignore"
    report = typecheck.check(api_version, kind, patched, strict)
    if report.mismatch:
        if patch.type == "apply":
            raise errors.bad_request(f"{_typed_patch_failure(patched, api_version, kind)}: "
                                     f"{report.mismatch.apply_message()}")
        shown = orjson.dumps(patched).decode()
        raise errors.invalid_object("", "", "", [errors.invalid("patch", shown, report.mismatch.go_message())])
    if patch.type == "apply":
        found = [f"error converting YAML to JSON: {text}" for text in patch.body.yaml_strict]
        if found and field_validation == "Strict":
            raise errors.bad_request(f"error strict decoding YAML: {found[0]}")
        return found if field_validation == "Warn" else []
    unknown = report.unknown
    if unknown and current:
        already = set(typecheck.check(api_version, kind, copy.deepcopy(current), True).unknown)
        unknown = [p for p in unknown if p not in already]
    return _strict_outcome(patch.body.strict_errors(unknown), field_validation, "")


def _strict_outcome(found: list[str], field_validation: str, prefix: str) -> list[str]:
    if not found:
        return []
    if field_validation == "Strict":
        raise errors.bad_request(prefix + "strict decoding error: " + ", ".join(found))
    return found if field_validation == "Warn" else []


def decode_patch_body(data: bytes, patch_type: str, find_duplicates: bool) -> Body:
    """A PATCH body: YAML for server-side apply, JSON for the other three types."""
    try:
        if patch_type == "apply":
            return loads_yaml(data)
        return loads_json(data, find_duplicates)
    except DecodeError as err:
        if patch_type == "apply":
            raise errors.bad_request(f"error decoding YAML: {err}") from None
        raise errors.bad_request(f"error decoding patch: {err}") from None
