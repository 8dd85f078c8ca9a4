"""Issue 16 in a real lab with the real kubectl: PodDisruptionBudgets, ``kubectl drain`` through
``pods/eviction`` (and ``--disable-eviction``), and the API proxy (``kubectl proxy``).

One lab for the module. The drain tests cordon ``worker`` while their Deployment starts, so
every pod lands on ``worker2``, then uncordon it and drain ``worker2``: the replacements
must start on ``worker``, and the budget lets the evictions through one at a time. Both
nodes are uncordoned afterwards, whatever happens, so the tests pass in any order.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from labctl.client.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]


def deployment(name: str, replicas: int) -> dict:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "web", "image": "nginx",
                                                           "ports": [{"containerPort": 80}]}]}}}}


def apply(lab, namespace: str, *objs: dict) -> None:
    lab.kubectl.run("apply", "-n", namespace, "-f", "-",
                    input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def ready_pods(lab, namespace: str, app: str) -> list[dict]:
    """The app's pods that serve: Ready and not terminating (what a budget counts as healthy)."""
    items = lab.kubectl.json("get", "pods", "-n", namespace, "-l", f"app={app}")["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")
            and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


@pytest.fixture
def on_worker2(lab) -> Iterator[str]:
    """Cordon ``worker`` while the test's pods start (they land on ``worker2``); uncordon everything after."""
    worker, worker2 = "worker", "worker2"
    lab.kubectl.run("cordon", worker)
    try:
        yield worker2
    finally:
        lab.kubectl.run("uncordon", worker, check=False)
        lab.kubectl.run("uncordon", worker2, check=False)


def start_on_worker2(lab, namespace: str, name: str, replicas: int, worker2: str) -> None:
    apply(lab, namespace, deployment(name, replicas))
    wait_for(lambda: len(ready_pods(lab, namespace, name)) == replicas, timeout=120, what=f"{name} Ready")
    assert {p["spec"]["nodeName"] for p in ready_pods(lab, namespace, name)} == {worker2}
    lab.kubectl.run("uncordon", "worker")


def test_drain_evicts_while_the_budget_keeps_two_available(lab, namespace, on_worker2):
    start_on_worker2(lab, namespace, "web", 3, on_worker2)
    apply(lab, namespace, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "web"},
                           "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "web"}}}})
    wait_for(lambda: lab.kubectl.json("get", "pdb", "web", "-n", namespace).get("status", {})
             .get("disruptionsAllowed") == 1, timeout=30, what="the budget computed")
    table = lab.kubectl.run("get", "pdb", "-n", namespace).stdout.splitlines()
    assert re.split(r"\s{2,}", table[0].strip()) == ["NAME", "MIN AVAILABLE", "MAX UNAVAILABLE",
                                                     "ALLOWED DISRUPTIONS", "AGE"]
    assert re.split(r"\s{2,}", table[1].strip())[:4] == ["web", "2", "N/A", "1"]

    fewest: list[int] = []
    done = threading.Event()

    def observe() -> None:  # a poll running through the whole drain: never fewer than 2 serving
        while not done.is_set():
            fewest.append(len(ready_pods(lab, namespace, "web")))

    watcher = threading.Thread(target=observe, daemon=True)
    watcher.start()
    try:
        drained = lab.kubectl.run("drain", on_worker2, "--ignore-daemonsets", "--delete-emptydir-data",
                                  "--timeout=120s", timeout=180)
    finally:
        done.set()
        watcher.join(30)
    out = drained.stdout + drained.stderr
    assert f"node/{on_worker2} drained" in out
    # the budget made kubectl wait and retry: at least one eviction was refused with kube's words
    assert "Cannot evict pod as it would violate the pod's disruption budget." in out
    assert fewest and min(fewest) >= 2, fewest
    after = ready_pods(lab, namespace, "web")
    assert len(after) == 3 and {p["spec"]["nodeName"] for p in after} == {"worker"}
    node = lab.kubectl.json("get", "node", on_worker2)
    assert node["spec"].get("unschedulable") is True


