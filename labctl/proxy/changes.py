"""Change trackers: Service and EndpointSlice events in, pending per-Service changes out.

kube-proxy's ``ServiceChangeTracker``/``EndpointsChangeTracker``: an event handler only
records ``(previous, current)`` for the Service; repeated changes collapse into one entry
and an entry whose two sides became equal is dropped, so a burst of 50 updates to one
Service costs one rule rewrite, and an update that changes nothing costs none. Endpoints
come from ``discovery.k8s.io/v1`` EndpointSlices, as kube-proxy reads them: every slice
labelled ``kubernetes.io/service-name``, whoever wrote it (the EndpointSlice controller, its
mirroring of hand-written Endpoints, or a student's own slice), merged per Service.

An object the conversion cannot read (a field of the wrong type, stored before the API
server checked types) counts as one without ports, with one log line: the other
Services' rules are still built.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from labctl.kube.objects import endpoint_slice_service
from labctl.proxy.types import Endpoint, NamespacedName, ServicePortInfo, ServicePortName

log = logging.getLogger("labctl.proxy")

ServicePortMap = dict[ServicePortName, ServicePortInfo]
EndpointsMap = dict[ServicePortName, tuple[Endpoint, ...]]

DEFAULT_AFFINITY_SECONDS = 10800  # v1.DefaultClientIPServiceAffinitySeconds


def _key(obj: Mapping[str, Any]) -> NamespacedName:
    meta = obj.get("metadata") or {}
    return NamespacedName(meta.get("namespace") or "default", meta.get("name", ""))


def service_to_port_map(service: Mapping[str, Any] | None) -> ServicePortMap:
    """The proxied ports of a v1 Service dict; headless and ExternalName Services have none."""
    if not service:
        return {}
    spec = service.get("spec") or {}
    cluster_ip = spec.get("clusterIP") or ""
    if cluster_ip in ("", "None") or spec.get("type") == "ExternalName":
        return {}
    ns = _key(service)
    affinity = 0
    if spec.get("sessionAffinity") == "ClientIP":
        config = (spec.get("sessionAffinityConfig") or {}).get("clientIP") or {}
        affinity = int(config.get("timeoutSeconds") or DEFAULT_AFFINITY_SECONDS)
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    lb_ips = tuple(i["ip"] for i in ingress if i.get("ip"))
    is_lb = spec.get("type") == "LoadBalancer"
    result: ServicePortMap = {}
    for port in spec.get("ports") or []:
        protocol = port.get("protocol") or "TCP"
        name = ServicePortName(ns.namespace, ns.name, port.get("name") or "", protocol)
        result[name] = ServicePortInfo(
            name=name,
            cluster_ip=cluster_ip,
            port=int(port["port"]),
            protocol=protocol,
            node_port=int(port.get("nodePort") or 0),
            external_ips=tuple(spec.get("externalIPs") or ()),
            load_balancer_ips=lb_ips,
            load_balancer_source_ranges=tuple(
                r.strip() for r in (spec.get("loadBalancerSourceRanges") or ()) if is_lb and r.strip()
            ),
            session_affinity_seconds=affinity,
            external_policy_local=spec.get("externalTrafficPolicy") == "Local",
            internal_policy_local=spec.get("internalTrafficPolicy") == "Local",
        )
    return result


#: one slice's endpoints per Service port, before the slices of a Service are merged
SliceEndpoints = dict[ServicePortName, tuple[Endpoint, ...]]


def slice_service(endpoint_slice: Mapping[str, Any]) -> NamespacedName | None:
    """The Service a slice belongs to (its ``kubernetes.io/service-name`` label); None: not a Service's."""
    found = endpoint_slice_service(endpoint_slice)
    return NamespacedName(*found) if found else None


