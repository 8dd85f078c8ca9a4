"""An object of the wrong types stored before the API server checked them: every reader skips it, alone.

The readers: the informer every component lists and watches through, label selectors (the
API server's list filter and the controllers'), the API server's Table printers, the
service proxy's change trackers, and the DNS server's reverse zone.
"""

from __future__ import annotations

import logging

import pytest

from labctl.apiserver import openapi
from labctl.client.informer import FuncHandler, Informer
from labctl.dns.records import ClusterZone
from labctl.kube import wellformed
from labctl.kube.labels import selector_from_set
from labctl.kube.printers import POD_TABLE, SERVICE_TABLE, build_table
from labctl.kube.resources import Registry
from labctl.proxy.changes import ServiceChangeTracker

BAD_POD = {"kind": "Pod", "apiVersion": "v1", "metadata": {"name": "bad", "namespace": "default", "labels": ["a"],
                                                             "resourceVersion": "7"}}
BAD_SERVICE = {"kind": "Service", "apiVersion": "v1",
               "metadata": {"name": "bad", "namespace": "default", "resourceVersion": "8"},
               "spec": {"selector": ["a"], "clusterIP": "10.96.0.7", "ports": [{"port": "http"}]}}


def pod(name: str, labels: dict) -> dict:
    return {"kind": "Pod", "apiVersion": "v1",
            "metadata": {"name": name, "namespace": "default", "labels": labels, "resourceVersion": "9"},
            "spec": {"containers": [{"name": "c", "image": "i"}]}}


def service(name: str, ip: str) -> dict:
    return {"kind": "Service", "apiVersion": "v1", "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"app": name}, "clusterIP": ip, "clusterIPs": [ip],
                     "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}}


@pytest.mark.parametrize(("resource", "obj", "where"), [
    ("pods", BAD_POD, "metadata.labels"),
    ("pods", {"metadata": {"name": "p", "annotations": ["x"]}}, "metadata.annotations"),
    ("services", BAD_SERVICE, "spec.selector"),
    ("configmaps", {"metadata": {"name": "c"}, "data": {"k": 5}}, "data.k"),
    ("deployments", {"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": ["a"]}}},
     "spec.selector.matchLabels"),
    ("pods", {"metadata": {"name": "p"}, "spec": {"containers": [None]}}, "spec.containers[0]"),
    ("widgets", {"metadata": {"name": 5}}, "metadata.name"),
])
def test_problem_names_the_first_malformed_field(resource, obj, where):
    assert wellformed.problem(resource, obj) == where


def test_absent_and_null_fields_are_fine():
    assert wellformed.problem("pods", {"metadata": {"name": "p", "labels": None}, "spec": None}) is None
    assert wellformed.problem("pods", pod("p", {"app": "web"})) is None


def _schema_type(schema: dict) -> str:
    if schema.get("format") == "int-or-string":
        return "int-or-string"
    if "oneOf" in schema:  # Quantity
        return "string"
    return schema.get("type", "")


def _agrees(shape, schema: dict, path: str) -> list[str]:
    """Where the shape table says something the published OpenAPI schema does not."""
    if isinstance(shape, dict):
        props = schema.get("properties") or {}
        out = []
        for key, sub in shape.items():
            if key not in props:
                out.append(f"{path}.{key}: not in the schema")
            else:
                out += _agrees(sub, props[key], f"{path}.{key}")
        return out
    if isinstance(shape, list):
        if schema.get("type") != "array":
            return [f"{path}: the schema says {_schema_type(schema)}"]
        return _agrees(shape[0], schema.get("items") or {}, f"{path}[]")
    if isinstance(shape, wellformed.Map):
        if not isinstance(schema.get("additionalProperties"), dict):
            return [f"{path}: the schema has no map here"]
        return _agrees(shape.values, schema["additionalProperties"], f"{path}.*")
    want = {str: "string", int: "integer", bool: "boolean", wellformed.INT_OR_STRING: "int-or-string"}[shape]
    return [] if _schema_type(schema) == want else [f"{path}: {want}, the schema says {_schema_type(schema)}"]


@pytest.mark.parametrize("resource", sorted(wellformed.SHAPES))
def test_the_shape_table_agrees_with_the_openapi_schemas(resource):
    rt = next(r for r in Registry().resources if r.plural == resource)
    assert _agrees(wellformed.SHAPES[resource], openapi.schema_for(rt.api_version, rt.kind), rt.kind) == []


def test_the_informer_leaves_a_malformed_object_out_with_one_log_line(caplog):
    seen: list[tuple[str, str]] = []
    informer = Informer(None, "pods", [FuncHandler(lambda o: seen.append(("add", o["metadata"]["name"])),
                                                   lambda o, n: seen.append(("update", n["metadata"]["name"])),
                                                   lambda o: seen.append(("delete", o["metadata"]["name"])))])
    with caplog.at_level(logging.WARNING, "labctl.informer"):
        informer._apply({"type": "ADDED", "object": pod("bad", {"app": "x"})})
        informer._apply({"type": "MODIFIED", "object": BAD_POD})  # became malformed: gone for the handlers
        informer._apply({"type": "MODIFIED", "object": BAD_POD})  # the same version again: no second line
        informer._apply({"type": "ADDED", "object": pod("good", {"app": "web"})})
    assert seen == [("add", "bad"), ("delete", "bad"), ("add", "good")]
    assert [k for k, _ in informer.cache] == ["default"] and informer.get("default", "good")
    assert [r.getMessage() for r in caplog.records] == ["skipping pods default/bad: malformed field metadata.labels"]


def test_selectors_read_malformed_labels_as_no_labels():
    selector = selector_from_set({"app": "a"})
    assert not selector.matches(["app"])  # type: ignore[arg-type]
    assert not selector.matches("app")  # type: ignore[arg-type]


def test_a_table_prints_a_malformed_row_instead_of_failing(caplog):
    with caplog.at_level(logging.WARNING, "labctl.kube.printers"):
        table = build_table(POD_TABLE, [{**BAD_POD, "spec": {"containers": "x"}, "status": 5},
                                        pod("good", {"app": "web"})])
    rows = [r["cells"] for r in table["rows"]]
    assert rows[0] == ["bad"] + ["<unknown>"] * (len(POD_TABLE.columns) - 1)
    assert rows[1][:2] == ["good", "0/1"]
    svc = build_table(SERVICE_TABLE, [{**BAD_SERVICE, "spec": "x"}])
    assert svc["rows"][0]["cells"][0] == "bad"
    assert "cannot print Pod 'bad' (malformed)" in caplog.text


def test_the_proxy_builds_the_other_services_rules(caplog):
    tracker = ServiceChangeTracker()
    with caplog.at_level(logging.WARNING, "labctl.proxy"):
        tracker.update(None, BAD_SERVICE)
        tracker.update(None, service("web", "10.96.0.8"))
    changes = tracker.drain()
    assert [str(k) for k, c in changes.items() if c.current] == ["default/web"]
    assert "skipping malformed Service default/bad" in caplog.text


def test_the_reverse_zone_keeps_the_other_services(caplog):
    services = {("default", "bad"): {**BAD_SERVICE, "spec": {"clusterIPs": 5, "clusterIP": "x"}},
                ("default", "web"): service("web", "10.96.0.8")}
    zone = ClusterZone(services, {})
    with caplog.at_level(logging.WARNING, "labctl.dns"):
        answer = zone.answer("8.0.96.10.in-addr.arpa.", "PTR")
    assert answer is not None and [r.data for r in answer.answers] == ["web.default.svc.cluster.local"]
    assert "leaving default/bad out of the reverse zone" in caplog.text
