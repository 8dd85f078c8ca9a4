"""A namespace's resource policy in a real lab, with the real kubectl: LimitRange defaults and limits,
ResourceQuota refusals and usage, `kubectl events` and events.k8s.io/v1, `kubectl get --raw /metrics`,
and a built-in kind labctl does not serve.

Each test works in a namespace of its own (the suite runs in random order); the admission logic is
unit-tested in tests/unit/test_admission_quota.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from labctl.client.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]


def apply(lab, *docs: dict, namespace: str | None = None, check: bool = True):
    ns = ("-n", namespace) if namespace else ()
    return lab.kubectl.run("apply", *ns, "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                                        "items": list(docs)}), check=check)


def pod(name: str, resources: dict | None = None) -> dict:
    ctr: dict = {"name": name, "image": "nginx"}
    if resources is not None:
        ctr["resources"] = resources
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": [ctr]}}


@pytest.fixture
def namespace(lab, request) -> Iterator[str]:
    name = request.node.name.split("[")[0].removeprefix("test_").replace("_", "-")[:40].rstrip("-")
    lab.kubectl.run("create", "namespace", name)
    yield name
    lab.kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def test_limit_range_fills_in_resources_and_refuses_out_of_range_pods(lab, namespace):
    apply(lab, {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "cpu-limits"}, "spec": {"limits": [
        {"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"}, "defaultRequest": {"cpu": "200m"},
         "min": {"cpu": "100m"}, "max": {"cpu": "1"}}]}}, namespace=namespace)
    described = lab.kubectl.run("describe", "limitrange", "cpu-limits", "-n", namespace).stdout
    assert "Default Request" in described and "200m" in described and "500m" in described

    lab.kubectl.run("run", "web", "--image=nginx", "-n", namespace)
    web = lab.kubectl.json("get", "pod", "web", "-n", namespace)
    assert web["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "500m", "memory": "128Mi"},
                                                         "requests": {"cpu": "200m", "memory": "128Mi"}}
    assert web["metadata"]["annotations"]["kubernetes.io/limit-ranger"].startswith("LimitRanger plugin set: ")
    wait_for(lambda: lab.kubectl.json("get", "pod", "web", "-n", namespace)["status"].get("phase") == "Running",
             timeout=120, what="the defaulted pod Running")

    small = apply(lab, pod("small", {"requests": {"cpu": "50m"}}), namespace=namespace, check=False)
    assert small.returncode != 0
    assert 'pods "small" is forbidden: minimum cpu usage per Container is 100m, but request is 50m' in small.stderr
    big = apply(lab, pod("big", {"limits": {"cpu": "2"}}), namespace=namespace, check=False)
    assert 'pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2' in big.stderr


def test_quota_refuses_over_the_limit_and_describe_shows_the_usage(lab, namespace):
    apply(lab, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
                "spec": {"hard": {"pods": "2", "requests.cpu": "1"}}}, namespace=namespace)
    unsized = lab.kubectl.run("run", "unsized", "--image=nginx", "-n", namespace, check=False)
    assert 'pods "unsized" is forbidden: failed quota: q: must specify requests.cpu for: unsized' in unsized.stderr

    template = pod("web", {"requests": {"cpu": "100m"}})
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {
        "replicas": 3, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": template["spec"]}}}
    apply(lab, deploy, namespace=namespace)
    refusal = "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2"

    def refused() -> str:
        out = lab.kubectl.run("events", "-n", namespace).stdout
        return out if refusal in out else ""
    events = wait_for(refused, timeout=120, what="the ReplicaSet's FailedCreate event with the quota's words")
    assert "FailedCreate" in events
    assert len(lab.kubectl.json("get", "pods", "-n", namespace, "-l", "app=web")["items"]) == 2

    described = lab.kubectl.run("describe", "quota", "q", "-n", namespace).stdout
    rows = {line.split()[0]: line.split()[1:] for line in described.splitlines() if line.split()[:1] in
            (["pods"], ["requests.cpu"])}
    assert rows == {"pods": ["2", "2"], "requests.cpu": ["200m", "1"]}

    lab.kubectl.run("scale", "deployment", "web", "--replicas=1", "-n", namespace)
    wait_for(lambda: "pods: 1/2" in lab.kubectl.run("get", "quota", "q", "-n", namespace).stdout, timeout=120,
             what="the quota's usage down to one pod")


def test_events_are_served_by_both_apis(lab, namespace):
    lab.kubectl.run("run", "ev", "--image=nginx", "-n", namespace)
    wait_for(lambda: "Scheduled" in lab.kubectl.run("events", "-n", namespace, "--for", "pod/ev").stdout,
             timeout=120, what="kubectl events showing the pod scheduled")
    listed = lab.kubectl.json("get", "events.events.k8s.io", "-n", namespace)
    scheduled = [e for e in listed["items"] if e.get("reason") == "Scheduled"]
    assert {e["apiVersion"] for e in listed["items"]} == {"events.k8s.io/v1"}
    assert scheduled and scheduled[0]["regarding"]["name"] == "ev"
    assert scheduled[0]["note"].startswith("Successfully assigned")
    table = lab.kubectl.run("get", "events.events.k8s.io", "-n", namespace).stdout
    assert "REASON" in table and "pod/ev" in table


def test_metrics_for_admins_and_monitoring_only(lab):
    lab.kubectl.run("get", "pods", "-A")
    text = lab.kubectl.run("get", "--raw", "/metrics").stdout
    assert "# TYPE apiserver_request_total counter" in text
    assert 'apiserver_request_total{verb="LIST",group="",version="v1",resource="pods",' in text
    assert "apiserver_request_duration_seconds_bucket{" in text
    assert 'apiserver_storage_objects{resource="pods"}' in text
    denied = lab.kubectl.run("get", "--raw", "/metrics", "--as=system:serviceaccount:default:default", check=False)
    assert 'cannot get path "/metrics"' in denied.stderr
    allowed = lab.kubectl.run("get", "--raw", "/metrics", "--as=prometheus", "--as-group=system:monitoring")
    assert "apiserver_current_inflight_requests" in allowed.stdout


def test_a_kind_labctl_does_not_serve_is_named_in_the_refusal(lab):
    runtime_class = {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"},
                     "handler": "runsc"}
    proc = apply(lab, runtime_class, check=False)
    assert proc.returncode != 0
    assert "labctl does not serve RuntimeClass (node.k8s.io/v1)" in proc.stderr
    assert "ensure CRDs are installed first" not in proc.stderr
