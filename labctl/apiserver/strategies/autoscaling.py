"""HorizontalPodAutoscalers (``autoscaling/v2``): the target, bounds and metrics the HPA controller follows."""

from __future__ import annotations

from labctl.apiserver._validate_autoscaling import validate_hpa, validate_hpa_status
from labctl.apiserver.errors import FieldError
from labctl.apiserver.validation import validate_object_meta_update
from labctl.kube.hpa import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, default_cpu_metric, scaling_rules
from labctl.kube.printers import HORIZONTALPODAUTOSCALER_TABLE

from .base import Obj, Strategy


class HorizontalPodAutoscalerStrategy(Strategy):
    """kube's ``autoscalerStrategy`` with the v2 defaulters (``SetDefaults_HorizontalPodAutoscaler``)."""

    tracks_generation = True
    printer = HORIZONTALPODAUTOSCALER_TABLE

    def default(self, obj: Obj) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        spec.setdefault("minReplicas", 1)
        if not spec.get("metrics"):
            spec["metrics"] = [default_cpu_metric()]
        behavior = spec.get("behavior")
        if isinstance(behavior, dict):  # a given behavior is completed; a missing one stays missing
            behavior["scaleUp"] = scaling_rules(behavior.get("scaleUp"), DEFAULT_SCALE_UP)
            behavior["scaleDown"] = scaling_rules(behavior.get("scaleDown"), DEFAULT_SCALE_DOWN)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_hpa(obj)

    def validate_status_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_object_meta_update(old.get("metadata"), new.get("metadata")) + validate_hpa_status(new)
