"""ValidateAffinity: preferred weights, and the pod (anti-)affinity terms the scheduler reads.

Node affinity's terms need no more than the scheduler's own tolerance (a term it cannot read
matches no node); a weight outside 1–100 or a pod affinity term without ``topologyKey`` or with a broken selector,
though, would silently mean "anywhere" or "nowhere", so kube refuses it at create.
"""

from __future__ import annotations

from typing import Any

from labctl.apiserver._validate_common import as_dict, as_list, is_int, validate_label_selector
from labctl.apiserver.errors import FieldError, invalid, required
from labctl.kube import validators as v


def _validate_term(term: Any, path: str) -> list[FieldError]:
    """``validatePodAffinityTerm``: selectors, namespace names, a non-empty qualified topologyKey."""
    term = as_dict(term)
    errs = validate_label_selector(term.get("labelSelector"), f"{path}.labelSelector")
    errs += validate_label_selector(term.get("namespaceSelector"), f"{path}.namespaceSelector")
    for name in as_list(term.get("namespaces")):
        errs += [invalid(f"{path}.namespace", name, m) for m in v.is_dns1123_label(str(name))]
    both = set(map(str, as_list(term.get("matchLabelKeys")))) & set(map(str, as_list(term.get("mismatchLabelKeys"))))
    errs += [invalid(f"{path}.matchLabelKeys", key, "exists in both matchLabelKeys and mismatchLabelKeys")
             for key in sorted(both)]
    key = str(term.get("topologyKey") or "")
    if not key:
        return [*errs, required(f"{path}.topologyKey", "can not be empty")]
    return errs + [invalid(f"{path}.topologyKey", key, m) for m in v.is_qualified_name(key)]


def _validate_weight(weight: Any, path: str) -> list[FieldError]:
    return [] if is_int(weight) and 1 <= weight <= 100 else [invalid(path, weight, "must be in the range 1-100")]


def validate_affinity(affinity: Any, path: str) -> list[FieldError]:
    """``spec.affinity``: every pod affinity term, and preferred weights within 1–100."""
    errs: list[FieldError] = []
    node_preferred = as_dict(as_dict(affinity).get("nodeAffinity")).get("preferredDuringSchedulingIgnoredDuringExecution")
    for i, weighted in enumerate(as_list(node_preferred)):
        errs += _validate_weight(as_dict(weighted).get("weight"),
                                 f"{path}.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[{i}].weight")
    for kind in ("podAffinity", "podAntiAffinity"):
        rules, kpath = as_dict(as_dict(affinity).get(kind)), f"{path}.{kind}"
        for i, term in enumerate(as_list(rules.get("requiredDuringSchedulingIgnoredDuringExecution"))):
            errs += _validate_term(term, f"{kpath}.requiredDuringSchedulingIgnoredDuringExecution[{i}]")
        for i, weighted in enumerate(as_list(rules.get("preferredDuringSchedulingIgnoredDuringExecution"))):
            wpath, weighted = f"{kpath}.preferredDuringSchedulingIgnoredDuringExecution[{i}]", as_dict(weighted)
            errs += _validate_weight(weighted.get("weight"), f"{wpath}.weight")
            errs += _validate_term(weighted.get("podAffinityTerm"), f"{wpath}.podAffinityTerm")
    return errs
