"""Faults a student causes on purpose, in a real lab: each heals, or is refused.

One 1 control-plane + 2 worker lab for the module. Every test makes the objects it needs
(names of its own) and breaks things only on them or on the node it names, then waits for
the state it checks, so the tests pass in any order:

- ``iptables -t nat -F`` in a node: the proxy's rules and Docker's embedded-DNS rules are
  back within a second; ``-F``/``-X`` of every table on a worker: its pods reach Services again;
- ``ip link del`` of a pod's veth: the kubelet re-creates the sandbox (restart count, new IP,
  event), and the pod is reported not Ready meanwhile;
- a pod's containers killed behind the kubelet's back (what a Docker restart does to them):
  the pod's status says so within seconds, and the restart count rises;
- the load-balancer hijack: a Service's status patched with the control plane's address is
  never announced by any node;
- ``kubectl delete node worker2``: its kubelet registers it again, its pods keep running.

A Docker daemon restart is not tested here: it would take down every other lab on the
machine. It must run alone (the pieces it needs are the tests above).
"""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from labctl.client.waiting import wait_for
from labctl.cni.bridge import host_veth_name

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

NODES = ("control-plane", "worker", "worker2")
CONTROL_PLANE_TOLERATION = {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                            "effect": "NoSchedule"}

#: run inside a node: flush nat, then poll iptables-save until it holds every rule it held
#: before (counters aside); print the milliseconds that took
RESTORED_AFTER_FLUSH = r"""
import re, subprocess, sys, time
def rules():
    text = subprocess.run(["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout
    return {line for line in text.splitlines() if line.startswith(("-A ", ":"))}
before = rules()
flush = ["iptables", "-t", "nat", "-F"] + sys.argv[1:]
started = time.monotonic()
subprocess.run(flush, check=True)
while rules() != before:
    if time.monotonic() - started > 10:
        print("missing:", sorted(before - rules())); sys.exit(1)
    time.sleep(0.005)
print(round((time.monotonic() - started) * 1000))
"""


def apply(lab, *objs: dict) -> None:
    lab.kubectl.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def pod(name: str, node: str, image: str = "labctl/web:v1", labels: dict | None = None, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {"app": name}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "tolerations": [CONTROL_PLANE_TOLERATION],
                     "containers": [{"name": "app", "image": image}], **spec}}


def service(name: str, selector: dict, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": selector, "ports": [{"port": 80, "targetPort": 80}], **spec}}


def get_pod(lab, name: str) -> dict:
    return lab.kubectl.json("get", "pod", name)


def condition(obj: dict, typ: str) -> str | None:
    return next((c["status"] for c in (obj.get("status") or {}).get("conditions") or [] if c["type"] == typ), None)


def pod_when(lab, name: str, ready: bool = True, restarted: bool = False) -> dict | None:
    """The pod while it is (not) Ready and, with ``restarted``, has restarted; else None."""
    p = get_pod(lab, name)
    if (condition(p, "Ready") == "True") != ready or (restarted and not restarts(p)):
        return None
    return p


def ready_pod(lab, name: str, timeout: float = 120) -> dict:
    return wait_for(lambda: pod_when(lab, name), timeout=timeout, what=f"pod {name} Ready")


def restarts(p: dict) -> int:
    return sum(c.get("restartCount", 0) for c in p["status"].get("containerStatuses") or [])


def events(lab, name: str, reason: str) -> list[dict]:
    found = lab.kubectl.json("get", "events", "--field-selector", f"involvedObject.name={name}")["items"]
    return [e for e in found if e["reason"] == reason]


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)


def pod_containers(lab, name: str) -> dict[str, str]:
    """Container name (``POD`` for the sandbox) → id of the running Docker containers of a pod."""
    out = docker("ps", "--filter", f"label=io.labctl.cluster={lab.name}",
                 "--filter", f"label=io.kubernetes.pod.name={name}",
                 "--format", '{{.ID}} {{.Label "io.kubernetes.container.name"}}').stdout
    return {line.split()[1]: line.split()[0] for line in out.splitlines() if line.strip()}


def node_log(lab, node: str) -> str:
    """What a node's components logged (``docker logs``: nodeinit prefixes each line with the component)."""
    logs = docker("logs", f"{lab.name}-{node}")
    return logs.stdout + logs.stderr


