"""The real kubectl (v1.37) with HorizontalPodAutoscalers and the Metrics API against labctl's API server process.

What a student types in the autoscaling lesson before any load: ``kubectl autoscale`` (a
protobuf body), ``get hpa`` columns, the v2 defaults, a metric type labctl cannot compute
refused on its field, and ``metrics.k8s.io`` in discovery (figures are the lab's:
``tests/controllers/test_autoscaling_lab.py``).
"""

from __future__ import annotations

import pytest

from labctl.cluster.kubectl import Kubectl

pytestmark = pytest.mark.kubectl

HPA = """\
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: web
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 3
  metrics:
  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 50}
  behavior:
    scaleDown:
      stabilizationWindowSeconds: 20
"""


def test_kubectl_autoscale_creates_a_v2_hpa_with_upstream_defaults(kubectl: Kubectl):
    kubectl.run("create", "deployment", "web", "--image=labctl/nginx")
    out = kubectl.run("autoscale", "deployment", "web", "--cpu=50%", "--min=1", "--max=3").stdout
    assert "horizontalpodautoscaler.autoscaling/web autoscaled" in out
    hpa = kubectl.json("get", "hpa", "web")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}
    assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {
        "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 50}}}]
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 3)
    assert "behavior" not in hpa["spec"]  # no behavior given: the controller's defaults, none stored
    header, row = kubectl.run("get", "hpa").stdout.splitlines()
    assert header.split() == ["NAME", "REFERENCE", "TARGETS", "MINPODS", "MAXPODS", "REPLICAS", "AGE"]
    assert row.split()[:7] == ["web", "Deployment/web", "cpu:", "<unknown>/50%", "1", "3", "0"]
    kubectl.run("delete", "hpa,deployment", "web")


def test_an_hpa_file_gets_its_behavior_completed(kubectl: Kubectl, tmp_path):
    (tmp_path / "hpa.yaml").write_text(HPA)
    assert "horizontalpodautoscaler.autoscaling/web created" in kubectl.run("apply", "-f", str(tmp_path / "hpa.yaml")).stdout
    behavior = kubectl.json("get", "hpa", "web")["spec"]["behavior"]
    assert behavior["scaleDown"] == {"stabilizationWindowSeconds": 20, "selectPolicy": "Max",
                                     "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}]}
    assert behavior["scaleUp"]["stabilizationWindowSeconds"] == 0
    assert "metrics" in kubectl.run("explain", "hpa.spec").stdout
    kubectl.run("delete", "-f", str(tmp_path / "hpa.yaml"))


def test_metrics_labctl_cannot_compute_are_refused_on_their_field(kubectl: Kubectl, tmp_path):
    bad = HPA.replace("""  - type: Resource
    resource:
      name: cpu
      target: {type: Utilization, averageUtilization: 50}""", """  - type: Pods
    pods:
      metric: {name: packets-per-second}
      target: {type: AverageValue, averageValue: 1k}""").replace("maxReplicas: 3", "maxReplicas: 0")
    (tmp_path / "bad.yaml").write_text(bad)
    proc = kubectl.run("apply", "-f", str(tmp_path / "bad.yaml"), check=False)
    assert proc.returncode != 0
    assert 'The HorizontalPodAutoscaler "web" is invalid' in proc.stderr
    assert "spec.metrics[0].type: Forbidden: labctl's HPA controller computes Resource metrics only" in proc.stderr
    assert "spec.maxReplicas: Invalid value: 0: must be greater than 0" in proc.stderr


def test_the_metrics_api_is_discovered(kubectl: Kubectl):
    resources = kubectl.run("api-resources", "--api-group=metrics.k8s.io").stdout
    assert "NodeMetrics" in resources and "PodMetrics" in resources
    assert kubectl.run("get", "pods").returncode == 0  # plain `pods` is still the core group's
    assert "metrics.k8s.io/v1beta1" in kubectl.run("api-versions").stdout
