"""The scheduler against a real API server, then inside a real lab driven by the real kubectl.

The first tests run the scheduler in-process against an API server process (no Docker): a
burst of 50 pods and a pod that waits for a matching node. The ``lab`` tests need Docker and
the scheduler wired into the control plane's controller manager; they assert binding
(``spec.nodeName``), conditions and events, not Running, which is the node agent's job.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter

import pytest
from scheduler_harness import SchedulerThread, node_object, register_nodes

from labctl.client.rest import APIClient, Credentials, resource_path
from labctl.cluster.kubectl import Kubectl
from labctl.kube.quantity import milli_value

CP_TAINT_REASON = "1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }"
NOT_HELPFUL = "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."


def pod_manifest(name: str, owner: dict | None = None, requests: dict | None = None, **spec) -> dict:
    meta: dict = {"name": name, "namespace": "default", "labels": {"app": "sched-test"}}
    if owner:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": owner["kind"], "name": owner["metadata"]["name"],
                                    "uid": owner["metadata"]["uid"], "controller": True}]
    container = {"name": "web", "image": "nginx", **({"resources": {"requests": requests}} if requests else {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": {"containers": [container], **spec}}


def wait_for(check, timeout: float = 20.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


# -- against an API server process (no Docker) -------------------------------------------
async def create_pods(kubeconfig, manifests: list[dict]) -> float:
    async with APIClient(Credentials.from_kubeconfig(kubeconfig)) as client:
        started = time.monotonic()
        await asyncio.gather(*(client.create(resource_path("pods", "default"), m) for m in manifests))
        return started


async def list_pods(kubeconfig) -> list[dict]:
    async with APIClient(Credentials.from_kubeconfig(kubeconfig)) as client:
        return (await client.get(resource_path("pods", "default")))["items"]


def test_burst_of_fifty_pods_is_bound_and_spread(apiserver, kubectl_binary):
    asyncio.run(register_nodes(apiserver.kubeconfig, [node_object("control-plane", control_plane=True),
                                                      node_object("worker"), node_object("worker2")]))
    owner = {"kind": "ConfigMap", "metadata": {"name": "burst", "uid": str(uuid.uuid4())}}
    with SchedulerThread(apiserver.kubeconfig):
        asyncio.run(create_pods(apiserver.kubeconfig, [pod_manifest(f"burst-{i}", owner) for i in range(50)]))
        bound = wait_for(lambda: all(p["spec"].get("nodeName") for p in asyncio.run(list_pods(apiserver.kubeconfig))))
    pods = asyncio.run(list_pods(apiserver.kubeconfig))
    assert bound, [p["metadata"]["name"] for p in pods if not p["spec"].get("nodeName")]
    assert Counter(p["spec"]["nodeName"] for p in pods) == {"worker": 25, "worker2": 25}
    k = Kubectl(kubectl_binary, apiserver.kubeconfig)
    events = k.json("get", "events", "-n", "default")["items"]
    assert any(e["reason"] == "Scheduled" and e["message"] == "Successfully assigned default/burst-0 to "
               + next(p["spec"]["nodeName"] for p in pods if p["metadata"]["name"] == "burst-0") for e in events)
    assert all(e["source"]["component"] == "default-scheduler" for e in events if e["reason"] == "Scheduled")


def test_pending_pod_is_bound_when_a_matching_node_joins(apiserver, kubectl_binary):
    asyncio.run(register_nodes(apiserver.kubeconfig, [node_object("worker")]))
    k = Kubectl(kubectl_binary, apiserver.kubeconfig)
    with SchedulerThread(apiserver.kubeconfig):
        k.run("apply", "-f", "-", input=json.dumps(pod_manifest("wants-ssd", nodeSelector={"disk": "ssd"})))
        condition = wait_for(lambda: next((c for c in k.json("get", "pod", "wants-ssd")["status"].get("conditions", [])
                                           if c["type"] == "PodScheduled"), None))
        assert condition and condition["status"] == "False" and condition["reason"] == "Unschedulable"
        assert condition["message"] == ("0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. "
                                        "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.")
        ssd = node_object("worker-ssd")
        ssd["metadata"]["labels"]["disk"] = "ssd"
        asyncio.run(register_nodes(apiserver.kubeconfig, [ssd]))
        assert wait_for(lambda: k.json("get", "pod", "wants-ssd")["spec"].get("nodeName")) == "worker-ssd"


# -- in a real lab with the real kubectl --------------------------------------------------
@pytest.fixture(scope="module")
def k(lab) -> Kubectl:
    return lab.kubectl


def apply(k: Kubectl, *manifests: dict) -> None:
    k.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(manifests)}))


def node_of(k: Kubectl, name: str, timeout: float = 30.0) -> str:
    return wait_for(lambda: k.json("get", "pod", name)["spec"].get("nodeName", ""), timeout) or ""


def failed_scheduling(k: Kubectl, name: str, timeout: float = 30.0) -> str:
    """The FailedScheduling event's message for pod ``name`` (kubectl describe shows the same)."""
    def message() -> str:
        events = k.json("get", "events", "-n", "default")["items"]
        return next((e["message"] for e in events if e["involvedObject"]["name"] == name
                     and e["reason"] == "FailedScheduling"), "")
    return wait_for(message, timeout, interval=0.3)


