"""The API server's ``/metrics``: kube-apiserver's main series in the Prometheus text format (0.0.4).

Series (the names, labels and buckets of kube-apiserver's, a subset of each label set):

- ``apiserver_request_total{verb,group,version,resource,subresource,scope,component,code}``
- ``apiserver_request_duration_seconds{verb,group,version,resource,subresource,scope,component}``, a
  histogram of the requests that end (not watches, logs, exec, attach, port-forward, proxy: those
  are long-running, as kube counts them apart)
- ``apiserver_current_inflight_requests{request_kind}`` (``readOnly``/``mutating``) and
  ``apiserver_longrunning_requests{verb,group,version,resource,subresource,scope,component}``
- ``apiserver_registered_watchers{group,kind,version}`` (the store's open watches) and
  ``apiserver_storage_objects{resource}`` (etcd's object counts: the store's, read at scrape time)

Why not ``prometheus_client``: the text format is a few lines to write, and a request must
pay as little as possible (one cached parse of the path, a dict increment, a bisect); the
node image then needs no new wheel. A scrape renders everything at once.
"""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from aiohttp import web
from aiohttp.typedefs import Middleware

from labctl.apiserver import errors
from labctl.apiserver.authz.attributes import request_attributes
from labctl.apiserver.users import ANONYMOUS_USER
from labctl.kube.resources import CREATE_ONLY

if TYPE_CHECKING:
    from labctl.apiserver.storage import SQLiteStore
    from labctl.kube.resources import Registry, ResourceType

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LABEL_CACHE_SIZE = 4096
#: kube-apiserver's buckets for apiserver_request_duration_seconds
BUCKETS = (0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 15.0,
           20.0, 30.0, 45.0, 60.0)
LONG_RUNNING_VERBS = frozenset({"WATCH", "CONNECT"})
_CONNECT_SUBRESOURCES = frozenset({"log", "exec", "attach", "portforward", "proxy"})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_READ_ONLY = frozenset({"GET", "LIST", "WATCH"})
_VERBS = {"get": "GET", "list": "LIST", "watch": "WATCH", "create": "POST", "update": "PUT", "patch": "PATCH",
          "delete": "DELETE", "deletecollection": "DELETE"}
Labels = tuple[str, str, str, str, str, str]  # verb, group, version, resource, subresource, scope
_LABEL_NAMES = ("verb", "group", "version", "resource", "subresource", "scope")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def request_labels(registry: Registry, method: str, path: str, watch: bool) -> Labels:
    """kube's request-info labels of one request: ``LIST``/``WATCH``/``GET``…, the resource, its scope.

    A path that names no served resource is labelled like a non-resource request (its
    method only), so arbitrary URLs cannot grow the series without bound.
    """
    try:
        attrs = request_attributes(ANONYMOUS_USER, method, path, {"watch": "true"} if watch else {})
    except errors.APIError:
        attrs = None
    rt = None if attrs is None else registry.lookup(attrs.api_group, attrs.api_version, attrs.resource)
    if attrs is None or rt is None or (attrs.subresource and attrs.subresource not in rt.subresources):
        return (method if method in _METHODS else "other", "", "", "", "", "")
    verb = _VERBS.get(attrs.verb, attrs.verb.upper())
    if attrs.subresource in _CONNECT_SUBRESOURCES or attrs.verb == "proxy":
        verb = "CONNECT"
    if attrs.name:
        scope = "resource"
    else:
        scope = "namespace" if attrs.namespace else "cluster"
    return (verb, attrs.api_group, attrs.api_version, attrs.resource, attrs.subresource, scope)


