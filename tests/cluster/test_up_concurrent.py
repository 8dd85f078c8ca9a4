"""Several `labctl up` at once, of different labs, into one kubeconfig: every one succeeds.

Before the host lock, two concurrent `up` picked the same free subnet and one failed with
Docker's `Pool overlaps with other one on this address space` (2 runs of 3), and the
kubeconfig merges lost each other's contexts.
"""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys

import pytest
import yaml

from labctl.cluster.scratch import traces, unique_name, write_topology

pytestmark = pytest.mark.docker

LABS = 3


def test_concurrent_ups_of_different_labs_get_different_subnets_and_keep_every_context(docker_engine, tmp_path):
    kubeconfig = tmp_path / "kubeconfig"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    names = [unique_name("cc") for _ in range(LABS)]
    try:
        procs = [subprocess.Popen([sys.executable, "-m", "labctl", "up", "-q", "-t",
                                   str(write_topology(tmp_path / f"{name}.yaml", name, workers=0))],
                                  stderr=subprocess.PIPE, text=True, env=env) for name in names]
        errors = [proc.communicate(timeout=600)[1] for proc in procs]
        assert [p.returncode for p in procs] == [0] * LABS, errors
        subnets = [subprocess.run(["docker", "network", "inspect", f"labctl-{name}", "--format",
                                   "{{(index .IPAM.Config 0).Subnet}}"], capture_output=True, text=True,
                                  check=True).stdout.strip() for name in names]
        networks = [ipaddress.ip_network(s) for s in subnets]
        assert not any(a.overlaps(b) for i, a in enumerate(networks) for b in networks[i + 1:]), subnets
        contexts = {c["name"] for c in yaml.safe_load(kubeconfig.read_text())["contexts"]}
        assert contexts == {f"labctl-{name}" for name in names}
    finally:
        for name in names:
            subprocess.run([sys.executable, "-m", "labctl", "down", "--name", name], capture_output=True, env=env)
    assert not [t for name in names for t in traces(name, kubeconfig)]
