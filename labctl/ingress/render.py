"""From Ingress, Service, EndpointSlice and Secret objects to the text of ``nginx.conf`` (pure).

The layout is ingress-nginx's, cut down to what the Ingress API says, so a student can read the
file next to ``kubectl get ingress -o yaml``:

* one ``upstream <namespace>-<service>-<port>`` per backend, whose servers are the ready
  endpoints' pod IPs and target ports (never the ClusterIP): nginx balances itself, and a pod
  leaving the EndpointSlice leaves the upstream at the next reload, so a rollout loses nothing;
* one ``server`` per host (``server_name``), with ``listen 443 ssl`` and the certificate of a
  TLS entry naming the host; the catch-all server ``_`` answers unknown hosts with the
  Ingresses' ``defaultBackend``, else 404;
* per path: ``Exact`` → ``location = /p``; ``Prefix`` → ``location = /p`` plus ``location /p/``
  (element-wise: ``/p`` matches ``/p`` and ``/p/x``, never ``/px``); ``ImplementationSpecific``
  → nginx's own prefix match ``location /p``. nginx picks exact matches first, then the longest
  prefix: the Ingress API's precedence. When two Ingresses claim the same host and path, the
  older one wins, as in ingress-nginx.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from labctl.kube.objects import SERVICE_NAME_LABEL

__all__ = ["CLASS_ANNOTATION", "CONTROLLER_NAME", "HEALTH_PORT", "Rendered", "Snapshot", "ingress_is_ours", "render"]

Obj = dict[str, Any]
Key = tuple[str, str]
#: the IngressClass ``spec.controller`` this controller serves (ingress-nginx's own value)
CONTROLLER_NAME = "k8s.io/ingress-nginx"
#: the deprecated annotation that named the class before ``spec.ingressClassName``
CLASS_ANNOTATION = "kubernetes.io/ingress.class"
#: ``/healthz`` for the kubelet's probes, on ingress-nginx's health port
HEALTH_PORT = 10254
TLS_DIR = "/etc/nginx/labctl/tls"
_CATCH_ALL = "_"


@dataclass(frozen=True)
class Snapshot:
    """What the controller's caches hold when it renders."""

    class_name: str
    default_class: bool                   # our IngressClass carries is-default-class: "true"
    ingresses: list[Obj]
    services: Mapping[Key, Obj]
    endpoint_slices: Iterable[Obj]
    secrets: Mapping[Key, Obj]


@dataclass(frozen=True)
class Rendered:
    """The configuration, the certificate files it names (file name → PEM) and the Ingresses it serves."""

    config: str
    certificates: dict[str, bytes] = field(default_factory=dict)
    served: list[Key] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Location:
    match: str                  # "= /api", "/api/", "/"
    upstream: str | None        # None: no ready endpoint (503)
    source: str                 # "namespace/ingress"


@dataclass
class _Server:
    name: str
    locations: dict[str, _Location] = field(default_factory=dict)
    certificate: str | None = None


def ingress_is_ours(ingress: Obj, class_name: str, default_class: bool) -> bool:
    """The class by ``spec.ingressClassName``, else by the old annotation, else ours if we are the default."""
    named = (ingress.get("spec") or {}).get("ingressClassName")
    if named:
        return bool(named == class_name)
    annotated = ((ingress.get("metadata") or {}).get("annotations") or {}).get(CLASS_ANNOTATION)
    if annotated:
        return bool(annotated == class_name)
    return default_class


