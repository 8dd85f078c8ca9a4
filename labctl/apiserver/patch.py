"""The three PATCH bodies kube-apiserver accepts: JSON patch, JSON merge patch, strategic merge patch.

``kubectl apply`` (client-side), ``kubectl edit``, ``kubectl scale``, ``kubectl label``,
``kubectl rollout restart`` all send *strategic merge patches*: JSON merge patches in
which some lists merge element by element (containers by ``name``, ports by
``containerPort`` ...) instead of being replaced, plus a few ``$``-directives. Which
lists merge, and by what key, comes from the kind's OpenAPI schema
(``x-kubernetes-patch-strategy`` / ``x-kubernetes-patch-merge-key``, read through
:func:`labctl.apiserver.openapi.patch_meta`), exactly as apimachinery's
``pkg/util/strategicpatch`` reads Go struct tags. The merge below is a port of its
``mergeMap``/``mergeSlice`` (apply side, ``MergeParallelList`` and
``IgnoreUnmatchedNulls`` on), so order, directives and error texts follow Kubernetes.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import orjson

from labctl.apiserver import openapi
from labctl.apiserver.errors import APIError, bad_request
from labctl.apiserver.openapi import PatchMeta
from labctl.apiserver.typecheck import json_kind

MAX_JSON_PATCH_OPERATIONS = 10000  # kube-apiserver's maxJSONPatchOperations
MAX_JSON_PATCH_COPY_BYTES = 3 * 1024 * 1024  # copies may add at most a request body's worth
GENERIC_422 = "the server rejected our request due to an error in our request"

DIRECTIVE = "$patch"
RETAIN_KEYS = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST = "$deleteFromPrimitiveList"
SET_ELEMENT_ORDER = "$setElementOrder"

# apimachinery's mergepatch errors, by text; the first group are BadRequest (400)
# in kube-apiserver's interpretStrategicMergePatchError, the second 422.
ERR_BAD_JSON_DOC = "invalid JSON document"
ERR_PRIMITIVE_LIST = "invalid patch format of primitive list"
ERR_RETAIN_KEYS = "invalid patch format of retainKeys"
ERR_SET_ORDER = "invalid patch format of setElementOrder list"
ERR_LIST_OF_LISTS = "lists of lists are not supported"
_BAD_REQUEST = {ERR_BAD_JSON_DOC, ERR_PRIMITIVE_LIST, ERR_RETAIN_KEYS, ERR_SET_ORDER}
_UNPROCESSABLE = {ERR_LIST_OF_LISTS}


class _PatchFailure(Exception):
    """A strategicpatch error; turned into the Status kube-apiserver would answer."""


# --- JSON patch (RFC 6902) and JSON merge patch (RFC 7386) -----------------------------

def json_patch(obj: dict[str, Any], patch_bytes: bytes) -> dict[str, Any]:
    """Apply an RFC 6902 patch (``application/json-patch+json``) to a copy of ``obj``.

    Like kube-apiserver: a body that is not a list of operations is 400 BadRequest, too
    many operations 413, and an operation that cannot apply (missing path, failed
    ``test``, unknown ``op``) 422 with the generic "rejected our request" message and
    evanphx/json-patch's words as its cause (``testing value /spec/replicas failed: test
    failed``), see :class:`_JSONPatch`.
    """
    try:
        ops = json.loads(patch_bytes or b"null")
    except ValueError as err:
        raise bad_request(f"failed to decode JSON patch: {err}") from err
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise bad_request(f"json: cannot unmarshal {json_kind(ops)} into Go value of type jsonpatch.Patch")
    if len(ops) > MAX_JSON_PATCH_OPERATIONS:
        raise APIError(413, "RequestEntityTooLarge", "Request entity too large: The allowed maximum operations "
                       f"in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got: {len(ops)}")
    try:
        result = _JSONPatch(copy.deepcopy(obj)).apply(ops)
    except _OpFailure as err:
        raise _unprocessable(str(err)) from None
    if not isinstance(result, dict):
        raise _unprocessable("the patched document is not a JSON object")
    return result


class _OpFailure(Exception):
    """An operation that cannot apply; ``str()`` is evanphx/json-patch's (v4) error text."""


_MISSING = "missing value"  # evanphx's ErrMissing, the end of most of its messages
_INDEX_TEXT = re.compile(r"[+-]?[0-9]+\Z")
_POINTER_ESCAPE = re.compile(r"~[01]")


