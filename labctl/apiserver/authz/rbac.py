"""The RBAC authorizer: kube's ``RBACAuthorizer`` and ``DefaultRuleResolver`` over the store.

A request is allowed when a rule reached through a binding that names the user allows it:
ClusterRoleBindings first (cluster-wide), then the RoleBindings of the request's namespace,
each binding's ``roleRef`` resolved to a Role of that namespace or a ClusterRole. Nothing is
denied explicitly; no rule, no access.

Why it is fast: the bindings are indexed by subject (a user name, a group name; a service
account is the user ``system:serviceaccount:<ns>:<name>``), so a user's rules are gathered
from the few bindings that name them, not from every binding. Those rules are kept per user
(name and groups) with the decisions already taken, so a repeated request costs one dict
lookup. Any change to a Role, ClusterRole or binding drops all of it
(:meth:`RBACAuthorizer.invalidate`, called by :mod:`labctl.apiserver.authz.authorizer`
before the next request is authorized): a revoked binding stops working at once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from labctl.apiserver._validate_common import as_dict
from labctl.apiserver.storage import Store
from labctl.apiserver.users import User, service_account_username
from labctl.kube.resources import RBAC_GROUP

from .attributes import Attributes
from .rules import Rule, compile_rules

ROLES = f"{RBAC_GROUP}/roles"
CLUSTER_ROLES = f"{RBAC_GROUP}/clusterroles"
ROLE_BINDINGS = f"{RBAC_GROUP}/rolebindings"
CLUSTER_ROLE_BINDINGS = f"{RBAC_GROUP}/clusterrolebindings"
#: the store keys whose changes invalidate what this authorizer remembers
RBAC_KEYS = (ROLES, CLUSTER_ROLES, ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS)

#: bounds on the caches: users remembered, decisions remembered per user
MAX_USERS = 4096
MAX_DECISIONS = 4096

SubjectKey = tuple[str, str]  # ("User" | "Group", name)


@dataclass(frozen=True)
class Grant:
    """One source of rules for a user: a binding, the subject in it that names the user, its role's rules."""

    description: str  # kube's describer: ClusterRoleBinding "x" of ClusterRole "y" to Group "z"
    rules: tuple[Rule, ...]
    raw_rules: tuple[dict[str, Any], ...]


@dataclass
class _Scope:
    """The grants of a user in one scope (cluster-wide, or one namespace) and the errors met resolving them."""

    grants: list[Grant] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class _UserRules:
    cluster: _Scope
    namespaces: dict[str, _Scope] = field(default_factory=dict)
    decisions: dict[tuple[str, ...], tuple[bool, str]] = field(default_factory=dict)


class _BindingIndex:
    """Bindings by the subjects they name: ``("User", name)`` or ``("Group", name)``."""

    def __init__(self, store: Store) -> None:
        self.cluster: dict[SubjectKey, list[dict]] = defaultdict(list)
        self.namespaced: dict[str, dict[SubjectKey, list[dict]]] = defaultdict(lambda: defaultdict(list))
        for binding in store.list(CLUSTER_ROLE_BINDINGS):
            for key in {k for s in _subjects(binding) if (k := _subject_key(s, "")) is not None}:
                self.cluster[key].append(binding)
        for binding in store.list(ROLE_BINDINGS):
            namespace = binding["metadata"].get("namespace", "")
            for key in {k for s in _subjects(binding) if (k := _subject_key(s, namespace)) is not None}:
                self.namespaced[namespace][key].append(binding)

    @staticmethod
    def naming(table: dict[SubjectKey, list[dict]], user: User) -> list[dict]:
        found = {id(b): b for key in [("User", user.name), *(("Group", g) for g in user.groups)]
                 for b in table.get(key, ())}
        return sorted(found.values(), key=lambda b: b["metadata"]["name"])


def _subjects(binding: dict) -> list[dict]:
    subjects = binding.get("subjects")
    return [s for s in subjects if isinstance(s, dict)] if isinstance(subjects, list) else []


def _subject_key(subject: dict, binding_namespace: str) -> SubjectKey | None:
    """``appliesToUser`` as an index key; a service account is the user it authenticates as."""
    kind, name = subject.get("kind"), subject.get("name")
    if not isinstance(name, str) or not name:
        return None
    if kind in ("User", "Group"):
        return (kind, name)
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return ("User", service_account_username(namespace, name)) if namespace else None
    return None


def _applies(subject: dict, user: User, binding_namespace: str) -> bool:
    key = _subject_key(subject, binding_namespace)
    if key is None:
        return False
    return key[1] == user.name if key[0] == "User" else key[1] in user.groups


