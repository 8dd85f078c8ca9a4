"""The API proxy subresources: ``services/proxy``, ``pods/proxy`` and ``nodes/proxy``.

What ``kubectl proxy`` tutorials use: ``GET /api/v1/namespaces/default/services/web:80/proxy/``
is answered by one of the Service's endpoints, ``.../pods/web-1:8080/proxy/healthz`` by the
pod itself. A port of kube-apiserver's ``ResourceLocation`` for each kind plus its
``UpgradeAwareHandler``, without upgrades:

* the id is ``name``, ``name:port`` or ``scheme:name:port`` (``SplitSchemeNamePort``; the
  scheme ``http`` or ``https``, the latter not verified, as kube's proxy transport);
* a Service port given as a number is looked up among the Service's ports and replaced by
  its name; then a ready endpoint of that port is picked at random from the Service's
  EndpointSlices — ``503 no endpoints available for service "web:80"`` when there is none;
* a pod without a port uses its first container's first ``containerPort``;
* ``.../proxy`` with nothing after it answers ``301`` to ``.../proxy/`` (kube's hack for
  relative links); the query string and the rest of the path go to the target unchanged;
* request and response bodies are streamed both ways, never buffered; hop-by-hop headers
  and the client's ``Authorization`` (the API server's credential, which kube's
  authentication filter removes) are not passed on; ``X-Forwarded-For`` is;
* a target that does not answer is ``503 error trying to reach service: dial tcp 10.244.1.5:80:
  connect: connection refused`` (apimachinery's proxy transport, the error in Go's words:
  :func:`labctl.kube.dialerrors.round_trip_error`).

**Only the lab's pods are reachable** (no SSRF): the address the proxy dials must lie in the
cluster's pod subnet. A selector-less Service whose hand-written endpoints name another
address (the ``kubernetes`` Service: the API server's own node IP) is refused with a 503
saying so, where kube-apiserver would dial any routable address.

``nodes/proxy``: labctl's kubelet serves no HTTP port (pods/log and pods/exec are served
straight from Docker, see :mod:`podproxy`), so it is a ``503`` that says so.
"""

from __future__ import annotations

import ipaddress
import logging
import random
from dataclasses import dataclass
from urllib.parse import unquote

import aiohttp
from aiohttp import web
from multidict import CIMultiDictProxy

from labctl.kube.dialerrors import round_trip_error
from labctl.kube.objects import SERVICE_NAME_LABEL
from labctl.kube.resources import resource_for

from . import errors
from .rest import RestAPI
from .scope import RequestScope

log = logging.getLogger("labctl.apiserver.proxy")

#: RFC 7230 hop-by-hop headers (Go's ``httputil.ReverseProxy`` drops the same), plus what
#: the API server must not pass on: the client's credential and the framing aiohttp redoes
HOP_BY_HOP = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection", "TE", "Trailer",
    "Transfer-Encoding", "Upgrade"))
NOT_FORWARDED = HOP_BY_HOP | {"authorization", "host", "content-length"}
NOT_RETURNED = HOP_BY_HOP | {"content-length"}
SCHEMES = ("http", "https", "")
PROXY_KINDS = ("services", "pods", "nodes")
CHUNK = 64 * 1024
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class ProxyRequest:
    """``/api/v1/[namespaces/<ns>/]<kind>/<id>/proxy<path>``, split."""

    kind: str        # services, pods, nodes
    namespace: str   # "" for nodes
    id: str          # name, name:port or scheme:name:port
    path: str        # what follows ``/proxy``, raw (percent-encoded), "" when nothing does


@dataclass(frozen=True)
class Target:
    """Where a proxied request goes."""

    scheme: str
    host: str
    port: int | None

    def url(self, path: str, query: str) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        netloc = f"{host}:{self.port}" if self.port else host
        return f"{self.scheme or 'http'}://{netloc}{path}" + (f"?{query}" if query else "")