class _JSONPatch:
    """evanphx/json-patch v4 (``gopkg.in/evanphx/json-patch.v4``), the engine kube-apiserver patches with.

    Ported for its semantics and error texts, quirks included, so a student reads what a
    real cluster answers: ``replace`` of a missing object key adds it, negative array
    indices count from the end, and a path without a leading ``/`` is read from the root.
    """

    def __init__(self, doc: Any) -> None:
        self.doc = doc
        self.copied = 0  # bytes copied so far: copies may not grow a document without bound

    def apply(self, ops: list[dict[str, Any]]) -> Any:
        for op in ops:
            kind = op.get("op")
            handler = getattr(self, f"_op_{kind}", None) if kind in _OPS else None
            if handler is None:
                raise _OpFailure(f"Unexpected kind: {kind if isinstance(kind, str) else 'unknown'}")
            handler(op)
        return self.doc

    # the containers: an object or an array, found by all but the last token of a path
    def _find(self, path: str) -> tuple[Any, str]:
        tokens = path.split("/")
        if len(tokens) < 2:
            return None, ""
        node = self.doc
        for token in tokens[1:-1]:
            try:
                node = _get(node, _unescape(token))
            except _OpFailure:
                return None, ""
            if not isinstance(node, (dict, list)):
                return None, ""
        return node, _unescape(tokens[-1])

    def _op_add(self, op: dict[str, Any]) -> None:
        path = _op_text(op, "path", "add operation failed to decode path", wrap=False)
        container, key = self._find(path)
        if container is None:
            raise _OpFailure(f'add operation does not apply: doc is missing path: "{path}": {_MISSING}')
        _wrapped(f"error in add for path: '{path}'", _add, container, key, op.get("value"))

    def _op_remove(self, op: dict[str, Any]) -> None:
        path = _op_text(op, "path", "remove operation failed to decode path", wrap=False)
        container, key = self._find(path)
        if container is None:
            raise _OpFailure(f'remove operation does not apply: doc is missing path: "{path}": {_MISSING}')
        _wrapped(f"error in remove for path: '{path}'", _remove, container, key)

    def _op_replace(self, op: dict[str, Any]) -> None:
        path = _op_text(op, "path", "replace operation failed to decode path")
        if path == "":
            if isinstance(op.get("value"), (dict, list)):  # anything else: a no-op in v4 (a nil error)
                self.doc = op["value"]
            return
        container, key = self._find(path)
        if container is None:
            raise _OpFailure(f"replace operation does not apply: doc is missing path: {path}: {_MISSING}")
        try:
            _get(container, key)
        except _OpFailure:
            raise _OpFailure(f"replace operation does not apply: doc is missing key: {path}: {_MISSING}") from None
        _wrapped(f"error in remove for path: '{path}'", _set, container, key, op.get("value"))

    def _op_move(self, op: dict[str, Any]) -> None:
        source = _op_text(op, "from", "move operation failed to decode from")
        container, key = self._find(source)
        if container is None:
            raise _OpFailure(f"move operation does not apply: doc is missing from path: {source}: {_MISSING}")
        value = _wrapped(f"error in move for path: '{key}'", _get, container, key)
        _wrapped(f"error in move for path: '{key}'", _remove, container, key)
        path = _op_text(op, "path", "move operation failed to decode path")
        container, key = self._find(path)
        if container is None:
            raise _OpFailure(f"move operation does not apply: doc is missing destination path: {path}: {_MISSING}")
        _wrapped(f"error in move for path: '{path}'", _add, container, key, value)

    def _op_test(self, op: dict[str, Any]) -> None:
        path = _op_text(op, "path", "test operation failed to decode path")
        expected = op.get("value")
        if path == "":
            if not _json_equal(self.doc, expected):
                raise _OpFailure(f"testing value {path} failed: test failed")
            return
        container, key = self._find(path)
        if container is None:
            raise _OpFailure(f"test operation does not apply: is missing path: {path}: {_MISSING}")
        value = _wrapped(f"error in test for path: '{path}'", _get, container, key)
        if (value is None) != (expected is None) or not _json_equal(value, expected):
            raise _OpFailure(f"testing value {path} failed: test failed")

    def _op_copy(self, op: dict[str, Any]) -> None:
        source = _op_text(op, "from", "copy operation failed to decode from")
        container, key = self._find(source)
        if container is None:
            raise _OpFailure(f"copy operation does not apply: doc is missing from path: {source}: {_MISSING}")
        value = _wrapped(f"error in copy for from: '{source}'", _get, container, key)
        path = _op_text(op, "path", "copy operation failed to decode path", wrap=False)
        container, key = self._find(path)
        if container is None:
            raise _OpFailure(f"copy operation does not apply: doc is missing destination path: {path}: {_MISSING}")
        try:
            raw = orjson.dumps(value)
        except orjson.JSONEncodeError as err:  # nested beyond orjson's 255 levels
            raise _OpFailure(f"error while performing deep copy: {err}") from None
        self.copied += len(raw)
        if self.copied > MAX_JSON_PATCH_COPY_BYTES:
            raise _OpFailure(f"Unable to complete the copy, the accumulated size increase of copy is {self.copied}, "
                             f"exceeding the limit {MAX_JSON_PATCH_COPY_BYTES}")
        _wrapped("error while adding value during copy", _add, container, key, orjson.loads(raw))