def curl(lab, client: str, url: str) -> str:
    proc = lab.kubectl.run("exec", client, "--", "curl", "-s", "--max-time", "2", url, check=False)
    return proc.stdout if proc.returncode == 0 else ""


@pytest.fixture(scope="module")
def faults_lab(lab):
    yield lab
    # stop the nodes (and so the kubelets) first: a live kubelet re-creates what `labctl down` removes
    subprocess.run(["docker", "kill", *(f"{lab.name}-{n}" for n in NODES)], capture_output=True, timeout=60)


# -- iptables ---------------------------------------------------------------------------------
def test_a_flushed_nat_table_is_whole_again_within_a_second(faults_lab):
    lab = faults_lab
    for attempt in range(3):
        took = lab.exec("worker", "python3", "-c", RESTORED_AFTER_FLUSH).stdout.strip()
        print(f"flush {attempt + 1}: the nat table of worker was whole again after {took} ms")
        assert int(took) < 1000, f"nat rules back only after {took} ms"
    # Docker's embedded DNS answers in the node again: its name resolution works
    assert lab.exec("worker", "getent", "hosts", f"{lab.name}-control-plane").stdout.strip()
    assert "iptables canary gone from nat" in node_log(lab, "worker")


def test_pods_reach_services_again_after_every_table_of_their_node_is_flushed_and_deleted(faults_lab):
    lab = faults_lab
    apply(lab, pod("flushweb", "worker2"), service("flushweb", {"app": "flushweb"}),
          pod("flushclient", "worker", image="labctl/toolbox:latest"))
    ready_pod(lab, "flushweb")
    ready_pod(lab, "flushclient")
    wait_for(lambda: curl(lab, "flushclient", "http://flushweb"), timeout=60, what="flushweb answering by name")
    lab.exec("worker", "sh", "-c", "for t in filter nat mangle; do iptables -t $t -F; iptables -t $t -X; done",
             check=False)  # -X may already find chains refilled: then it fails, which is the point
    started = time.monotonic()
    wait_for(lambda: curl(lab, "flushclient", "http://flushweb"), timeout=10, interval=0.2,
             what="the Service from a pod on the flushed node")
    print(f"Service reachable again {time.monotonic() - started:.1f}s after the flush")
    lab.kubectl.run("delete", "pod/flushweb", "pod/flushclient", "service/flushweb", "--wait=false")
    # the flush test compares worker's nat table before and after: it must not see this Service going
    wait_for(lambda: "default/flushweb" not in lab.exec("worker", "iptables-save", "-t", "nat").stdout,
             timeout=30, what="flushweb's rules gone from worker")


# -- the pod network --------------------------------------------------------------------------
def test_a_deleted_veth_makes_the_pod_not_ready_then_a_new_sandbox_brings_it_back(faults_lab):
    lab = faults_lab
    apply(lab, pod("vethless", "worker"))
    before = ready_pod(lab, "vethless")
    sandbox = pod_containers(lab, "vethless")["POD"]
    full_id = docker("inspect", "-f", "{{.Id}}", sandbox).stdout.strip()
    veth = host_veth_name(full_id, "eth0")
    lab.exec("worker", "ip", "link", "del", veth)
    deleted = time.monotonic()
    wait_for(lambda: condition(get_pod(lab, "vethless"), "Ready") != "True" or restarts(get_pod(lab, "vethless")),
             timeout=20, interval=0.2, what="vethless reported not Ready (or already re-created)")
    print(f"not Ready after {time.monotonic() - deleted:.1f}s")
    after = wait_for(lambda: pod_when(lab, "vethless", restarted=True), timeout=90,
                     what="vethless Ready again with a new sandbox")
    print(f"Ready again after {time.monotonic() - deleted:.1f}s, IP {before['status']['podIP']} -> "
          f"{after['status']['podIP']}")
    assert restarts(after) == restarts(before) + 1
    assert pod_containers(lab, "vethless")["POD"] != sandbox
    assert events(lab, "vethless", "SandboxChanged")
    new_veth = host_veth_name(docker("inspect", "-f", "{{.Id}}", pod_containers(lab, "vethless")["POD"]).stdout.strip(),
                              "eth0")
    assert lab.exec("worker", "ip", "link", "show", new_veth, "master", "cni0").returncode == 0
    ip = after["status"]["podIP"]
    assert lab.exec("worker", "curl", "-s", "--max-time", "3", f"http://{ip}/", check=False).returncode == 0
    lab.kubectl.run("delete", "pod/vethless", "--wait=false")