def parse_proxy_path(raw_path: str) -> ProxyRequest | None:
    """The proxy request a raw URL path names, or None when it is not one (decided on the path alone)."""
    if "/proxy" not in raw_path:  # every request asks: the common answer costs one substring search
        return None
    parts = raw_path.split("/")
    if len(parts) < 6 or parts[:3] != ["", "api", "v1"]:
        return None
    rest, namespace = parts[3:], ""
    if rest[0] == "namespaces" and len(rest) >= 5 and rest[2] in ("services", "pods"):
        namespace, rest = unquote(rest[1]), rest[2:]
    elif rest[0] != "nodes":
        return None
    if len(rest) < 3 or rest[2] != "proxy" or not rest[1]:
        return None
    tail = rest[3:]
    return ProxyRequest(rest[0], namespace, unquote(rest[1]), "/" + "/".join(tail) if tail else "")


def split_scheme_name_port(id_: str, what: str) -> tuple[str, str, str]:
    """``SplitSchemeNamePort``: (scheme, name, port); a 400 when the id is none of its forms."""
    parts = id_.split(":")
    if len(parts) == 1:
        scheme, name, port = "", parts[0], ""
    elif len(parts) == 2:
        scheme, name, port = "", parts[0], parts[1]
    elif len(parts) == 3:
        scheme, name, port = parts
    else:
        scheme, name, port = "", "", ""
    if not name or scheme not in SCHEMES:
        raise errors.bad_request(f'invalid {what} request "{id_}"')
    return scheme, name, port


