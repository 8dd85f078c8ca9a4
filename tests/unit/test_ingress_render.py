"""The ingress controller's nginx.conf, rendered from objects (pure: no nginx, no cluster)."""

from __future__ import annotations

import base64
import re

import pytest

from labctl.ingress.render import Snapshot, ingress_is_ours, render


def service(name: str, port: int = 8080, port_name: str = "http", namespace: str = "default") -> dict:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"ports": [{"name": port_name, "port": port, "targetPort": 80}]}}


def endpoint_slice(svc: str, *ips: str, not_ready: tuple[str, ...] = (), port_name: str = "http",
                   namespace: str = "default") -> dict:
    return {"metadata": {"name": f"{svc}-abc", "namespace": namespace,
                         "labels": {"kubernetes.io/service-name": svc}},
            "ports": [{"name": port_name, "port": 80, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": True}} for ip in ips] +
                         [{"addresses": [ip], "conditions": {"ready": False}} for ip in not_ready]}


def path(p: str, kind: str, svc: str, **port) -> dict:
    return {"path": p, "pathType": kind, "backend": {"service": {"name": svc, "port": port or {"number": 8080}}}}


def ingress(name: str, spec: dict, created: str = "2026-12-07T09:00:00Z", **meta) -> dict:
    return {"metadata": {"name": name, "namespace": "default", "creationTimestamp": created, **meta}, "spec": spec}


SHOP = ingress("shop", {"rules": [
    {"host": "shop.lab", "http": {"paths": [path("/", "Prefix", "web"), path("/api/", "Prefix", "api", name="http"),
                                            path("/exact", "Exact", "web"), path("/raw", "ImplementationSpecific",
                                                                                 "web")]}}],
    "tls": [{"hosts": ["shop.lab"], "secretName": "shop-tls"}]})
TLS = {("default", "shop-tls"): {"type": "kubernetes.io/tls", "data": {
    "tls.crt": base64.b64encode(b"-----BEGIN CERTIFICATE-----\nC\n-----END CERTIFICATE-----").decode(),
    "tls.key": base64.b64encode(b"-----BEGIN PRIVATE KEY-----\nK\n-----END PRIVATE KEY-----\n").decode()}}}


def snapshot(*ingresses: dict, slices: tuple = (), services: tuple = (), secrets: dict | None = None,
             default: bool = True) -> Snapshot:
    return Snapshot("nginx", default, list(ingresses),
                    {(s["metadata"]["namespace"], s["metadata"]["name"]): s for s in services},
                    list(slices), secrets or {})


def server(config: str, name: str) -> str:
    """The ``server { ... }`` block whose server_name is ``name``."""
    match = re.search(r"    server \{[^\n]*\n(?:(?!    \}\n).*\n)*?        server_name " + re.escape(name) +
                      r";\n(?:(?!    \}\n).*\n)*    \}\n", config)
    assert match, f"no server {name} in:\n{config}"
    return match.group(0)


def location(block: str, match: str) -> str:
    found = re.search(r"        location " + re.escape(match) + r" \{[^\n]*\n((?:            .*\n)*)        \}", block)
    assert found, f"no location {match} in:\n{block}"
    return found.group(1)


def test_upstreams_are_the_ready_endpoints_pod_ips_and_target_ports():
    out = render(snapshot(SHOP, services=(service("web"), service("api")),
                          slices=(endpoint_slice("web", "10.244.2.5", "10.244.1.4", not_ready=("10.244.1.9",)),
                                  endpoint_slice("api", "10.244.1.7")), secrets=TLS))
    assert "    upstream default-web-8080 {\n        server 10.244.1.4:80 max_fails=0;\n" \
           "        server 10.244.2.5:80 max_fails=0;\n    }" in out.config
    assert "10.244.1.9" not in out.config
    assert "    upstream default-api-8080 {\n        server 10.244.1.7:80 max_fails=0;\n    }" in out.config
    assert out.served == [("default", "shop")] and out.warnings == []


def test_path_types_become_nginx_locations():
    out = render(snapshot(SHOP, services=(service("web"), service("api")),
                          slices=(endpoint_slice("web", "10.244.1.4"), endpoint_slice("api", "10.244.1.7"))))
    shop = server(out.config, "shop.lab")
    # Prefix /api/ → element-wise: /api and /api/..., never /apix
    assert "proxy_pass http://default-api-8080;" in location(shop, "= /api")
    assert "proxy_pass http://default-api-8080;" in location(shop, "/api/")
    assert "proxy_pass http://default-web-8080;" in location(shop, "/")
    assert "proxy_pass http://default-web-8080;" in location(shop, "= /exact")
    assert "proxy_pass http://default-web-8080;" in location(shop, "/raw")  # nginx's own prefix match
    assert "location /exact" not in shop.replace("location = /exact", "")


def test_tls_secret_becomes_a_certificate_file_and_a_443_listener():
    out = render(snapshot(SHOP, services=(service("web"),), secrets=TLS))
    shop = server(out.config, "shop.lab")
    assert "listen 443 ssl;" in shop
    assert "ssl_certificate /etc/nginx/labctl/tls/default-shop-tls.pem;" in shop
    pem = out.certificates["default-shop-tls.pem"]
    assert pem.startswith(b"-----BEGIN CERTIFICATE-----") and b"-----BEGIN PRIVATE KEY-----" in pem
    without = render(snapshot(SHOP, services=(service("web"),)))
    assert "listen 443 ssl;" not in server(without.config, "shop.lab")
    assert "default/shop: secret default/shop-tls with tls.crt and tls.key not found" in without.warnings


def test_default_backend_serves_unknown_hosts_else_404():
    catch_all = server(render(snapshot(SHOP)).config, "_")
    assert "listen 80 default_server;" in catch_all and "ssl_reject_handshake on;" in catch_all
    assert 'return 404 "default backend - 404\\n";' in location(catch_all, "/")
    fallback = ingress("fallback", {"defaultBackend": {"service": {"name": "web", "port": {"number": 8080}}}})
    out = render(snapshot(SHOP, fallback, services=(service("web"),), slices=(endpoint_slice("web", "10.244.1.4"),)))
    assert "proxy_pass http://default-web-8080;" in location(server(out.config, "_"), "/")


def test_a_backend_without_ready_endpoints_or_service_answers_503():
    out = render(snapshot(SHOP, services=(service("web"),), slices=(endpoint_slice("web", not_ready=("10.1.1.1",)),)))
    shop = server(out.config, "shop.lab")
    assert 'return 503 "no ready endpoint for this backend\\n";' in location(shop, "/")
    assert "upstream default-web" not in out.config
    assert "default/shop: service default/api not found" in out.warnings


def test_the_older_ingress_keeps_a_host_and_path_both_claim():
    old = ingress("old", {"rules": [{"host": "a.lab", "http": {"paths": [path("/", "Prefix", "web")]}}]},
                  created="2026-12-07T08:00:00Z")
    new = ingress("new", {"rules": [{"host": "a.lab", "http": {"paths": [path("/", "Prefix", "api")]}}]})
    out = render(snapshot(new, old, services=(service("web"), service("api")),
                          slices=(endpoint_slice("web", "10.0.0.1"), endpoint_slice("api", "10.0.0.2"))))
    assert "proxy_pass http://default-web-8080;" in location(server(out.config, "a.lab"), "/")
    assert "# default/old" in server(out.config, "a.lab")


@pytest.mark.parametrize("spec_class, annotation, default, ours", [
    ("nginx", None, False, True), ("other", None, True, False), (None, "nginx", False, True),
    (None, "other", True, False), (None, None, True, True), (None, None, False, False)])
def test_which_ingresses_are_ours(spec_class, annotation, default, ours):
    obj = ingress("x", {"ingressClassName": spec_class} if spec_class else {},
                  annotations={"kubernetes.io/ingress.class": annotation} if annotation else {})
    assert ingress_is_ours(obj, "nginx", default) is ours


def test_same_objects_same_text():
    objects = dict(services=(service("web"), service("api")),
                   slices=(endpoint_slice("web", "10.244.2.5", "10.244.1.4"), endpoint_slice("api", "10.244.1.7")))
    assert render(snapshot(SHOP, **objects)).config == render(snapshot(SHOP, **objects)).config
