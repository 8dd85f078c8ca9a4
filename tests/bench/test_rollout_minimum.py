"""``bench/rollout.py``'s theoretical minimum: upstream's rolling arithmetic, played with instant controllers."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import rollout  # bench/ is a folder of scripts, not a package


@pytest.mark.parametrize("replicas", [4, 20, 50])
def test_25_percent_surge_and_unavailable_take_two_waves_at_every_size(replicas):
    # surge rounds up (4→1, 20→5, 50→13), unavailable down (1, 5, 12): half the pods per wave
    assert rollout.theoretical_minimum(replicas, "25%", "25%", 2, 0.65) == (pytest.approx(5.3), 2)


def test_surge_one_unavailable_zero_takes_a_wave_per_pod():
    assert rollout.theoretical_minimum(4, 1, 0, 2, 0.5) == (pytest.approx(10.0), 4)


def test_ready_time_truncated_to_the_second_makes_a_pod_available_early():
    # lastTransitionTime is metav1.Time (seconds): Ready at x.65 counts from x.00
    assert rollout.theoretical_minimum(4, "25%", "25%", 2, 0.65, wall_start=1000.0)[0] == pytest.approx(4.0)
    assert rollout.theoretical_minimum(4, "25%", "25%", 2, 0.65, wall_start=1000.5)[0] == pytest.approx(4.5)


def test_the_rollouts_own_pod_starts_price_the_wave():
    # the first wave's 10 pods start in 1 s, the second's in 3 s
    assert rollout.theoretical_minimum(20, "25%", "25%", 2, [1.0] * 10 + [3.0] * 10)[0] == pytest.approx(8.0)


@pytest.mark.parametrize(("replicas", "waves"), [(4, [2, 2]), (20, [10, 10]), (50, [25, 25])])
def test_the_play_tells_each_waves_size_for_the_docker_floor(replicas, waves):
    # the Docker floor starts each wave's pods at once: surge + unavailable new pods, then the rest
    created: list[float] = []
    rollout.theoretical_minimum(replicas, "25%", "25%", 2, 1.0, created=created)
    assert [created.count(t) for t in sorted(set(created))] == waves
