"""``labelSelector`` and ``fieldSelector`` query parameters, parsed and matched as kube-apiserver does.

The label grammar is a port of apimachinery's ``labels.Parse`` lexer and recursive-descent
parser, including its quirks (``x in ()`` means "x is the empty string", ``in``/``notin``
are values inside parentheses) and its error wording, so ``kubectl get pods -l 'a b'``
prints the same message as against a real cluster. Field selectors follow
``fields.ParseSelector`` plus each resource's field-label conversion and
``ToSelectableFields``: only the fields Kubernetes indexes may be selected on.

Parse errors are raised as ``APIError`` 400 BadRequest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from labctl.apiserver.errors import bad_request
from labctl.kube.labels import (
    DOES_NOT_EXIST,
    DOUBLE_EQUALS,
    EQUALS,
    EXISTS,
    GREATER_THAN,
    IN,
    LESS_THAN,
    NOT_EQUALS,
    NOT_IN,
    LabelSelector,
    Requirement,
    SelectorError,
    check_label_key,
    new_requirement,
)

__all__ = [
    "FieldSelector",
    "FieldTerm",
    "LabelSelector",
    "Requirement",
    "parse_field_selector",
    "parse_label_selector",
    "selectable_fields",
]

# ---------------------------------------------------------------------------------------------
# Label selectors: lexer
# ---------------------------------------------------------------------------------------------

_END, _CLOSE, _COMMA, _BANG, _DEQ, _EQ, _GT, _ID, _IN, _LT, _NEQ, _NOTIN, _OPEN, _ERROR = range(14)
_TOKENS = {")": _CLOSE, ",": _COMMA, "!": _BANG, "==": _DEQ, "=": _EQ, ">": _GT, "in": _IN,
           "<": _LT, "!=": _NEQ, "notin": _NOTIN, "(": _OPEN}
_SPECIAL = set("=!(),><")
_WHITESPACE = set(" \t\r\n")


def _lex(text: str) -> list[tuple[int, str]]:
    """Split a selector into ``(token, literal)`` pairs ending with ``_END`` (``Lexer.Lex``)."""
    items: list[tuple[int, str]] = []
    pos, n = 0, len(text)
    while True:
        while pos < n and text[pos] in _WHITESPACE:
            pos += 1
        if pos >= n:
            items.append((_END, ""))
            return items
        if text[pos] in _SPECIAL:
            # Longest operator made of special symbols: "!=" beats "!", "==" beats "=".
            buf, last = "", None
            while pos < n and text[pos] in _SPECIAL:
                if (buf + text[pos]) in _TOKENS:
                    buf += text[pos]
                    last = (_TOKENS[buf], buf)
                    pos += 1
                elif last is not None:
                    break
                else:  # unreachable with today's token set, kept for parity with Go
                    buf += text[pos]
                    pos += 1
            items.append(last or (_ERROR, f"error expected: keyword found '{buf}'"))
            continue
        start = pos
        while pos < n and text[pos] not in _SPECIAL and text[pos] not in _WHITESPACE:
            pos += 1
        word = text[start:pos]
        items.append((_TOKENS.get(word, _ID), word))


# ---------------------------------------------------------------------------------------------
# Label selectors: parser
# ---------------------------------------------------------------------------------------------

_KEY_AND_OPERATOR, _VALUES = 0, 1
_BINARY = "in, notin, =, ==, !=, gt, lt"


class _Parser:
    """The ``labels.Parser`` state machine; errors are raised as :class:`SelectorError`."""

    def __init__(self, text: str) -> None:
        self.items = _lex(text)
        self.pos = 0

    def lookahead(self, context: int) -> tuple[int, str]:
        tok, lit = self.items[self.pos]
        return (_ID, lit) if context == _VALUES and tok in (_IN, _NOTIN) else (tok, lit)

    def consume(self, context: int) -> tuple[int, str]:
        item = self.lookahead(context)
        self.pos += 1
        return item

    def parse(self) -> list[Requirement]:
        reqs: list[Requirement] = []
        while True:
            tok, lit = self.lookahead(_VALUES)
            if tok == _END:
                return reqs
            if tok not in (_ID, _BANG):
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")
            try:
                reqs.append(self.parse_requirement())
            except SelectorError as err:
                raise SelectorError(f"unable to parse requirement: {err}") from None
            tok, lit = self.consume(_VALUES)
            if tok == _END:
                return reqs
            if tok != _COMMA:
                raise SelectorError(f"found '{lit}', expected: ',' or 'end of string'")
            tok2, lit2 = self.lookahead(_VALUES)
            if tok2 not in (_ID, _BANG):
                raise SelectorError(f"found '{lit2}', expected: identifier after ','")

    def parse_requirement(self) -> Requirement:
        key, operator = self.parse_key_and_infer_operator()
        if operator in (EXISTS, DOES_NOT_EXIST):
            return new_requirement(key, operator, [])
        operator = self.parse_operator()
        values = self.parse_values() if operator in (IN, NOT_IN) else self.parse_exact_value()
        # sets.String.List(): unique and sorted.
        return new_requirement(key, operator, sorted(values))

    def parse_key_and_infer_operator(self) -> tuple[str, str]:
        operator = ""
        tok, lit = self.consume(_VALUES)
        if tok == _BANG:
            operator = DOES_NOT_EXIST
            tok, lit = self.consume(_VALUES)
        if tok != _ID:
            raise SelectorError(f"found '{lit}', expected: identifier")
        check_label_key(lit, None)
        if self.lookahead(_VALUES)[0] in (_END, _COMMA) and operator != DOES_NOT_EXIST:
            operator = EXISTS
        return lit, operator

    def parse_operator(self) -> str:
        tok, lit = self.consume(_KEY_AND_OPERATOR)
        ops = {_IN: IN, _EQ: EQUALS, _DEQ: DOUBLE_EQUALS, _GT: GREATER_THAN, _LT: LESS_THAN,
               _NOTIN: NOT_IN, _NEQ: NOT_EQUALS}
        if tok not in ops:
            raise SelectorError(f"found '{lit}', expected: {_BINARY}")
        return ops[tok]

    def parse_values(self) -> set[str]:
        tok, lit = self.consume(_VALUES)
        if tok != _OPEN:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead(_VALUES)
        if tok in (_ID, _COMMA):
            values = self.parse_identifiers_list()
            if self.consume(_VALUES)[0] != _CLOSE:
                raise SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok == _CLOSE:  # "()" means the empty string
            self.consume(_VALUES)
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def parse_identifiers_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume(_VALUES)
            if tok == _ID:
                values.add(lit)
                tok2, lit2 = self.lookahead(_VALUES)
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSE:
                    return values
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:  # "(," ",)" and ",," each stand for an empty value
                if not values:
                    values.add("")
                tok2 = self.lookahead(_VALUES)[0]
                if tok2 == _CLOSE:
                    values.add("")
                    return values
                if tok2 == _COMMA:
                    values.add("")
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        if self.lookahead(_VALUES)[0] in (_END, _COMMA):
            return {""}
        tok, lit = self.consume(_VALUES)
        if tok == _ID:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse a ``labelSelector`` query value (``labels.Parse``); raise 400 BadRequest when invalid.

    ``""`` selects everything. ``str()`` of the result is Kubernetes' canonical form
    (requirements sorted by key, ``in`` values sorted), which parses back to the same selector.
    """
    try:
        return LabelSelector.of(_Parser(text).parse())
    except SelectorError as err:
        raise bad_request(str(err)) from None