def test_drain_disable_eviction_deletes_the_pods(lab, namespace, on_worker2):
    start_on_worker2(lab, namespace, "solo", 1, on_worker2)
    drained = lab.kubectl.run("drain", on_worker2, "--ignore-daemonsets", "--disable-eviction", "--timeout=120s",
                              timeout=180)
    out = drained.stdout + drained.stderr
    assert re.search(r"pod/solo-\S+ deleted", out), out
    assert f"node/{on_worker2} drained" in out
    wait_for(lambda: len(ready_pods(lab, namespace, "solo")) == 1, timeout=120, what="solo replaced")


def test_eviction_with_no_disruption_allowed_is_429(lab, namespace):
    apply(lab, namespace, deployment("one", 1),
          {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "one"},
           "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"app": "one"}}}})
    pods = wait_for(lambda: ready_pods(lab, namespace, "one"), timeout=120, what="one Ready")
    wait_for(lambda: lab.kubectl.json("get", "pdb", "one", "-n", namespace).get("status", {})
             .get("currentHealthy") == 1, timeout=30, what="the budget computed")
    name = pods[0]["metadata"]["name"]
    body = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name,
                                                                                   "namespace": namespace}})
    refused = lab.kubectl.run("create", "--raw", f"/api/v1/namespaces/{namespace}/pods/{name}/eviction",
                              "-f", "-", input=body, check=False)
    assert refused.returncode != 0
    assert "Cannot evict pod as it would violate the pod's disruption budget." in refused.stderr
    assert ready_pods(lab, namespace, "one")[0]["metadata"]["name"] == name


# -- the API proxy ---------------------------------------------------------------------------
@pytest.fixture
def kubectl_proxy(lab) -> Iterator[str]:
    """``kubectl proxy --port=0``: the base URL it prints (``Starting to serve on 127.0.0.1:NNNN``)."""
    proc = lab.kubectl.popen("proxy", "--port=0")
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        found = re.search(r"Starting to serve on (\S+)", line)
        assert found, f"kubectl proxy said {line!r}"
        yield f"http://{found.group(1)}"
    finally:
        proc.terminate()
        proc.wait(10)


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_kubectl_proxy_reaches_services_and_pods(lab, namespace, kubectl_proxy):
    apply(lab, namespace, deployment("web", 2))
    lab.kubectl.run("expose", "deployment", "web", "--port=80", "-n", namespace)
    pods = wait_for(lambda: len(ready := ready_pods(lab, namespace, "web")) == 2 and ready, timeout=120,
                    what="web Ready")
    names = {p["metadata"]["name"] for p in pods}
    base = f"{kubectl_proxy}/api/v1/namespaces/{namespace}"

    # the Service's endpoints are ready a moment after the pods: kube answers 503 until then
    code, body = wait_for(lambda: (r := fetch(f"{base}/services/web:80/proxy/"))[0] == 200 and r, timeout=30,
                          what="services/web:80/proxy/")
    assert re.match(r"(?:web|nginx) v1 pod=(\S+) ip=", body) and body.split()[2][4:] in names, body
    name = sorted(names)[0]
    code, body = fetch(f"{base}/pods/{name}:80/proxy/some/path?x=1")
    assert code == 200 and f"pod={name} " in body, body
    code, body = fetch(f"{base}/pods/{name}/proxy/")  # no port: the first containerPort
    assert code == 200 and f"pod={name} " in body, body
    # a refused backend reads as kube-apiserver's: its proxy transport's error, in Go's words
    ip = next(p["status"]["podIP"] for p in pods if p["metadata"]["name"] == name)
    refused = lab.kubectl.run("get", "--raw", f"/api/v1/namespaces/{namespace}/pods/{name}:81/proxy/", check=False)
    assert refused.returncode != 0
    assert (f"Error from server (ServiceUnavailable): error trying to reach service: dial tcp {ip}:81: "
            "connect: connection refused") in refused.stderr, refused.stderr

    code, body = fetch(f"{base}/services/web:81/proxy/")
    assert code == 503 and 'no service port 81 found for service \\"web\\"' in body
    code, body = fetch(f"{kubectl_proxy}/api/v1/nodes/worker/proxy/")
    assert code == 503 and "nodes/proxy is not served by labctl" in body
    # the kubernetes Service's endpoint is the API server's node: not a pod, so never proxied
    code, body = fetch(f"{kubectl_proxy}/api/v1/namespaces/default/services/https:kubernetes:443/proxy/")
    assert code == 503 and "address not allowed" in body