_OPS = ("add", "remove", "replace", "move", "test", "copy")


def _op_text(op: dict[str, Any], name: str, context: str, wrap: bool = True) -> str:
    """An operation's ``path`` or ``from``; v4 wraps the lookup's own error for some operations only."""
    value = op.get(name)
    if isinstance(value, str):
        return value
    if not wrap:
        raise _OpFailure(f"{context}: {_MISSING}")
    missing = "operation missing path field" if name == "path" else "operation, missing from field"
    raise _OpFailure(f"{context}: {missing}: {_MISSING}")


def _wrapped(context: str, fn: Any, *args: Any) -> Any:
    """``errors.Wrapf(err, context)``: the container's error behind the operation's words."""
    try:
        return fn(*args)
    except _OpFailure as err:
        raise _OpFailure(f"{context}: {err}") from None


def _unescape(token: str) -> str:
    return _POINTER_ESCAPE.sub(lambda m: "/" if m.group() == "~1" else "~", token)


def _atoi(key: str) -> int:
    """Go's ``strconv.Atoi``, with its error texts."""
    if not _INDEX_TEXT.match(key):
        raise _OpFailure(f'strconv.Atoi: parsing "{key}": invalid syntax')
    index = int(key)
    if not -(2**63) <= index < 2**63:
        raise _OpFailure(f'strconv.Atoi: parsing "{key}": value out of range')
    return index


def _bad_index(index: int) -> _OpFailure:
    return _OpFailure(f"Unable to access invalid index: {index}: invalid index referenced")


def _position(key: str, size: int) -> int:
    """An array index of a container of ``size``: negative counts from the end (v4's default)."""
    index = _atoi(key)
    if index >= size or index < -size:
        raise _bad_index(index)
    return index + size if index < 0 else index


def _get(container: Any, key: str) -> Any:
    if isinstance(container, dict):
        return container.get(key)  # a missing key reads as null, no error
    return container[_position(key, len(container))]


