"""Bounded nodes and pods: memory and pids limits from the topology's ``resources``.

A node container gets its role's limits (the plan); a pod container gets the lab's default
memory limit when it sets none, and the pids limit always (the kubelet). In a lab, a pod that
allocates past the default is OOMKilled and one that starts too many threads cannot, while a
pod with its own larger limit runs.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from labctl.agent.kubelet.runtime import resource_limits
from labctl.client.waiting import wait_for
from labctl.cluster.plan import container_spec, node_config, plan_from_topology
from labctl.clusterconfig import NodeConfig
from labctl.topology import Limits, Resources, TopologyError, parse_topology
from support.lab import Lab, unique_name

MIB = 2**20
CUSTOM = {"workers": {"memory": "384Mi", "pids": 512}, "pods": {"memory": "64Mi", "pids": 64}}


def test_defaults_bound_every_node_and_pod():
    topo = parse_topology({"nodes": [{"role": "control-plane"}, {"role": "worker"}]})
    assert topo.resources == Resources(control_plane=Limits(1024 * MIB, 1024), workers=Limits(512 * MIB, 1024),
                                       pods=Limits(512 * MIB, 1024))
    plan = plan_from_topology(topo, "172.30.7.0/24", "labctl/node:x")
    cp, worker = (container_spec(plan, n) for n in plan.nodes)
    assert (cp["mem_limit"], cp["memswap_limit"], cp["pids_limit"]) == (1024 * MIB, 1024 * MIB, 1024)
    assert (worker["mem_limit"], worker["memswap_limit"], worker["pids_limit"]) == (512 * MIB, 512 * MIB, 1024)


def test_the_topology_sets_them_and_node_json_carries_the_pod_defaults():
    topo = parse_topology({"nodes": [{"role": "control-plane"}, {"role": "worker"}],
                           "resources": {**CUSTOM, "controlPlane": {"memory": "1.5Gi"}}})
    plan = plan_from_topology(topo, "172.30.7.0/24", "labctl/node:x")
    assert [(n.limits.memory, n.limits.pids) for n in plan.nodes] == [(1536 * MIB, 1024), (384 * MIB, 512)]
    cfg = NodeConfig.loads(node_config(plan, plan.nodes[1]).dump()).cluster
    assert (cfg.pod_default_memory_limit, cfg.pod_pids_limit) == (64 * MIB, 64)
    # what the kubelet makes of it: the default only where the pod sets no memory limit
    assert resource_limits({"name": "app"}, cfg) == {"mem_limit": 64 * MIB, "pids_limit": 64}
    own = resource_limits({"resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m"}}}, cfg)
    assert own == {"mem_limit": 256 * MIB, "pids_limit": 64, "cpu_shares": 102}


@pytest.mark.parametrize("resources, problem", [
    ({"workers": {"memory": "64Mi"}}, 'resources.workers.memory: "64Mi" is out of range; use from 128Mi to 1Ti'),
    ({"controlPlane": {"memory": "lots"}}, 'resources.controlPlane.memory: "lots" is not a memory size'),
    ({"pods": {"pids": 0}}, "resources.pods.pids: 0 is out of range; use an integer from 16 to 4194304"),
    ({"pods": {"cpu": 1}}, 'resources.pods.cpu: unknown field; allowed fields: memory, pids'),
    ({"nodes": {}}, 'resources.nodes: unknown field (did you mean "pods"?)'),
])
def test_limits_too_small_to_run_or_misspelt_are_refused(resources, problem):
    with pytest.raises(TopologyError) as err:
        parse_topology({"resources": resources})
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems


@pytest.fixture(scope="module")
def bounded_lab(docker_engine, kubectl_binary, tmp_path_factory):
    """A control plane and one worker with small pod limits (64Mi, 64 pids)."""
    lab = Lab(unique_name("res"), tmp_path_factory.mktemp("res"), kubectl_binary, workers=1,
              extra={"resources": CUSTOM})
    created = lab.up()
    try:
        assert created.returncode == 0, created.stderr
        yield lab
    finally:
        lab.down()


def run_pod(lab: Lab, name: str, code: str, limits: dict | None = None) -> dict:
    """A pod running ``python3 -c code`` once; its status when it has ended."""
    container = {"name": "app", "image": "labctl/toolbox:latest", "command": ["python3", "-c", code]}
    if limits:
        container["resources"] = {"limits": limits}
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
           "spec": {"restartPolicy": "Never", "containers": [container]}}
    lab.kubectl.run("apply", "-f", "-", input=json.dumps(pod))

    def ended() -> dict | None:
        status = lab.kubectl.json("get", "pod", name)["status"]
        return status if status.get("phase") in ("Succeeded", "Failed") else None

    return wait_for(ended, timeout=120, what=f"pod {name} to end")


def terminated(status: dict) -> dict:
    return status["containerStatuses"][0]["state"]["terminated"]


@pytest.mark.docker
@pytest.mark.kubectl
def test_in_a_lab_nodes_and_pods_are_held_to_their_limits(bounded_lab):
    lab = bounded_lab
    inspect = json.loads(subprocess.run(["docker", "inspect", f"{lab.name}-worker"], capture_output=True,
                                        text=True, check=True).stdout)[0]["HostConfig"]
    assert (inspect["Memory"], inspect["MemorySwap"], inspect["PidsLimit"]) == (384 * MIB, 384 * MIB, 512)

    greedy = run_pod(lab, "greedy", "b = bytearray(200 * 2**20)")
    assert (greedy["phase"], terminated(greedy)["reason"]) == ("Failed", "OOMKilled")
    allowed = run_pod(lab, "allowed", "b = bytearray(200 * 2**20)", limits={"memory": "320Mi"})
    assert allowed["phase"] == "Succeeded", allowed
    threads = ("import threading, time\n"
               "[threading.Thread(target=time.sleep, args=(5,)).start() for _ in range(200)]")
    forks = run_pod(lab, "forks", threads)
    assert forks["phase"] == "Failed" and terminated(forks)["exitCode"] != 0
    assert "can't start new thread" in lab.kubectl.run("logs", "forks").stdout
