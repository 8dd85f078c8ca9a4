"""HorizontalPodAutoscaler vocabulary shared by the API server (defaulting) and the HPA controller.

Upstream's ``pkg/apis/autoscaling/v2/defaults.go``: a missing ``behavior`` is left out and
the controller then uses these same rules; a given ``behavior`` gets every missing part
filled from them.
"""

from __future__ import annotations

import copy
from typing import Any

#: ``spec.metrics`` when none is given: 80 % average CPU utilisation
DEFAULT_CPU_UTILIZATION = 80
#: the relative gap between current and target that causes no scaling (``--horizontal-pod-autoscaler-tolerance``)
DEFAULT_TOLERANCE = 0.1
#: the ``spec.metrics[].type`` the controller computes: resource usage from metrics.k8s.io
SUPPORTED_METRIC_TYPES = ("Resource",)
#: the resources metrics.k8s.io reports
SUPPORTED_RESOURCES = ("cpu", "memory")

DEFAULT_SCALE_UP: dict[str, Any] = {
    "stabilizationWindowSeconds": 0, "selectPolicy": "Max",
    "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15},
                 {"type": "Percent", "value": 100, "periodSeconds": 15}],
}
DEFAULT_SCALE_DOWN: dict[str, Any] = {
    "stabilizationWindowSeconds": 300, "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
}


def default_cpu_metric() -> dict[str, Any]:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": DEFAULT_CPU_UTILIZATION}}}


def scaling_rules(given: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """``GenerateHPAScaleUpRules``/``ScaleDownRules``: the given rules with each missing field defaulted."""
    rules = dict(given) if isinstance(given, dict) else {}
    for key, value in defaults.items():
        if rules.get(key) is None:
            rules[key] = copy.deepcopy(value)
    return rules


def effective_behavior(spec: dict[str, Any]) -> dict[str, Any]:
    """The behaviour the controller follows: the spec's (defaulted), or the defaults when it has none."""
    behavior = spec.get("behavior") or {}
    return {"scaleUp": scaling_rules(behavior.get("scaleUp"), DEFAULT_SCALE_UP),
            "scaleDown": scaling_rules(behavior.get("scaleDown"), DEFAULT_SCALE_DOWN)}