def test_pods_land_on_workers_only(k: Kubectl):
    apply(k, *(pod_manifest(f"plain-{i}") for i in range(4)))
    nodes = [node_of(k, f"plain-{i}") for i in range(4)]
    assert set(nodes) <= {"worker", "worker2"} and all(nodes), nodes
    events = k.json("get", "events", "-n", "default")["items"]
    assert any(e["reason"] == "Scheduled" and e["message"] == f"Successfully assigned default/plain-0 to {nodes[0]}"
               for e in events)
    pod = k.json("get", "pod", "plain-0")
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in pod["status"]["conditions"])


def test_pods_of_one_owner_split_two_and_two(k: Kubectl):
    # a ConfigMap as the controlling owner: a real object, so a garbage collector keeps the pods
    k.run("create", "configmap", "spread-owner")
    owner = k.json("get", "configmap", "spread-owner")
    apply(k, *(pod_manifest(f"spread-{i}", owner) for i in range(4)))
    nodes = Counter(node_of(k, f"spread-{i}") for i in range(4))
    assert nodes == {"worker": 2, "worker2": 2}


def test_missing_node_label_stays_pending_with_the_reason(k: Kubectl):
    apply(k, pod_manifest("wants-ssd", nodeSelector={"disktype": "ssd"}))
    message = failed_scheduling(k, "wants-ssd")
    assert message == (f"0/3 nodes are available: {CP_TAINT_REASON}, "
                       f"2 node(s) didn't match Pod's node affinity/selector. {NOT_HELPFUL}")
    pod = k.json("get", "pod", "wants-ssd")
    assert not pod["spec"].get("nodeName") and pod["status"]["phase"] == "Pending"
    condition = next(c for c in pod["status"]["conditions"] if c["type"] == "PodScheduled")
    assert (condition["status"], condition["reason"], condition["message"]) == ("False", "Unschedulable", message)
    assert "FailedScheduling" in k.run("describe", "pod", "wants-ssd").stdout


def test_thousand_cpus_is_insufficient_cpu(k: Kubectl):
    apply(k, pod_manifest("greedy", requests={"cpu": "1000"}))
    assert failed_scheduling(k, "greedy") == f"0/3 nodes are available: {CP_TAINT_REASON}, 2 Insufficient cpu. {NOT_HELPFUL}"
    assert not k.json("get", "pod", "greedy")["spec"].get("nodeName")


