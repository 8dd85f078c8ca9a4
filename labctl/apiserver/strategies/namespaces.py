"""Namespaces: the ones every cluster has, their default ServiceAccount, and deletion of their content.

Kubernetes leaves the last two to the ServiceAccount and namespace controllers; a lab's
namespaces are small, so this server does both synchronously, inside the request.
"""

from __future__ import annotations

from labctl.apiserver import errors
from labctl.apiserver.defaults import default_namespace
from labctl.apiserver.errors import FieldError
from labctl.apiserver.scope import RequestScope
from labctl.apiserver.validation import validate_namespace
from labctl.kube.printers import NAMESPACE_TABLE

from .base import Obj, Storage, Strategy

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
UNDELETABLE_NAMESPACES = ("default", "kube-system", "kube-public")


class NamespaceStrategy(Strategy):
    """kube's ``namespaceStrategy`` plus the namespace and ServiceAccount controllers' small jobs."""

    printer = NAMESPACE_TABLE
    finalizes_on_delete = True

    def prepare_for_create(self, obj: Obj) -> None:
        """A Namespace is created with its status (phase Active), set by defaulting."""
        self.default(obj)

    def default(self, obj: Obj) -> None:
        default_namespace(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_namespace(obj)

    def after_create(self, api: Storage, obj: Obj) -> None:
        ensure_default_service_account(api, obj["metadata"]["name"])

    def check_delete(self, obj: Obj) -> None:
        name = obj["metadata"]["name"]
        if name in UNDELETABLE_NAMESPACES:
            raise errors.forbidden_error(f'namespaces "{name}" is forbidden: this namespace may not be deleted')

    def finalize(self, api: Storage, obj: Obj) -> None:
        """The namespace controller's job: every object in the namespace goes first."""
        namespace = obj["metadata"]["name"]
        for rt in api.registry.resources:
            if not rt.namespaced:
                continue
            for item in api.store.list(rt.key, namespace):
                key = (rt.key, namespace, item["metadata"]["name"])
                if api.store.get(key) is not None:
                    api.store.delete(key)


def ensure_default_service_account(api: Storage, namespace: str) -> None:
    """The ServiceAccount controller's job: every namespace has a ``default`` ServiceAccount."""
    sa_type = api.registry.lookup("", "v1", "serviceaccounts")
    if sa_type is not None and api.store.get((sa_type.key, namespace, "default")) is None:
        api.create(RequestScope(sa_type, namespace), {"metadata": {"name": "default"}})
