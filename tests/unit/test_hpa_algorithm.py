"""The HPA's arithmetic (``labctl/controllers/_replicacalc.py``) and the Metrics API's figures, without a cluster."""

from __future__ import annotations

import pytest

from labctl.apiserver.resourcemetrics import Reading, format_window, reading_from_stats, usage_between, usage_quantities
from labctl.controllers._replicacalc import (
    History,
    MetricsError,
    PodSample,
    limit_rate,
    resource_replicas,
    stabilize,
)
from labctl.controllers.horizontal import pod_sample, pod_usage
from labctl.kube.hpa import DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, effective_behavior


def pods(n: int, request: int = 100, **kw) -> list[PodSample]:
    return [PodSample(f"p{i}", request=request, **kw) for i in range(n)]


def test_desired_is_ceil_of_current_times_utilization_over_target():
    # 2 pods at 90m of 100m requested, target 50 %: 2 * 90/50 = 3.6 -> 4
    rec = resource_replicas(2, pods(2), {"p0": 90, "p1": 90}, 50, None)
    assert (rec.replicas, rec.utilization, rec.average) == (4, 90, 90)


def test_a_ratio_within_the_tolerance_keeps_the_current_count():
    assert resource_replicas(2, pods(2), {"p0": 54, "p1": 54}, 50, None).replicas == 2   # 1.08
    assert resource_replicas(2, pods(2), {"p0": 46, "p1": 46}, 50, None).replicas == 2   # 0.92
    assert resource_replicas(2, pods(2), {"p0": 56, "p1": 56}, 50, None).replicas == 3   # 1.12
    # the configurable tolerance (behavior.scaleUp.tolerance) widens the band
    assert resource_replicas(2, pods(2), {"p0": 56, "p1": 56}, 50, None, tolerance_up=0.2).replicas == 2


def test_low_usage_scales_down():
    assert resource_replicas(3, pods(3), {"p0": 5, "p1": 5, "p2": 5}, 50, None).replicas == 1


def test_pods_without_requests_fail_the_metric_like_upstream():
    sample = pod_sample({"metadata": {"name": "web-1"}, "status": {"phase": "Running"},
                         "spec": {"containers": [{"name": "web", "resources": {}}]}}, "cpu")
    with pytest.raises(MetricsError, match="missing request for cpu in container web of Pod web-1"):
        resource_replicas(1, [sample], {"web-1": 10}, 50, None)


def test_no_figures_for_any_pod_is_an_error():
    with pytest.raises(MetricsError, match="did not receive metrics for targeted pods"):
        resource_replicas(2, pods(2), {}, 50, None)
    with pytest.raises(MetricsError, match="no pods returned by selector"):
        resource_replicas(2, [], {}, 50, None)


def test_missing_figures_damp_a_scale_down_and_unready_pods_damp_a_scale_up():
    # scale down: the pod without figures counts as using its whole request -> (10+100)/200 = 55 % -> no change
    assert resource_replicas(2, pods(2), {"p0": 10}, 50, None).replicas == 2
    # scale up with an unready pod counted at 0: (200 + 0) / 200 = 100 % of 50 % -> 4 over 2 pods
    samples = [PodSample("p0", request=100), PodSample("p1", request=100, unready=True)]
    assert resource_replicas(2, samples, {"p0": 200, "p1": 900}, 50, None).replicas == 4
    # deleted/failed pods are left out
    samples = [PodSample("p0", request=100), PodSample("p1", request=100, ignored=True)]
    assert resource_replicas(2, samples, {"p0": 100}, 50, None).replicas == 2


def test_an_average_value_target_needs_no_requests():
    rec = resource_replicas(1, pods(1, request=None), {"p0": 300}, None, 100)
    assert (rec.replicas, rec.utilization, rec.average) == (3, None, 300)


def test_scale_down_is_stabilized_over_the_window():
    history, rules = History(), effective_behavior({})
    up, down = rules["scaleUp"], {**rules["scaleDown"], "stabilizationWindowSeconds": 30}
    assert stabilize(history, 0.0, 1, 3, up, down)[0] == 3
    # the load stops: the recommendation of 3 made 10 s ago holds the count
    replicas, reason, _ = stabilize(history, 10.0, 3, 1, up, down)
    assert (replicas, reason) == (3, "ScaleDownStabilized")
    # once it is older than the window, the lower recommendation wins
    assert stabilize(history, 41.0, 3, 1, up, down)[0] == 1


