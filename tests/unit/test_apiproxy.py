"""The API proxy's pure parts: which URL paths are proxy requests, the ``scheme:name:port`` ids,
a Service's ready endpoints, and the lab-only address check."""

from __future__ import annotations

import pytest

from labctl.apiserver.apiproxy import (
    ProxyRequest,
    Target,
    check_reachable,
    parse_proxy_path,
    pod_target,
    service_endpoints,
    service_port_name,
    split_scheme_name_port,
)
from labctl.apiserver.errors import APIError


@pytest.mark.parametrize("path, expected", [
    ("/api/v1/namespaces/default/services/web:80/proxy/", ProxyRequest("services", "default", "web:80", "/")),
    ("/api/v1/namespaces/default/services/https:web:443/proxy", ProxyRequest("services", "default", "https:web:443", "")),
    ("/api/v1/namespaces/ns/pods/x:8080/proxy/a/b%2Fc/", ProxyRequest("pods", "ns", "x:8080", "/a/b%2Fc/")),
    ("/api/v1/namespaces/ns/pods/web%3A80/proxy/", ProxyRequest("pods", "ns", "web:80", "/")),
    ("/api/v1/nodes/worker/proxy/metrics", ProxyRequest("nodes", "", "worker", "/metrics")),
])
def test_proxy_paths_are_split_into_kind_id_and_the_targets_path(path, expected):
    assert parse_proxy_path(path) == expected


@pytest.mark.parametrize("path", [
    "/api/v1/namespaces/default/services/web",            # the Service itself
    "/api/v1/namespaces/default/services/web/status",
    "/api/v1/namespaces/default/configmaps/x/proxy/",     # no proxy subresource
    "/apis/apps/v1/namespaces/default/deployments/web/proxy/",
    "/api/v1/namespaces/default/services//proxy/",
    "/api/v1/namespaces/proxy",
])
def test_other_paths_are_not_proxy_requests(path):
    assert parse_proxy_path(path) is None


@pytest.mark.parametrize("id_, expected", [
    ("web", ("", "web", "")), ("web:80", ("", "web", "80")), ("https:web:443", ("https", "web", "443")),
    ("http:web:", ("http", "web", "")),
])
def test_split_scheme_name_port(id_, expected):
    assert split_scheme_name_port(id_, "service") == expected


@pytest.mark.parametrize("id_", ["ftp:web:21", ":80", "a:b:c:d"])
def test_invalid_ids_are_400(id_):
    with pytest.raises(APIError, match=f'invalid service request "{id_}"'):
        split_scheme_name_port(id_, "service")


def test_a_service_port_number_becomes_its_name():
    svc = {"metadata": {"name": "web"}, "spec": {"ports": [{"name": "http", "port": 80}, {"port": 443}]}}
    assert service_port_name(svc, "80") == "http"
    assert service_port_name(svc, "443") == ""
    assert service_port_name(svc, "http") == "http"
    with pytest.raises(APIError, match='no service port 81 found for service "web"') as err:
        service_port_name(svc, "81")
    assert err.value.code == 503


def test_only_ready_endpoints_of_the_named_port_are_candidates():
    slices = [{"ports": [{"name": "http", "port": 8080}, {"name": "metrics", "port": 9090}],
               "endpoints": [{"addresses": ["10.244.1.2"], "conditions": {"ready": True}},
                             {"addresses": ["10.244.1.3"], "conditions": {"ready": False}},
                             {"addresses": ["10.244.2.4"]}]}]  # an unset ready condition reads as ready
    assert service_endpoints(slices, "http") == [("10.244.1.2", 8080), ("10.244.2.4", 8080)]
    assert service_endpoints(slices, "") == []


def test_a_pod_without_a_port_uses_its_first_container_port():
    pod = {"spec": {"containers": [{"name": "a"}, {"name": "b", "ports": [{"containerPort": 8080}]}]},
           "status": {"podIP": "10.244.1.9"}}
    assert pod_target(pod, "", "") == Target("", "10.244.1.9", 8080)
    assert pod_target(pod, "https", "8443").url("/x/", "a=1") == "https://10.244.1.9:8443/x/?a=1"
    with pytest.raises(APIError, match="address not allowed"):
        pod_target({"spec": {}, "status": {}}, "", "80")


@pytest.mark.parametrize("ip", ["172.30.1.2", "127.0.0.1", "169.254.169.254", "10.96.0.1", "not-an-ip"])
def test_addresses_outside_the_pod_subnet_are_refused(ip):
    with pytest.raises(APIError, match="address not allowed") as err:
        check_reachable(ip, "10.244.0.0/16")
    assert err.value.code == 503


def test_pod_addresses_are_reachable():
    check_reachable("10.244.2.7", "10.244.0.0/16")