def _set(container: Any, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
    else:
        container[_position(key, len(container))] = value


def _add(container: Any, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
    elif key == "-":
        container.append(value)
    else:
        try:
            index = _position(key, len(container) + 1)
        except _OpFailure as err:
            if "strconv" in str(err):
                raise _OpFailure(f"value was not a proper array index: '{key}': {err}") from None
            raise
        container.insert(index, value)


def _remove(container: Any, key: str) -> None:
    if isinstance(container, dict):
        if key not in container:
            raise _OpFailure(f"Unable to remove nonexistent key: {key}: {_MISSING}")
        del container[key]
    else:
        del container[_position(key, len(container))]


def _json_equal(left: Any, right: Any) -> bool:
    """JSON equality as the raw values compare: ``true`` is not ``1``, ``1`` is not ``1.0``."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and all(_json_equal(v, right[k]) for k, v in left.items())
    if isinstance(left, list):
        return len(left) == len(right) and all(_json_equal(a, b) for a, b in zip(left, right, strict=True))
    return bool(left == right)


def merge_patch(obj: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply an RFC 7386 JSON merge patch (``application/merge-patch+json``) to a copy of ``obj``.

    ``null`` deletes a key, objects merge recursively, everything else (lists too)
    replaces. A body that is not an object is rejected as kube does ("Invalid JSON Patch").
    """
    if not isinstance(patch, dict):
        raise bad_request("Invalid JSON Patch")
    return _merge_patch_value(copy.deepcopy(obj), patch)


def _merge_patch_value(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = target if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch_value(result.get(key), value)
    return result


def load_patch_body(body: bytes) -> Any:
    """Decode a merge/strategic patch body; a syntax error is 400 as in kube-apiserver."""
    try:
        return json.loads(body or b"{}")
    except ValueError as err:
        raise bad_request(f"error decoding patch: {err}") from err


def _unprocessable(detail: str) -> APIError:
    """kube-apiserver's ``NewGenericServerResponse(422, ...)``: a generic message, the cause beside it."""
    return APIError(422, "Invalid", GENERIC_422, {"causes": [{"reason": "UnexpectedServerResponse",
                                                              "message": detail}]})


# --- strategic merge patch -------------------------------------------------------------

def strategic_merge_patch(obj: dict[str, Any], patch: Any, api_version: str, kind: str) -> dict[str, Any]:
    """Apply a strategic merge patch to a copy of ``obj`` of kind ``api_version``/``kind``.

    Kinds without a schema fall back to merge-patch behaviour (maps merge, lists are
    replaced); the ``$patch``-style directives still work.
    """
    return apply_strategic_merge(obj, patch, openapi.patch_meta(api_version, kind))


def apply_strategic_merge(obj: dict[str, Any], patch: Any, meta: PatchMeta | None) -> dict[str, Any]:
    """The merge itself, against any schema walker (None: no list merges by key)."""
    if not isinstance(patch, dict):
        raise bad_request(ERR_BAD_JSON_DOC)
    try:
        return _merge_map(copy.deepcopy(obj), copy.deepcopy(patch), meta)
    except _PatchFailure as err:
        raise _smp_error(str(err)) from err


def _smp_error(message: str) -> APIError:
    """Status for a failed strategic merge, as kube-apiserver's interpretStrategicMergePatchError."""
    if message in _BAD_REQUEST:
        return bad_request(message)
    if message in _UNPROCESSABLE:
        return _unprocessable(message)
    # kube-apiserver passes other strategicpatch errors through unconverted, which its error
    # writer turns into a 500; a patch a client sends is never a server error, so 422 here
    # with the same text: kubectl prints "Error from server (Invalid): <message>".
    return APIError(422, "Invalid", message)


def _field(meta: PatchMeta | None, key: str) -> tuple[PatchMeta | None, str, str]:
    """(child meta, patch strategy other than retainKeys, merge key) of ``key``."""
    if meta is None:
        return None, "", ""
    child, strategies, merge_key = meta.field(key)
    others = [s for s in strategies if s != "retainKeys"]
    if len(others) > 1:
        raise _PatchFailure(f"unexpected patch strategy: {list(strategies)}")
    return child, (others[0] if others else ""), merge_key


def _merge_map(original: dict[str, Any] | None, patch: dict[str, Any], meta: PatchMeta | None) -> dict[str, Any]:
    """apimachinery ``mergeMap``: merge ``patch`` into ``original`` (mutated and returned)."""
    if DIRECTIVE in patch:
        return _map_directive(patch[DIRECTIVE], patch)
    if original is None:
        original = {}
    _apply_retain_keys(original, patch)
    _merge_set_element_order(original, patch, meta)
    for key, value in list(patch.items()):
        is_delete_list = False
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            key, is_delete_list = _directive_target(key, DELETE_FROM_PRIMITIVE_LIST, ERR_PRIMITIVE_LIST), True
        if value is None:  # null deletes; a null for an absent key is ignored
            original.pop(key, None)
            continue
        child, strategy, merge_key = _field(meta, key)
        current: Any = original.get(key)  # a JSON value: the test below checks it has the patch's kind
        if key not in original or _kind(current) != _kind(value) or not isinstance(value, (dict, list)):
            if not is_delete_list:
                original[key] = _fresh(value, child, strategy, merge_key)
            continue
        if isinstance(value, dict):
            original[key] = _drop_nulls(value) if strategy == "replace" else _merge_map(current, value, child)
        elif strategy == "merge":
            original[key] = _merge_slice(current, value, child, merge_key, is_delete_list, key)
        else:
            original[key] = _drop_nulls(value)
    return original


def _fresh(value: Any, meta: PatchMeta | None, strategy: str, merge_key: str) -> Any:
    """A patch value with nothing to merge into: drop its nulls and directives.

    apimachinery copies such values as they are and relies on decoding into Go structs
    to drop ``null``s and unknown ``$`` keys; we store JSON, so we clean here.
    """
    if isinstance(value, dict):
        return _drop_nulls(value) if strategy == "replace" else _merge_map({}, value, meta)
    if isinstance(value, list) and strategy == "merge":
        return _merge_slice([], value, meta, merge_key, False, "")
    return _drop_nulls(value)


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_drop_nulls(v) for v in value]
    return value


def _map_directive(directive: Any, patch: dict[str, Any]) -> dict[str, Any]:
    if directive == "replace":  # the patch map is the new value
        patch.pop(DIRECTIVE)
        return _drop_nulls(patch)
    if directive == "delete":  # the map becomes empty
        return {}
    raise _PatchFailure(f"unknown patch type: {directive} in map: {_go_map(patch)}")


def _directive_target(key: str, prefix: str, error: str) -> str:
    """``$setElementOrder/containers`` -> ``containers`` (apimachinery ``extractKey``)."""
    head, sep, rest = key.partition("/")
    if not sep or head != prefix:
        raise _PatchFailure(error)
    return rest


def _apply_retain_keys(original: dict[str, Any], patch: dict[str, Any]) -> None:
    """``$retainKeys: [a, b]``: drop every other key from ``original`` (Deployment strategy, volumes)."""
    if RETAIN_KEYS not in patch:
        return
    retain = patch.pop(RETAIN_KEYS)
    if not isinstance(retain, list):
        raise _PatchFailure(ERR_RETAIN_KEYS)
    for key, value in patch.items():
        if value is None or key.startswith((DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)):
            continue
        if key not in retain:
            raise _PatchFailure(ERR_RETAIN_KEYS)
    for key in [k for k in original if k not in retain]:
        del original[key]


def _merge_set_element_order(original: dict[str, Any], patch: dict[str, Any], meta: PatchMeta | None) -> None:
    """apimachinery ``mergePatchIntoOriginal``: merge each list that has a ``$setElementOrder/<list>``
    and put its items in that order (kubectl apply sends one for every list it touches).

    Precedence: the ``$setElementOrder`` list, then the patch's order, then the live order.
    """
    for directive_key in [k for k in patch if k.startswith(SET_ELEMENT_ORDER)]:
        order = patch.pop(directive_key)
        if not isinstance(order, list):
            raise _PatchFailure(f"expected a []interface {{}}, but received a {_go_type(order)}")
        key = _directive_target(directive_key, SET_ELEMENT_ORDER, ERR_SET_ORDER)
        live, wanted = original.get(key), patch.get(key)
        for value in (live, wanted):
            if value is not None and not isinstance(value, list):
                raise _PatchFailure(f"expected a []interface {{}}, but received a {_go_type(value)}")
        child, strategy, merge_key = _field(meta, key)
        _validate_set_order(wanted, order, merge_key)
        if live is None and wanted is None:
            continue
        if live is None:
            merged = _fresh(wanted, child, strategy, merge_key)
        elif wanted is None:
            merged = live
        elif strategy == "merge":
            merged = _merge_slice(live, wanted, child, merge_key, False, key)
        else:
            merged = _drop_nulls(wanted)
        elements = (live or []) + (wanted or [])
        if elements:
            kind = _element_kind(elements)
            in_order, server_only = _partition(merged, order, merge_key, kind)
            merged = _normalize_element_order(in_order, server_only, order, live or [], merge_key, kind)
        original[key] = merged
        patch.pop(key, None)


def _validate_set_order(patch_list: list[Any] | None, order: list[Any], merge_key: str) -> None:
    """The patch list's items must appear in the ``$setElementOrder`` list, in the same order."""
    if not patch_list or not order:
        return
    items = [v for v in patch_list if not _is_delete(v)] if merge_key else patch_list
    i = j = 0
    while i < len(items) and j < len(order):
        if isinstance(items[i], dict) and DIRECTIVE in items[i]:
            i += 1
            continue
        if _merge_key_equal(items[i], order[j], merge_key):
            i += 1
        j += 1
    if i < len(items):
        raise _PatchFailure(f"The order in patch list:\n{_go_value(patch_list)}\n doesn't match "
                            f"{SET_ELEMENT_ORDER} list:\n{_go_value(order)}\n")


def _merge_key_equal(left: Any, right: Any, merge_key: str) -> bool:
    if not merge_key:
        return _same(left, right)
    for item in (left, right):
        if not isinstance(item, dict):
            raise _PatchFailure(f"expected a map[string]interface {{}}, but received a {_go_type(item)}")
        if merge_key not in item:
            raise _no_merge_key(item, merge_key)
    return _same(left[merge_key], right[merge_key])


def _merge_slice(original: list[Any], patch: list[Any], meta: PatchMeta | None, merge_key: str,
                 is_delete_list: bool, key: str) -> list[Any]:
    """apimachinery ``mergeSlice``: merge a ``patchStrategy: merge`` list."""
    if not original and not patch:
        return original
    kind = _element_kind(original + patch)
    elem_meta = meta.items() if meta else None
    if kind != "map":
        if is_delete_list:  # $deleteFromPrimitiveList/<key>
            return [v for v in original if not any(_same(v, d) for d in patch)]
        merged = _deduplicate(original + patch)
    else:
        if not merge_key:
            raise _PatchFailure(f"cannot merge lists without merge key for {key or 'list'}")
        original, patch = _apply_special_elements(original, patch, merge_key)
        merged = list(original)
        for item in patch:
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            index = _find(merged, merge_key, item[merge_key])
            if index >= 0:
                merged[index] = _merge_map(merged[index], item, elem_meta)
            else:
                merged.append(_merge_map({}, item, elem_meta))
    in_patch, server_only = _partition(merged, patch, merge_key, kind)
    return _normalize_element_order(in_patch, server_only, patch, original, merge_key, kind)


def _apply_special_elements(original: list[Any], patch: list[Any], merge_key: str) -> tuple[list[Any], list[Any]]:
    """Items with ``$patch``: ``delete`` removes by merge key, ``replace`` makes the rest of the patch the list."""
    plain: list[Any] = []
    replace = False
    for item in patch:
        if DIRECTIVE not in item:
            plain.append(item)
            continue
        directive = item[DIRECTIVE]
        if directive == "delete":
            if merge_key not in item:
                raise _no_merge_key(item, merge_key)
            original = [v for v in original if not (isinstance(v, dict) and merge_key in v
                                                     and _same(v[merge_key], item[merge_key]))]
        elif directive == "replace":
            replace = True
        elif directive == "merge":
            raise _PatchFailure("merging lists cannot yet be specified in the patch")
        else:
            raise _PatchFailure(f"unknown patch type: {directive} in map: {_go_map(item)}")
    if replace:
        return [_drop_nulls(v) for v in plain], []
    return original, plain


# --- ordering (apimachinery normalizeElementOrder and friends) --------------------------

def _partition(items: list[Any], by: list[Any], merge_key: str, kind: str) -> tuple[list[Any], list[Any]]:
    """Split ``items`` into those present in ``by`` (by merge key for maps) and the rest."""
    present: list[Any] = []
    rest: list[Any] = []
    for item in items:
        if kind == "map":
            if not isinstance(item, dict) or merge_key not in item:
                raise _no_merge_key(item, merge_key)
            found = _find(by, merge_key, item[merge_key]) >= 0
        else:
            found = any(_same(item, other) for other in by)
        (present if found else rest).append(item)
    return present, rest


def _normalize_element_order(in_patch: list[Any], server_only: list[Any], patch_order: list[Any],
                             server_order: list[Any], merge_key: str, kind: str) -> list[Any]:
    """Sort patch items by the patch order, live-only items by the live order, then interleave."""
    in_patch = _normalize_slice_order(in_patch, patch_order, merge_key, kind)
    server_only = _normalize_slice_order(server_only, server_order, merge_key, kind)
    return _merge_sorted(server_only, in_patch, server_order, merge_key, kind)


def _normalize_slice_order(items: list[Any], order: list[Any], merge_key: str, kind: str) -> list[Any]:
    deletes: list[Any] = []
    if kind == "map":
        for item in items + order:
            if not isinstance(item, dict) or merge_key not in item:
                raise _no_merge_key(item, merge_key)
        deletes = [v for v in items if _is_delete(v)]
        items = [v for v in items if not _is_delete(v)]
    items = list(items)
    ranks = [_index(order, item, merge_key, kind) for item in items]
    for i in range(1, len(items)):  # Go's stable insertion sort with its comparator: same swaps
        j = i
        # less(j, j-1): by position in ``order``, and "true" when either is not in it
        while j > 0 and (ranks[j] < ranks[j - 1] if ranks[j] >= 0 and ranks[j - 1] >= 0 else True):
            items[j], items[j - 1] = items[j - 1], items[j]
            ranks[j], ranks[j - 1] = ranks[j - 1], ranks[j]
            j -= 1
    return items + deletes


def _merge_sorted(left: list[Any], right: list[Any], server_order: list[Any], merge_key: str, kind: str) -> list[Any]:
    """Interleave live-only items (``left``) into patch items (``right``) by their live positions."""
    out: list[Any] = []
    i = j = 0
    while i < len(left) or j < len(right):
        if i >= len(left):
            out.append(right[j])
            j += 1
        elif j >= len(right):
            out.append(left[i])
            i += 1
        else:
            li, ri = _index(server_order, left[i], merge_key, kind), _index(server_order, right[j], merge_key, kind)
            if li >= 0 and ri >= 0 and li < ri:
                out.append(left[i])
                i += 1
            else:
                out.append(right[j])
                j += 1
    return out


def _index(items: list[Any], value: Any, merge_key: str, kind: str) -> int:
    if kind == "map":
        wanted = value.get(merge_key) if isinstance(value, dict) else None
        for i, item in enumerate(items):
            if _same(wanted, item.get(merge_key) if isinstance(item, dict) else None):
                return i
        return -1
    for i, item in enumerate(items):
        if _same(value, item):
            return i
    return -1


def _find(items: list[Any], merge_key: str, value: Any) -> int:
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _PatchFailure(f"value for key {i} is not a map.")
        if merge_key in item and _same(item[merge_key], value):
            return i
    return -1


def _is_delete(item: Any) -> bool:
    return isinstance(item, dict) and item.get(DIRECTIVE) == "delete"


def _deduplicate(items: list[Any]) -> list[Any]:
    """Go's ``deduplicateScalars``, literally (it moves the last item into a duplicate's slot)."""
    items = list(items)
    length = len(items) - 1
    i = 0
    while i < length:
        j = i + 1
        while j <= length:
            if _same(items[i], items[j]):
                items[j] = items[length]
                items = items[:length]
                length -= 1
                j -= 1
            j += 1
        i += 1
    return items


# --- JSON values seen the way Go's interface{} sees them --------------------------------

def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    return {dict: "map", list: "slice", str: "string", float: "float64"}.get(type(value), "nil")


def _same(left: Any, right: Any) -> bool:
    """Go ``==`` on decoded JSON: equal type and value (so ``1 != true``, ``1 != 1.0``, ``1 != "1"``)."""
    return type(left) is type(right) and left == right


def _element_kind(items: list[Any]) -> str:
    """apimachinery ``sliceElementType``: all items of one kind, and not lists."""
    kinds = {_kind(v) for v in items}
    if not kinds:
        raise _PatchFailure("no elements in any of the given slices")
    if "slice" in kinds:
        raise _PatchFailure(ERR_LIST_OF_LISTS)
    if len(kinds) > 1:
        raise _PatchFailure(f"list element types are not identical: {_go_value(items)}")
    return kinds.pop()


def _no_merge_key(item: Any, merge_key: str) -> _PatchFailure:
    return _PatchFailure(f"map: {_go_value(item)} does not contain declared merge key: {merge_key}")


def _go_value(value: Any) -> str:
    """Format like Go's ``%v`` (``map[name:nginx ports:[80]]``), for error texts kubectl shows."""
    if isinstance(value, dict):
        return _go_map(value)
    if isinstance(value, list):
        return "[" + " ".join(_go_value(v) for v in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _go_map(value: dict[str, Any]) -> str:
    return "map[" + " ".join(f"{k}:{_go_value(v)}" for k, v in sorted(value.items())) + "]"


def _go_type(value: Any) -> str:
    return {"map": "map[string]interface {}", "slice": "[]interface {}", "nil": "<nil>"}.get(_kind(value), _kind(value))