def test_tolerating_pod_can_land_on_the_control_plane(k: Kubectl):
    apply(k, pod_manifest("on-cp", nodeSelector={"node-role.kubernetes.io/control-plane": ""},
                          tolerations=[{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                                        "effect": "NoSchedule"}]))
    assert node_of(k, "on-cp") == "control-plane"


# -- pod affinity and PriorityClasses, in the same lab (each test in a namespace of its own) ------
HOSTNAME = "kubernetes.io/hostname"


@pytest.fixture
def ns(k: Kubectl):
    name = f"sched-{uuid.uuid4().hex[:6]}"
    k.run("create", "namespace", name)
    yield name
    k.run("delete", "namespace", name, "--wait=false")


def term(topology_key: str = HOSTNAME, **labels: str) -> dict:
    return {"labelSelector": {"matchExpressions": [{"key": key, "operator": "In", "values": [value]}
                                                   for key, value in labels.items()]},
            "topologyKey": topology_key}


def bare_pod(name: str, labels: dict, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "web", "image": "nginx"}], **spec}}


def running_pods(k: Kubectl, ns: str, selector: str) -> list[dict]:
    return [p for p in k.json("get", "pods", "-n", ns, "-l", selector)["items"] if p["status"].get("phase") == "Running"]


def test_required_anti_affinity_runs_one_replica_per_worker_and_leaves_the_third_pending(k: Kubectl, ns: str):
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                     "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term(app="web")]}},
                     "containers": [{"name": "web", "image": "nginx"}]}}}}
    k.run("apply", "-n", ns, "-f", "-", input=json.dumps(deployment))
    running = wait_for(lambda: len(r := running_pods(k, ns, "app=web")) == 2 and r, timeout=120)
    assert running and {p["spec"]["nodeName"] for p in running} == {"worker", "worker2"}
    pending = wait_for(lambda: [p for p in k.json("get", "pods", "-n", ns, "-l", "app=web")["items"]
                                if p["status"].get("phase") == "Pending" and not p["spec"].get("nodeName")])
    assert len(pending) == 1
    name = pending[0]["metadata"]["name"]
    expected = (f"0/3 nodes are available: {CP_TAINT_REASON}, 2 node(s) didn't match pod anti-affinity rules. "
                "preemption: 0/3 nodes are available: 1 Preemption is not helpful for scheduling, "
                "2 No preemption victims found for incoming pod.")
    events = wait_for(lambda: [e for e in k.json("get", "events", "-n", ns)["items"]
                               if e["involvedObject"]["name"] == name and e["reason"] == "FailedScheduling"])
    assert events and events[0]["message"] == expected
    described = k.run("describe", "pod", "-n", ns, name).stdout
    assert "FailedScheduling" in described and "didn't match pod anti-affinity rules" in described


def test_preferred_anti_affinity_spreads_away_and_pod_affinity_co_locates(k: Kubectl, ns: str):
    apply_ns = ["apply", "-n", ns, "-f", "-"]
    k.run(*apply_ns, input=json.dumps(bare_pod("cache", {"app": "cache"}, nodeSelector={HOSTNAME: "worker"})))
    assert node_of_in(k, ns, "cache") == "worker"
    avoid = {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": term(app="cache")}]}}
    near = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term(app="cache")]}}
    for i in range(2):  # one at a time: the second sees the first, and still avoids the cache's node
        k.run(*apply_ns, input=json.dumps(bare_pod(f"avoid-{i}", {"app": "avoid"}, affinity=avoid)))
        assert node_of_in(k, ns, f"avoid-{i}") == "worker2"
    for i in range(2):
        k.run(*apply_ns, input=json.dumps(bare_pod(f"near-{i}", {"app": "near"}, affinity=near)))
        assert node_of_in(k, ns, f"near-{i}") == "worker"


def node_of_in(k: Kubectl, ns: str, name: str, timeout: float = 20.0) -> str:
    return wait_for(lambda: k.json("get", "pod", "-n", ns, name)["spec"].get("nodeName", ""), timeout) or ""


