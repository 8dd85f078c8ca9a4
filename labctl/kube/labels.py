"""Label selectors: the ``Requirement``/``LabelSelector`` types every labctl component matches with.

A port of apimachinery's ``pkg/labels`` (selector semantics, ``NewRequirement`` validation
and its error wording) and of ``metav1.LabelSelectorAsSelector``; the key and value checks
themselves live in :mod:`labctl.kube.validators`. Controllers and the scheduler build
selectors from ``spec.selector`` objects here; the API server parses the ``labelSelector``
query string with :mod:`labctl.apiserver.selectors`, which produces the same types. Errors
are :class:`SelectorError` carrying Kubernetes' exact message, so the API server can answer
400 with the text a student would see on a real cluster.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .validators import is_qualified_name, is_valid_label_value, parse_int64

# selection.Operator values, spelled as Kubernetes spells them.
IN, NOT_IN = "in", "notin"
EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "=", "==", "!="
EXISTS, DOES_NOT_EXIST = "exists", "!"
GREATER_THAN, LESS_THAN = "gt", "lt"

BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)
UNARY_OPERATORS = (EXISTS, DOES_NOT_EXIST)
VALID_OPERATORS = BINARY_OPERATORS + UNARY_OPERATORS


class SelectorError(ValueError):
    """An invalid selector; ``str()`` is the message Kubernetes would give."""


def _go_quote(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def go_value(value: str | list[str]) -> str:
    """How ``field.Error`` prints a bad value: ``%q`` for strings, ``%#v`` for ``[]string``."""
    if isinstance(value, str):
        return _go_quote(value)
    return "[]string{" + ", ".join(_go_quote(v) for v in value) + "}"


def field_invalid(path: str | None, value: str | list[str], detail: str) -> str:
    """The text of ``field.Invalid(path, value, detail).Error()``; a nil path prints as ``<nil>``."""
    return f"{'<nil>' if path is None else path}: Invalid value: {go_value(value)}: {detail}"