# ---------------------------------------------------------------------------------------------
# Field selectors
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldTerm:
    """``field=value`` (``negate=False``) or ``field!=value``."""

    field: str
    value: str
    negate: bool = False

    def __str__(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")
        return f"{self.field}{'!=' if self.negate else '='}{escaped}"


@dataclass(frozen=True)
class FieldSelector:
    """An AND of :class:`FieldTerm`, bound to the resource whose selectable fields it reads."""

    resource: str
    terms: tuple[FieldTerm, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches(self, obj: dict[str, Any]) -> bool:
        """True when every term holds for ``obj`` (a field the resource doesn't set reads as ``""``)."""
        if not self.terms:
            return True
        fields = selectable_fields(self.resource, obj)
        return all((fields.get(t.field, "") == t.value) != t.negate for t in self.terms)

    def requires_exact_match(self, name: str) -> str | None:
        """The value ``name`` must equal, e.g. ``metadata.name`` for a single-object watch."""
        for term in self.terms:
            if term.field == name and not term.negate:
                return term.value
        return None

    def __str__(self) -> str:
        return ",".join(str(t) for t in self.terms)


def _split_terms(text: str) -> list[str]:
    """Split on commas not escaped by a backslash (``splitTerms``)."""
    terms, start, in_slash = [], 0, False
    for i, ch in enumerate(text):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms if text else []


def _split_term(term: str) -> tuple[str, str, str] | None:
    """Cut at the first operator; ``!=`` and ``==`` are tried before ``=`` (``splitTerm``)."""
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op):]
    return None