def test_a_priority_class_resolves_into_the_pods_priority(k: Kubectl, ns: str):
    name = f"high-{ns}"
    k.run("create", "priorityclass", name, "--value=1000", "--description=tests")
    try:
        table = k.run("get", "priorityclasses").stdout.splitlines()
        assert table[0].split() == ["NAME", "VALUE", "GLOBAL-DEFAULT", "AGE", "PREEMPTIONPOLICY"]
        rows = {line.split()[0]: line.split() for line in table[1:]}
        assert rows["system-node-critical"][1:3] == ["2000001000", "false"]
        assert rows[name][1:3] == ["1000", "false"] and rows[name][-1] == "PreemptLowerPriority"
        k.run("apply", "-n", ns, "-f", "-", input=json.dumps(bare_pod("important", {"app": "p"},
                                                                           priorityClassName=name)))
        pod = k.json("get", "pod", "-n", ns, "important")
        assert (pod["spec"]["priority"], pod["spec"]["preemptionPolicy"]) == (1000, "PreemptLowerPriority")
        refused = k.run("apply", "-n", ns, "-f", "-", check=False,
                        input=json.dumps(bare_pod("lost", {"app": "p"}, priorityClassName="nope")))
        assert refused.returncode != 0
        assert 'pods "lost" is forbidden: no PriorityClass with name nope was found' in refused.stderr
    finally:
        k.run("delete", "priorityclass", name)


def test_a_higher_priority_pod_preempts_a_lower_priority_one(k: Kubectl, ns: str):
    allocatable = k.json("get", "node", "worker")["status"]["allocatable"]["cpu"]
    request = f"{milli_value(allocatable) * 6 // 10}m"  # two of these never share a worker
    low, high = f"low-{ns}", f"high-{ns}"
    k.run("create", "priorityclass", low, "--value=10")
    k.run("create", "priorityclass", high, "--value=1000")
    try:
        for worker in ("worker", "worker2"):
            filler = bare_pod(f"filler-{worker}", {"app": "filler"}, priorityClassName=low,
                              nodeSelector={HOSTNAME: worker})
            filler["spec"]["containers"][0]["resources"] = {"requests": {"cpu": request}}
            k.run("apply", "-n", ns, "-f", "-", input=json.dumps(filler))
            assert node_of_in(k, ns, f"filler-{worker}") == worker
        urgent = bare_pod("urgent", {"app": "urgent"}, priorityClassName=high)
        urgent["spec"]["containers"][0]["resources"] = {"requests": {"cpu": request}}
        k.run("apply", "-n", ns, "-f", "-", input=json.dumps(urgent))
        node = node_of_in(k, ns, "urgent", timeout=120)  # once the victim has terminated
        assert node in ("worker", "worker2")
        bound = k.json("get", "pod", "-n", ns, "urgent")
        uid = bound["metadata"]["uid"]
        assert bound["status"].get("nominatedNodeName") == node
        events = k.json("get", "events", "-n", ns)["items"]
        assert any(e["involvedObject"]["name"] == f"filler-{node}" and e["reason"] == "Preempted"
                   and e["message"] == f"Preempted by pod {uid} on node {node}" for e in events)
        assert any(e["involvedObject"]["name"] == "urgent" and e["reason"] == "FailedScheduling"
                   and e["message"] == f"0/3 nodes are available: {CP_TAINT_REASON}, 2 Insufficient cpu."
                   for e in events)  # room was found by preempting: no "preemption:" part
        survivor = {"filler-worker2" if node == "worker" else "filler-worker"}
        assert wait_for(lambda: {p["metadata"]["name"] for p in k.json("get", "pods", "-n", ns, "-l",
                                                                         "app=filler")["items"]} == survivor)
    finally:
        k.run("delete", "priorityclass", low, high)