def _key(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return meta.get("namespace", ""), meta.get("name", "")


def _ready_targets(slices: Iterable[Obj]) -> dict[Key, dict[str, list[str]]]:
    """``(namespace, service) → port name → sorted "ip:port"`` of the ready endpoints (kube-proxy's reading)."""
    targets: dict[Key, dict[str, set[str]]] = {}
    for slice_ in slices:
        service = ((slice_.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL)
        if not service:
            continue
        by_port = targets.setdefault((_key(slice_)[0], service), {})
        for port in slice_.get("ports") or []:
            if port.get("protocol", "TCP") != "TCP" or port.get("port") is None:
                continue
            addresses = by_port.setdefault(port.get("name") or "", set())
            for endpoint in slice_.get("endpoints") or []:
                if (endpoint.get("conditions") or {}).get("ready") is False:
                    continue
                for ip in endpoint.get("addresses") or []:
                    addresses.add(f"{ip}:{port['port']}")
    return {k: {p: sorted(a) for p, a in ports.items()} for k, ports in targets.items()}


def _service_port(service: Obj, backend_port: Obj) -> Obj | None:
    for port in (service.get("spec") or {}).get("ports") or []:
        if backend_port.get("name") and port.get("name") == backend_port["name"]:
            return port
        if backend_port.get("number") and port.get("port") == backend_port["number"]:
            return port
    return None


class _Builder:
    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.targets = _ready_targets(snapshot.endpoint_slices)
        self.upstreams: dict[str, list[str]] = {}
        self.servers: dict[str, _Server] = {_CATCH_ALL: _Server(_CATCH_ALL)}
        self.certificates: dict[str, bytes] = {}
        self.warnings: list[str] = []

    def upstream(self, namespace: str, backend: Obj, source: str) -> str | None:
        """The upstream's name for a Service backend, or None when no endpoint is ready (nginx answers 503)."""
        service_ref = backend.get("service") or {}
        name, port_ref = service_ref.get("name", ""), service_ref.get("port") or {}
        service = self.snapshot.services.get((namespace, name))
        if service is None:
            self.warnings.append(f"{source}: service {namespace}/{name} not found")
            return None
        port = _service_port(service, port_ref)
        if port is None:
            self.warnings.append(f"{source}: service {namespace}/{name} has no port "
                                 f"{port_ref.get('name') or port_ref.get('number')}")
            return None
        servers = self.targets.get((namespace, name), {}).get(port.get("name") or "", [])
        if not servers:
            return None
        upstream = f"{namespace}-{name}-{port.get('port')}"
        self.upstreams[upstream] = servers
        return upstream

    def certificate(self, namespace: str, secret_name: str, source: str) -> str | None:
        secret = self.snapshot.secrets.get((namespace, secret_name))
        data = (secret or {}).get("data") or {}
        if not secret or "tls.crt" not in data or "tls.key" not in data:
            self.warnings.append(f"{source}: secret {namespace}/{secret_name} with tls.crt and tls.key not found")
            return None
        name = f"{namespace}-{secret_name}.pem"
        self.certificates[name] = base64.b64decode(data["tls.crt"]).rstrip(b"\n") + b"\n" + \
            base64.b64decode(data["tls.key"])
        return f"{TLS_DIR}/{name}"

    def add(self, host: str, match: str, upstream: str | None, source: str) -> None:
        server = self.servers.setdefault(host, _Server(host))
        server.locations.setdefault(match, _Location(match, upstream, source))  # the older Ingress keeps it

    def add_path(self, host: str, path: Obj, namespace: str, source: str) -> None:
        text, kind = path.get("path") or "/", path.get("pathType")
        upstream = self.upstream(namespace, path.get("backend") or {}, source)
        if kind == "Exact":
            self.add(host, f"= {text}", upstream, source)
        elif kind == "Prefix":
            trimmed = text.rstrip("/")
            if trimmed:
                self.add(host, f"= {trimmed}", upstream, source)
            self.add(host, f"{trimmed}/", upstream, source)
        else:
            self.add(host, text, upstream, source)

    def add_ingress(self, ingress: Obj) -> None:
        namespace, name = _key(ingress)
        source, spec = f"{namespace}/{name}", ingress.get("spec") or {}
        for rule in spec.get("rules") or []:
            host = rule.get("host") or _CATCH_ALL
            self.servers.setdefault(host, _Server(host))
            for path in (rule.get("http") or {}).get("paths") or []:
                self.add_path(host, path, namespace, source)
        if spec.get("defaultBackend"):
            self.add(_CATCH_ALL, "/", self.upstream(namespace, spec["defaultBackend"], source), source)
        for tls in spec.get("tls") or []:
            if not tls.get("secretName"):
                continue
            certificate = self.certificate(namespace, tls["secretName"], source)
            for host in tls.get("hosts") or []:
                server = self.servers.get(host)
                if server is not None and certificate and server.certificate is None:
                    server.certificate = certificate


def _created(ingress: Obj) -> tuple[str, str, str]:
    meta = ingress.get("metadata") or {}
    return meta.get("creationTimestamp", ""), meta.get("namespace", ""), meta.get("name", "")


def render(snapshot: Snapshot) -> Rendered:
    """The whole ``nginx.conf`` for the Ingresses of our class (same inputs, same text)."""
    ours = sorted((i for i in snapshot.ingresses if ingress_is_ours(i, snapshot.class_name, snapshot.default_class)),
                  key=_created)
    builder = _Builder(snapshot)
    for ingress in ours:
        builder.add_ingress(ingress)
    lines = _HEADER.format(count=len(ours), class_name=snapshot.class_name, health=HEALTH_PORT).splitlines()
    for upstream, servers in sorted(builder.upstreams.items()):
        lines += [f"    upstream {upstream} {{", *(f"        server {s} max_fails=0;" for s in servers), "    }", ""]
    catch_all = builder.servers.pop(_CATCH_ALL)
    lines += _server_block(catch_all, default=True)
    for host in sorted(builder.servers):
        lines += _server_block(builder.servers[host], default=False)
    lines.append("}")
    return Rendered("\n".join(lines) + "\n", builder.certificates, [_key(i) for i in ours], builder.warnings)


def _server_block(server: _Server, default: bool) -> list[str]:
    lines = [f"    server {{  # {'unknown hosts' if default else 'host ' + server.name}"]
    if default:
        lines += ["        listen 80 default_server;", "        listen 443 ssl default_server;",
                  "        ssl_reject_handshake on;  # no certificate for a host no Ingress names"]
    else:
        lines.append("        listen 80;")
        if server.certificate:
            lines += ["        listen 443 ssl;", f"        ssl_certificate {server.certificate};",
                      f"        ssl_certificate_key {server.certificate};"]
    lines += [f"        server_name {server.name};", '        set $proxy_upstream_name "-";', ""]
    locations = dict(server.locations)
    if "/" not in locations:
        locations["/"] = _Location("/", None, "")
    for match in sorted(locations, key=lambda m: (not m.startswith("="), m)):
        location = locations[match]
        lines.append(f"        location {match} {{" + (f"  # {location.source}" if location.source else ""))
        if not location.source:
            lines.append('            return 404 "default backend - 404\\n";')
        elif location.upstream is None:
            lines.append('            return 503 "no ready endpoint for this backend\\n";')
        else:
            lines += [f'            set $proxy_upstream_name "{location.upstream}";',
                      f"            proxy_pass http://{location.upstream};"]
        lines += ["        }"]
    return lines + ["    }", ""]


_HEADER = """\
# nginx.conf rendered by labctl's ingress controller (python -m labctl.ingress) from {count}
# Ingress(es) of class {class_name}, their Services' EndpointSlices and TLS Secrets. Do not edit:
# the controller writes it again, then runs `nginx -s reload`, whenever they change.
worker_processes 1;
pid /run/nginx.pid;
error_log stderr notice;

events {{
    worker_connections 1024;
}}

http {{
    default_type text/plain;
    log_format upstreaminfo '$remote_addr - [$time_local] "$request" $status $body_bytes_sent '
                            '"$http_user_agent" host=$host [$proxy_upstream_name] $upstream_addr '
                            '$upstream_status $request_time';
    access_log /dev/stdout upstreaminfo;
    server_names_hash_bucket_size 128;

    proxy_set_header Host $host;
    proxy_set_header X-Real-IP $remote_addr;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header X-Forwarded-Host $host;
    # a pod that went away before the next reload refuses the connection, or (its sandbox and IP
    # already gone) never answers the SYN: after 1 s (a pod on the lab's bridges answers in
    # microseconds) try another endpoint, well within a client's patience
    proxy_connect_timeout 1s;
    proxy_read_timeout 60s;
    proxy_next_upstream error timeout http_502 http_503;
    proxy_next_upstream_tries 3;

    server {{  # the kubelet's probes
        listen {health};
        access_log off;
        location = /healthz {{
            return 200 "ok\\n";
        }}
    }}

"""