def _unescape(value: str) -> str:
    """``UnescapeValue``: ``\\\\``, ``\\,`` and ``\\=`` are the only escapes; bare ``,``/``=`` are errors."""
    out, in_slash = [], False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            # Go formats the rune with %v, which prints its code point.
            raise SelectorError(f"invalid field selector: unescaped character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_selector(text: str, resource: str) -> FieldSelector:
    """Parse a ``fieldSelector`` for ``resource`` (plural, e.g. ``pods``); raise 400 when invalid.

    Syntax errors read ``invalid selector: '<text>'; can't understand '<term>'``; a field the
    resource does not index reads ``field label not supported: <field>`` for the core kinds
    that register their own conversion (pods, nodes, events, namespaces, secrets, services),
    and ``"<field>" is not a known field selector: only "metadata.name", "metadata.namespace"``
    for the rest, as kube-apiserver answers.
    """
    try:
        terms = []
        for part in sorted(_split_terms(text)):
            if not part:
                continue
            split = _split_term(part)
            if split is None:
                raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
            lhs, op, rhs = split
            terms.append(FieldTerm(_convert_field_label(resource, lhs), _unescape(rhs), op == "!="))
        return FieldSelector(resource, tuple(terms))
    except SelectorError as err:
        raise bad_request(str(err)) from None


def _convert_field_label(resource: str, label: str) -> str:
    if resource == "pods" and label == "spec.host":  # old v1 clients
        return "spec.nodeName"
    rule = _FIELD_RULES.get(resource)
    if rule is None:
        if label in ("metadata.name", "metadata.namespace"):
            return label
        raise SelectorError(f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"')
    accepted, own_conversion = rule
    if label in accepted:
        return label
    if own_conversion:
        raise SelectorError(f"field label not supported: {label}")
    raise SelectorError(f'"{label}" is not a known field selector: only "metadata.name", "metadata.namespace"')


_META = ("metadata.name", "metadata.namespace")
_EVENT_FIELDS = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                 "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
                 "reason", "reportingComponent", "source", "type")

# resource -> (accepted field labels, registers its own conversion func (wording of the error)).
_FIELD_RULES: dict[str, tuple[tuple[str, ...], bool]] = {
    "pods": (_META + ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                      "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs",
                      "status.nominatedNodeName"), True),
    "events": (_META + _EVENT_FIELDS, True),
    "secrets": (_META + ("type",), True),
    "services": (_META + ("spec.clusterIP", "spec.type"), True),
    "replicationcontrollers": (_META + ("status.replicas",), True),
    # Cluster-scoped kinds whose conversion func does not list metadata.namespace.
    "namespaces": (("metadata.name", "status.phase"), True),
    "nodes": (("metadata.name", "spec.unschedulable"), True),
    # kube-apiserver's apps/v1 registers no conversion for ReplicaSets, so it rejects
    # status.replicas although its storage indexes it; labctl accepts it (see docs/apiserver-selectors-printers.md).
    "replicasets": (_META + ("status.replicas",), False),
}


