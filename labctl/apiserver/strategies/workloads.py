"""ReplicaSets, Deployments, DaemonSets, StatefulSets: a pod template behind an immutable selector; ControllerRevisions."""

from __future__ import annotations

from labctl.apiserver._validate_batch import validate_daemonset
from labctl.apiserver._validate_pods import validate_deployment, validate_replicaset, validate_selector_update
from labctl.apiserver._validate_statefulset import validate_statefulset, validate_statefulset_update
from labctl.apiserver.defaults import default_daemonset, default_deployment, default_replicaset, default_statefulset
from labctl.apiserver.errors import FieldError
from labctl.apiserver.podfields import refused_fields
from labctl.kube.printers import (
    CONTROLLERREVISION_TABLE,
    DAEMONSET_TABLE,
    DEPLOYMENT_TABLE,
    REPLICASET_TABLE,
    STATEFULSET_TABLE,
)

from .base import Obj, Strategy


def _template_spec(obj: Obj | None) -> object:
    spec = (obj or {}).get("spec")
    template = spec.get("template") if isinstance(spec, dict) else None
    return template.get("spec") if isinstance(template, dict) else None


def refused_template_fields(obj: Obj, old: Obj | None) -> list[FieldError]:
    """The pod template's refused fields, so ``kubectl apply`` of the workload shows them, not its pods."""
    return refused_fields(_template_spec(obj), "spec.template.spec", None if old is None else _template_spec(old))


class ReplicaSetStrategy(Strategy):
    """kube's ``rsStrategy``: ``metadata.generation`` tells the controller a new spec arrived."""

    tracks_generation = True
    printer = REPLICASET_TABLE

    def default(self, obj: Obj) -> None:
        default_replicaset(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_replicaset(obj)

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_selector_update(old, new)

    def admit(self, obj: Obj, old: Obj | None) -> list[FieldError]:
        return refused_template_fields(obj, old)


class DeploymentStrategy(Strategy):
    """kube's ``deploymentStrategy``: ``metadata.generation`` is what ``observedGeneration`` answers."""

    tracks_generation = True
    printer = DEPLOYMENT_TABLE

    def default(self, obj: Obj) -> None:
        default_deployment(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_deployment(obj)

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_selector_update(old, new)

    def admit(self, obj: Obj, old: Obj | None) -> list[FieldError]:
        return refused_template_fields(obj, old)


#: apps/v1's form of the DaemonSet's internal templateGeneration: bumped by each template change,
#: it labels the daemon pods (``pod-template-generation``)
TEMPLATE_GENERATION = "deprecated.daemonset.template.generation"


def _template(obj: Obj) -> object:
    spec = obj.get("spec")
    return spec.get("template") if isinstance(spec, dict) else None


def _template_generation(obj: Obj) -> int:
    try:
        return int(((obj.get("metadata") or {}).get("annotations") or {}).get(TEMPLATE_GENERATION, 1))
    except (TypeError, ValueError):
        return 1


def _set_template_generation(obj: Obj, generation: int) -> None:
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        annotations = meta.get("annotations")
        meta["annotations"] = {**(annotations if isinstance(annotations, dict) else {}),
                               TEMPLATE_GENERATION: str(generation)}


class DaemonSetStrategy(Strategy):
    """kube's ``daemonSetStrategy``: ``metadata.generation`` is what ``observedGeneration`` answers."""

    tracks_generation = True
    printer = DAEMONSET_TABLE

    def prepare_for_create(self, obj: Obj) -> None:
        super().prepare_for_create(obj)
        _set_template_generation(obj, 1)

    def prepare_for_update(self, new: Obj, old: Obj, subresource: str | None) -> Obj:
        new = super().prepare_for_update(new, old, subresource)
        generation = _template_generation(old)
        if subresource is None and _template(new) != _template(old):
            generation += 1
        _set_template_generation(new, generation)
        return new

    def default(self, obj: Obj) -> None:
        default_daemonset(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_daemonset(obj)

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_selector_update(old, new)

    def admit(self, obj: Obj, old: Obj | None) -> list[FieldError]:
        return refused_template_fields(obj, old)


class StatefulSetStrategy(Strategy):
    """kube's ``statefulSetStrategy``: a fixed identity (selector, service, claim templates), a changeable template."""

    tracks_generation = True
    printer = STATEFULSET_TABLE

    def default(self, obj: Obj) -> None:
        default_statefulset(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_statefulset(obj)

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_selector_update(old, new) + validate_statefulset_update(old, new)

    def admit(self, obj: Obj, old: Obj | None) -> list[FieldError]:
        return refused_template_fields(obj, old)


class ControllerRevisionStrategy(Strategy):
    """A DaemonSet's or StatefulSet's template at one revision: what ``kubectl rollout history/undo`` reads."""

    printer = CONTROLLERREVISION_TABLE
