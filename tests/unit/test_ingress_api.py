"""Ingress and IngressClass in the API server: upstream's 422 field paths and ``kubectl get`` columns."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest

from labctl.apiserver.strategies import strategy_for
from labctl.kube.printers import build_table

SHOP = {"rules": [
    {"host": "shop.lab", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        {"path": "/api", "pathType": "Exact", "backend": {"service": {"name": "api", "port": {"name": "http"}}}}]}},
    {"host": "*.blog.lab", "http": {"paths": [
        {"pathType": "ImplementationSpecific", "backend": {"service": {"name": "blog", "port": {"number": 8080}}}}]}}],
    "tls": [{"hosts": ["shop.lab"], "secretName": "shop-tls"}], "ingressClassName": "nginx"}


def ingress(**spec) -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "shop", "namespace": "default"}, "spec": spec}


def errors(obj: dict, plural: str = "ingresses") -> list[str]:
    return [str(e) for e in strategy_for(plural).validate(obj)]


def test_a_typical_ingress_is_valid():
    assert errors(ingress(**SHOP)) == []
    assert errors(ingress(defaultBackend={"service": {"name": "web", "port": {"number": 80}}})) == []


def _with(path: list, value) -> dict:
    spec = copy.deepcopy(SHOP)
    target = spec
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return spec


BACKEND0 = ["rules", 0, "http", "paths", 0, "backend"]


@pytest.mark.parametrize("spec, expected", [
    ({}, "spec: Invalid value: null: either `defaultBackend` or `rules` must be specified"),
    (_with(["rules", 0, "host"], "10.0.0.1"),
     'spec.rules[0].host: Invalid value: "10.0.0.1": must be a DNS name, not an IP address'),
    (_with(["rules", 0, "host"], "Shop.lab"), 'spec.rules[0].host: Invalid value: "Shop.lab": a lowercase RFC 1123'),
    (_with(["rules", 1, "host"], "*blog.lab"), 'spec.rules[1].host: Invalid value: "*blog.lab": a wildcard DNS-1123'),
    (_with(["rules", 0, "http", "paths"], []), "spec.rules[0].http.paths: Required value"),
    (_with(["rules", 0, "http", "paths", 0, "pathType"], None),
     "spec.rules[0].http.paths[0].pathType: Required value: pathType must be specified"),
    (_with(["rules", 0, "http", "paths", 0, "pathType"], "Regex"),
     'spec.rules[0].http.paths[0].pathType: Unsupported value: "Regex": supported values: '
     '"Exact", "ImplementationSpecific", "Prefix"'),
    (_with(["rules", 0, "http", "paths", 0, "path"], "shop"),
     'spec.rules[0].http.paths[0].path: Invalid value: "shop": must be an absolute path'),
    (_with(["rules", 0, "http", "paths", 0, "path"], "/a//b"),
     "spec.rules[0].http.paths[0].path: Invalid value: \"/a//b\": must not contain '//'"),
    (_with(["rules", 0, "http", "paths", 0, "path"], "/a/.."),
     "spec.rules[0].http.paths[0].path: Invalid value: \"/a/..\": cannot end with '/..'"),
    (_with(BACKEND0, {}), 'spec.rules[0].http.paths[0].backend: Invalid value: "": resource or service backend '
                          "is required"),
    (_with(BACKEND0, {"service": {"name": "web", "port": {"number": 80}}, "resource": {"kind": "B", "name": "b"}}),
     'spec.rules[0].http.paths[0].backend: Invalid value: "": cannot set both resource and service backends'),
    (_with(BACKEND0 + ["service", "port"], {"name": "http", "number": 80}),
     'spec.rules[0].http.paths[0].backend: Invalid value: "": cannot set both port name & port number'),
    (_with(BACKEND0 + ["service", "port"], {}),
     "spec.rules[0].http.paths[0].backend: Required value: port name or number is required"),
    (_with(BACKEND0 + ["service", "port"], {"number": 70000}),
     "spec.rules[0].http.paths[0].backend.service.port.number: Invalid value: 70000: must be between 1 and 65535"),
    (_with(BACKEND0 + ["service", "name"], "Web"),
     'spec.rules[0].http.paths[0].backend.service.name: Invalid value: "Web": a DNS-1035 label'),
    (_with(["tls", 0, "secretName"], "Shop_tls"), 'spec.tls[0].secretName: Invalid value: "Shop_tls": a lowercase'),
    (_with(["ingressClassName"], "Nginx"), 'spec.ingressClassName: Invalid value: "Nginx": a lowercase'),
])
def test_invalid_ingresses_report_upstreams_errors(spec, expected):
    found = errors(ingress(**spec))
    assert any(e.startswith(expected) for e in found), found


@pytest.mark.parametrize("controller, expected", [
    ("k8s.io/ingress-nginx", None),
    ("", "spec.controller: Required value"),
    ("ingress-nginx", 'spec.controller: Invalid value: "ingress-nginx": must be a domain-prefixed path '
                      '(such as "acme.io/foo")'),
    ("K8s.io/x", 'spec.controller: Invalid value: "K8s.io": a lowercase RFC 1123 subdomain'),
])
def test_ingress_class_controller_is_a_domain_prefixed_path(controller, expected):
    found = errors({"metadata": {"name": "nginx"}, "spec": {"controller": controller}}, "ingressclasses")
    assert (found == []) if expected is None else any(e.startswith(expected) for e in found), found


def test_ingress_class_controller_is_immutable():
    old = {"metadata": {"name": "nginx", "resourceVersion": "1"}, "spec": {"controller": "k8s.io/ingress-nginx"}}
    new = copy.deepcopy(old)
    new["spec"]["controller"] = "example.com/other"
    found = [str(e) for e in strategy_for("ingressclasses").validate_update(old, new)]
    assert 'spec.controller: Invalid value: "example.com/other": field is immutable' in found


def test_get_prints_class_hosts_address_ports():
    now = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
    shop = ingress(**SHOP)
    shop["status"] = {"loadBalancer": {"ingress": [{"ip": "172.30.0.2"}]}}
    many = ingress(rules=[{"host": f"h{i}.lab"} for i in range(5)])
    default = ingress(defaultBackend={"service": {"name": "web", "port": {"number": 80}}})
    for obj in (shop, many, default):
        obj["metadata"]["creationTimestamp"] = "2026-12-07T09:59:00Z"
    table = build_table(strategy_for("ingresses").printer, [shop, many, default], now=now)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Class", "Hosts", "Address", "Ports", "Age"]
    assert [r["cells"] for r in table["rows"]] == [
        ["shop", "nginx", "shop.lab,*.blog.lab", "172.30.0.2", "80, 443", "60s"],
        ["shop", "<none>", "h0.lab,h1.lab,h2.lab + 2 more...", "", "80", "60s"],
        ["shop", "<none>", "*", "", "80", "60s"]]
    classes = build_table(strategy_for("ingressclasses").printer, [
        {"metadata": {"name": "nginx", "creationTimestamp": "2026-12-07T09:59:00Z"},
         "spec": {"controller": "k8s.io/ingress-nginx"}}], now=now)
    assert [r["cells"] for r in classes["rows"]] == [["nginx", "k8s.io/ingress-nginx", "<none>", "60s"]]
