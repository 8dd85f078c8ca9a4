"""RBAC's ``PolicyRule`` semantics: whether a rule allows a request, and whether rules cover others.

A port of ``pkg/apis/rbac/v1/evaluation_helpers.go`` (``RuleAllows`` and its matchers) and of
``pkg/registry/rbac/validation`` (``Covers``, ``BreakdownRule``, ``CompactRules``,
``CompactString``), the checks that keep a user from granting rights they do not hold.

Rules are stored as plain dicts (the object's ``rules``); :class:`Rule` is the same rule
compiled into sets once, because the authorizer matches every request against them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .attributes import Attributes

ALL = "*"


def strings(value: Any) -> tuple[str, ...]:
    """A rule's list field as strings (validation rejects anything else; the authorizer never trusts it)."""
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


@dataclass(frozen=True, slots=True)
class Rule:
    """One ``PolicyRule``, compiled for matching."""

    verbs: frozenset[str]
    api_groups: frozenset[str]
    resources: frozenset[str]
    resource_names: frozenset[str]
    urls: tuple[str, ...]

    @classmethod
    def of(cls, rule: Any) -> Rule:
        rule = rule if isinstance(rule, dict) else {}
        return cls(frozenset(strings(rule.get("verbs"))), frozenset(strings(rule.get("apiGroups"))),
                   frozenset(strings(rule.get("resources"))), frozenset(strings(rule.get("resourceNames"))),
                   strings(rule.get("nonResourceURLs")))

    def allows(self, attrs: Attributes) -> bool:
        """``RuleAllows``."""
        if ALL not in self.verbs and attrs.verb not in self.verbs:
            return False
        if not attrs.resource_request:
            return any(_url_matches(url, attrs.path) for url in self.urls)
        if ALL not in self.api_groups and attrs.api_group not in self.api_groups:
            return False
        if not self._resource_matches(attrs.resource, attrs.subresource):
            return False
        return not self.resource_names or attrs.name in self.resource_names

    def _resource_matches(self, resource: str, subresource: str) -> bool:
        if ALL in self.resources:
            return True
        if subresource:
            return f"{resource}/{subresource}" in self.resources or f"*/{subresource}" in self.resources
        return resource in self.resources


def _url_matches(rule_url: str, path: str) -> bool:
    """``NonResourceURLMatches``: exact, ``*``, or a prefix ending in ``*`` (``/apis/*``)."""
    if rule_url == ALL or rule_url == path:
        return True
    return rule_url.endswith("*") and path.startswith(rule_url.rstrip("*"))


def compile_rules(rules: Any) -> tuple[Rule, ...]:
    return tuple(Rule.of(r) for r in rules) if isinstance(rules, list) else ()


# -- escalation checks ----------------------------------------------------------------------------
def breakdown(rule: dict[str, Any]) -> list[dict[str, list[str]]]:
    """``BreakdownRule``: one rule per group x resource x verb (x name), and per URL x verb."""
    verbs, names = strings(rule.get("verbs")), strings(rule.get("resourceNames"))
    out: list[dict[str, list[str]]] = []
    for group in strings(rule.get("apiGroups")):
        for resource in strings(rule.get("resources")):
            for verb in verbs:
                base = {"apiGroups": [group], "resources": [resource], "verbs": [verb]}
                out += [{**base, "resourceNames": [n]} for n in names] if names else [base]
    for url in strings(rule.get("nonResourceURLs")):
        out += [{"nonResourceURLs": [url], "verbs": [verb]} for verb in verbs]
    return out


def _has_all(have: tuple[str, ...], want: tuple[str, ...]) -> bool:
    return set(want) <= set(have)


def _resources_cover(owner: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    if ALL in owner or _has_all(owner, wanted):
        return True
    for path in wanted:
        if path in owner:
            continue
        if "/" not in path or "*/" + path.split("/", 1)[1] not in owner:
            return False
    return True


def _rule_covers(owner: dict[str, Any], sub: dict[str, Any]) -> bool:
    """``ruleCovers``: ``*`` in the owner covers anything, otherwise values must be present."""
    o_verbs, s_verbs = strings(owner.get("verbs")), strings(sub.get("verbs"))
    o_groups, s_groups = strings(owner.get("apiGroups")), strings(sub.get("apiGroups"))
    o_names, s_names = strings(owner.get("resourceNames")), strings(sub.get("resourceNames"))
    o_urls = strings(owner.get("nonResourceURLs"))
    verbs = ALL in o_verbs or _has_all(o_verbs, s_verbs)
    groups = ALL in o_groups or _has_all(o_groups, s_groups)
    resources = _resources_cover(strings(owner.get("resources")), strings(sub.get("resources")))
    urls = all(any(_url_matches(o, s) for o in o_urls) for s in strings(sub.get("nonResourceURLs")))
    names = not o_names if not s_names else (not o_names or _has_all(o_names, s_names))
    return verbs and groups and resources and names and urls


def covers(owner_rules: Iterable[dict[str, Any]], rules: Iterable[dict[str, Any]]) -> list[dict[str, list[str]]]:
    """``Covers``: the broken-down parts of ``rules`` that no owner rule covers (empty when covered)."""
    owners = list(owner_rules)
    return [sub for rule in rules for sub in breakdown(rule) if not any(_rule_covers(o, sub) for o in owners)]


def compact(rules: list[dict[str, list[str]]]) -> list[dict[str, list[str]]]:
    """``CompactRules``: merge single group/resource rules that differ only by verb."""
    out: list[dict[str, list[str]]] = []
    simple: dict[tuple[str, str], dict[str, list[str]]] = {}
    for rule in rules:
        if set(rule) == {"apiGroups", "resources", "verbs"} and len(rule["apiGroups"]) == len(rule["resources"]) == 1:
            key = (rule["apiGroups"][0], rule["resources"][0])
            if key in simple:
                simple[key]["verbs"] += [v for v in rule["verbs"] if v not in simple[key]["verbs"]]
                continue
            simple[key] = {"apiGroups": list(rule["apiGroups"]), "resources": list(rule["resources"]),
                           "verbs": list(rule["verbs"])}
            out.append(simple[key])
        else:
            out.append(rule)
    return out


def compact_string(rule: dict[str, Any]) -> str:
    """``CompactString``: ``{APIGroups:[""], Resources:["pods"], Verbs:["get" "list"]}`` (Go's ``%q`` of a slice)."""
    fields = (("APIGroups", "apiGroups"), ("Resources", "resources"), ("NonResourceURLs", "nonResourceURLs"),
              ("ResourceNames", "resourceNames"), ("Verbs", "verbs"))
    parts = [f"{label}:{go_quote_list(strings(rule.get(key)))}" for label, key in fields if strings(rule.get(key))]
    return "{" + ", ".join(parts) + "}"


def go_quote_list(values: Iterable[str]) -> str:
    """Go's ``fmt.Sprintf("%q", []string{...})``: ``["a" "b"]``."""
    return "[" + " ".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "]"
