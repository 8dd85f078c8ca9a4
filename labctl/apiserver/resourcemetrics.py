"""``metrics.k8s.io/v1beta1``: NodeMetrics and PodMetrics from the containers' cgroups, as metrics-server.

On a real cluster metrics-server scrapes every kubelet's cumulative CPU counters and
memory working set and serves usage *rates* over the window between two scrapes. Here the
API server reads the same counters itself: every pod container and every node is a Docker
container on the host, and the API server reaches the host's engine through the mounted
socket. Docker's one-shot stats (``stream=false&one-shot=true``) answer at once with the
cumulative CPU time and the memory figures of the container's cgroup; two readings make a
rate. The module keeps the last reading of each container as the start of the next
window, so a client that asks regularly (``kubectl top``, the HPA controller) gets the
rate since its previous look, like metrics-server's scrape interval; a container read for
the first time (or whose reading is stale) is read twice, :data:`MIN_WINDOW` apart.

* CPU: ``usage`` in nanocores = CPU nanoseconds used / seconds elapsed over the window.
* Memory: the working set, ``usage - inactive_file`` (what the kubelet and metrics-server
  report, what the OOM killer looks at), in ``Ki``.
* A node's usage is its node container's plus its pods' containers (sandboxes included):
  the pods run beside the node container on the host, not inside its cgroup, and a node's
  usage on a real cluster includes its pods.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..engine.streams import DockerAPIError, DockerEngine
from ..kube.containers import CLUSTER_LABEL, POD_NODE_LABEL, node_container_name
from ..kube.printers import DEFAULT_TABLE, build_table
from ..kube.resources import ResourceType, resource_for
from . import errors, queryparams
from .rest import RestAPI
from .scope import RequestScope

GROUP, VERSION = "metrics.k8s.io", "v1beta1"
API_VERSION = f"{GROUP}/{VERSION}"
#: the shortest window a rate is computed over (a first reading waits this long for the second)
MIN_WINDOW = 1.0
#: a window's start is moved on once it is this old, so usage follows the last ~10-20 s (metrics-server: 15 s)
RESOLUTION = 10.0
#: a reading older than this no longer starts a window: the rate would average too much history
STALE = 60.0


@dataclass(frozen=True)
class Reading:
    """One reading of a container's cgroup: cumulative CPU time and the memory working set now."""

    at: float          # time.monotonic()
    wall: float        # time.time(), for the ``timestamp`` field
    cpu_ns: int
    working_set: int


@dataclass(frozen=True)
class Usage:
    """A container's usage over a window, as metrics-server serves it."""

    nanocores: int
    working_set: int
    timestamp: float   # the window's end, seconds since the epoch
    window: float      # seconds


def reading_from_stats(stats: Mapping[str, Any], at: float, wall: float) -> Reading | None:
    """A :class:`Reading` from Docker's stats answer; None when the container is not running.

    The working set is ``usage`` minus the inactive file cache: ``total_inactive_file`` under
    cgroup v1, ``inactive_file`` under v2 (docker's CLI computes the same figure).
    """
    cpu = (stats.get("cpu_stats") or {}).get("cpu_usage") or {}
    memory = stats.get("memory_stats") or {}
    if "total_usage" not in cpu or "usage" not in memory:
        return None
    detail = memory.get("stats") or {}
    inactive = detail.get("total_inactive_file", detail.get("inactive_file", 0))
    working_set = max(int(memory["usage"]) - int(inactive), 0)
    return Reading(at, wall, int(cpu["total_usage"]), working_set)


def usage_between(start: Reading, end: Reading) -> Usage:
    """The usage rate from ``start`` to ``end`` (a restarted container's counter going back counts as 0)."""
    window = max(end.at - start.at, 1e-9)
    nanocores = max(end.cpu_ns - start.cpu_ns, 0) / window
    return Usage(int(nanocores), end.working_set, end.wall, window)