def _describe_subject(subject: dict, binding_namespace: str) -> str:
    """``describeSubject``: ``ServiceAccount "default/kube-system"`` puts the name first, as kube does."""
    if subject.get("kind") == "ServiceAccount":
        return f'ServiceAccount "{subject.get("name")}/{subject.get("namespace") or binding_namespace}"'
    return f'{subject.get("kind")} "{subject.get("name")}"'


class RBACAuthorizer:
    """Authorizes requests from the Roles, ClusterRoles and bindings in the store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._index: _BindingIndex | None = None
        self._users: dict[tuple[str, tuple[str, ...]], _UserRules] = {}

    def invalidate(self) -> None:
        """Forget everything derived from RBAC objects (one of them changed)."""
        self._index = None
        self._users.clear()

    # -- decisions --------------------------------------------------------------------------
    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason): ``RBAC: allowed by …`` or, denied, the roles that could not be resolved."""
        rules = self._rules_of(attrs.user)
        key = attrs.key
        decision = rules.decisions.get(key)
        if decision is None:
            if len(rules.decisions) >= MAX_DECISIONS:
                rules.decisions.clear()
            decision = rules.decisions[key] = self._decide(rules, attrs)
        return decision

    def _decide(self, rules: _UserRules, attrs: Attributes) -> tuple[bool, str]:
        scopes = [rules.cluster]
        if attrs.namespace:
            scopes.append(self._namespace_scope(rules, attrs.user, attrs.namespace))
        for scope in scopes:
            for grant in scope.grants:
                if any(rule.allows(attrs) for rule in grant.rules):
                    return True, f"RBAC: allowed by {grant.description}"
        problems = list(dict.fromkeys(e for scope in scopes for e in scope.errors))
        if not problems:
            return False, ""
        return False, "RBAC: " + (problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]")

    # -- rules (SelfSubjectRulesReview, escalation checks) --------------------------------------
    def rules_for(self, user: User, namespace: str) -> tuple[list[dict[str, Any]], list[str]]:
        """``RulesFor``: every rule the user holds in ``namespace`` (cluster-wide ones first), and errors."""
        rules = self._rules_of(user)
        scopes = [rules.cluster] + ([self._namespace_scope(rules, user, namespace)] if namespace else [])
        return ([r for s in scopes for g in s.grants for r in g.raw_rules],
                [e for s in scopes for e in s.errors])

    def role_rules(self, kind: str, name: str, namespace: str) -> list[dict[str, Any]] | None:
        """``GetRoleReferenceRules``: the rules of a Role (in ``namespace``) or ClusterRole; None if it is missing."""
        role = self.store.get((ROLES if kind == "Role" else CLUSTER_ROLES, namespace if kind == "Role" else "", name))
        if role is None:
            return None
        rules = role.get("rules")
        return [r for r in rules if isinstance(r, dict)] if isinstance(rules, list) else []

    # -- caches -----------------------------------------------------------------------------
    def _index_now(self) -> _BindingIndex:
        if self._index is None:
            self._index = _BindingIndex(self.store)
        return self._index

    def _rules_of(self, user: User) -> _UserRules:
        rules = self._users.get(user.key)
        if rules is None:
            if len(self._users) >= MAX_USERS:
                self._users.clear()
            bindings = _BindingIndex.naming(self._index_now().cluster, user)
            rules = self._users[user.key] = _UserRules(self._scope(user, bindings, ""))
        return rules

    def _namespace_scope(self, rules: _UserRules, user: User, namespace: str) -> _Scope:
        scope = rules.namespaces.get(namespace)
        if scope is None:
            table = self._index_now().namespaced.get(namespace)
            bindings = _BindingIndex.naming(table, user) if table else []
            scope = rules.namespaces[namespace] = self._scope(user, bindings, namespace)
        return scope

    def _scope(self, user: User, bindings: list[dict], namespace: str) -> _Scope:
        """``VisitRulesFor`` over the bindings that name the user, in one scope."""
        scope = _Scope()
        kind_of_binding = "RoleBinding" if namespace else "ClusterRoleBinding"
        for binding in bindings:
            subject = next(s for s in _subjects(binding) if _applies(s, user, namespace))
            ref = as_dict(binding.get("roleRef"))
            ref_kind, ref_name = ref.get("kind"), ref.get("name")
            if ref_kind not in ("Role", "ClusterRole"):
                scope.errors.append(f'unsupported role reference kind: "{ref_kind}"')
                continue
            raw = self.role_rules(ref_kind, str(ref_name), namespace)
            if raw is None:
                scope.errors.append(f'{ref_kind.lower()}.{RBAC_GROUP} "{ref_name}" not found')
                continue
            name = binding["metadata"]["name"] + (f"/{namespace}" if namespace else "")
            description = (f'{kind_of_binding} "{name}" of {ref_kind} "{ref_name}" to '
                           f"{_describe_subject(subject, namespace)}")
            scope.grants.append(Grant(description, compile_rules(raw), tuple(raw)))
        return scope
