"""The HPA's arithmetic: replicas from a Resource metric, then stabilisation and scaling policies.

Ports of ``pkg/controller/podautoscaler/replica_calculator.go`` (``GetResourceReplicas``,
``GetRawResourceReplicas``) and of ``horizontal.go``'s ``stabilizeRecommendationWithBehaviors``,
``convertDesiredReplicasWithBehaviorRate`` and the scale-up/down limits of the policies. Pure
functions over plain data, so every rule is unit-tested without a cluster.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field


class MetricsError(Exception):
    """No replica count can be computed (upstream's ``FailedGetResourceMetric``)."""


@dataclass(frozen=True)
class PodSample:
    """What the calculator needs of one pod selected by the target's selector."""

    name: str
    #: Pending, or not Ready (CPU only): its usage would mislead, as a starting pod's does
    unready: bool = False
    #: deleted or failed: left out entirely
    ignored: bool = False
    #: the pod's summed container requests of the resource; None when a container has none
    request: int | None = None
    #: the container lacking a request, for the error message
    missing_request_container: str = ""


@dataclass(frozen=True)
class Recommendation:
    replicas: int
    #: current average utilisation in percent of requests (Utilization targets), else None
    utilization: int | None
    #: current average usage per pod (milli-units for CPU, bytes for memory)
    average: int


def _within(ratio: float, tolerance_up: float, tolerance_down: float) -> bool:
    return 1.0 - tolerance_down <= ratio <= 1.0 + tolerance_up


def resource_replicas(current_replicas: int, pods: list[PodSample], usage: Mapping[str, int],
                      target_utilization: int | None, target_average: int | None,
                      tolerance_up: float = 0.1, tolerance_down: float = 0.1, resource: str = "cpu") -> Recommendation:
    """``GetResourceReplicas`` (Utilization target) or ``GetRawResourceReplicas`` (AverageValue target).

    ``usage`` maps pod names to their metric (sum over containers). Ready pods with figures
    decide the ratio; if it says scale up, unready pods count as using nothing, and pods
    without figures count as using nothing (scale up) or their request/target (scale down),
    so that missing data always damps the change; a change the damped ratio reverses, or that
    stays within tolerance, keeps the current count.
    """
    if not pods:
        raise MetricsError("no pods returned by selector while calculating replica count")
    considered = [p for p in pods if not p.ignored]
    ready = {p.name: usage[p.name] for p in considered if not p.unready and p.name in usage}
    unready = [p for p in considered if p.unready]
    missing = [p for p in considered if not p.unready and p.name not in usage]
    requests: dict[str, int] = {}
    if target_utilization is not None:
        for p in considered:
            if p.request is None or p.request <= 0:
                raise MetricsError(f"missing request for {resource} in container "
                                   f"{p.missing_request_container} of Pod {p.name}")
            requests[p.name] = p.request
    if not ready:
        raise MetricsError("did not receive metrics for targeted pods (pods might be unready)")

    def ratio(figures: Mapping[str, int]) -> tuple[float, int | None, int]:
        average = sum(figures.values()) // len(figures)
        if target_utilization is None:
            assert target_average is not None
            return sum(figures.values()) / len(figures) / target_average, None, average
        utilization = sum(figures.values()) * 100 / sum(requests[n] for n in figures)
        return utilization / target_utilization, int(utilization), average

    usage_ratio, utilization, average = ratio(ready)
    scale_up_with_unready = bool(unready) and usage_ratio > 1.0
    if not scale_up_with_unready and not missing:
        if _within(usage_ratio, tolerance_up, tolerance_down):
            return Recommendation(current_replicas, utilization, average)
        return Recommendation(math.ceil(usage_ratio * len(ready)), utilization, average)

    damped = dict(ready)
    for p in missing:  # scale down: assume they use what they ask for; scale up: nothing
        damped[p.name] = (requests[p.name] if target_utilization is not None else int(target_average or 0)) \
            if usage_ratio < 1.0 else 0
    if scale_up_with_unready:
        for p in unready:
            damped[p.name] = 0
    new_ratio, _, _ = ratio(damped)
    if (_within(new_ratio, tolerance_up, tolerance_down) or (usage_ratio < 1.0 < new_ratio)
            or (usage_ratio > 1.0 > new_ratio)):
        return Recommendation(current_replicas, utilization, average)
    new_replicas = math.ceil(new_ratio * len(damped))
    if (new_ratio < 1.0 and new_replicas > current_replicas) or (new_ratio > 1.0 and new_replicas < current_replicas):
        return Recommendation(current_replicas, utilization, average)
    return Recommendation(new_replicas, utilization, average)


@dataclass(frozen=True)
class ScaleEvent:
    at: float
    change: int  # replicas added (scale up) or removed (scale down), positive


@dataclass
class History:
    """Per-HPA memory of the controller: recent recommendations and scale events (upstream keeps them in memory too)."""

    recommendations: list[tuple[float, int]] = field(default_factory=list)
    scale_up: list[ScaleEvent] = field(default_factory=list)
    scale_down: list[ScaleEvent] = field(default_factory=list)

    def record_scale(self, now: float, old: int, new: int, longest_period: int) -> None:
        """``storeScaleEvent``: remember the change; forget events older than every policy's period."""
        events = self.scale_up if new > old else self.scale_down
        events.append(ScaleEvent(now, abs(new - old)))
        for kept in (self.scale_up, self.scale_down):
            kept[:] = [e for e in kept if e.at > now - longest_period]


def stabilize(history: History, now: float, current: int, desired: int, rules_up: Mapping, rules_down: Mapping
              ) -> tuple[int, str, str]:
    """``stabilizeRecommendationWithBehaviors``: the safest count among the window's recommendations.

    Scaling up goes no higher than the lowest recommendation of the scale-up window; scaling
    down no lower than the highest of the scale-down window (default 300 s): a load that
    stops for a moment does not remove pods it will want back.
    """
    up_cutoff = now - int(rules_up.get("stabilizationWindowSeconds") or 0)
    down_cutoff = now - int(rules_down.get("stabilizationWindowSeconds") or 0)
    up, down = desired, desired
    for at, replicas in history.recommendations:
        if at > up_cutoff:
            up = min(up, replicas)
        if at > down_cutoff:
            down = max(down, replicas)
    horizon = min(up_cutoff, down_cutoff)
    history.recommendations = [(at, r) for at, r in history.recommendations if at >= horizon]
    history.recommendations.append((now, desired))
    recommendation = min(max(current, up), down)
    if desired >= current:
        return recommendation, "ScaleUpStabilized", ("recent recommendations were lower than current one, "
                                                      "applying the lowest recent recommendation")
    return recommendation, "ScaleDownStabilized", ("recent recommendations were higher than current one, "
                                                    "applying the highest recent recommendation")


def _changed_within(events: list[ScaleEvent], now: float, period: int) -> int:
    return sum(e.change for e in events if e.at > now - period)


def _replicas_period_ago(history: History, now: float, current: int, period: int) -> int:
    """The replicas at the start of a policy's period, undoing the scale events recorded since."""
    return current - _changed_within(history.scale_up, now, period) + _changed_within(history.scale_down, now, period)


def scale_up_limit(history: History, now: float, current: int, rules: Mapping) -> int:
    """``calculateScaleUpLimitWithScalingRules``: the most replicas the policies allow now."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    proposals = []
    for policy in rules.get("policies") or []:
        start = _replicas_period_ago(history, now, current, int(policy["periodSeconds"]))
        if policy["type"] == "Pods":
            proposals.append(start + int(policy["value"]))
        else:
            proposals.append(math.ceil(start * (1 + int(policy["value"]) / 100)))
    if not proposals:
        return current
    return min(proposals) if select == "Min" else max(proposals)


def scale_down_limit(history: History, now: float, current: int, rules: Mapping) -> int:
    """``calculateScaleDownLimitWithBehaviors``: the fewest replicas the policies allow now."""
    select = rules.get("selectPolicy") or "Max"
    if select == "Disabled":
        return current
    proposals = []
    for policy in rules.get("policies") or []:
        start = _replicas_period_ago(history, now, current, int(policy["periodSeconds"]))
        if policy["type"] == "Pods":
            proposals.append(start - int(policy["value"]))
        else:
            proposals.append(int(start * (1 - int(policy["value"]) / 100)))
    if not proposals:
        return current
    return max(proposals) if select == "Min" else min(proposals)


def limit_rate(history: History, now: float, current: int, desired: int, min_replicas: int, max_replicas: int,
               rules_up: Mapping, rules_down: Mapping) -> tuple[int, str, str]:
    """``convertDesiredReplicasWithBehaviorRate``: the bounds and the policies' rate, with the limiting reason."""
    if desired > current:
        limit = max(scale_up_limit(history, now, current, rules_up), current)
        if max_replicas > limit:
            allowed, reason, message = limit, "ScaleUpLimit", ("the desired replica count is increasing faster than "
                                                               "the maximum scale rate")
        else:
            allowed, reason, message = max_replicas, "TooManyReplicas", ("the desired replica count is more than "
                                                                         "the maximum replica count")
        if desired > allowed:
            return allowed, reason, message
    elif desired < current:
        limit = min(scale_down_limit(history, now, current, rules_down), current)
        if min_replicas < limit:
            allowed, reason, message = limit, "ScaleDownLimit", ("the desired replica count is decreasing faster "
                                                                 "than the maximum scale rate")
        else:
            allowed, reason, message = min_replicas, "TooFewReplicas", ("the desired replica count is less than the "
                                                                        "minimum replica count")
        if desired < allowed:
            return allowed, reason, message
    return desired, "DesiredWithinRange", "the desired count is within the acceptable range"
