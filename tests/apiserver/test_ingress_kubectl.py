"""The real kubectl (v1.37) with Ingresses and IngressClasses against labctl's API server process.

What a student types in the Ingress lesson: apply, get (``ing``), describe, explain, a wrong
Ingress refused with upstream's 422, and the default class given to an Ingress without one.
Routing is the lab's (``tests/ingress/test_ingress_lab.py``).
"""

from __future__ import annotations

import pytest

from labctl.cluster.kubectl import Kubectl

pytestmark = pytest.mark.kubectl

CLASS = """\
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: nginx
  annotations:
    ingressclass.kubernetes.io/is-default-class: "true"
spec:
  controller: k8s.io/ingress-nginx
"""
SHOP = """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
spec:
  tls:
  - hosts: [shop.lab]
    secretName: shop-tls
  rules:
  - host: shop.lab
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web
            port:
              number: 80
  - host: blog.lab
    http:
      paths:
      - path: /api
        pathType: Exact
        backend:
          service:
            name: api
            port:
              name: http
"""


def test_apply_get_describe_explain_and_the_default_class(kubectl: Kubectl, tmp_path):
    (tmp_path / "class.yaml").write_text(CLASS)
    (tmp_path / "shop.yaml").write_text(SHOP)
    assert "ingressclass.networking.k8s.io/nginx created" in kubectl.run("apply", "-f", str(tmp_path / "class.yaml")).stdout
    assert "ingress.networking.k8s.io/shop created" in kubectl.run("apply", "-f", str(tmp_path / "shop.yaml")).stdout

    header, row = kubectl.run("get", "ing").stdout.splitlines()
    assert header.split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert row.split()[:5] == ["shop", "nginx", "shop.lab,blog.lab", "80,", "443"]  # no ADDRESS without a controller
    header, row = kubectl.run("get", "ingressclass").stdout.splitlines()
    assert header.split() == ["NAME", "CONTROLLER", "PARAMETERS", "AGE"]
    assert row.split()[:3] == ["nginx", "k8s.io/ingress-nginx", "<none>"]

    described = kubectl.run("describe", "ingress", "shop").stdout
    assert "Ingress Class:    nginx" in described
    assert "shop-tls terminates shop.lab" in described
    assert "/api   api:http" in described
    assert "pathType" in kubectl.run("explain", "ingress.spec.rules.http.paths").stdout

    (tmp_path / "shop.yaml").write_text(SHOP.replace("number: 80", "number: 8080"))
    assert "configured" in kubectl.run("apply", "-f", str(tmp_path / "shop.yaml")).stdout
    assert kubectl.json("get", "ing", "shop")["metadata"]["generation"] == 2
    assert 'ingress.networking.k8s.io "shop" deleted' in kubectl.run("delete", "ing", "shop").stdout


def test_an_invalid_ingress_is_refused_with_field_paths(kubectl: Kubectl, tmp_path):
    bad = SHOP.replace("pathType: Exact", "pathType: Regex").replace("path: /\n", "path: shop\n")
    (tmp_path / "bad.yaml").write_text(bad)
    proc = kubectl.run("apply", "-f", str(tmp_path / "bad.yaml"), check=False)
    assert proc.returncode != 0
    assert 'The Ingress "shop" is invalid' in proc.stderr
    assert 'spec.rules[0].http.paths[0].path: Invalid value: "shop": must be an absolute path' in proc.stderr
    assert 'spec.rules[1].http.paths[0].pathType: Unsupported value: "Regex"' in proc.stderr


def test_kubectl_create_ingress_sends_protobuf_and_is_understood(kubectl: Kubectl):
    out = kubectl.run("create", "ingress", "shop", "--class=nginx", "--rule=shop.lab/*=web:80,tls=shop-tls",
                      "--rule=shop.lab/api=api:http", "--default-backend=web:80",
                      "--annotation=owner=course").stdout
    assert "ingress.networking.k8s.io/shop created" in out
    spec = kubectl.json("get", "ingress", "shop")["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["defaultBackend"] == {"service": {"name": "web", "port": {"number": 80}}}
    assert spec["tls"] == [{"hosts": ["shop.lab"], "secretName": "shop-tls"}]
    assert spec["rules"] == [{"host": "shop.lab", "http": {"paths": [
        {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        {"path": "/api", "pathType": "Exact", "backend": {"service": {"name": "api", "port": {"name": "http"}}}}]}}]
