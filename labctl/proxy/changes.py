"""Change trackers: Service and Endpoints events in, pending per-object changes out.

kube-proxy's ``ServiceChangeTracker``/``EndpointsChangeTracker``: an event handler only
records ``(previous, current)`` for the object; repeated changes collapse into one entry
and an entry whose two sides became equal is dropped, so a burst of 50 updates to one
Service costs one rule rewrite, and an update that changes nothing costs none.

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
        )
    return result


def endpoints_to_map(endpoints: Mapping[str, Any] | None) -> EndpointsMap:
    """Ready endpoints of a v1 Endpoints dict per Service port, matched by port name.

    ``notReadyAddresses`` are left out: kube-proxy never sends new connections to them.
    Endpoints are sorted so the rules do not churn when the API reorders addresses.
    """
    if not endpoints:
        return {}
    ns = _key(endpoints)
    found: dict[ServicePortName, set[Endpoint]] = {}
    for subset in endpoints.get("subsets") or []:
        for port in subset.get("ports") or []:
            name = ServicePortName(ns.namespace, ns.name, port.get("name") or "", port.get("protocol") or "TCP")
            eps = found.setdefault(name, set())
            for addr in subset.get("addresses") or []:
                if addr.get("ip") and port.get("port"):
                    eps.add(Endpoint(addr["ip"], int(port["port"]), addr.get("nodeName") or ""))
    return {name: tuple(sorted(eps, key=lambda e: e.sort_key)) for name, eps in found.items() if eps}


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
    """Pending Endpoints changes, as ``EndpointsMap`` before/after per Service."""

    def _convert(self, obj: Mapping[str, Any] | None) -> EndpointsMap:
        return endpoints_to_map(obj)


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
    """Merge pending Endpoints changes into ``endpoints``, noting UDP conntrack work in ``result``.

    UDP has no connection to close, so conntrack keeps steering a client to a dead backend
    (or to a REJECT that happened while there were none) until the entry is flushed.
    """
    for change in tracker.drain().values():
        result.changed.update(change.previous, change.current)
        for name in set(change.previous) | set(change.current):
            before = change.previous.get(name, ())
            after = change.current.get(name, ())
            if name.protocol.upper() == "UDP":
                gone = set(before) - set(after)
                if gone:
                    result.stale_endpoints.setdefault(name, set()).update(gone)
                if after and not before:
                    result.stale_services.add(name)
            if after:
                endpoints[name] = after
            else:
                endpoints.pop(name, None)