def endpoint_slice_to_map(endpoint_slice: Mapping[str, Any] | None) -> SliceEndpoints:
    """Every endpoint of one ``discovery.k8s.io/v1`` EndpointSlice per Service port, with its conditions.

    kube-proxy's ``endpointInfoByServicePort``: ports are matched to the Service's by name;
    a port without a number, a slice that is not IPv4, an endpoint without an address are
    skipped; only the first address of an endpoint counts. Unset conditions read as
    kube-proxy reads them: ready and serving unless said otherwise, not terminating.
    Not-ready endpoints stay in the map; :mod:`labctl.proxy.topology` picks the ones to use.
    """
    if not endpoint_slice or endpoint_slice.get("addressType", "IPv4") != "IPv4":
        return {}
    svc = slice_service(endpoint_slice)
    if svc is None:
        return {}
    result: SliceEndpoints = {}
    for port in endpoint_slice.get("ports") or []:
        if port.get("port") is None:
            continue
        name = ServicePortName(svc.namespace, svc.name, port.get("name") or "", port.get("protocol") or "TCP")
        eps = []
        for ep in endpoint_slice.get("endpoints") or []:
            if not ep.get("addresses"):
                continue
            cond = ep.get("conditions") or {}
            eps.append(Endpoint(ep["addresses"][0], int(port["port"]), ep.get("nodeName") or "",
                                ready=cond.get("ready") is not False, serving=cond.get("serving") is not False,
                                terminating=cond.get("terminating") is True))
        result[name] = tuple(eps)
    return result


def merge_slices(slices: Mapping[str, SliceEndpoints], node_name: str = "") -> EndpointsMap:
    """One Service's slices (by slice name) merged into its endpoints per port, sorted.

    kube-proxy's ``EndpointSliceCache``: an endpoint listed by two slices (a pod moving
    between them) counts once, the first in slice-name order, unless a later copy says it is
    on this node.
    """
    merged: dict[ServicePortName, dict[str, Endpoint]] = {}
    for slice_name in sorted(slices):
        for port, eps in slices[slice_name].items():
            seen = merged.setdefault(port, {})
            for ep in eps:
                if str(ep) not in seen or (node_name and ep.node_name == node_name):
                    seen[str(ep)] = ep
    return {port: tuple(sorted(eps.values(), key=lambda e: e.sort_key)) for port, eps in merged.items() if eps}


@dataclass
class _Change:
    previous: dict
    current: dict


@dataclass
class _Tracker:
    """Shared collapse logic of both trackers (kube-proxy's ``Update(previous, current)``)."""

    _items: dict[NamespacedName, _Change] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _convert(self, obj: Mapping[str, Any] | None) -> dict:
        raise NotImplementedError

    def _readable(self, obj: Mapping[str, Any] | None) -> dict:
        """``_convert``, with a malformed object skipped (logged) instead of failing the sync."""
        try:
            return self._convert(obj)
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            log.warning("skipping malformed %s %s: %s: %s", type(self).__name__.removesuffix("ChangeTracker"),
                        _key(obj) if isinstance(obj, Mapping) else "?", type(err).__name__, err)
            return {}

    def update(self, previous: Mapping[str, Any] | None, current: Mapping[str, Any] | None) -> bool:
        """Record one add (``None, obj``), update or delete (``obj, None``).

        Returns True if there are changes that need a sync.
        """
        obj = current if current is not None else previous
        if obj is None:
            return len(self) > 0
        key = _key(obj)
        with self._lock:
            change = self._items.get(key)
            if change is None:
                change = self._items[key] = _Change(self._readable(previous), {})
            change.current = self._readable(current)
            if change.previous == change.current:
                del self._items[key]
            return len(self._items) > 0

    def drain(self) -> dict[NamespacedName, _Change]:
        """Take every pending change, leaving the tracker empty."""
        with self._lock:
            items, self._items = self._items, {}
        return items

    def __len__(self) -> int:
        return len(self._items)


class ServiceChangeTracker(_Tracker):
    """Pending Service changes, as ``ServicePortMap`` before/after per Service."""

    def _convert(self, obj: Mapping[str, Any] | None) -> ServicePortMap:
        return service_to_port_map(obj)


