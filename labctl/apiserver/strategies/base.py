"""The generic strategy: what every kind does unless its own strategy says otherwise.

A port of the idea of kube-apiserver's ``rest.RESTCreateStrategy`` /
``RESTUpdateStrategy`` / ``RESTDeleteStrategy``: the REST layer (``rest.py``) runs one
flow for every kind and asks the kind's :class:`Strategy` at each step where kinds
differ — which part of an object a write may change, defaulting, validation, whether
``metadata.generation`` tracks the spec, allocation before a write, graceful deletion,
what deleting must clean up, and how ``kubectl get`` prints it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from labctl.apiserver.errors import FieldError, invalid
from labctl.apiserver.storage import clone
from labctl.apiserver.validation import validate_object_meta, validate_object_meta_update
from labctl.kube.printers import DEFAULT_TABLE, TablePrinter
from labctl.kube.resources import Registry, ResourceType
from labctl.kube.validators import NAME_RULES

if TYPE_CHECKING:
    from labctl.apiserver.allocators import NodePortAllocator, ServiceIPAllocator
    from labctl.apiserver.scope import RequestScope
    from labctl.apiserver.storage import SQLiteStore

Obj = dict[str, Any]


class Storage(Protocol):
    """What a strategy's hooks may use of the REST layer (kube's registry ``Store``)."""

    store: SQLiteStore
    registry: Registry
    service_ips: ServiceIPAllocator
    node_ports: NodePortAllocator

    def create(self, scope: RequestScope, body: dict, dry_run: bool = False) -> dict: ...


class Strategy:
    """A kind without rules of its own: metadata checks only, printed as name and age.

    Kinds override the hooks below; every hook has the generic behaviour here, so adding a
    row to the table of kinds (:mod:`labctl.kube.resources`) serves the kind at once.
    """

    #: whether a change of anything but metadata and status bumps ``metadata.generation``
    tracks_generation = False
    #: the kind's ``kubectl get`` columns (its print handler)
    printer: TablePrinter = DEFAULT_TABLE
    #: deleting ends at once after :meth:`finalize`, ignoring finalizers and grace periods
    #: (Namespaces: this server does the namespace controller's work synchronously)
    finalizes_on_delete = False
    #: whether a strategic merge patch applies (custom resources have no patch strategies: kube answers 415)
    strategic_merge = True

    def __init__(self, resource: ResourceType) -> None:
        self.resource = resource
        self._name_errors = NAME_RULES[resource.name_rule]

    # -- create ------------------------------------------------------------------------
    def prepare_for_create(self, obj: Obj) -> None:
        """PrepareForCreate, then defaulting.

        With a status subresource, status is the controllers' to write: a create starts
        without it.
        """
        if "status" in self.resource.subresources:
            obj.pop("status", None)
        self.default(obj)

    def default(self, obj: Obj) -> None:
        """Fill in what kube-apiserver fills in (its scheme's defaulters); nothing for a generic kind."""

    def validate(self, obj: Any) -> list[FieldError]:
        """Validate: ObjectMeta with the kind's name rule, then the kind's own checks."""
        if not isinstance(obj, dict):
            return [invalid("", obj, "must be an object")]
        errs = validate_object_meta(obj.get("metadata"), self.resource.namespaced, self._name_errors)
        return errs + self.validate_kind(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        """The kind's checks beyond metadata (defaults already applied)."""
        return []

    def admit(self, obj: Obj, old: Obj | None) -> list[FieldError]:
        """What labctl refuses beyond kube's validation, on a create (``old`` None) or an update.

        The Pod fields its components do not honour (:mod:`labctl.apiserver.podfields`): a
        422 naming each, rather than an object stored and then silently ignored.
        """
        return []

    def after_create(self, api: Storage, obj: Obj) -> None:
        """Work that follows a stored create (AfterCreate)."""

    # -- update ------------------------------------------------------------------------
    def after_update(self, api: Storage, obj: Obj) -> None:
        """Work that follows a stored update (CustomResourceDefinitions: serve the new definition)."""

    def prepare_for_update(self, new: Obj, old: Obj, subresource: str | None) -> Obj:
        """PrepareForUpdate: which part a write may change, then defaulting; returns the object to store.

        A status write changes status only (kube's StatusStrategy); with a status
        subresource, a write of the main resource cannot change status.
        """
        if subresource == "status":
            new = {**clone(old), "status": new.get("status", {})}
        elif "status" in self.resource.subresources:
            if "status" in old:
                new["status"] = old["status"]
            else:
                new.pop("status", None)
        self.default(new)
        return new

    def validate_update(self, old: Obj, new: Obj) -> list[FieldError]:
        """ValidateUpdate: metadata that may not change, the whole new object, the kind's update rules."""
        errs = validate_object_meta_update(old.get("metadata"), new.get("metadata"))
        return errs + self.validate(new) + self.validate_kind_update(old, new)

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        """What the kind forbids changing (immutable selectors, frozen data, …)."""
        return []

    def validate_subresource_update(self, subresource: str, old: Obj, new: Obj) -> list[FieldError]:
        """ValidateUpdate of a write through ``subresource`` (a status write unless the kind has others)."""
        return self.validate_status_update(old, new)

    def validate_status_update(self, old: Obj, new: Obj) -> list[FieldError]:
        """The status strategy's ValidateUpdate: only metadata is checked, the spec is the stored one."""
        return validate_object_meta_update(old.get("metadata"), new.get("metadata"))

    # -- writes that need the store ----------------------------------------------------
    def allocate(self, api: Storage, obj: Obj, old: Obj | None) -> list[FieldError]:
        """Server-side allocation before a create (``old`` None) or an update is stored; mutates ``obj``."""
        return []

    # -- scale subresource -------------------------------------------------------------
    def scale_of(self, obj: Obj) -> Obj:
        """The ``autoscaling/v1`` Scale of ``obj`` (kinds with a ``scale`` subresource): spec.replicas,
        status.replicas and the selector's matchLabels."""
        selector = (obj.get("spec", {}).get("selector") or {}).get("matchLabels") or {}
        return make_scale(obj, obj.get("spec", {}).get("replicas", 0), obj.get("status", {}).get("replicas", 0),
                          ",".join(f"{k}={v}" for k, v in sorted(selector.items())))

    def set_replicas(self, obj: Obj, replicas: int) -> None:
        """A scale write: the desired replicas into ``obj`` (a copy of the stored object)."""
        obj.setdefault("spec", {})["replicas"] = replicas

    # -- delete ------------------------------------------------------------------------
    def check_delete(self, obj: Obj) -> None:
        """Raise an APIError when ``obj`` may not be deleted at all."""

    def grace_period(self, obj: Obj, options: dict) -> int:
        """Seconds a deletion waits (CheckGracefulDelete); 0 deletes at once."""
        return 0

    def graceful_pending(self, obj: Obj) -> bool:
        """Whether a terminating ``obj`` still waits for its grace period to be confirmed."""
        return False

    def finalize(self, api: Storage, obj: Obj) -> None:
        """The clean-up before a :attr:`finalizes_on_delete` object goes."""


def make_scale(obj: Obj, replicas: Any, status_replicas: Any, selector: str) -> Obj:
    """A ``Scale`` answering for ``obj``: its identity, the desired and current replicas, the selector."""
    meta = obj["metadata"]
    return {
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": meta["name"], "namespace": meta.get("namespace"), "uid": meta.get("uid"),
                     "resourceVersion": meta.get("resourceVersion"),
                     "creationTimestamp": meta.get("creationTimestamp")},
        "spec": {"replicas": replicas},
        "status": {"replicas": status_replicas, "selector": selector},
    }
