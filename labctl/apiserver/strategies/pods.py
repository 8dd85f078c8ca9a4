"""Pods: defaulting and validation of the pod spec, graceful deletion confirmed by the node agent."""

from __future__ import annotations

from labctl.apiserver._validate_common import as_dict
from labctl.apiserver._validate_ephemeral import (
    validate_ephemeral_containers,
    validate_ephemeral_containers_update,
    validate_no_ephemeral_on_create,
)
from labctl.apiserver._validate_pods import validate_pod, validate_pod_update
from labctl.apiserver.defaults import default_pod
from labctl.apiserver.errors import FieldError
from labctl.apiserver.podfields import refused_fields
from labctl.apiserver.storage import clone
from labctl.apiserver.validation import validate_object_meta_update
from labctl.kube.nodedebug import is_node_debugger, without_node_grants
from labctl.kube.printers import POD_TABLE

from .base import Obj, Storage, Strategy
from .scheduling import admit_pod_priority

#: the grace period of a pod whose spec names none (``terminationGracePeriodSeconds`` is defaulted to it too)
DEFAULT_GRACE_SECONDS = 30
#: the subresource ``kubectl debug`` writes
EPHEMERAL_CONTAINERS = "ephemeralcontainers"


class PodStrategy(Strategy):
    """kube's ``podStrategy``."""

    tracks_generation = True
    printer = POD_TABLE

    def default(self, obj: Obj) -> None:
        default_pod(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_pod(obj) + validate_ephemeral_containers(as_dict(obj.get("spec")))

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_pod_update(old, new)

    def admit(self, obj: Obj, old: Obj | None) -> list[FieldError]:
        created = validate_no_ephemeral_on_create(obj) if old is None else []
        spec, old_spec = obj.get("spec"), None if old is None else old.get("spec")
        if is_node_debugger(obj):  # kubectl debug node/…: the node's namespaces and root are granted
            spec, old_spec = without_node_grants(spec), without_node_grants(old_spec)
        return created + refused_fields(spec, "spec", old_spec)
    def allocate(self, api: Storage, obj: Obj, old: Obj | None) -> list[FieldError]:
        """The Priority admission plugin, on create only (``spec.priority`` is immutable after)."""
        if old is None:
            admit_pod_priority(api, obj)
        return []

    def prepare_for_update(self, new: Obj, old: Obj, subresource: str | None) -> Obj:
        """``pods/ephemeralcontainers`` changes ``spec.ephemeralContainers`` and nothing else (kube's
        ``podEphemeralContainersStrategy``); other writes as every kind's."""
        if subresource != EPHEMERAL_CONTAINERS:
            return super().prepare_for_update(new, old, subresource)
        added = as_dict(new.get("spec")).get("ephemeralContainers")
        new = {**clone(old), "metadata": new.get("metadata", {})}
        if added is None:
            new["spec"].pop("ephemeralContainers", None)
        else:
            new["spec"]["ephemeralContainers"] = added
        self.default(new)
        return new

    def validate_subresource_update(self, subresource: str, old: Obj, new: Obj) -> list[FieldError]:
        if subresource != EPHEMERAL_CONTAINERS:
            return super().validate_subresource_update(subresource, old, new)
        return (validate_object_meta_update(old.get("metadata"), new.get("metadata"))
                + validate_ephemeral_containers_update(old, new) + self.admit(new, old))

    def grace_period(self, obj: Obj, options: dict) -> int:
        """Only pods running on a node are deleted gracefully; the node agent confirms with grace 0."""
        spec, status = obj.get("spec", {}), obj.get("status", {})
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            return 0
        grace = options.get("gracePeriodSeconds")
        if grace is None:
            grace = spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS)
        return max(int(grace), 0)

    def graceful_pending(self, obj: Obj) -> bool:
        return int(obj["metadata"].get("deletionGracePeriodSeconds") or 0) > 0
