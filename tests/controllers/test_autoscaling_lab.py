"""Issue 16 in a real lab: ``kubectl top`` and a HorizontalPodAutoscaler under a bounded CPU load.

One lab for the module; each test works in a namespace of its own. The load is a busy loop
in the autoscaled pods themselves, which stops when the test touches ``/stop`` in every pod
(the image has no ``/tmp``) or, as a bound, after :data:`LOAD_SECONDS`, so the HPA can be
watched going up and coming back down within a short scale-down stabilisation window.
"""

from __future__ import annotations

import json
import re

import pytest

from labctl.client.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

IMAGE = "labctl/web:v1"
#: the load's upper bound, for pods the test never reaches (a replica created just before it stops the load)
LOAD_SECONDS = 300


def rows(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.strip().splitlines()]


def deployment(name: str, script: str, cpu_request: str | None = "100m") -> dict:
    resources = {"requests": {"cpu": cpu_request}} if cpu_request else {}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "terminationGracePeriodSeconds": 0,
                         "containers": [{"name": name, "image": IMAGE, "command": ["sh", "-c", script],
                                         "resources": resources}]}}}}


def apply(lab, obj: dict, namespace: str) -> None:
    lab.kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def running_pods(lab, namespace: str, app: str) -> list[str]:
    pods = lab.kubectl.json("get", "pods", "-n", namespace, "-l", f"app={app}")["items"]
    return [p["metadata"]["name"] for p in pods
            if p.get("status", {}).get("phase") == "Running" and not p["metadata"].get("deletionTimestamp")]


def test_kubectl_top_shows_nodes_and_pods_usage(lab, namespace):
    apply(lab, deployment("idle", "exec sleep 3600"), namespace)
    wait_for(lambda: running_pods(lab, namespace, "idle"), timeout=120, what="the idle pod running")

    nodes = wait_for(lambda: rows(lab.kubectl.run("top", "nodes", check=False).stdout), timeout=60,
                     what="kubectl top nodes answering")
    assert nodes[0][:5] == ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]
    assert sorted(r[0] for r in nodes[1:]) == ["control-plane", "worker", "worker2"]
    for row in nodes[1:]:
        assert re.fullmatch(r"\d+m", row[1]) and re.fullmatch(r"\d+%", row[2]), row
        assert re.fullmatch(r"\d+Mi", row[3]) and int(row[3][:-2]) > 0, row

    def idle_pod_row():
        out = rows(lab.kubectl.run("top", "pods", "-n", namespace, check=False).stdout)
        return out if len(out) == 2 else None

    pods = wait_for(idle_pod_row, timeout=60, what="kubectl top pods showing the idle pod")
    assert pods[0] == ["NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert pods[1][0].startswith("idle-") and re.fullmatch(r"\d+m", pods[1][1]) and pods[1][2].endswith("Mi")

    everywhere = rows(lab.kubectl.run("top", "pods", "-A").stdout)
    assert everywhere[0] == ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert "kube-system" in {r[0] for r in everywhere[1:]}
    containers = rows(lab.kubectl.run("top", "pods", "-n", namespace, "--containers").stdout)
    assert containers[0] == ["POD", "NAME", "CPU(cores)", "MEMORY(bytes)"]
    assert containers[1][1] == "idle"


@pytest.mark.timeout(600)  # the lab's start, then about a minute each way
def test_hpa_scales_a_deployment_up_under_load_and_back_down(lab, namespace):
    busy = f"end=$(( $(date +%s) + {LOAD_SECONDS} )); " \
           "while [ ! -e /stop ] && [ $(date +%s) -lt $end ]; do :; done; exec sleep 3600"
    apply(lab, deployment("web", busy), namespace)
    wait_for(lambda: running_pods(lab, namespace, "web"), timeout=120, what="the web pod running")
    assert "autoscaled" in lab.kubectl.run("autoscale", "-n", namespace, "deployment", "web", "--cpu=50%",
                                           "--min=1", "--max=3").stdout
    # a short scale-down window, so the test sees the way back down soon after the load stops
    lab.kubectl.run("patch", "-n", namespace, "hpa", "web", "--type=merge", "-p",
                    '{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":15}}}}')

    def scaled_up():
        hpa = lab.kubectl.json("get", "hpa", "web", "-n", namespace)
        return hpa if (hpa.get("status") or {}).get("desiredReplicas", 0) >= 2 else None

    hpa = wait_for(scaled_up, timeout=180, interval=2, what="the HPA scaling web up")
    active = {c["type"]: c for c in hpa["status"]["conditions"]}["ScalingActive"]
    assert (active["status"], active["reason"]) == ("True", "ValidMetricFound")
    assert hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] > 50
    assert hpa["status"].get("lastScaleTime")
    header, row = rows(lab.kubectl.run("get", "hpa", "web", "-n", namespace).stdout)
    assert header == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert row[1] == "Deployment/web" and re.fullmatch(r"cpu: \d+%/50%", row[2]) and row[3:5] == ["1", "3"]
    events = lab.kubectl.run("get", "events", "-n", namespace, "--field-selector=reason=SuccessfulRescale").stdout
    assert "New size:" in events

    stopped: set[str] = set()

    def load_stopped_and_scaled_down():
        for pod in set(running_pods(lab, namespace, "web")) - stopped:  # replicas created meanwhile stop too
            if lab.kubectl.run("exec", "-n", namespace, pod, "--", "touch", "/stop", check=False).returncode == 0:
                stopped.add(pod)
        replicas = lab.kubectl.json("get", "deployment", "web", "-n", namespace)["spec"]["replicas"]
        return replicas == 1

    wait_for(load_stopped_and_scaled_down, timeout=240, interval=5, what="web scaled back down to 1")
    hpa = lab.kubectl.json("get", "hpa", "web", "-n", namespace)
    assert hpa["status"]["desiredReplicas"] == 1


def test_pods_without_cpu_requests_make_the_hpa_inactive(lab, namespace):
    apply(lab, deployment("norequest", "exec sleep 3600", cpu_request=None), namespace)
    wait_for(lambda: running_pods(lab, namespace, "norequest"), timeout=120, what="the pod running")
    lab.kubectl.run("autoscale", "-n", namespace, "deployment", "norequest", "--cpu=50%", "--max=2")

    def inactive():
        hpa = lab.kubectl.json("get", "hpa", "norequest", "-n", namespace)
        conditions = {c["type"]: c for c in (hpa.get("status") or {}).get("conditions") or []}
        return conditions.get("ScalingActive") if conditions.get("ScalingActive", {}).get("status") == "False" else None

    active = wait_for(inactive, timeout=90, interval=2, what="ScalingActive False")
    assert active["reason"] == "FailedGetResourceMetric"
    assert "missing request for cpu in container norequest" in active["message"]
    assert "cpu: <unknown>/50%" in lab.kubectl.run("get", "hpa", "norequest", "-n", namespace).stdout