def test_containers_killed_behind_the_kubelets_back_show_in_status_and_count_as_restarts(faults_lab):
    """What a Docker daemon restart does to a pod: its sandbox and app container die."""
    lab = faults_lab
    apply(lab, pod("killed", "worker2"))
    before = ready_pod(lab, "killed")
    containers = pod_containers(lab, "killed")
    docker("kill", containers["app"], containers["POD"])
    killed = time.monotonic()
    wait_for(lambda: condition(get_pod(lab, "killed"), "Ready") != "True" or restarts(get_pod(lab, "killed")),
             timeout=5, interval=0.1, what="killed's status to stop saying Ready")
    print(f"status not Ready {time.monotonic() - killed:.1f}s after the kill")
    after = wait_for(lambda: pod_when(lab, "killed", restarted=True), timeout=60, what="killed running again")
    print(f"running again after {time.monotonic() - killed:.1f}s with restartCount {restarts(after)}")
    assert restarts(after) >= restarts(before) + 1
    assert events(lab, "killed", "SandboxChanged")
    lab.kubectl.run("delete", "pod/killed", "--wait=false")


# -- the load-balancer hijack -----------------------------------------------------------------
def lb_addresses(lab, node: str) -> set[str]:
    """The /32s a node has on its lab interface besides its InternalIP (``ip -j addr``)."""
    links = json.loads(lab.exec(node, "ip", "-j", "-4", "addr").stdout)
    return {a["local"] for link in links if link["ifname"] != "lo" and not link["ifname"].startswith(("cni", "veth"))
            for a in link.get("addr_info", []) if a.get("prefixlen") == 32}


def test_a_patched_status_with_the_control_planes_address_is_never_announced(faults_lab):
    lab = faults_lab
    nodes = {n["metadata"]["name"]: next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
             for n in lab.kubectl.json("get", "nodes")["items"]}
    apply(lab, service("hijack", {"app": "nothing"}, type="LoadBalancer", loadBalancerClass="example.com/none"))
    patched = lab.kubectl.run("patch", "service", "hijack", "--subresource=status", "--type=merge", "-p",
                              json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": nodes["control-plane"]}]}}}))
    assert patched.returncode == 0  # admin may write it: the agents are the ones that must refuse
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # nothing to wait for: watch that nothing happens
        for node in NODES:
            assert nodes["control-plane"] not in lb_addresses(lab, node), f"{node} announces the control plane"
        time.sleep(1)
    healthy = lab.kubectl.json("get", "nodes")["items"]
    assert all(condition(n, "Ready") == "True" for n in healthy)
    logs = node_log(lab, "worker") + node_log(lab, "worker2")
    assert f"refusing to announce {nodes['control-plane']} of Service default/hijack" in logs
    lab.kubectl.run("delete", "service/hijack")


# -- a deleted Node ---------------------------------------------------------------------------
def test_a_deleted_node_comes_back_and_keeps_its_pods(faults_lab):
    lab = faults_lab
    apply(lab, pod("stays", "worker2"))
    before = ready_pod(lab, "stays")
    node_uid = lab.kubectl.json("get", "node", "worker2")["metadata"]["uid"]
    lab.kubectl.run("delete", "node", "worker2", "--wait=false")
    deleted = time.monotonic()

    def registered_again():
        found = lab.kubectl.run("get", "node", "worker2", "-o", "json", check=False)
        node = json.loads(found.stdout) if found.returncode == 0 else None
        return node if node and node["metadata"]["uid"] != node_uid and condition(node, "Ready") == "True" else None

    wait_for(registered_again, timeout=30, interval=0.2, what="worker2 registered again")
    print(f"worker2 back {time.monotonic() - deleted:.1f}s after its deletion")
    after = ready_pod(lab, "stays", timeout=30)
    assert after["metadata"]["uid"] == before["metadata"]["uid"] and restarts(after) == restarts(before)
    assert after["status"]["podIP"] == before["status"]["podIP"]
    lab.kubectl.run("delete", "pod/stays", "--wait=false")
