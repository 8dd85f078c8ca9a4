"""The official Python client, raw HTTP edge cases, and durability across a server restart."""

from __future__ import annotations

import json
import ssl
import threading
import urllib.error
import urllib.request

import pytest
from kubernetes import client, config, watch


def api_client(server) -> client.ApiClient:
    return config.new_client_from_config(config_file=str(server.kubeconfig))


def test_official_client_create_list_patch_watch_delete(apiserver):
    with api_client(apiserver) as api:
        core = client.CoreV1Api(api)
        apps = client.AppsV1Api(api)
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="via-client", labels={"a": "b"}), data={"k": "v"})
        created = core.create_namespaced_config_map("default", body)
        assert created.metadata.uid and created.metadata.resource_version

        names = [c.metadata.name for c in core.list_namespaced_config_map("default", label_selector="a=b").items]
        assert names == ["via-client"]

        events = []

        def collect():
            w = watch.Watch()
            for ev in w.stream(core.list_namespaced_config_map, "default",
                               resource_version=created.metadata.resource_version, timeout_seconds=5):
                events.append((ev["type"], ev["object"].metadata.name, (ev["object"].data or {}).get("k")))
                if ev["type"] == "DELETED":
                    w.stop()

        t = threading.Thread(target=collect)
        t.start()
        patched = core.patch_namespaced_config_map("via-client", "default", {"data": {"k": "w"}})
        assert patched.data["k"] == "w"
        core.delete_namespaced_config_map("via-client", "default")
        t.join(10)
        assert events == [("MODIFIED", "via-client", "w"), ("DELETED", "via-client", "w")]

        deploy = client.V1Deployment(
            metadata=client.V1ObjectMeta(name="d1"),
            spec=client.V1DeploymentSpec(
                replicas=2, selector=client.V1LabelSelector(match_labels={"app": "d1"}),
                template=client.V1PodTemplateSpec(
                    metadata=client.V1ObjectMeta(labels={"app": "d1"}),
                    spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]))))
        got = apps.create_namespaced_deployment("default", deploy)
        assert got.spec.strategy.rolling_update.max_surge == "25%"
        assert got.spec.revision_history_limit == 10
        scale = apps.patch_namespaced_deployment_scale("d1", "default", {"spec": {"replicas": 5}})
        assert scale.spec.replicas == 5
        assert apps.read_namespaced_deployment("d1", "default").metadata.generation == 2


def _raw(server, path: str, method: str = "GET", body: bytes | None = None, headers: dict | None = None):
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "pki" / "ca.crt"))
    ctx.load_cert_chain(server.data_dir / "pki" / "admin.crt", server.data_dir / "pki" / "admin.key")
    req = urllib.request.Request(server.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_anonymous_requests_get_401_status(apiserver):
    ctx = ssl.create_default_context(cafile=str(apiserver.data_dir / "pki" / "ca.crt"))
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(apiserver.url + "/api/v1/namespaces", context=ctx, timeout=10)
    assert info.value.code == 401
    assert json.loads(info.value.read())["reason"] == "Unauthorized"


def test_status_objects_for_http_errors(apiserver):
    code, status = _raw(apiserver, "/api/v1/namespaces/default/pods/nope")
    assert (code, status["reason"], status["message"]) == (404, "NotFound", 'pods "nope" not found')

    code, status = _raw(apiserver, "/api/v1/namespaces/default/configmaps", "POST", b"{not json",
                        {"Content-Type": "application/json"})
    assert (code, status["reason"]) == (400, "BadRequest")

    big = json.dumps({"metadata": {"name": "big"}, "data": {"x": "y" * (4 * 1024 * 1024)}}).encode()
    code, status = _raw(apiserver, "/api/v1/namespaces/default/configmaps", "POST", big,
                        {"Content-Type": "application/json"})
    assert (code, status["reason"]) == (413, "RequestEntityTooLarge")

    code, status = _raw(apiserver, "/api/v1/namespaces/default/services", "POST", json.dumps({
        "metadata": {"name": "svc-a"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 31000}]}}).encode(),
        {"Content-Type": "application/json"})
    assert code == 201
    code, status = _raw(apiserver, "/api/v1/namespaces/default/services", "POST", json.dumps({
        "metadata": {"name": "svc-b"}, "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 31000}]}}).encode(),
        {"Content-Type": "application/json"})
    assert (code, status["reason"]) == (422, "Invalid")
    assert status["details"]["causes"][0]["field"] == "spec.ports[0].nodePort"

    code, status = _raw(apiserver, "/api/v1/namespaces/default/services/svc-a", "PATCH",
                        json.dumps({"spec": {"clusterIP": "10.96.0.77"}}).encode(),
                        {"Content-Type": "application/merge-patch+json"})
    assert (code, status["reason"]) == (422, "Invalid")
    assert "spec.clusterIPs[0]: Invalid value" in status["message"] and "may not change once set" in status["message"]


def test_restart_keeps_objects_and_revision_and_resumes_watch(apiserver):
    with api_client(apiserver) as api:
        core = client.CoreV1Api(api)
        core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="keep"), data={"n": "0"}))
        since = core.list_namespaced_config_map("default").metadata.resource_version
        core.patch_namespaced_config_map("keep", "default", {"data": {"n": "1"}})
        core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="later")))
        core.delete_namespaced_config_map("later", "default")
        last = int(core.list_namespaced_config_map("default").metadata.resource_version)

    apiserver.restart()

    with api_client(apiserver) as api:
        core = client.CoreV1Api(api)
        assert core.read_namespaced_config_map("keep", "default").data == {"n": "1"}
        assert core.read_namespace("kube-system").metadata.name == "kube-system"
        events = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
            core.list_namespaced_config_map, "default", resource_version=since, timeout_seconds=2)]
        assert events == [("MODIFIED", "keep"), ("ADDED", "later"), ("DELETED", "later")]
        fresh = core.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="after")))
        assert int(fresh.metadata.resource_version) > last