def _port_number(text: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise errors.bad_request(f"invalid {what} port {text!r}")
    return int(text)


def pod_target(pod: dict, scheme: str, port: str) -> Target:
    """``pod.ResourceLocation``: the pod's IP and the port named, or its first declared containerPort."""
    if not port:
        for container in (pod.get("spec") or {}).get("containers") or []:
            if container.get("ports"):
                port = str(container["ports"][0].get("containerPort", ""))
                break
    ip = (pod.get("status") or {}).get("podIP") or ""
    if not ip:
        raise errors.bad_request("address not allowed")
    return Target(scheme, ip, _port_number(port, "pod") if port else None)


def service_port_name(service: dict, port: str) -> str:
    """A port given as a number becomes the name of the Service port it is (a 503 when none is)."""
    if not port.isdigit():
        return port
    for sp in (service.get("spec") or {}).get("ports") or []:
        if str(sp.get("port")) == port:
            return sp.get("name") or ""
    raise errors.APIError(503, "ServiceUnavailable",
                          f'no service port {port} found for service "{service["metadata"]["name"]}"')


def service_endpoints(slices: list[dict], port_name: str) -> list[tuple[str, int]]:
    """The ready (address, port) pairs of the Service port ``port_name`` in its EndpointSlices."""
    out: list[tuple[str, int]] = []
    for eps in slices:
        for p in eps.get("ports") or []:
            if (p.get("name") or "") != port_name or not p.get("port"):
                continue
            for ep in eps.get("endpoints") or []:
                if (ep.get("conditions") or {}).get("ready") is False:
                    continue
                out.extend((addr, int(p["port"])) for addr in ep.get("addresses") or [])
    return out


def check_reachable(ip: str, pod_subnet: str) -> None:
    """Refuse any address outside the lab's pod subnet: the proxy never reaches the host's networks."""
    try:
        inside = ipaddress.ip_address(ip) in ipaddress.ip_network(pod_subnet)
    except ValueError:
        inside = False
    if not inside:
        raise errors.APIError(503, "ServiceUnavailable",
                              f"address not allowed: {ip} is not a pod address of this lab (pod subnet {pod_subnet}); "
                              "labctl proxies only to pods")


def resolve(api: RestAPI, req: ProxyRequest) -> Target:
    """The target of a proxy request, checked: the object exists, the address is a pod's."""
    scheme, name, port = split_scheme_name_port(req.id, req.kind[:-1])
    pod_subnet = api.cluster.pod_subnet
    if req.kind == "nodes":
        api.get(RequestScope(resource_for("nodes"), None, name))
        raise errors.APIError(503, "ServiceUnavailable",
                              f'nodes/proxy is not served by labctl: the kubelet of node "{name}" has no HTTP port '
                              "(use kubectl logs/exec, or labctl's node commands)")
    if req.kind == "pods":
        pod = api.get(RequestScope(resource_for("pods"), req.namespace, name))
        target = pod_target(pod, scheme, port)
        check_reachable(target.host, pod_subnet)
        return target
    service = api.get(RequestScope(resource_for("services"), req.namespace, name))
    port_name = service_port_name(service, port)
    slices = [s for s in api.store.list(resource_for("endpointslices").key, req.namespace)
              if (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == name]
    candidates = service_endpoints(slices, port_name)
    if not candidates:
        raise errors.APIError(503, "ServiceUnavailable", f'no endpoints available for service "{req.id}"')
    ip, number = random.choice(candidates)
    check_reachable(ip, pod_subnet)
    return Target(scheme, ip, number)


def end_to_end(headers: CIMultiDictProxy[str], dropped: frozenset[str]) -> list[tuple[str, str]]:
    """``removeHopByHopHeaders``: without ``dropped`` and the headers ``Connection`` names."""
    named = {h.strip().lower() for v in headers.getall("Connection", []) for h in v.split(",")}
    return [(k, v) for k, v in headers.items() if k.lower() not in dropped and k.lower() not in named]


def forwarded_headers(request: web.Request) -> dict[str, str]:
    """The request's end-to-end headers, plus ``X-Forwarded-For`` as Go's reverse proxy adds it."""
    headers = dict(end_to_end(request.headers, NOT_FORWARDED))
    peer = request.remote or ""
    if peer:
        prior = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{prior}, {peer}" if prior else peer
    return headers


class Proxy:
    """Streams proxied requests through one client session (its connection pool)."""

    def __init__(self, api: RestAPI) -> None:
        self.api = api
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # auto_decompress off: the body goes back exactly as the target sent it
            self._session = aiohttp.ClientSession(auto_decompress=False, timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=CONNECT_TIMEOUT), cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def serve(self, request: web.Request, req: ProxyRequest) -> web.StreamResponse:
        if request.headers.get("Upgrade"):
            raise errors.bad_request("labctl's API proxy does not upgrade connections (WebSocket, SPDY)")
        target = resolve(self.api, req)
        if not req.path:  # kube: "Redirect requests with an empty path to a location that ends with a '/'"
            location = request.rel_url.raw_path + "/" + (f"?{request.query_string}" if request.query_string else "")
            raise web.HTTPMovedPermanently(location)
        url = target.url(req.path, request.query_string)
        body = request.content if request.can_read_body else None
        try:
            upstream = await self._client().request(
                request.method, url, headers=forwarded_headers(request), data=body, allow_redirects=False,
                ssl=target.scheme != "https")
        except (aiohttp.ClientError, OSError, TimeoutError) as err:
            reason = round_trip_error(target.host, target.port or (443 if target.scheme == "https" else 80), err)
            raise errors.APIError(503, "ServiceUnavailable", f"error trying to reach service: {reason}") from None
        async with upstream:
            resp = web.StreamResponse(status=upstream.status, reason=upstream.reason)
            for key, value in end_to_end(upstream.headers, NOT_RETURNED):
                resp.headers.add(key, value)
            if upstream.content_length is not None:
                resp.content_length = upstream.content_length
            await resp.prepare(request)
            try:
                async for chunk in upstream.content.iter_chunked(CHUNK):
                    await resp.write(chunk)
            except (aiohttp.ClientError, ConnectionResetError) as err:
                log.info("proxy to %s ended early: %s", url, err)
                return resp
            await resp.write_eof()
        return resp
