"""Validation of the RBAC kinds, as ``pkg/apis/rbac/validation`` does it.

Roles and ClusterRoles: every rule names verbs, and either API groups and resources or
non-resource URLs (never both; a namespaced Role none); an ``aggregationRule`` needs a
selector. Bindings: ``roleRef`` names a Role or ClusterRole of ``rbac.authorization.k8s.io``
and never changes; each subject is a User, Group or ServiceAccount with the API group its
kind requires.
"""

from __future__ import annotations

from typing import Any

from labctl.apiserver._validate_common import as_dict, as_list, validate_dns1123_subdomain, validate_label_selector
from labctl.apiserver.errors import FieldError, invalid, not_supported, required
from labctl.kube import validators as v
from labctl.kube.resources import RBAC_GROUP

Obj = dict[str, Any]


def validate_policy_rule(rule: Any, namespaced: bool, path: str) -> list[FieldError]:
    """``ValidatePolicyRule``."""
    rule = as_dict(rule)
    errs: list[FieldError] = []
    if not as_list(rule.get("verbs")):
        errs.append(required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = as_list(rule.get("nonResourceURLs"))
    if urls:
        if namespaced:
            errs.append(invalid(f"{path}.nonResourceURLs", urls, "namespaced rules cannot apply to non-resource URLs"))
        if as_list(rule.get("apiGroups")) or as_list(rule.get("resources")) or as_list(rule.get("resourceNames")):
            errs.append(invalid(f"{path}.nonResourceURLs", urls,
                                "rules cannot apply to both regular resources and non-resource URLs"))
        return errs
    if not as_list(rule.get("apiGroups")):
        errs.append(required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not as_list(rule.get("resources")):
        errs.append(required(f"{path}.resources", "resource rules must supply at least one resource"))
    return errs


def validate_role(role: Obj, namespaced: bool) -> list[FieldError]:
    """``ValidateRole`` (``namespaced``) and ``ValidateClusterRole``: the rules and the aggregation rule."""
    errs: list[FieldError] = []
    for i, rule in enumerate(as_list(role.get("rules"))):
        errs += validate_policy_rule(rule, namespaced, f"rules[{i}]")
    aggregation = role.get("aggregationRule")
    if not namespaced and aggregation is not None:
        selectors = as_list(as_dict(aggregation).get("clusterRoleSelectors"))
        if not selectors:
            errs.append(required("aggregationRule.clusterRoleSelectors",
                                 "at least one clusterRoleSelector required if aggregationRule is non-nil"))
        for i, selector in enumerate(selectors):
            errs += validate_label_selector(selector, f"aggregationRule.clusterRoleSelectors[{i}]")
    return errs


def validate_binding(binding: Obj, namespaced: bool) -> list[FieldError]:
    """``ValidateRoleBinding`` (``namespaced``) and ``ValidateClusterRoleBinding``."""
    errs: list[FieldError] = []
    ref = as_dict(binding.get("roleRef"))
    if ref.get("apiGroup") != RBAC_GROUP:
        errs.append(not_supported("roleRef.apiGroup", ref.get("apiGroup", ""), [RBAC_GROUP]))
    kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
    if ref.get("kind") not in kinds:
        errs.append(not_supported("roleRef.kind", ref.get("kind", ""), kinds))
    name = ref.get("name")
    if not name:
        errs.append(required("roleRef.name"))
    else:
        errs += [invalid("roleRef.name", name, m) for m in v.is_valid_path_segment_name(str(name))]
    for i, subject in enumerate(as_list(binding.get("subjects"))):
        errs += validate_subject(as_dict(subject), namespaced, f"subjects[{i}]")
    return errs


def validate_subject(subject: Obj, namespaced: bool, path: str) -> list[FieldError]:
    """``ValidateRoleBindingSubject``."""
    errs: list[FieldError] = []
    name, kind, group = subject.get("name"), subject.get("kind"), subject.get("apiGroup") or ""
    if not name:
        errs.append(required(f"{path}.name"))
    if kind == "ServiceAccount":
        if name:
            errs += validate_dns1123_subdomain(name, f"{path}.name")
        if group:
            errs.append(not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not subject.get("namespace"):
            errs.append(required(f"{path}.namespace"))
    elif kind in ("User", "Group"):
        if group != RBAC_GROUP:
            errs.append(not_supported(f"{path}.apiGroup", group, [RBAC_GROUP]))
    else:
        errs.append(not_supported(f"{path}.kind", kind, ["ServiceAccount", "User", "Group"]))
    return errs


def validate_binding_update(old: Obj, new: Obj) -> list[FieldError]:
    """A binding's ``roleRef`` is fixed at creation: delete and recreate to point elsewhere."""
    if as_dict(old.get("roleRef")) != as_dict(new.get("roleRef")):
        return [invalid("roleRef", new.get("roleRef"), "cannot change roleRef")]
    return []


def default_binding(binding: Obj) -> None:
    """``SetDefaults_*RoleBinding`` and ``SetDefaults_Subject``: the API groups a client may leave out."""
    ref = binding.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = RBAC_GROUP
    for subject in as_list(binding.get("subjects")):
        if isinstance(subject, dict) and not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP
