"""The API proxy's pure parts: which URL paths are proxy requests, the ``scheme:name:port`` ids,
a Service's ready endpoints, and the lab-only address check."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from labctl.apiserver.apiproxy import (
    Proxy,
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
from labctl.apiserver.rest import RestAPI
from labctl.apiserver.scope import RequestScope
from labctl.apiserver.storage import SQLiteStore
from labctl.clusterconfig import ClusterConfig
from labctl.kube.resources import resource_for


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


# -- the handler, in process: a "pod" listening on loopback stands in for a lab pod ---------------
@pytest.fixture
def loopback_api(tmp_path):
    """A REST layer whose pod subnet is loopback, so a local server can play the pod."""
    store = SQLiteStore(tmp_path / "store.db")
    api = RestAPI(store, cluster=ClusterConfig(pod_subnet="127.0.0.0/8"))
    api.create(RequestScope(resource_for("namespaces")), {"metadata": {"name": "default"}})
    yield api
    store.close()


def add_pod(api: RestAPI, port: int) -> None:
    pods = resource_for("pods")
    api.create(RequestScope(pods, "default"), {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "web", "ports": [{"containerPort": port}]}]}})
    pod = api.get(RequestScope(pods, "default", "p"))
    api.update(RequestScope(pods, "default", "p", "status"),
               {**pod, "status": {"phase": "Running", "podIP": "127.0.0.1", "podIPs": [{"ip": "127.0.0.1"}]}})


async def echo(request: web.Request) -> web.StreamResponse:
    """The pod: large answers in chunks, otherwise what it received."""
    if request.path == "/big":
        resp = web.StreamResponse(headers={"X-Upstream": "1", "Proxy-Authenticate": "Basic"})
        await resp.prepare(request)
        for _ in range(80):
            await resp.write(b"x" * 65536)
        return resp
    body = await request.read()
    return web.json_response({"path": request.raw_path, "method": request.method, "length": len(body),
                              "headers": {k.lower(): v for k, v in request.headers.items()}})


def test_requests_are_streamed_to_the_pod_without_hop_by_hop_headers_or_credentials(loopback_api):
    async def main() -> None:
        pod_app = web.Application(client_max_size=16 * 1024 * 1024)
        pod_app.router.add_route("*", "/{tail:.*}", echo)
        async with TestServer(pod_app) as pod_server:
            add_pod(loopback_api, pod_server.port)
            proxy = Proxy(loopback_api)

            async def handler(request: web.Request) -> web.StreamResponse:
                req = parse_proxy_path(request.rel_url.raw_path)
                assert req is not None
                try:
                    return await proxy.serve(request, req)
                except APIError as err:
                    return web.json_response(err.status(), status=err.code)

            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", handler)
            async with TestClient(TestServer(app)) as client:
                base = "/api/v1/namespaces/default/pods/p/proxy"
                moved = await client.get(base + "?a=1", allow_redirects=False)
                assert (moved.status, moved.headers["Location"]) == (301, base + "/?a=1")

                sent = await client.post(base + "/a%2Fb/?q=1", data=b"y" * 3_000_000, headers={
                    "Authorization": "Bearer secret", "Connection": "keep-alive, X-Hop", "X-Hop": "1",
                    "Keep-Alive": "timeout=5", "X-Custom": "kept"})
                seen = await sent.json()
                assert (seen["path"], seen["method"], seen["length"]) == ("/a%2Fb/?q=1", "POST", 3_000_000)
                assert seen["headers"]["x-custom"] == "kept" and seen["headers"]["x-forwarded-for"] == "127.0.0.1"
                assert not {"authorization", "keep-alive", "x-hop"} & set(seen["headers"])

                big = await client.get(base + "/big")
                assert big.headers["X-Upstream"] == "1" and "Proxy-Authenticate" not in big.headers
                assert len(await big.read()) == 80 * 65536

                other = await client.get("/api/v1/namespaces/default/pods/p:1/proxy/")
                assert other.status == 503 and (await other.json())["message"] == \
                    "error trying to reach service: dial tcp 127.0.0.1:1: connect: connection refused"
            await proxy.close()

    asyncio.run(main())
