"""``labctl exercise selftest`` for every exercise (what .ci/run's test command covers): right after
``start`` the do-nothing attempt fails, the reference solution passes. Then ``labctl down``
leaves nothing of the lab — probes, state files, containers, the state volume."""

from __future__ import annotations

import subprocess

import pytest

from labctl.exercises.loader import list_definitions
from support.lab import labctl

pytestmark = [pytest.mark.docker, pytest.mark.kubectl, pytest.mark.timeout(1800)]


def test_selftest_passes_for_every_exercise_and_down_leaves_nothing(lab):
    ids = [d.id for d in list_definitions()]
    proc = labctl("exercise", "selftest", "--name", lab.name, env=lab.env, timeout=1500)
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    for exercise_id in ids:
        assert exercise_id in proc.stdout
    # an exercise whose probe is running (a solved one's probe has stopped by itself): down must
    # take the probe and the exercise state with it
    start = labctl("exercise", "start", "class-rolling-update", "--name", lab.name, env=lab.env)
    assert start.returncode == 0, start.stderr
    assert "labctl.exercises.probe run" in lab.exec("control-plane", "ps", "-eo", "args").stdout
    assert lab.down().returncode == 0
    left = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=io.labctl.cluster={lab.name}"],
                          capture_output=True, text=True, check=True).stdout.split()
    volumes = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"name={lab.name}"],
                             capture_output=True, text=True, check=True).stdout.split()
    assert not left and not volumes
