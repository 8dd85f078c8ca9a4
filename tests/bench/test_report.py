"""``bench/run``'s page: rendered from recorded JSON, figures with floor, ratio, goal and verdict, plots as PNG."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import report  # bench/ is a folder of scripts, not a package

UP = {"benchmark": "up", "cores": 2, "topologies": {"default": {
    "nodes": 3, "goal_s": 2.0, "up_s_median": 1.8, "floor_s_median": 0.6, "ratio": 3.0, "down_s_median": 1.7,
    "down_goal_s": 1.5, "dns_from_pod_ok": True, "lab_cpu_s_median": 3.0, "cli_cpu_s_median": 1.0,
    "engine_cpu_s_median": 2.0, "control_plane_mib": 131.0, "idle_worker_mib": 61.0,
    "phases_median": {"images": 0.1, "plan+pki": 0.05, "start": 0.9, "dns": 0.4, "cli": 0.35},
    "runs": [{}, {}, {}]}}}
#: pod_startup.json as the script writes it today (percentiles only) and with per-pod times
PODS_NOW = {"cores": 2, "results": [{"pods": 50, "p50_s": 18.8, "p99_s": 23.1, "max_s": 23.4, "pods_per_s": 2.2}]}
PODS_NEXT = {"results": [{"pods": 50, "p50_s": 2.0, "p99_s": 3.9, "all_s": 4.0, "ready_s": [0.5 + i / 20 for i in range(50)],
                          "floor": {"all_s": 3.5, "p99_s": 3.45, "start_s": [0.4 + i / 25 for i in range(50)]}}]}
ROLLOUT = {"reaction": {"p50_ms": 20.5, "p99_ms": 43.2, "samples": 50},
           "rollouts": [{"replicas": 4, "seconds": 5.0, "theoretical_min_s": 4.0,
                         "timeline": [{"t": 0, "old": 4, "new": 0}, {"t": 2, "old": 3, "new": 1},
                                      {"t": 5, "old": 0, "new": 4}]},
                        {"replicas": 20, "seconds": 41.9, "theoretical_min_s": 12.0, "pod_start_s": 4.0,
                         "rollout_pod_start_p50_s": 15.0, "replayed_min_s": 38.1,
                         "docker_floor": {"seconds": 18.0, "waves": [10, 10], "pod_start_p50_s": 7.0}}]}
APISERVER = {"objects": 1000, "creates_per_s": 800.0, "get_ms_p50": 0.76, "get_ms_p99": 2.1, "list_1000_ms_p50": 25.7,
             "list_1000_table_ms_p50": 33.0, "watchers": 10, "watch_events_per_s_total": 9521.0}
RUN = {"date": "2026-12-07", "quick": True, "seconds": 800, "load": {"start": [2.0, 3.0, 4.0], "end": [5.0, 4.0, 3.0]},
       "machine": {"cpu": "Test CPU", "cores": "2", "memory": "24 GiB", "kernel": "6.18", "docker": "20.10.24",
                   "python": "3.11.2"},
       "benchmarks": [{"script": "up.py", "args": ["--runs", "3"], "seconds": 60, "outcome": "ok"},
                      {"script": "faults.py", "args": [], "seconds": 0, "outcome": "not in --quick"}]}
PAGE = "# Benchmarks\n\nIntro.\n\n| what | goal |\n| --- | --- |\n| old row | 1 s |\n\nMore text.\n"


@pytest.fixture(autouse=True)
def _needs_matplotlib() -> None:
    pytest.importorskip("matplotlib")


def test_rows_carry_floor_ratio_goal_and_verdict(tmp_path):
    section = report.render_section({"up": UP, "apiserver": APISERVER, "pod_startup": PODS_NEXT, "rollout": ROLLOUT},
                                    RUN, tmp_path, "benchmarks")
    assert "| `labctl up` (default, 3 nodes) until cluster DNS answers, whole CLI run, median of 3 | ≤ 2 s | " \
           "**1.80 s**; first pod's nslookup answered | 0.60 s" in section
    assert "| 3.0× | **met** |" in section
    assert "CPU-seconds until `up` returned: the lab's containers 3.00, `up`'s process 1.00, the Docker engine 2.00 " \
           "| — | 6.00 CPU-s | 3.00 s (that CPU on 2 cores, perfectly shared) |" in section
    assert "`labctl down -q` (default), whole CLI run | ≤ 1.5 s | **1.70 s** |  |  | not met" in section
    assert "idle worker memory (default) | ≤ 60 MiB | **61 MiB** |  |  | not met" in section
    assert "| 50 pods at once, all Ready (and p99 per pod) | ≤ 1.25× floor, p99 ≤ 5 s | all Ready in **4.0 s**" in section
    assert "| 3.5 s, p99 3.45 s (the same containers straight through Docker) | 1.14× | **met** |" in section
    assert "rollout of 20 replicas (25 %/25 %, minReadySeconds 2) | ≤ 1.3× minimum | **41.9 s** | 12.0 s " \
           "(theoretical minimum) | 3.49× | not met" in section
    assert "against the minimum with its own pods' starts (p50 15.00 s vs 4.00 s alone) | — | 41.9 s | 38.1 s " \
           "(controllers and kubectl instant) | 1.10× |" in section
    assert "with each wave's pods (10/10) started straight through Docker (p50 7.00 s): Docker alone is 1.50× the " \
           "theoretical minimum | — | 41.9 s | 18.0 s (Docker floor) | 2.33× |" in section
    assert "Machine: Test CPU, 2 cores, 24 GiB, kernel 6.18, Docker 20.10.24" in section
    assert "2.0 / 3.0 / 4.0 at the start, 5.0 / 4.0 / 3.0 at the end" in section
    assert "| `bench/faults.py` | `` | 0 s | not in --quick |" in section
    for png in ("up_phases.png", "pod_startup_cdf.png", "rollout_timeline.png"):
        assert f"](benchmarks/{png})" in section
        assert (tmp_path / png).read_bytes().startswith(b"\x89PNG")


def test_the_pod_startup_shape_of_today_gives_a_row_without_floor_and_no_plot(tmp_path):
    section = report.render_section({"pod_startup": PODS_NOW}, RUN, tmp_path, "img")
    assert "all Ready in **22.7 s**; p50 18.80 s / p99 23.10 s | not measured |  |  |" in section
    assert "pod_startup_cdf.png" not in section and not (tmp_path / "pod_startup_cdf.png").exists()


def test_splice_keeps_the_earlier_figures_and_replaces_only_its_own_section(tmp_path):
    first = report.splice(PAGE, report.render_section({"up": UP}, RUN, tmp_path, "img"))
    assert first.startswith("# Benchmarks\n\nIntro.\n\n" + report.BEGIN)
    assert "## Figures measured earlier (each with its date)\n\n| what | goal |\n| --- | --- |\n| old row | 1 s |" in first
    again = report.splice(first, report.render_section({}, {**RUN, "date": "2026-12-08"}, tmp_path, "img"))
    assert again.count(report.BEGIN) == 1 and "2026-12-08" in again and "2026-12-07" not in again
    assert "| old row | 1 s |\n\nMore text.\n" in again and "`labctl up` (default" not in again


def test_recorded_results_load_by_script_name(tmp_path):
    (tmp_path / "up.json").write_text('{"topologies": {}}')
    (tmp_path / "broken.json").write_text("{")
    assert report.load_results(tmp_path) == {"up": {"topologies": {}}}