class Metrics:
    """The counters one API server keeps; :meth:`middleware` feeds them, :meth:`render` prints them."""

    def __init__(self, store: SQLiteStore, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self.requests: dict[tuple[Labels, int], int] = defaultdict(int)
        self.durations: dict[Labels, list[float]] = {}  # bucket counts, then sum, then count
        self.inflight = {"readOnly": 0, "mutating": 0}
        self.longrunning: dict[Labels, int] = defaultdict(int)
        self._labels: dict[tuple[str, str, bool], Labels] = {}

    def middleware(self) -> Middleware:
        @web.middleware
        async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
            labels = self.labels_of(request.method, request.path, request.query.get("watch") in ("true", "1"))
            long_running = labels[0] in LONG_RUNNING_VERBS
            kind = "readOnly" if labels[0] in _READ_ONLY else "mutating"
            if long_running:
                self.longrunning[labels] += 1
            else:
                self.inflight[kind] += 1
            start = time.perf_counter()
            code = 500
            try:
                response = await handler(request)
                code = response.status
                return response
            except web.HTTPException as err:
                code = err.status
                raise
            finally:
                self.requests[(labels, code)] += 1
                if long_running:
                    self.longrunning[labels] -= 1
                else:
                    self.inflight[kind] -= 1
                    self._observe(labels, time.perf_counter() - start)

        return measure

    def labels_of(self, method: str, path: str, watch: bool) -> Labels:
        """:func:`request_labels`, cached for paths of served resources (a CRD may make a path served later)."""
        key = (method, path, watch)
        labels = self._labels.get(key)
        if labels is None:
            labels = request_labels(self.registry, method, path, watch)
            if labels[3]:
                if len(self._labels) >= LABEL_CACHE_SIZE:
                    self._labels.clear()
                self._labels[key] = labels
        return labels

    def _observe(self, labels: Labels, seconds: float) -> None:
        series = self.durations.get(labels)
        if series is None:
            series = self.durations[labels] = [0.0] * (len(BUCKETS) + 2)
        series[bisect.bisect_left(BUCKETS, seconds)] += 1  # the first bucket whose bound is ≥ seconds
        series[-2] += seconds
        series[-1] += 1

    # -- exposition ------------------------------------------------------------------------
    def render(self) -> bytes:
        out: list[str] = []
        _family(out, "apiserver_request_total", "counter",
                "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, "
                "scope, component, and HTTP response code.",
                ((f'{_labels(labels)},component="apiserver",code="{code}"', n)
                 for (labels, code), n in sorted(self.requests.items())))
        _family(out, "apiserver_request_duration_seconds", "histogram",
                "Response latency distribution in seconds for each verb, dry run value, group, version, resource, "
                "subresource, scope and component.", ())
        for labels, series in sorted(self.durations.items()):
            base = f'{_labels(labels)},component="apiserver"'
            cumulative = 0.0
            for bound, n in zip(BUCKETS, series, strict=False):
                cumulative += n
                out.append(f'apiserver_request_duration_seconds_bucket{{{base},le="{bound:g}"}} {cumulative:g}')
            out.append(f'apiserver_request_duration_seconds_bucket{{{base},le="+Inf"}} {series[-1]:g}')
            out.append(f"apiserver_request_duration_seconds_sum{{{base}}} {series[-2]!r}")
            out.append(f"apiserver_request_duration_seconds_count{{{base}}} {series[-1]:g}")
        _family(out, "apiserver_current_inflight_requests", "gauge",
                "Maximal number of currently used inflight request limit of this apiserver per request kind in "
                "last second.",
                ((f'request_kind="{kind}"', n) for kind, n in sorted(self.inflight.items())))
        _family(out, "apiserver_longrunning_requests", "gauge",
                "Gauge of all active long-running apiserver requests broken out by verb, group, version, resource, "
                "scope and component. Not all requests are tracked this way.",
                ((f'{_labels(labels)},component="apiserver"', n) for labels, n in sorted(self.longrunning.items())))
        _family(out, "apiserver_registered_watchers", "gauge",
                "Number of currently registered watchers for a given resources",
                ((f'group="{rt.group}",kind="{rt.kind}",version="{rt.version}"', n)
                 for rt, n in self._watchers()))
        _family(out, "apiserver_storage_objects", "gauge",
                "Number of stored objects at the time of last check split by kind.",
                ((f'resource="{rt.qualified}"', self.store.count(rt.key)) for rt in self._stored()))
        return ("\n".join(out) + "\n").encode()

    def _stored(self) -> list[ResourceType]:
        seen: set[str] = set()
        kinds = []
        for rt in self.registry.resources:
            if rt.key not in seen and rt.verbs != CREATE_ONLY:
                seen.add(rt.key)
                kinds.append(rt)
        return kinds

    def _watchers(self) -> list[tuple[ResourceType, int]]:
        counts = self.store.watcher_counts()
        return [(rt, counts[rt.key]) for rt in self._stored() if counts.get(rt.key)]


def _labels(labels: Labels) -> str:
    return ",".join(f'{name}="{value}"' for name, value in zip(_LABEL_NAMES, labels, strict=True))


def _family(out: list[str], name: str, kind: str, doc: str, samples: Iterable[tuple[str, float]]) -> None:
    out.append(f"# HELP {name} [STABLE] {doc}" if name.startswith("apiserver_request") else f"# HELP {name} {doc}")
    out.append(f"# TYPE {name} {kind}")
    out.extend(f"{name}{{{labels}}} {value:g}" for labels, value in samples)