def test_the_default_scale_down_window_is_five_minutes():
    assert DEFAULT_SCALE_DOWN["stabilizationWindowSeconds"] == 300 and DEFAULT_SCALE_UP["stabilizationWindowSeconds"] == 0
    history, rules = History(), effective_behavior({})
    stabilize(history, 0.0, 1, 4, rules["scaleUp"], rules["scaleDown"])
    assert stabilize(history, 299.0, 4, 1, rules["scaleUp"], rules["scaleDown"])[0] == 4
    assert stabilize(history, 301.0, 4, 1, rules["scaleUp"], rules["scaleDown"])[0] == 1


def test_min_and_max_clamp_with_their_reasons():
    rules = effective_behavior({})
    assert limit_rate(History(), 0.0, 2, 9, 1, 3, rules["scaleUp"], rules["scaleDown"])[:2] == (3, "TooManyReplicas")
    assert limit_rate(History(), 0.0, 3, 0, 2, 5, rules["scaleUp"], rules["scaleDown"])[:2] == (2, "TooFewReplicas")
    assert limit_rate(History(), 0.0, 2, 3, 1, 5, rules["scaleUp"], rules["scaleDown"])[:2] == (3, "DesiredWithinRange")


def test_policies_limit_the_rate():
    up = {"selectPolicy": "Max", "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}
    down = {"selectPolicy": "Max", "policies": [{"type": "Percent", "value": 50, "periodSeconds": 60}]}
    history = History()
    assert limit_rate(history, 0.0, 1, 5, 1, 10, up, down)[:2] == (2, "ScaleUpLimit")
    history.record_scale(0.0, 1, 2, 60)
    # one pod already added within the period: no more until it ends
    assert limit_rate(history, 30.0, 2, 5, 1, 10, up, down)[0] == 2
    assert limit_rate(history, 61.0, 2, 5, 1, 10, up, down)[0] == 3
    assert limit_rate(History(), 0.0, 8, 1, 1, 10, up, down)[:2] == (4, "ScaleDownLimit")
    disabled = {**down, "selectPolicy": "Disabled"}
    assert limit_rate(History(), 0.0, 8, 1, 1, 10, up, disabled)[0] == 8


def test_pod_usage_sums_containers_in_millicores_and_bytes():
    metrics = [{"metadata": {"name": "web-1"}, "containers": [
        {"name": "a", "usage": {"cpu": "250000000n", "memory": "1024Ki"}},
        {"name": "b", "usage": {"cpu": "5m", "memory": "1Mi"}}]}]
    assert pod_usage(metrics, "cpu") == {"web-1": 255}
    assert pod_usage(metrics, "memory") == {"web-1": 2 * 1024 * 1024}


def test_cpu_usage_is_a_rate_and_memory_the_working_set():
    stats = {"cpu_stats": {"cpu_usage": {"total_usage": 3_000_000_000}},
             "memory_stats": {"usage": 10 * 1024 * 1024, "stats": {"total_inactive_file": 2 * 1024 * 1024}}}
    end = reading_from_stats(stats, at=12.0, wall=1_800_000_000.0)
    assert end is not None and end.working_set == 8 * 1024 * 1024
    usage = usage_between(Reading(10.0, 0.0, 2_000_000_000, 0), end)  # 1 s of CPU in 2 s: half a core
    assert (usage.nanocores, usage.window) == (500_000_000, 2.0)
    assert usage_quantities(usage.nanocores, usage.working_set) == {"cpu": "500000000n", "memory": "8192Ki"}
    assert reading_from_stats({"cpu_stats": {}, "memory_stats": {}}, 0.0, 0.0) is None  # a stopped container


def test_the_window_prints_as_a_go_duration():
    assert format_window(15.0) == "15s"
    assert format_window(1.0034) == "1.003s"
    assert format_window(60.5) == "1m0.5s"
