"""The default RBAC policy, reconciled into the store at every start (kube's ``rbac/bootstrap-roles``).

kube-apiserver's ``bootstrappolicy``, restricted to what labctl serves: every ClusterRole
and ClusterRoleBinding carries ``kubernetes.io/bootstrapping: rbac-defaults`` and
``rbac.authorization.kubernetes.io/autoupdate: "true"``. On start, a missing one is
created; an existing one gains the rules, subjects, labels and aggregation selectors it
lacks (extra ones a teacher added are kept); one annotated ``autoupdate: "false"`` is left
alone. The rules of the aggregated roles ``admin``, ``edit`` and ``view`` come from the
``system:aggregate-to-*`` roles through the aggregation (:mod:`.aggregation`).

The rules are kube's own, written as kube writes them; :func:`served_only` drops the
resources labctl does not serve (``statefulsets``, ``pods/proxy``…), so a role lists
what a student can actually use, and a kind added to the table of served kinds appears in
the roles at the next start.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from labctl.apiserver import errors
from labctl.apiserver._validate_common import as_list
from labctl.apiserver.scope import RequestScope
from labctl.apiserver.storage import clone
from labctl.apiserver.users import (
    ALL_AUTHENTICATED,
    ALL_SERVICE_ACCOUNTS_GROUP,
    ALL_UNAUTHENTICATED,
    SYSTEM_PRIVILEGED_GROUP,
)
from labctl.kube.resources import RBAC_GROUP, Registry

from .node import KUBE_NODE_RULES
from .rules import covers

if TYPE_CHECKING:
    from labctl.apiserver.rest import RestAPI

log = logging.getLogger("labctl.apiserver.rbac")

BOOTSTRAP_LABEL = {"kubernetes.io/bootstrapping": "rbac-defaults"}
AUTOUPDATE = "rbac.authorization.kubernetes.io/autoupdate"
AGGREGATE_TO = "rbac.authorization.k8s.io/aggregate-to-"

READ = ["get", "list", "watch"]
WRITE = ["create", "update", "patch", "delete", "deletecollection"]
READ_WRITE = READ + WRITE


def rule(verbs: list[str], groups: list[str], resources: list[str]) -> dict[str, list[str]]:
    return {"verbs": list(verbs), "apiGroups": list(groups), "resources": list(resources)}


def url_rule(verbs: list[str], urls: list[str]) -> dict[str, list[str]]:
    return {"verbs": list(verbs), "nonResourceURLs": list(urls)}


def _aggregated(name: str, selector_of: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "labels": labels or {},
            "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {f"{AGGREGATE_TO}{selector_of}": "true"}}]}}


# kube's plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go, for the groups labctl serves
CLUSTER_ROLES: tuple[dict[str, Any], ...] = (
    {"name": "cluster-admin", "rules": [rule(["*"], ["*"], ["*"]), url_rule(["*"], ["*"])]},
    {"name": "system:discovery", "rules": [url_rule(["get"], [
        "/livez", "/readyz", "/healthz", "/version", "/version/", "/openapi", "/openapi/*", "/api", "/api/*",
        "/apis", "/apis/*"])]},
    {"name": "system:monitoring", "rules": [url_rule(["get"], [
        "/metrics", "/livez", "/readyz", "/healthz", "/livez/*", "/readyz/*", "/healthz/*"])]},
    {"name": "system:basic-user", "rules": [
        rule(["create"], ["authorization.k8s.io"], ["selfsubjectaccessreviews", "selfsubjectrulesreviews"]),
        rule(["create"], ["authentication.k8s.io"], ["selfsubjectreviews"])]},
    {"name": "system:public-info-viewer", "rules": [url_rule(["get"], [
        "/livez", "/readyz", "/healthz", "/version", "/version/"])]},
    _aggregated("admin", "admin"),
    _aggregated("edit", "edit", {f"{AGGREGATE_TO}admin": "true"}),
    _aggregated("view", "view", {f"{AGGREGATE_TO}edit": "true"}),
    {"name": "system:aggregate-to-admin", "labels": {f"{AGGREGATE_TO}admin": "true"}, "rules": [
        rule(["create"], ["authorization.k8s.io"], ["localsubjectaccessreviews"]),
        rule(READ_WRITE, [RBAC_GROUP], ["roles", "rolebindings"])]},
    {"name": "system:aggregate-to-edit", "labels": {f"{AGGREGATE_TO}edit": "true"}, "rules": [
        rule(READ, [""], ["pods/attach", "pods/proxy", "pods/exec", "pods/portforward", "secrets", "services/proxy"]),
        rule(["impersonate"], [""], ["serviceaccounts"]),
        rule(WRITE, [""], ["pods", "pods/attach", "pods/proxy", "pods/exec", "pods/portforward"]),
        rule(["create"], [""], ["pods/eviction"]),
        rule(WRITE, [""], ["replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts", "services",
                           "services/proxy", "persistentvolumeclaims", "configmaps", "secrets", "events"]),
        rule(["create"], [""], ["serviceaccounts/token"]),
        rule(WRITE, ["apps"], ["statefulsets", "statefulsets/scale", "daemonsets", "deployments", "deployments/scale",
                               "deployments/rollback", "replicasets", "replicasets/scale"]),
        rule(WRITE, ["autoscaling"], ["horizontalpodautoscalers"]),
        rule(WRITE, ["batch"], ["jobs", "cronjobs"]),
        rule(WRITE, ["policy"], ["poddisruptionbudgets"]),
        rule(WRITE, ["networking.k8s.io"], ["networkpolicies", "ingresses"])]},
    {"name": "system:aggregate-to-view", "labels": {f"{AGGREGATE_TO}view": "true"}, "rules": [
        rule(READ, [""], ["pods", "replicationcontrollers", "replicationcontrollers/scale", "serviceaccounts",
                          "services", "services/status", "endpoints", "persistentvolumeclaims",
                          "persistentvolumeclaims/status", "configmaps"]),
        rule(READ, [""], ["limitranges", "resourcequotas", "bindings", "events", "pods/status", "resourcequotas/status",
                          "namespaces/status", "replicationcontrollers/status", "pods/log"]),
        rule(READ, [""], ["namespaces"]),
        rule(READ, ["discovery.k8s.io"], ["endpointslices"]),
        rule(READ, ["apps"], ["controllerrevisions", "statefulsets", "statefulsets/status", "statefulsets/scale",
                              "daemonsets", "daemonsets/status", "deployments", "deployments/status",
                              "deployments/scale", "replicasets", "replicasets/status", "replicasets/scale"]),
        rule(READ, ["autoscaling"], ["horizontalpodautoscalers", "horizontalpodautoscalers/status"]),
        rule(READ, ["batch"], ["jobs", "cronjobs", "cronjobs/status", "jobs/status"]),
        rule(READ, ["policy"], ["poddisruptionbudgets", "poddisruptionbudgets/status"]),
        rule(READ, ["networking.k8s.io"], ["networkpolicies", "ingresses", "ingresses/status"])]},
    # what metrics-server's manifest adds: every viewer may read the figures `kubectl top` shows
    {"name": "system:aggregated-metrics-reader",
     "labels": {f"{AGGREGATE_TO}view": "true", f"{AGGREGATE_TO}edit": "true", f"{AGGREGATE_TO}admin": "true"},
     "rules": [rule(["get", "list", "watch"], ["metrics.k8s.io"], ["pods", "nodes"])]},
    # the Node authorizer's rules; bound to nobody (kept for reading and for explicit bindings)
    {"name": "system:node", "rules": [dict(r) for r in KUBE_NODE_RULES]},
    {"name": "system:node-proxier", "rules": [
        rule(["list", "watch"], [""], ["services", "endpoints"]),
        rule(READ, [""], ["nodes"]),
        rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
        rule(["list", "watch"], ["discovery.k8s.io"], ["endpointslices"])]},
    {"name": "system:auth-delegator", "rules": [
        rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
        rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews"])]},
    {"name": "system:service-account-issuer-discovery", "rules": [url_rule(["get"], [
        "/.well-known/openid-configuration", "/.well-known/openid-configuration/", "/openid/v1/jwks",
        "/openid/v1/jwks/"])]},
)


def _group(name: str) -> dict[str, str]:
    return {"kind": "Group", "apiGroup": RBAC_GROUP, "name": name}


CLUSTER_ROLE_BINDINGS: tuple[dict[str, Any], ...] = (
    {"name": "cluster-admin", "subjects": [_group(SYSTEM_PRIVILEGED_GROUP)]},
    {"name": "system:monitoring", "subjects": [_group("system:monitoring")]},
    {"name": "system:discovery", "subjects": [_group(ALL_AUTHENTICATED)]},
    {"name": "system:basic-user", "subjects": [_group(ALL_AUTHENTICATED)]},
    {"name": "system:public-info-viewer", "subjects": [_group(ALL_AUTHENTICATED), _group(ALL_UNAUTHENTICATED)]},
    {"name": "system:node-proxier",
     "subjects": [{"kind": "User", "apiGroup": RBAC_GROUP, "name": "system:kube-proxy"}]},
    # kube keeps this binding without subjects: nodes are authorized by the Node authorizer
    {"name": "system:node", "subjects": []},
    {"name": "system:service-account-issuer-discovery", "subjects": [_group(ALL_SERVICE_ACCOUNTS_GROUP)]},
)


def served_only(rules: list[dict[str, Any]], registry: Registry) -> list[dict[str, Any]]:
    """The rules restricted to resources (and subresources) labctl serves; rules left empty are dropped."""
    served = {(rt.group, rt.plural) for rt in registry.resources}
    served |= {(rt.group, f"{rt.plural}/{sub}") for rt in registry.resources for sub in rt.subresources}
    groups = {g for g, _ in served}
    out = []
    for r in rules:
        if "nonResourceURLs" in r or "*" in r.get("apiGroups", []):
            out.append(r)
            continue
        kept_groups = [g for g in r["apiGroups"] if g in groups]
        kept = [x for x in r["resources"] if any((g, x) in served for g in kept_groups)]
        if kept_groups and kept:
            out.append({**r, "apiGroups": kept_groups, "resources": kept})
    return out


def _metadata(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "labels": {**(labels or {}), **BOOTSTRAP_LABEL}, "annotations": {AUTOUPDATE: "true"}}


def expected_cluster_roles(registry: Registry) -> list[dict[str, Any]]:
    roles = []
    for spec in CLUSTER_ROLES:
        role: dict[str, Any] = {"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRole",
                                "metadata": _metadata(spec["name"], spec.get("labels"))}
        if "aggregationRule" in spec:
            role["aggregationRule"] = spec["aggregationRule"]
        else:
            role["rules"] = served_only(spec["rules"], registry)
        roles.append(role)
    return roles


def expected_cluster_role_bindings() -> list[dict[str, Any]]:
    return [{"apiVersion": f"{RBAC_GROUP}/v1", "kind": "ClusterRoleBinding", "metadata": _metadata(spec["name"]),
             "roleRef": {"apiGroup": RBAC_GROUP, "kind": "ClusterRole", "name": spec["name"]},
             "subjects": spec["subjects"]} for spec in CLUSTER_ROLE_BINDINGS]


def reconcile(api: RestAPI) -> int:
    """Create or complete the default roles and bindings; returns how many objects were written."""
    written = 0
    roles_rt = api.registry.lookup(RBAC_GROUP, "v1", "clusterroles")
    bindings_rt = api.registry.lookup(RBAC_GROUP, "v1", "clusterrolebindings")
    assert roles_rt is not None and bindings_rt is not None
    for expected in expected_cluster_roles(api.registry):
        written += _reconcile_one(api, RequestScope(roles_rt), expected, _complete_role)
    for expected in expected_cluster_role_bindings():
        written += _reconcile_one(api, RequestScope(bindings_rt), expected, _complete_binding)
    if written:
        log.info("reconciled the default RBAC policy: %d object(s) written", written)
    return written


def _reconcile_one(api: RestAPI, scope: RequestScope, expected: dict[str, Any], complete: Any) -> int:
    name = expected["metadata"]["name"]
    existing = api.store.get(scope.key(name))
    if existing is None:
        api.create(scope, expected)
        return 1
    if (existing["metadata"].get("annotations") or {}).get(AUTOUPDATE) == "false":
        return 0  # protected by its owner
    wanted = complete(clone(existing), expected)
    if wanted is None:
        return 0
    if wanted.get("roleRef") != existing.get("roleRef"):  # a roleRef is immutable: recreate
        api.delete(RequestScope(scope.resource, None, name), {})
        wanted["metadata"] = expected["metadata"]
        api.create(scope, wanted)
        return 1
    try:
        api.update(RequestScope(scope.resource, None, name), wanted)
    except errors.APIError as err:
        log.warning("failed to reconcile %s %s: %s", scope.resource.kind, name, err)
        return 0
    return 1


def _merge_metadata(current: dict[str, Any], expected: dict[str, Any]) -> bool:
    meta, changed = current["metadata"], False
    for field in ("labels", "annotations"):
        merged = {**expected["metadata"].get(field, {}), **(meta.get(field) or {})}
        if merged != (meta.get(field) or {}):
            meta[field], changed = merged, True
    return changed


def _complete_role(current: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any] | None:
    """``computeReconciledRole`` in its union mode: add what is missing, keep the rest."""
    changed = _merge_metadata(current, expected)
    rules = as_list(current.get("rules"))
    missing = covers(rules, expected.get("rules", []))
    if missing:
        current["rules"], changed = rules + missing, True
    want, have = expected.get("aggregationRule"), current.get("aggregationRule")
    if want is None and have is not None:
        current.pop("aggregationRule")
        changed = True
    elif want is not None:
        selectors = list((have or {}).get("clusterRoleSelectors") or [])
        extra = [s for s in want["clusterRoleSelectors"] if s not in selectors]
        if extra:
            current["aggregationRule"], changed = {"clusterRoleSelectors": selectors + extra}, True
    return current if changed else None


def _complete_binding(current: dict[str, Any], expected: dict[str, Any]) -> dict[str, Any] | None:
    changed = _merge_metadata(current, expected)
    if current.get("roleRef") != expected["roleRef"]:
        current["roleRef"], changed = expected["roleRef"], True
    subjects = list(current.get("subjects") or [])
    extra = [s for s in expected["subjects"] if s not in subjects]
    if extra:
        current["subjects"], changed = subjects + extra, True
    return current if changed else None