def format_window(seconds: float) -> str:
    """A window as Go's ``time.Duration`` prints it: ``15.003s``, ``1m0.5s``."""
    millis = round(seconds * 1000)
    minutes, millis = divmod(millis, 60_000)
    secs = f"{millis / 1000:.3f}".rstrip("0").rstrip(".")
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def usage_quantities(nanocores: int, working_set: int) -> dict[str, str]:
    """metrics-server's forms: CPU in nanocores (``12345n``), memory in kibibytes (``2048Ki``)."""
    return {"cpu": f"{nanocores}n", "memory": f"{working_set // 1024}Ki"}


def _timestamp(wall: float) -> str:
    return dt.datetime.fromtimestamp(int(wall), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class UsageSampler:
    """Reads containers' cgroups through Docker and turns consecutive readings into rates."""

    def __init__(self, engine: DockerEngine) -> None:
        self.engine = engine
        self._starts: dict[str, Reading] = {}

    async def _read(self, container_id: str) -> Reading | None:
        try:
            stats = await self.engine.stats(container_id)
        except DockerAPIError:  # gone since it was listed: no figures, as metrics-server skips it
            return None
        return reading_from_stats(stats or {}, time.monotonic(), time.time())

    async def _read_all(self, ids: Iterable[str]) -> dict[str, Reading]:
        ids = list(ids)
        readings = await asyncio.gather(*(self._read(i) for i in ids))
        return {i: r for i, r in zip(ids, readings, strict=True) if r is not None}

    async def usage(self, container_ids: Iterable[str]) -> dict[str, Usage]:
        """Usage of each container that could be read; a container met for the first time is read twice."""
        now = await self._read_all(set(container_ids))
        fresh = {i for i, r in now.items()
                 if i not in self._starts or not MIN_WINDOW <= r.at - self._starts[i].at <= STALE}
        if fresh:
            for i in fresh:
                self._starts[i] = now[i]
            await asyncio.sleep(MIN_WINDOW)
            now.update(await self._read_all(fresh))
        out: dict[str, Usage] = {}
        for i, end in now.items():
            start = self._starts[i]
            if end.at - start.at < MIN_WINDOW / 2:  # the second reading failed: no window
                continue
            out[i] = usage_between(start, end)
            if end.at - start.at >= RESOLUTION:
                self._starts[i] = end
        self._forget_stale()
        return out

    def _forget_stale(self) -> None:
        horizon = time.monotonic() - STALE
        for i in [i for i, r in self._starts.items() if r.at < horizon]:
            del self._starts[i]


def _docker_id(container_id: str) -> str:
    return container_id.partition("://")[2] or container_id


class MetricsAPI:
    """Serves ``nodes`` and ``pods`` of ``metrics.k8s.io/v1beta1`` (get and list; no watch, no writes)."""

    def __init__(self, api: RestAPI, engine: DockerEngine) -> None:
        self.api = api
        self.sampler = UsageSampler(engine)
        self.engine = engine

    async def serve(self, method: str, query: Mapping[str, str], scope: RequestScope, table: bool) -> dict:
        """The NodeMetrics/PodMetrics (or their list, or a Table of them) the request asks for."""
        rt = scope.resource
        if method != "GET" or scope.subresource is not None:
            raise errors.method_not_allowed("the server does not allow this method on the requested resource")
        if queryparams.is_watch(query):
            raise errors.method_not_allowed(f"watch is not supported on {rt.qualified}: metrics are read, never stored")
        source = resource_for(rt.plural)  # the core kind the metrics are of: pods or nodes
        if scope.name is not None:
            try:
                obj = self.api.get(RequestScope(source, scope.namespace, scope.name))
            except errors.APIError as err:
                if err.code != 404:
                    raise
                obj = None
            items = await self._metrics(rt, [obj]) if obj is not None else []
            if not items:  # no such pod, or no figures (yet): metrics-server's NotFound
                raise errors.not_found(rt.plural, GROUP, scope.name)
            return items[0]
        listed = self.api.list(RequestScope(source, scope.namespace), queryparams.list_options(query, source))
        items = await self._metrics(rt, listed["items"])
        if table:
            out = build_table(DEFAULT_TABLE, items, query.get("includeObject", "Metadata"))
            out["metadata"] = {"resourceVersion": ""}
            return out
        return {"kind": rt.list_kind, "apiVersion": API_VERSION, "metadata": {}, "items": items}

    async def _metrics(self, rt: ResourceType, objs: list[dict]) -> list[dict]:
        return await (self._pod_metrics(rt, objs) if rt.namespaced else self._node_metrics(rt, objs))

    async def _pod_metrics(self, rt: ResourceType, pods: list[dict]) -> list[dict]:
        """One PodMetrics per running pod whose running containers could all be read (as metrics-server)."""
        wanted: dict[str, list[tuple[str, str]]] = {}
        for pod in pods:
            if (pod.get("status") or {}).get("phase") != "Running":
                continue
            running = [(cs["name"], _docker_id(cs["containerID"]))
                       for cs in (pod["status"].get("containerStatuses") or [])
                       if "running" in (cs.get("state") or {}) and cs.get("containerID")]
            if running:
                wanted[pod["metadata"]["uid"]] = running
        usage = await self.sampler.usage(i for containers in wanted.values() for _, i in containers)
        out = []
        for pod in pods:
            containers = wanted.get(pod["metadata"].get("uid", ""))
            if not containers or any(i not in usage for _, i in containers):
                continue
            figures = [usage[i] for _, i in containers]
            out.append({**self._meta(rt, pod, max(u.timestamp for u in figures), max(u.window for u in figures)),
                        "containers": [{"name": name, "usage": usage_quantities(usage[i].nanocores,
                                                                                usage[i].working_set)}
                                       for name, i in containers]})
        return out

    async def _node_metrics(self, rt: ResourceType, nodes: list[dict]) -> list[dict]:
        """One NodeMetrics per node whose container runs: its own cgroup plus its pods' containers."""
        cluster = self.api.cluster.name
        by_container = {node_container_name(cluster, n["metadata"]["name"]): n for n in nodes}
        try:
            containers = await self.engine.list_containers({CLUSTER_LABEL: cluster})
        except DockerAPIError as err:
            raise errors.APIError(503, "ServiceUnavailable",
                                  f"unable to fetch node metrics: {err.message}") from err
        members: dict[str, list[str]] = {name: [] for name in by_container}
        own: dict[str, str] = {}  # node container name -> its Docker id
        for c in containers:
            if c.state != "running":
                continue
            if c.name in members:
                own[c.name] = c.id
            member_of = c.name if c.name in members else c.labels.get(POD_NODE_LABEL, "")
            if member_of in members:
                members[member_of].append(c.id)
        usage = await self.sampler.usage(i for ids in members.values() for i in ids)
        out = []
        for container, node in by_container.items():
            if own.get(container) not in usage:  # the node container itself is down or unread
                continue
            figures = [usage[i] for i in members[container] if i in usage]
            out.append({**self._meta(rt, node, max(u.timestamp for u in figures), max(u.window for u in figures)),
                        "usage": usage_quantities(sum(u.nanocores for u in figures),
                                                  sum(u.working_set for u in figures))})
        return out

    @staticmethod
    def _meta(rt: ResourceType, obj: dict, timestamp: float, window: float) -> dict:
        meta = obj["metadata"]
        out_meta: dict[str, Any] = {"name": meta["name"], "creationTimestamp": _timestamp(time.time())}
        if rt.namespaced:
            out_meta["namespace"] = meta["namespace"]
        if meta.get("labels"):
            out_meta["labels"] = meta["labels"]
        return {"kind": rt.kind, "apiVersion": API_VERSION, "metadata": out_meta,
                "timestamp": _timestamp(timestamp), "window": format_window(window)}
