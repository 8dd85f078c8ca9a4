"""The HTTP face of the API server (aiohttp): authentication, routing, content negotiation.

Routing is done by hand rather than with a route table because Kubernetes paths are
regular (``/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}``, ``/apis/{group}/...``)
and resolving them against the resource registry gives the right 404s for free.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import orjson
from aiohttp import web

from labctl.kube.printers import build_table
from labctl.kube.resources import CREATE_ONLY, METRICS_GROUP, Registry, ResourceType, not_served_message

from . import (
    apiproxy,
    decode,
    discovery,
    errors,
    eventsv1,
    eviction,
    metrics,
    openapi,
    podproxy,
    portforward,
    queryparams,
    resourcemetrics,
)
from .authz import reviews
from .authz.authorizer import Authorizer
from .authz.filter import authorization_filter
from .queryparams import ListOptions
from .rest import RequestScope, RestAPI
from .serviceaccounts import ServiceAccountTokens
from .storage import ResourceVersionTooOld
from .storage import clone as clone_object
from .strategies import custom_openapi, strategy_for
from .users import User, authenticated
from .watch import WatchFilter, bookmark, encode_event, expired, next_event

log = logging.getLogger("labctl.apiserver")

MAX_BODY_BYTES = 3 * 1024 * 1024  # kube-apiserver's default limit for a request body
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version", "/.well-known/openid-configuration",
                "/openid/v1/jwks")
BOOKMARK_INTERVAL = 30.0
MAX_WATCH_SECONDS = 1800
TABLE_MEDIA_TYPE = "application/json;as=Table;v=v1;g=meta.k8s.io"
OPENAPI_V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def load_token_file(path: Path) -> dict[str, User]:
    """Static tokens, kube's ``--token-auth-file`` format: ``token,user,uid,"group1,group2"``."""
    tokens: dict[str, User] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = [p.strip().strip('"') for p in line.split(",", 3)]
        groups = tuple(g for g in (parts[3].split(",") if len(parts) > 3 else []) if g)
        tokens[parts[0]] = authenticated(parts[1], groups, parts[2] if len(parts) > 2 else "")
    return tokens


def json_response(body: dict, status: int = 200, content_type: str = "application/json") -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, headers={"Content-Type": content_type})


def status_response(err: errors.APIError) -> web.Response:
    return json_response(err.status(), err.code)