def aggregate(messages: list[str]) -> str:
    """``utilerrors.NewAggregate(...).Error()``: one message bare, several deduplicated in brackets."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


def check_label_key(key: str, path: str | None) -> None:
    if errs := is_qualified_name(key):
        raise SelectorError(field_invalid(path, key, "; ".join(errs)))


@dataclass(frozen=True)
class Requirement:
    """One ``key <operator> values`` term of a selector; build it with :func:`new_requirement`."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """``Requirement.Matches``: note that ``notin``/``!=`` also match when the key is absent."""
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            return self.key in labels and labels[self.key] in self.values
        if op in (NOT_IN, NOT_EQUALS):
            return self.key not in labels or labels[self.key] not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        if op in (GREATER_THAN, LESS_THAN):
            try:
                have, want = parse_int64(labels[self.key]), parse_int64(self.values[0])
            except (KeyError, ValueError, IndexError, TypeError):
                return False
            return have > want if op == GREATER_THAN else have < want
        return False

    def __str__(self) -> str:
        prefix = "!" if self.operator == DOES_NOT_EXIST else ""
        if self.operator in UNARY_OPERATORS:
            return prefix + self.key
        symbol = {IN: " in ", NOT_IN: " notin ", GREATER_THAN: ">", LESS_THAN: "<"}.get(self.operator, self.operator)
        values = self.values[0] if len(self.values) == 1 else ",".join(sorted(self.values))
        if self.operator in (IN, NOT_IN):
            values = f"({values})"
        return self.key + symbol + values


def new_requirement(key: str, operator: str, values: Iterable[str] = (), path: str | None = None) -> Requirement:
    """``labels.NewRequirement``: validate and build one requirement, or raise :class:`SelectorError`.

    ``path`` is the field path errors are reported under (``None`` prints as ``<nil>``, as
    in the selector parser, whose errors read ``<nil>: Invalid value: ...``).
    """
    vals = list(values)
    errs: list[str] = []
    if key_errs := is_qualified_name(key):
        errs.append(field_invalid(_child(path, "key"), key, "; ".join(key_errs)))
    values_path = _child(path, "values")
    if operator in (IN, NOT_IN):
        if not vals:
            errs.append(field_invalid(values_path, vals, "for 'in', 'notin' operators, values set can't be empty"))
    elif operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS):
        if len(vals) != 1:
            errs.append(field_invalid(values_path, vals, "exact-match compatibility requires one single value"))
    elif operator in UNARY_OPERATORS:
        if vals:
            errs.append(field_invalid(values_path, vals, "values set must be empty for exists and does not exist"))
    elif operator in (GREATER_THAN, LESS_THAN):
        if len(vals) != 1:
            errs.append(field_invalid(values_path, vals, "for 'Gt', 'Lt' operators, exactly one value is required"))
        for i, v in enumerate(vals):
            try:
                parse_int64(v)
            except ValueError:
                errs.append(field_invalid(f"{values_path}[{i}]", v,
                                          "for 'Gt', 'Lt' operators, the value must be an integer"))
    else:
        supported = ", ".join(_go_quote(o) for o in VALID_OPERATORS)
        errs.append(f"{_child(path, 'operator')}: Unsupported value: {_go_quote(operator)}: "
                    f"supported values: {supported}")
    for i, v in enumerate(vals):
        if value_errs := is_valid_label_value(v):
            errs.append(field_invalid(f"{values_path}[{i}][{key}]", v, "; ".join(value_errs)))
    if errs:
        raise SelectorError(aggregate(errs))
    return Requirement(key, operator, tuple(vals))


def _child(path: str | None, name: str) -> str:
    return name if not path else f"{path}.{name}"


@dataclass(frozen=True)
class LabelSelector:
    """An AND of requirements, sorted by key (``internalSelector``); ``nothing`` is ``labels.Nothing()``."""

    requirements: tuple[Requirement, ...] = ()
    nothing: bool = field(default=False)

    @classmethod
    def of(cls, requirements: Iterable[Requirement]) -> LabelSelector:
        """Build a selector the way ``Selector.Add`` does: requirements sorted by key."""
        return cls(tuple(sorted(requirements, key=lambda r: r.key)))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether ``labels`` satisfy every requirement.

        Labels that are not a map (an object stored before the API server checked types)
        count as no labels, so one malformed object cannot break a list or a controller.
        """
        if self.nothing:
            return False
        if not isinstance(labels, Mapping):
            labels = {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        """True when the selector selects everything (``Selector.Empty``)."""
        return not self.nothing and not self.requirements

    def requires_exact_match(self, key: str) -> str | None:
        """The single value ``key`` must have (``=``, ``==`` or a one-value ``in``), else ``None``."""
        for r in self.requirements:
            if r.key == key:
                if r.operator in (EQUALS, DOUBLE_EQUALS, IN) and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


EVERYTHING = LabelSelector()
NOTHING = LabelSelector(nothing=True)


def selector_from_set(labels: Mapping[str, str] | None) -> LabelSelector:
    """``labels.SelectorFromSet``: ``key=value`` for each entry; empty or ``None`` selects everything."""
    return LabelSelector.of(Requirement(k, EQUALS, (v,)) for k, v in (labels or {}).items())


_EXPRESSION_OPERATORS = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}


def selector_from_label_selector(obj: Mapping | None) -> LabelSelector:
    """``metav1.LabelSelectorAsSelector``: a ``spec.selector`` object to a :class:`LabelSelector`.

    ``None`` matches nothing and ``{}`` matches everything, exactly as Kubernetes: a
    ReplicaSet without a selector must never adopt every pod in its namespace.
    """
    if obj is None:
        return NOTHING
    match_labels = obj.get("matchLabels") or {}
    expressions = obj.get("matchExpressions") or []
    if not match_labels and not expressions:
        return EVERYTHING
    reqs = [new_requirement(k, EQUALS, [v]) for k, v in match_labels.items()]
    for expr in expressions:
        op = _EXPRESSION_OPERATORS.get(expr.get("operator", ""))
        if op is None:
            raise SelectorError(f"{_go_quote(expr.get('operator', ''))} is not a valid label selector operator")
        reqs.append(new_requirement(expr.get("key", ""), op, list(expr.get("values") or [])))
    return LabelSelector.of(reqs)


def format_labels(labels: Mapping[str, str] | None) -> str:
    """``labels.FormatLabels``: ``a=b,c=d`` sorted by key, or ``<none>``."""
    if not labels:
        return "<none>"
    return ",".join(f"{k}={labels[k]}" for k in sorted(labels))


def format_label_selector(obj: Mapping | None) -> str:
    """``metav1.FormatLabelSelector``: the selector as text, ``<none>`` if empty, ``<error>`` if invalid."""
    try:
        text = str(selector_from_label_selector(obj))
    except SelectorError:
        return "<error>"
    return text or "<none>"