class EndpointsChangeTracker(_Tracker):
    """Pending endpoint changes from EndpointSlice events, as ``EndpointsMap`` before/after per Service.

    A Service's endpoints are spread over several slices, so unlike Services an event is not
    the whole truth: the tracker keeps every slice's endpoints (kube-proxy's
    ``EndpointSliceCache``) and records the Service's merged endpoints before and after.
    """

    def __init__(self, node_name: str = "") -> None:
        super().__init__()
        self.node_name = node_name
        self._slices: dict[NamespacedName, dict[str, SliceEndpoints]] = {}

    def update(self, previous: Mapping[str, Any] | None, current: Mapping[str, Any] | None) -> bool:
        """Record one slice add (``None, slice``), update or delete (``slice, None``).

        A slice relabelled to another Service leaves the first one and joins the second.
        Returns True if there are changes that need a sync.
        """
        old = slice_service(previous) if isinstance(previous, Mapping) else None
        new = slice_service(current) if isinstance(current, Mapping) else None
        with self._lock:
            if old is not None and old != new and previous is not None:
                self._set_slice(old, previous, None)
            if new is not None and current is not None:
                self._set_slice(new, current, self._readable(current))
            return len(self._items) > 0

    def _set_slice(self, svc: NamespacedName, obj: Mapping[str, Any], endpoints: SliceEndpoints | None) -> None:
        """Put (or with None remove) one slice of ``svc`` and record the Service's merged before/after."""
        slice_name = (obj.get("metadata") or {}).get("name", "")
        slices = self._slices.setdefault(svc, {})
        before = merge_slices(slices, self.node_name)
        if endpoints is None:
            slices.pop(slice_name, None)
        else:
            slices[slice_name] = endpoints
        if not slices:
            del self._slices[svc]
        after = merge_slices(slices, self.node_name)
        change = self._items.get(svc)
        if change is None:
            change = self._items[svc] = _Change(before, {})
        change.current = after
        if change.previous == change.current:
            del self._items[svc]

    def _convert(self, obj: Mapping[str, Any] | None) -> SliceEndpoints:
        return endpoint_slice_to_map(obj)


@dataclass
class UpdateResult:
    """What a sync must clean up besides rules: removed UDP endpoints and revived UDP services."""

    stale_endpoints: dict[ServicePortName, set[Endpoint]] = field(default_factory=dict)
    stale_services: set[ServicePortName] = field(default_factory=set)
    deleted_udp_cluster_ips: set[str] = field(default_factory=set)
    changed: set[ServicePortName] = field(default_factory=set)  # ports whose chains must be rewritten


def apply_service_changes(services: ServicePortMap, tracker: ServiceChangeTracker) -> UpdateResult:
    """Merge pending Service changes into ``services`` (kube-proxy's ``ServicePortMap.Update``)."""
    result = UpdateResult()
    for change in tracker.drain().values():
        result.changed.update(change.previous, change.current)
        for name, info in change.previous.items():
            if services.pop(name, None) is not None and info.proto == "udp" and name not in change.current:
                result.deleted_udp_cluster_ips.add(info.cluster_ip)
        services.update(change.current)
    return result


def apply_endpoints_changes(endpoints: EndpointsMap, tracker: EndpointsChangeTracker, result: UpdateResult) -> None:
    """Merge pending endpoint changes into ``endpoints``, noting UDP conntrack work in ``result``.

    UDP has no connection to close, so conntrack keeps steering a client to a dead backend
    (or to a REJECT that happened while there were none) until the entry is flushed: an
    endpoint that was ready and is gone or no longer ready is stale, and so is a Service that
    goes from no ready endpoint to one (kube-proxy's ``detectStaleConntrackEntries``).
    """
    for change in tracker.drain().values():
        result.changed.update(change.previous, change.current)
        for name in set(change.previous) | set(change.current):
            before = change.previous.get(name, ())
            after = change.current.get(name, ())
            if name.protocol.upper() == "UDP":
                still_ready = {str(ep) for ep in after if ep.ready}
                gone = {ep for ep in before if ep.ready and str(ep) not in still_ready}
                if gone:
                    result.stale_endpoints.setdefault(name, set()).update(gone)
                if still_ready and not any(ep.ready for ep in before):
                    result.stale_services.add(name)
            if after:
                endpoints[name] = after
            else:
                endpoints.pop(name, None)
