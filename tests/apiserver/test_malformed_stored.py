"""A namespace keeps working next to malformed objects stored before the API server checked types.

The objects are written straight into the store while the server is stopped, bypassing
every check, as objects from before typed decoding would be: a Pod with ``labels: [a]``
(issue 10: it broke ``kubectl get pods -l`` and stopped the ReplicaSet, Endpoints and
EndpointSlice controllers for its namespace), a Service with ``selector: [a]``, a
ConfigMap with an integer value. Next to them, ``kubectl get`` answers, a Deployment gets
its pods and a Service its endpoints, and the malformed objects can be deleted.
"""

from __future__ import annotations

import asyncio

import pytest

from labctl.apiserver.storage import SQLiteStore
from labctl.client.rest import APIClient, Credentials, resource_path
from labctl.client.waiting import wait_for as _wait_for
from labctl.cluster.kubectl import Kubectl
from labctl.controllers.deployment import DeploymentController
from labctl.controllers.endpoints import EndpointsController
from labctl.controllers.endpointslice import EndpointSliceController
from labctl.controllers.replicaset import ReplicaSetController
from labctl.kube.resources import Registry
from support.controllers import ControllersThread

MALFORMED = {
    "pods": {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "bad-labels", "namespace": "default", "labels": ["app"], "uid": "u1",
                          "creationTimestamp": "2026-01-01T00:00:00Z"},
             "spec": {"containers": [{"name": "c", "image": "busybox"}]}, "status": {"phase": "Pending"}},
    "services": {"apiVersion": "v1", "kind": "Service",
                 "metadata": {"name": "bad-selector", "namespace": "default", "uid": "u2",
                              "creationTimestamp": "2026-01-01T00:00:00Z"},
                 "spec": {"selector": ["app"], "clusterIP": "10.96.0.99", "clusterIPs": ["10.96.0.99"],
                          "type": "ClusterIP", "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}]}},
    "configmaps": {"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": "int-data", "namespace": "default", "uid": "u3",
                                "creationTimestamp": "2026-01-01T00:00:00Z"},
                   "data": {"k": 5}},
}


@pytest.fixture
def malformed_server(apiserver):
    """The test API server, restarted with the malformed objects in its store."""
    apiserver.stop()
    store = SQLiteStore(apiserver.data_dir / "store.db")
    keys = {rt.plural: rt.key for rt in Registry().resources if rt.group == ""}
    for plural, obj in MALFORMED.items():
        store.create((keys[plural], "default", obj["metadata"]["name"]), obj)
    store.close()
    apiserver.start()
    return apiserver


def wait_for(check, timeout: float = 20.0, what: str = ""):
    return _wait_for(check, timeout, interval=0.1, what=what)


def call(kubeconfig, fn):
    async def main():
        async with APIClient(Credentials.from_kubeconfig(kubeconfig)) as client:
            return await fn(client)
    return asyncio.run(main())


@pytest.mark.kubectl
def test_kubectl_reads_and_deletes_next_to_malformed_objects(malformed_server, kubectl_binary):
    kubectl = Kubectl(kubectl_binary, malformed_server.kubeconfig)
    assert "bad-labels" in kubectl.run("get", "pods").stdout
    kubectl.run("run", "web", "--image=busybox", "--labels=app=web", "--restart=Never")
    assert kubectl.run("get", "pods", "-l", "app=web", "-o", "name").stdout.split() == ["pod/web"]
    assert kubectl.run("get", "pods", "-l", "app", "-o", "name").stdout.split() == ["pod/web"]
    assert "bad-selector" in kubectl.run("get", "svc").stdout
    assert "int-data" in kubectl.run("get", "configmaps").stdout
    for kind, name in (("pod", "bad-labels"), ("service", "bad-selector"), ("configmap", "int-data")):
        kubectl.run("delete", kind, name)
    assert "bad-labels" not in kubectl.run("get", "pods").stdout


def test_a_deployment_gets_pods_and_a_service_endpoints_next_to_malformed_objects(malformed_server):
    kc = malformed_server.kubeconfig
    controllers = [DeploymentController, ReplicaSetController, EndpointsController, EndpointSliceController]
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                  "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                           "template": {"metadata": {"labels": {"app": "web"}},
                                        "spec": {"containers": [{"name": "web", "image": "busybox",
                                                                 "ports": [{"containerPort": 80}]}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 80}]}}
    with ControllersThread(kc, controllers):
        call(kc, lambda c: c.create(resource_path("deployments", "default"), deployment))
        call(kc, lambda c: c.create(resource_path("services", "default"), service))

        async def web_pods(client):
            listed = await client.get(resource_path("pods", "default"), labelSelector="app=web")
            return [p["metadata"]["name"] for p in listed["items"]]
        pods = wait_for(lambda: len(names := call(kc, web_pods)) == 2 and names, what="the Deployment's pods")

        async def run(client, name, ip):
            path = resource_path("pods", "default", name, "status")
            pod = await client.get(path)
            pod["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                             "conditions": [{"type": "Ready", "status": "True"}]}
            await client.replace(path, pod)
        for i, name in enumerate(pods):
            call(kc, lambda c, name=name, i=i: run(c, name, f"10.244.1.{10 + i}"))

        async def endpoint_ips(client):
            ep = await client.get(resource_path("endpoints", "default", "web"))
            return sorted(a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or [])
        assert wait_for(lambda: _quiet(kc, endpoint_ips) == ["10.244.1.10", "10.244.1.11"], what="the endpoints")

        async def slice_ips(client):
            listed = await client.get(resource_path("endpointslices", "default"),
                                      labelSelector="kubernetes.io/service-name=web")
            return sorted(a for s in listed["items"] for e in s.get("endpoints") or [] for a in e["addresses"])
        assert wait_for(lambda: call(kc, slice_ips) == ["10.244.1.10", "10.244.1.11"], what="the EndpointSlice")


def _quiet(kubeconfig, fn):
    """``fn`` through a client, None while the object does not exist yet."""
    try:
        return call(kubeconfig, fn)
    except Exception:
        return None
