"""Escalation prevention: nobody grants through RBAC what they do not hold themselves.

kube-apiserver's RBAC storage (``pkg/registry/rbac/*/policybased``) refuses a Role or
ClusterRole whose rules the requesting user does not hold, unless they may ``escalate``
it, and a binding to a role whose rules they do not hold, unless they may ``bind`` it.
Without it, a student given ``admin`` of a namespace could write a Role granting
everything and bind it to themselves. ``system:masters`` (and the API server's own writes:
bootstrap, aggregation) skip the check, as kube's ``EscalationAllowed``.

The REST layer knows no users, so the authorization filter puts the requester in a
context variable for the duration of the request (as kube carries it in the request
context), and the RBAC kinds' strategies call :func:`check_role` and :func:`check_binding`
on the object about to be stored.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from labctl.apiserver import errors
from labctl.apiserver._validate_common import as_dict
from labctl.apiserver.users import User
from labctl.kube.resources import RBAC_GROUP

from .attributes import Attributes, forbidden_object
from .rules import compact, compact_string, covers, go_quote_list


@dataclass(frozen=True)
class Requester:
    """Who is writing, and how to ask about their rights."""

    user: User
    #: the union authorizer: (attributes) -> allowed
    allowed: Callable[[Attributes], bool]
    #: RBAC's RulesFor: (user, namespace) -> (rules, errors)
    rules_for: Callable[[User, str], tuple[list[dict[str, Any]], list[str]]]
    #: GetRoleReferenceRules: (kind, name, namespace) -> rules, None when the role is missing
    role_rules: Callable[[str, str, str], list[dict[str, Any]] | None]


#: set by the authorization filter around each non-privileged request
REQUESTER: ContextVar[Requester | None] = ContextVar("labctl_rbac_requester", default=None)

#: ``*`` on everything: what ``aggregationRule`` can gather, so only cluster-admins may set it
FULL_AUTHORITY = ({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}, {"verbs": ["*"], "nonResourceURLs": ["*"]})


def check_role(resource: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> None:
    """Refuse a Role or ClusterRole (``resource`` is ``roles`` or ``clusterroles``) that escalates."""
    requester = REQUESTER.get()
    if requester is None or (old is not None and _only_gc_fields_changed(obj, old)):
        return
    meta = obj.get("metadata") or {}
    name, namespace = str(meta.get("name", "")), str(meta.get("namespace") or "")
    if requester.allowed(Attributes(requester.user, "escalate", True, namespace=namespace, api_group=RBAC_GROUP,
                                    resource=resource, name=name)):
        return
    rules = obj.get("rules")
    _confirm_no_escalation(requester, namespace, rules if isinstance(rules, list) else [], resource, name)
    if resource == "clusterroles" and obj.get("aggregationRule") is not None:
        owner, _ = requester.rules_for(requester.user, namespace)
        if covers(owner, FULL_AUTHORITY):
            raise forbidden_object(RBAC_GROUP, resource, name, "must have cluster-admin privileges to use the "
                                                               "aggregationRule")


def check_binding(resource: str, obj: dict[str, Any], old: dict[str, Any] | None = None) -> None:
    """Refuse a RoleBinding or ClusterRoleBinding to a role whose rules the requester lacks (unless ``bind``)."""
    requester = REQUESTER.get()
    if requester is None or (old is not None and _only_gc_fields_changed(obj, old)):
        return
    meta = obj.get("metadata") or {}
    name, namespace = str(meta.get("name", "")), str(meta.get("namespace") or "")
    ref = as_dict(obj.get("roleRef"))
    kind, role = ref.get("kind"), str(ref.get("name", ""))
    if kind not in ("Role", "ClusterRole"):
        return  # validation answers 422
    if requester.allowed(Attributes(requester.user, "bind", True, namespace=namespace,
                                    api_group=str(ref.get("apiGroup", "")),
                                    resource="roles" if kind == "Role" else "clusterroles", name=role)):
        return
    rules = requester.role_rules(kind, role, namespace)
    if rules is None:
        raise errors.not_found("roles" if kind == "Role" else "clusterroles", RBAC_GROUP, role)
    _confirm_no_escalation(requester, namespace, rules, resource, name)


def _confirm_no_escalation(requester: Requester, namespace: str, rules: list[Any], resource: str, name: str) -> None:
    """``ConfirmNoEscalation``: 403 listing the rules the requester does not hold."""
    owner, problems = requester.rules_for(requester.user, namespace)
    missing = covers(owner, [r for r in rules if isinstance(r, dict)])
    if not missing:
        return
    user = requester.user
    lines = sorted(set(compact_string(r) for r in compact(missing)))
    message = (f'user "{user.name}" (groups={go_quote_list(user.groups)}) is attempting to grant RBAC permissions '
               "not currently held:\n" + "\n".join(lines))
    if problems:
        message += f"; resolution errors: [{' '.join(problems)}]"
    raise forbidden_object(RBAC_GROUP, resource, name, message)


def _only_gc_fields_changed(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """``IsOnlyMutatingGCFields``: owner references and finalizers are the garbage collector's to change."""
    def strip(obj: dict[str, Any]) -> dict[str, Any]:
        meta = {k: v for k, v in (obj.get("metadata") or {}).items()
                if k not in ("ownerReferences", "finalizers", "resourceVersion", "managedFields")}
        return {**obj, "metadata": meta}
    return strip(new) == strip(old)