class APIServerApp:
    """Builds the aiohttp application around a :class:`RestAPI`."""

    def __init__(self, api: RestAPI, tokens: dict[str, User] | None = None,
                 engine: podproxy.DockerEngine | None = None,
                 service_accounts: ServiceAccountTokens | None = None) -> None:
        self.api = api
        # pods/log and pods/exec are served straight from the host's Docker engine (see podproxy)
        self.engine = engine or podproxy.DockerEngine.from_env()
        self.registry: Registry = api.registry
        self.tokens = tokens or {}
        self.service_accounts = service_accounts
        self.authz = Authorizer(api)
        self.proxy = apiproxy.Proxy(api)
        self.metrics = metrics.Metrics(api.store, self.registry)
        self.resource_metrics = resourcemetrics.MetricsAPI(api, self.engine)
        self.openapi_paths = {f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"
                              for rt in self.registry.resources}

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY_BYTES,
                              middlewares=[self.metrics.middleware(), self._errors, self._authenticate,
                                           authorization_filter(self.authz)])
        app.on_startup.append(self.authz.start)
        app.on_cleanup.append(self.authz.stop)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        app.on_cleanup.append(self._close_engine)
        return app

    async def _close_engine(self, app: web.Application) -> None:
        await self.engine.close()
        await self.proxy.close()

    # -- middleware ----------------------------------------------------------------------
    @web.middleware
    async def _errors(self, request: web.Request, handler):
        try:
            return await handler(request)
        except errors.APIError as err:
            return status_response(err)
        except web.HTTPRequestEntityTooLarge:
            return status_response(errors.too_large(MAX_BODY_BYTES))
        except web.HTTPException:
            raise
        except Exception as err:  # a bug: answer like kube-apiserver, log for the developer
            log.exception("internal error serving %s %s", request.method, request.path)
            return status_response(errors.APIError(500, "InternalError", f"Internal error occurred: {err}"))

    @web.middleware
    async def _authenticate(self, request: web.Request, handler):
        user = self._user(request)
        if user is None and request.path not in PUBLIC_PATHS:
            return status_response(errors.unauthorized())
        request["user"] = user
        return await handler(request)

    def _user(self, request: web.Request) -> User | None:
        auth = request.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            token = auth[7:].strip()
            if token in self.tokens:
                return self.tokens[token]
            return self.service_accounts.authenticate(token) if self.service_accounts else None
        transport = request.transport
        cert = transport.get_extra_info("peercert") if transport else None
        if cert:
            subject = dict(x[0] for x in cert.get("subject", ()))
            orgs = tuple(v for rdn in cert.get("subject", ()) for k, v in rdn if k == "organizationName")
            if subject.get("commonName"):
                return authenticated(subject["commonName"], orgs)
        return None

    # -- routing -------------------------------------------------------------------------
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        proxied = apiproxy.parse_proxy_path(request.rel_url.raw_path)
        if proxied is not None:  # services/proxy, pods/proxy, nodes/proxy: the rest of the path is the target's
            return await self.proxy.serve(request, proxied)
        path = request.path.rstrip("/") or "/"
        if path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if path == "/version":
            return json_response(discovery.KUBERNETES_VERSION)
        if path == "/metrics" and request.method == "GET":  # RBAC: the nonResourceURL, system:monitoring's
            return web.Response(body=self.metrics.render(), headers={"Content-Type": metrics.CONTENT_TYPE})
        if self.service_accounts and path == "/.well-known/openid-configuration":
            return json_response(self.service_accounts.openid_configuration())
        if self.service_accounts and path == "/openid/v1/jwks":
            return json_response(self.service_accounts.jwks(), content_type="application/jwk-set+json")
        if path.startswith("/openapi"):
            return self._openapi(path, request)
        parts = path.strip("/").split("/")
        if parts[0] == "api":
            if len(parts) == 1:
                return self._discovery_root(request, legacy=True)
            return await self._group_version_request(request, "", parts[1], parts[2:])
        if parts[0] == "apis":
            if len(parts) == 1:
                return self._discovery_root(request, legacy=False)
            if len(parts) == 2:
                versions = self.registry.groups().get(parts[1])
                if not versions:
                    raise errors.not_found("", "", request.path)
                return json_response(discovery.api_group(parts[1], versions))
            return await self._group_version_request(request, parts[1], parts[2], parts[3:])
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource")

    def _discovery_root(self, request: web.Request, legacy: bool) -> web.Response:
        if discovery.wants_aggregated(request.headers.get("Accept", "")):
            return json_response(discovery.aggregated(self.registry, legacy), content_type=discovery.AGGREGATED_MEDIA_TYPE)
        return json_response(discovery.api_versions() if legacy else discovery.api_group_list(self.registry))

    def _openapi(self, path: str, request: web.Request) -> web.Response:
        if path == "/openapi/v2":
            # kubectl reads v2 only for kinds the v3 documents lack (kinds this server does
            # not serve, or `kind: List` files); a v2 document without definitions lets it
            # reach its own clear error ("no matches for kind ...") instead of
            # "failed to download openapi".
            return web.Response(body=openapi.v2_document_protobuf(), headers={"Content-Type": OPENAPI_V2_PROTOBUF})
        if path == "/openapi/v3":
            index = openapi.v3_index(self.openapi_paths)
            for gv, raw in custom_openapi(self.registry).items():
                index["paths"][gv] = {"serverRelativeURL": f"/openapi/v3/{gv}?hash={openapi.document_hash(raw)}"}
            return json_response(index)
        if path.startswith("/openapi/v3/"):
            gv = path[len("/openapi/v3/"):]
            doc = openapi.v3_document(gv) or custom_openapi(self.registry).get(gv)
            if doc is not None:
                return web.Response(body=doc, headers={"Content-Type": "application/json",
                                                       "Cache-Control": "public, immutable"})
        raise errors.APIError(404, "NotFound", "the server could not find the requested resource")

    async def _group_version_request(self, request: web.Request, group: str, version: str,
                                     rest: list[str]) -> web.StreamResponse:
        if version not in self.registry.groups().get(group, []):
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        if not rest:
            return json_response(discovery.resource_list(self.registry, group, version))
        self._refuse_unserved(request.method, group, version, rest)
        scope = self._scope(group, version, rest)
        return await self._serve(request, scope)

    def _refuse_unserved(self, method: str, group: str, version: str, rest: list[str]) -> None:
        """A built-in kind labctl does not serve: every request answers so, naming the kind.

        Reading one object finds nothing (404), so ``kubectl apply`` goes on to create it and
        prints the 405 of the create: ``Error from server (MethodNotAllowed): error when
        creating "rc.yaml": labctl does not serve RuntimeClass (node.k8s.io/v1)``.
        """
        if len(rest) >= 3 and rest[0] == "namespaces":
            rest = rest[2:]
        unserved = self.registry.lookup_unserved(group, version, rest[0])
        if unserved is None:
            return
        if method == "GET" and len(rest) > 1:
            raise errors.APIError(404, "NotFound", not_served_message(unserved))
        raise errors.method_not_allowed(not_served_message(unserved))

    def _scope(self, group: str, version: str, rest: list[str]) -> RequestScope:
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            rt = self.registry.lookup(group, version, rest[2])
            if rt is not None and rt.namespaced:
                namespace, rest = rest[1], rest[2:]
        rt = self.registry.lookup(group, version, rest[0])
        if rt is None or len(rest) > 3:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in rt.subresources:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        if rt.namespaced and name is not None and namespace is None:
            raise errors.APIError(404, "NotFound", "the server could not find the requested resource")
        return RequestScope(rt, namespace, name, sub)

    # -- verbs ---------------------------------------------------------------------------
    async def _serve(self, request: web.Request, scope: RequestScope) -> web.StreamResponse:
        q = request.query
        method = request.method
        rt = scope.resource
        if rt.group == METRICS_GROUP:  # figures read from the cgroups, never stored
            table = _wants_table(request)
            answer = await self.resource_metrics.serve(method, q, scope, table)
            return json_response(answer, 200, TABLE_MEDIA_TYPE if table and answer["kind"] == "Table" else
                                 "application/json")
        if rt.verbs == CREATE_ONLY:  # the reviews: answered by the authorizer, never stored
            if method != "POST":
                raise errors.method_not_allowed("the server does not allow this method on the requested resource")
            body = await _read_object(request)
            return json_response(reviews.answer(self.authz, request["user"], rt, scope.namespace, body), 201)
        if rt.view_of:
            return await self._serve_events_view(request, scope)
        if scope.subresource in ("log", "exec", "attach", "portforward"):
            pod = self.api.get(RequestScope(rt, scope.namespace, scope.name))
            if scope.subresource == "log" and method == "GET":
                return await podproxy.serve_log(request, pod, self.engine)
            if scope.subresource == "exec" and method in ("GET", "POST"):
                return await podproxy.serve_exec(request, pod, self.engine)
            if scope.subresource == "attach" and method in ("GET", "POST"):
                return await podproxy.serve_attach(request, pod, self.engine)
            if scope.subresource == "portforward" and method in ("GET", "POST"):
                return await portforward.serve_portforward(request, pod, self.engine)
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        if scope.subresource == "eviction":
            if method != "POST":
                raise errors.method_not_allowed("the server does not allow this method on the requested resource")
            write = queryparams.write_options(q, "CreateOptions")
            body, _ = await decode.read_object(request, "policy/v1", "Eviction", write.field_validation)
            answer = eviction.evict(self.api, scope, body, q.getall("dryRun", []))
            return json_response(answer, answer["code"])
        if method == "GET":
            if scope.name is None:
                opts = queryparams.list_options(q, rt)
                if opts.watch:
                    return await self._watch(request, scope, opts)
                return self._answer_list(request, rt, self.api.list(scope, opts))
            queryparams.parse_resource_version(q.get("resourceVersion", ""), rt, scope.name)
            if scope.subresource == "scale":
                return json_response(self.api.get_scale(scope))
            return self._answer_object(request, rt, self.api.get(scope))
        # bodies are decoded within limits and type-checked against their kind (decode.py)
        if method == "POST":
            write = queryparams.write_options(q, "CreateOptions")
            if scope.subresource == "binding":
                binding, _ = await decode.read_object(request, "v1", "Binding", write.field_validation)
                return json_response(self.api.bind(scope, binding), 201)
            if scope.subresource == "token":
                if self.service_accounts is None:
                    raise errors.APIError(501, "NotImplemented", "service-account tokens are not configured")
                body = await decode.read_untyped(request, "TokenRequest")
                return json_response(self.service_accounts.create_token(scope.namespace or "", scope.name or "", body), 201)
            if scope.name is not None:
                raise errors.method_not_allowed("the server does not allow this method on the requested resource")
            body, warnings = await decode.read_object(request, rt.api_version, rt.kind, write.field_validation)
            obj = self.api.create(scope, body, write.dry_run)
            return self._answer_object(request, rt, obj, 201, warnings)
        if method == "PUT":
            if scope.name is None:
                raise errors.method_not_allowed("the server does not allow this method on the requested resource")
            write = queryparams.write_options(q, "UpdateOptions")
            if scope.subresource == "scale":
                scale, _ = await decode.read_object(request, "autoscaling/v1", "Scale", write.field_validation)
                return json_response(self.api.update_scale(scope, scale, write.dry_run))
            body, warnings = await decode.read_object(request, rt.api_version, rt.kind, write.field_validation)
            return self._answer_object(request, rt, self.api.update(scope, body, write.dry_run), warnings=warnings)
        if method == "PATCH":
            if scope.name is None:
                raise errors.method_not_allowed("the server does not allow this method on the requested resource")
            patch_type = decode.patch_type_of(request.headers.get("Content-Type", ""))
            write = queryparams.write_options(q, "PatchOptions", patch_type)
            patch = await decode.read_patch(request, patch_type, write.field_validation)
            code, obj, warnings = self.api.patch(scope, patch, write.dry_run, write.field_validation)
            return self._answer_object(request, rt, obj, code, warnings)
        if method == "DELETE":
            options = await _delete_options(request)
            dry_run = bool(options.get("dryRun"))
            if scope.name is None:
                listed = self.api.delete_collection(scope, queryparams.list_options(q, rt), options, dry_run)
                return json_response(listed)
            return json_response(self.api.delete(scope, options, dry_run))
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")

    async def _serve_events_view(self, request: web.Request, scope: RequestScope) -> web.StreamResponse:
        """``events.k8s.io/v1``: each verb on the core/v1 Events it shows, converted both ways (``eventsv1.py``)."""
        view, q, method = scope.resource, request.query, request.method
        core = RequestScope(strategy_for("events").resource, scope.namespace, scope.name)
        if method == "GET" and scope.name is None:
            opts = queryparams.list_options(q, view)
            if opts.watch:
                return await self._watch(request, scope, opts, eventsv1.to_view)
            listed = self.api.list(core, opts)
            if _wants_table(request):
                return self._answer_list(request, view, listed)
            return json_response({**listed, "apiVersion": eventsv1.API_VERSION,
                                  "items": [eventsv1.to_view(o) for o in listed["items"]]})
        if method == "GET":
            return self._answer_view(request, view, self.api.get(core))
        if method == "POST" and scope.name is None:
            write = queryparams.write_options(q, "CreateOptions")
            body, warnings = await decode.read_object(request, view.api_version, view.kind, write.field_validation)
            if errs := eventsv1.validate_create(body):
                raise errors.invalid_object(view.kind, view.group, (body.get("metadata") or {}).get("name", ""), errs)
            created = self.api.create(core, eventsv1.from_view(body), write.dry_run)
            return self._answer_view(request, view, created, 201, warnings)
        if method == "PUT" and scope.name is not None:
            write = queryparams.write_options(q, "UpdateOptions")
            body, warnings = await decode.read_object(request, view.api_version, view.kind, write.field_validation)
            updated = self.api.update(core, eventsv1.from_view(body), write.dry_run)
            return self._answer_view(request, view, updated, 200, warnings)
        if method == "PATCH" and scope.name is not None:
            patch_type = decode.patch_type_of(request.headers.get("Content-Type", ""))
            if patch_type == "apply":
                raise errors.unsupported_media_type("application/apply-patch+yaml (labctl applies events on the "
                                                    "server through core/v1 only)")
            write = queryparams.write_options(q, "PatchOptions", patch_type)
            patch = await decode.read_patch(request, patch_type, write.field_validation)
            current = eventsv1.to_view(self.api.get(core))
            patched = RestAPI._patched(clone_object(current), patch, view.api_version, view.kind)
            warnings = decode.patched_object(patched, current, patch, view.api_version, view.kind,
                                             write.field_validation)
            updated = self.api.update(core, eventsv1.from_view(patched), write.dry_run)
            return self._answer_view(request, view, updated, 200, warnings)
        if method == "DELETE" and scope.name is not None:
            options = await _delete_options(request)
            deleted = self.api.delete(core, options, bool(options.get("dryRun")))
            return json_response(eventsv1.to_view(deleted) if deleted.get("kind") == "Event" else deleted)
        raise errors.method_not_allowed("the server does not allow this method on the requested resource")

    def _answer_view(self, request: web.Request, view: ResourceType, obj: dict, code: int = 200,
                     warnings: list[str] | None = None) -> web.Response:
        """An object of a view: its table is the viewed kind's (kube prints both Event versions alike)."""
        if _wants_table(request):
            return self._answer_object(request, view, obj, code, warnings)
        return self._answer_object(request, view, eventsv1.to_view(obj), code, warnings)

    # -- answers -------------------------------------------------------------------------
    def _answer_object(self, request: web.Request, rt: ResourceType, obj: dict, code: int = 200,
                       warnings: list[str] | None = None) -> web.Response:
        headers = {"Warning": ", ".join(_warning(w) for w in warnings)} if warnings else None
        if _wants_table(request) and obj.get("kind") == rt.kind:
            table = build_table(strategy_for(rt).printer, [obj], request.query.get("includeObject", "Metadata"))
            table["metadata"] = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            resp = json_response(table, code, TABLE_MEDIA_TYPE)
        else:
            resp = json_response(obj, code)
        if headers:
            resp.headers.update(headers)
        return resp

    def _answer_list(self, request: web.Request, rt: ResourceType, listed: dict) -> web.Response:
        if _wants_table(request):
            table = build_table(strategy_for(rt).printer, listed["items"],
                                request.query.get("includeObject", "Metadata"))
            table["metadata"] = listed["metadata"]
            return json_response(table, 200, TABLE_MEDIA_TYPE)
        return json_response(listed)

    async def _watch(self, request: web.Request, scope: RequestScope, opts: ListOptions,
                     convert: Callable[[dict], dict] | None = None) -> web.StreamResponse:
        """A watch; ``convert`` turns stored objects into a view's (events.k8s.io/v1)."""
        rt = scope.resource
        q = request.query
        matcher = self.api.matcher(rt, opts)
        wfilter = WatchFilter(scope.namespace if rt.namespaced else None, matcher)
        rv_param = opts.resource_version
        send_initial = opts.send_initial_events is True or rv_param in ("", "0")
        since = None if send_initial else int(rv_param)
        table = _wants_table(request)
        # kube: no timeout (0) means the server's default; a negative one ends the watch at once
        timeout = min(opts.timeout_seconds or MAX_WATCH_SECONDS, MAX_WATCH_SECONDS)
        bookmarks = opts.allow_watch_bookmarks

        resp = web.StreamResponse(headers={"Content-Type": TABLE_MEDIA_TYPE if table else "application/json",
                                           "Cache-Control": "no-cache"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        try:
            watcher, backlog = self.api.store.watch(rt.key, since)
        except ResourceVersionTooOld as err:
            await resp.write(expired(err.requested, err.oldest))
            return resp
        first_table = [True]

        def encode(event_type: str, obj: dict, raw: bytes | None = None) -> bytes:
            if table:
                t = build_table(strategy_for(rt).printer, [obj], q.get("includeObject", "Metadata"))
                t["metadata"] = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
                if not first_table[0]:
                    t["columnDefinitions"] = []
                first_table[0] = False
                return encode_event(event_type, t)
            if convert is not None:
                return encode_event(event_type, convert(obj))
            return raw if raw is not None else encode_event(event_type, obj)

        try:
            if send_initial:
                initial = self.api.store.list(rt.key, wfilter.namespace)
                chunk = b"".join(encode("ADDED", o) for o in initial if wfilter._matches(o))
                if chunk:
                    await resp.write(chunk)
                if opts.send_initial_events and bookmarks:
                    await resp.write(bookmark(rt.kind, rt.api_version, self.api.store.revision, True))
            for past in backlog:
                typ = wfilter.translate(past)
                if typ:
                    await resp.write(encode(typ, past.object, past.encoded() if typ == past.type else None))
            deadline = time.monotonic() + timeout
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                event = await next_event(watcher.queue, min(remaining, BOOKMARK_INTERVAL))
                if event is None:
                    break
                if event is False:
                    if bookmarks:
                        await resp.write(bookmark(rt.kind, rt.api_version, self.api.store.revision))
                    continue
                # drain what is already queued into one write: fan-out to many watchers stays cheap
                batch = [event]
                while not watcher.queue.empty() and len(batch) < 500:
                    nxt = watcher.queue.get_nowait()
                    if nxt is None:
                        break
                    batch.append(nxt)
                out = []
                for ev in batch:
                    if since is not None and ev.revision <= since:
                        continue  # a watch from a version the store has not reached yet
                    typ = wfilter.translate(ev)
                    if typ:
                        out.append(encode(typ, ev.object, ev.encoded() if typ == ev.type else None))
                if out:
                    await resp.write(b"".join(out))
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            watcher.close()
        return resp


# -- request decoding helpers ---------------------------------------------------------------
def _wants_table(request: web.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _warning(text: str) -> str:
    """One ``Warning`` header value (RFC 7234 quoted-string, on one line), as kube writes it."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'299 - "{escaped}"'


async def _read_object(request: web.Request) -> dict:
    """A body of a kind the server answers itself (the access reviews): decoded within the limits."""
    return await decode.read_untyped(request)


async def _delete_options(request: web.Request) -> dict:
    """``DeleteOptions`` from the body (type-checked) and the query, validated as kube validates them."""
    body: dict = {}
    if request.can_read_body:
        body, _ = await decode.read_object(request, "v1", "DeleteOptions", "Ignore")
    return queryparams.delete_options(request.query, body)


def make_ssl_context(pki_dir: Path) -> ssl.SSLContext:
    """Serve with the cluster's certificate; ask for (but don't require) a client certificate.

    Optional client auth lets bearer-token clients in while certificate clients are verified
    against the cluster CA during the handshake.
    """
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(pki_dir / "apiserver.crt", pki_dir / "apiserver.key")
    ctx.load_verify_locations(pki_dir / "ca.crt")
    ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx
