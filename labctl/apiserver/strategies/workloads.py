"""ReplicaSets and Deployments: a pod template behind an immutable selector, scaled through ``/scale``."""

from __future__ import annotations

from labctl.apiserver._validate_pods import validate_deployment, validate_replicaset, validate_selector_update
from labctl.apiserver.defaults import default_deployment, default_replicaset
from labctl.apiserver.errors import FieldError
from labctl.kube.printers import DEPLOYMENT_TABLE, REPLICASET_TABLE

from .base import Obj, Strategy


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
