"""``metrics.k8s.io`` answers (``labctl/apiserver/resourcemetrics.py``) over a fake Docker engine: shapes, sums, refusals."""

from __future__ import annotations

import asyncio

import pytest

from labctl.apiserver import resourcemetrics
from labctl.apiserver.errors import APIError
from labctl.apiserver.resourcemetrics import MetricsAPI
from labctl.apiserver.rest import RestAPI
from labctl.apiserver.scope import RequestScope
from labctl.apiserver.storage import SQLiteStore
from labctl.engine.streams import ContainerInfo, DockerAPIError
from labctl.kube.containers import CLUSTER_LABEL, POD_NODE_LABEL
from labctl.kube.resources import Registry, resource_for

MIB = 1024 * 1024


class FakeEngine:
    """Each container's CPU counter grows by ``rate`` nanoseconds per reading; memory is fixed."""

    def __init__(self, containers: dict[str, tuple[str, dict[str, str], int, int]]) -> None:
        self.containers = containers  # id -> (name, labels, cpu ns per reading, working set)
        self.readings: dict[str, int] = {}

    async def list_containers(self, labels):
        return [ContainerInfo(i, name, "running", lbl, 0) for i, (name, lbl, _, _) in self.containers.items()]

    async def stats(self, container_id: str) -> dict:
        if container_id not in self.containers:  # gone since the pod's status named it
            raise DockerAPIError(404, f"No such container: {container_id}")
        _, _, rate, memory = self.containers[container_id]
        self.readings[container_id] = self.readings.get(container_id, 0) + 1
        return {"cpu_stats": {"cpu_usage": {"total_usage": rate * self.readings[container_id]}},
                "memory_stats": {"usage": memory + MIB, "stats": {"total_inactive_file": MIB}}}


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.setattr(resourcemetrics, "MIN_WINDOW", 0.01)  # the first look's wait between two readings
    store = SQLiteStore(tmp_path / "store.db")
    api = RestAPI(store)
    api.create(RequestScope(resource_for("namespaces")), {"metadata": {"name": "default"}})
    api.create(RequestScope(resource_for("nodes")), {"metadata": {"name": "worker"}})
    pods = resource_for("pods")
    for name, app, cid in (("web-1", "web", "c1"), ("db-1", "db", "c2")):
        api.create(RequestScope(pods, "default"), {"metadata": {"name": name, "labels": {"app": app}},
                                                   "spec": {"nodeName": "worker",
                                                            "containers": [{"name": app, "image": "x"}]}})
        current = api.get(RequestScope(pods, "default", name))
        api.update(RequestScope(pods, "default", name, "status"), {**current, "status": {
            "phase": "Running", "containerStatuses": [{"name": app, "containerID": f"docker://{cid}",
                                                       "state": {"running": {}}, "ready": True,
                                                       "restartCount": 0, "image": "x", "imageID": ""}]}})
    yield api
    store.close()


def metrics_scope(plural: str, name: str | None = None) -> RequestScope:
    rt = Registry().lookup("metrics.k8s.io", "v1beta1", plural)
    assert rt is not None
    return RequestScope(rt, "default" if rt.namespaced else None, name)


def serve(metrics: MetricsAPI, scope: RequestScope, query: dict | None = None, method: str = "GET") -> dict:
    return asyncio.run(metrics.serve(method, query or {}, scope, table=False))


def engine() -> FakeEngine:
    pod_labels = {CLUSTER_LABEL: "lab", POD_NODE_LABEL: "lab-worker"}
    return FakeEngine({"c1": ("k8s_web", pod_labels, 10_000_000, 8 * MIB),
                       "c2": ("k8s_db", pod_labels, 1_000_000, 2 * MIB),
                       "n1": ("lab-worker", {CLUSTER_LABEL: "lab"}, 5_000_000, 100 * MIB)})


def test_pod_metrics_list_with_a_label_selector(api):
    listed = serve(MetricsAPI(api, engine()), metrics_scope("pods"), {"labelSelector": "app=web"})
    assert listed["kind"] == "PodMetricsList" and listed["apiVersion"] == "metrics.k8s.io/v1beta1"
    (item,) = listed["items"]
    assert item["metadata"]["name"] == "web-1" and item["metadata"]["labels"] == {"app": "web"}
    assert item["window"].endswith("s") and item["timestamp"].endswith("Z")
    (container,) = item["containers"]
    assert container["name"] == "web" and container["usage"]["memory"] == "8192Ki"
    assert container["usage"]["cpu"].endswith("n") and int(container["usage"]["cpu"][:-1]) > 0


def test_node_metrics_add_the_node_container_and_its_pods(api):
    node = serve(MetricsAPI(api, engine()), metrics_scope("nodes", "worker"))
    assert node["kind"] == "NodeMetrics" and node["metadata"]["name"] == "worker"
    assert node["usage"]["memory"] == f"{(100 + 8 + 2) * 1024}Ki"


def test_a_pod_without_figures_is_not_found_and_writes_and_watches_are_refused(api):
    metrics = MetricsAPI(api, FakeEngine({}))
    with pytest.raises(APIError) as err:
        serve(metrics, metrics_scope("pods", "web-1"))
    assert err.value.code == 404 and 'pods.metrics.k8s.io "web-1" not found' in err.value.message
    with pytest.raises(APIError) as err:
        serve(metrics, metrics_scope("pods", "no-such-pod"))
    assert err.value.code == 404 and 'pods.metrics.k8s.io "no-such-pod" not found' in err.value.message
    with pytest.raises(APIError) as err:
        serve(metrics, metrics_scope("pods"), {"watch": "true"})
    assert err.value.code == 405
    with pytest.raises(APIError) as err:
        serve(metrics, metrics_scope("pods"), method="DELETE")
    assert err.value.code == 405
