"""Roles, ClusterRoles and their bindings: ``rbac.authorization.k8s.io/v1``.

kube's ``roleStrategy``/``clusterRoleStrategy``/``roleBindingStrategy`` wrapped in its
policy-based storage: validation as ``pkg/apis/rbac/validation``, and before any write the
escalation check (:mod:`labctl.apiserver.authz.escalation`) — a user cannot create or
change a role granting, or a binding to a role holding, rights they lack. Roles print with
kube's default columns (name, creation time), bindings with their role and subjects.
"""

from __future__ import annotations

from labctl.apiserver._validate_rbac import default_binding, validate_binding, validate_binding_update, validate_role
from labctl.apiserver.authz import escalation
from labctl.apiserver.errors import FieldError
from labctl.kube.printers import CLUSTERROLEBINDING_TABLE, ROLEBINDING_TABLE

from .base import Obj, Strategy


class RoleStrategy(Strategy):
    """Role (namespaced) and ClusterRole (``namespaced`` False: non-resource URLs and aggregation allowed)."""

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        escalation.check_role(self.resource.plural, obj)

    def prepare_for_update(self, new: Obj, old: Obj, subresource: str | None) -> Obj:
        new = super().prepare_for_update(new, old, subresource)
        escalation.check_role(self.resource.plural, new, old)
        return new

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_role(obj, self.resource.namespaced)


class RoleBindingStrategy(Strategy):
    """RoleBinding (and, below, ClusterRoleBinding): ``roleRef`` is fixed once created."""

    printer = ROLEBINDING_TABLE

    def default(self, obj: Obj) -> None:
        default_binding(obj)

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        escalation.check_binding(self.resource.plural, obj)

    def prepare_for_update(self, new: Obj, old: Obj, subresource: str | None) -> Obj:
        new = super().prepare_for_update(new, old, subresource)
        escalation.check_binding(self.resource.plural, new, old)
        return new

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_binding(obj, self.resource.namespaced)

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_binding_update(old, new)


class ClusterRoleBindingStrategy(RoleBindingStrategy):
    """ClusterRoleBinding: a RoleBinding of a ClusterRole everywhere; service-account subjects name their namespace."""

    printer = CLUSTERROLEBINDING_TABLE