def _get(obj: dict[str, Any], *path: str) -> Any:
    value: Any = obj
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def _s(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _pod_fields(pod: dict[str, Any]) -> dict[str, str]:
    spec, status = pod.get("spec") or {}, pod.get("status") or {}
    ips = status.get("podIPs") or []
    pod_ip = ips[0].get("ip", "") if ips else status.get("podIP", "")
    return {
        "spec.nodeName": _s(spec.get("nodeName")), "spec.restartPolicy": _s(spec.get("restartPolicy")),
        "spec.schedulerName": _s(spec.get("schedulerName")),
        "spec.serviceAccountName": _s(spec.get("serviceAccountName")),
        "spec.hostNetwork": _s(bool(spec.get("hostNetwork"))), "status.phase": _s(status.get("phase")),
        "status.podIP": _s(pod_ip), "status.nominatedNodeName": _s(status.get("nominatedNodeName")),
    }


def _event_fields(event: dict[str, Any]) -> dict[str, str]:
    involved = event.get("involvedObject") or {}
    source = _get(event, "source", "component") or event.get("reportingComponent") or ""
    fields = {f"involvedObject.{k}": _s(involved.get(k)) for k in
              ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")}
    fields.update(reason=_s(event.get("reason")), reportingComponent=_s(event.get("reportingComponent")),
                  source=_s(source), type=_s(event.get("type")))
    return fields


_SPECIFIC_FIELDS: dict[str, Callable[[dict[str, Any]], dict[str, str]]] = {
    "pods": _pod_fields,
    "events": _event_fields,
    "secrets": lambda o: {"type": _s(o.get("type"))},
    "services": lambda o: {"spec.clusterIP": _s(_get(o, "spec", "clusterIP")),
                           "spec.type": _s(_get(o, "spec", "type"))},
    "namespaces": lambda o: {"status.phase": _s(_get(o, "status", "phase"))},
    "nodes": lambda o: {"spec.unschedulable": _s(bool(_get(o, "spec", "unschedulable")))},
    "replicasets": lambda o: {"status.replicas": _s(_get(o, "status", "replicas") or 0)},
    "replicationcontrollers": lambda o: {"status.replicas": _s(_get(o, "status", "replicas") or 0)},
}


def selectable_fields(resource: str, obj: dict[str, Any]) -> dict[str, str]:
    """The ``fields.Set`` a field selector is matched against (``ToSelectableFields``)."""
    meta = obj.get("metadata") or {}
    fields = {"metadata.name": _s(meta.get("name"))}
    if meta.get("namespace") is not None:
        fields["metadata.namespace"] = _s(meta.get("namespace"))
    specific = _SPECIFIC_FIELDS.get(resource)
    if specific is not None:
        fields.update(specific(obj))
    return fields


def field_selector_exact_match(text: str, field: str) -> str | None:
    """``Selector.RequiresExactMatch``: the value ``text`` requires ``field`` to equal, or None.

    Authorization reads a list's ``fieldSelector=metadata.name=<x>`` as a request for the one
    object ``<x>`` (kube's ``RequestInfoFactory``), so a kubelet watching its own Node is
    authorized on that Node; an unparsable selector names nothing (the list answers 400 later).
    """
    for part in _split_terms(text):
        split = _split_term(part)
        if split is None:
            continue
        lhs, op, rhs = split
        if lhs == field and op in ("=", "=="):
            try:
                return _unescape(rhs)
            except SelectorError:
                return None
    return None
