"""The Proxier: Service/EndpointSlice events in, one ``iptables-restore`` per burst out.

Handlers do no work (kube-proxy's ``OnServiceUpdate``): they record the change in a
tracker and poke the runner. ``sync()`` merges the pending changes, builds the whole
ruleset with the pure builder, applies it in one restore and then flushes stale UDP
conntrack entries. Nothing is written before both initial lists have been seen, "to avoid
updating iptables with some partial data after restart" (kube-proxy).

With ``watch_canaries`` a :class:`~labctl.proxy.canary.CanaryWatch` notices a flushed or
deleted table (kube-proxy's canary chains) and asks for a full resync at once, instead of
waiting for the periodic one.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from labctl.proxy.canary import CanaryWatch
from labctl.proxy.changes import (
    EndpointsChangeTracker,
    EndpointsMap,
    ServiceChangeTracker,
    ServicePortMap,
    UpdateResult,
    apply_endpoints_changes,
    apply_service_changes,
)
from labctl.proxy.conntrack import Conntrack
from labctl.proxy.iptables import IPTables, build_cleanup, parse_saved_state
from labctl.proxy.rules import NodeConfig, build_ruleset_partial
from labctl.proxy.runner import BoundedFrequencyRunner

from ..clusterconfig import DEFAULT_POD_SUBNET

log = logging.getLogger("labctl.proxy")
Obj = Mapping[str, Any]


def resolve_nodeport_addresses(cidrs: Sequence[str] | None, node_ips: Sequence[str]) -> tuple[str, ...] | None:
    """``--nodeport-addresses``: the node IPs (and 127.0.0.1) inside the given CIDRs; None = all local."""
    if cidrs is None:
        return None
    nets = [ipaddress.ip_network(c, strict=False) for c in cidrs]
    candidates = [*node_ips, "127.0.0.1"]
    return tuple(ip for ip in candidates if any(ipaddress.ip_address(ip) in n for n in nets))


class Proxier:
    """kube-proxy's iptables proxier for one node."""

    def __init__(
        self,
        node_name: str,
        node_ips: Sequence[str] = (),
        cluster_cidr: str = DEFAULT_POD_SUBNET,
        nodeport_addresses: Sequence[str] | None = None,
        command_prefix: Sequence[str] = (),
        iptables: IPTables | None = None,
        conntrack: Conntrack | None = None,
        min_sync_interval: float = 0.1,
        sync_period: float = 30.0,
        masquerade_all: bool = False,
        watch_canaries: bool = False,
    ) -> None:
        self.node = NodeConfig(
            node_name=node_name,
            cluster_cidr=cluster_cidr,
            nodeport_addresses=resolve_nodeport_addresses(nodeport_addresses, node_ips),
            masquerade_all=masquerade_all,
        )
        self.iptables = iptables or IPTables(prefix=tuple(command_prefix))
        self.conntrack = conntrack if conntrack is not None else Conntrack(prefix=tuple(command_prefix))
        self.sync_period = sync_period
        self.services: ServicePortMap = {}
        self.endpoints: EndpointsMap = {}
        self.service_changes = ServiceChangeTracker()
        self.endpoints_changes = EndpointsChangeTracker(node_name)
        self._services_synced = False
        self._endpoints_synced = False
        self._sync_lock = threading.Lock()
        self._applied: dict[str, set[str]] | None = None  # None: read the kernel's state first
        self._last_state_read = float("-inf")
        self._cleanup = UpdateResult()
        self._dirty: set = set()  # service ports whose chains the next partial sync rewrites
        self.last_ruleset = ""
        self.last_sync_seconds = 0.0
        self.runner = BoundedFrequencyRunner(self.sync, min_interval=min_sync_interval, max_interval=sync_period)
        self.canaries = CanaryWatch(self.iptables, self.request_full_sync) if watch_canaries else None
        self._full_sync_requested = False
        self._running = False

    # ---- event handlers (kube-proxy's ServiceHandler / EndpointSliceHandler) ----
    def on_service_add(self, service: Obj) -> None:
        self.on_service_update(None, service)

    def on_service_update(self, old: Obj | None, new: Obj | None) -> None:
        if self.service_changes.update(old, new) and self.is_initialized():
            self.request_sync()

    def on_service_delete(self, service: Obj) -> None:
        self.on_service_update(service, None)

    def on_services_synced(self) -> None:
        self._services_synced = True
        self.request_sync()

    def on_endpoint_slice_add(self, endpoint_slice: Obj) -> None:
        self.on_endpoint_slice_update(None, endpoint_slice)

    def on_endpoint_slice_update(self, old: Obj | None, new: Obj | None) -> None:
        if self.endpoints_changes.update(old, new) and self.is_initialized():
            self.request_sync()

    def on_endpoint_slice_delete(self, endpoint_slice: Obj) -> None:
        self.on_endpoint_slice_update(endpoint_slice, None)

    def on_endpoint_slices_synced(self) -> None:
        self._endpoints_synced = True
        self.request_sync()

    def on_synced(self) -> None:
        """Both initial lists are in: the first sync may write rules."""
        self._services_synced = self._endpoints_synced = True
        self.request_sync()

    def is_initialized(self) -> bool:
        return self._services_synced and self._endpoints_synced

    # ---- running ----
    def start(self) -> None:
        """Start the background runner; syncs then follow events, coalesced."""
        self._running = True
        self.runner.start()
        if self.canaries is not None:
            self.canaries.start()
        self.request_sync()

    def stop(self) -> None:
        self._running = False
        if self.canaries is not None:
            self.canaries.stop()
        self.runner.stop()

    def request_sync(self) -> None:
        if self._running and self.is_initialized():
            self.runner.run()

    def request_full_sync(self) -> None:
        """The kernel lost rules behind our back: the next sync reads it and rewrites every chain."""
        self._full_sync_requested = True
        self.request_sync()

    def sync(self, full: bool = False) -> bool:
        """Write the ruleset once; returns False while the initial lists are incomplete.

        The first sync, every ``sync_period`` and any sync after a failure read the kernel's
        state and rewrite every chain; the others rewrite the shared chains plus the chains
        of the services that changed (``full=True`` forces a full one). Raises
        :class:`IPTablesError` on a failed restore: the runner retries with back-off.
        """
        if not self.is_initialized():
            return False
        with self._sync_lock:
            start = time.perf_counter()
            full, self._full_sync_requested = full or self._full_sync_requested, False
            result = apply_service_changes(self.services, self.service_changes)
            apply_endpoints_changes(self.endpoints, self.endpoints_changes, result)
            self._merge_cleanup(result)
            self._dirty |= result.changed
            now = time.monotonic()
            if full or self._applied is None or now - self._last_state_read > self.sync_period:
                state = parse_saved_state(self.iptables.save())
                existing, missing, only = state.chains, state.missing_jumps, None
                self._last_state_read = now
            else:
                existing, missing, only = self._applied, (), self._dirty
            text, active = build_ruleset_partial(self.services, self.endpoints, self.node, existing, missing, only)
            try:
                self.iptables.restore(text)
            except Exception:
                self._applied = None
                raise
            self._applied = active
            self._dirty = set()
            self.last_ruleset = text
            self._flush_conntrack()
            self.last_sync_seconds = time.perf_counter() - start
            log.debug("synced %d service ports in %.3fs", len(self.services), self.last_sync_seconds)
            return True

    def cleanup(self) -> None:
        """Remove every chain and jump of ours (``kube-proxy --cleanup``)."""
        with self._sync_lock:
            self.iptables.restore(build_cleanup(self.iptables.save()))
            self._applied = None

    def _merge_cleanup(self, result: UpdateResult) -> None:
        for name, eps in result.stale_endpoints.items():
            self._cleanup.stale_endpoints.setdefault(name, set()).update(eps)
        self._cleanup.stale_services |= result.stale_services
        self._cleanup.deleted_udp_cluster_ips |= result.deleted_udp_cluster_ips

    def _flush_conntrack(self) -> None:
        """After a successful restore only: before it, old rules would recreate the entries."""
        todo, self._cleanup = self._cleanup, UpdateResult()
        ct = self.conntrack
        for ip in todo.deleted_udp_cluster_ips:
            ct.clear_entries_for_ip(ip)
        for name in todo.stale_services:
            svc = self.services.get(name)
            if svc:
                for ip in (svc.cluster_ip, *svc.external_ips, *svc.load_balancer_ips):
                    ct.clear_entries_for_ip(ip)
                if svc.node_port:
                    ct.clear_entries_for_port(svc.node_port)
        for name, eps in todo.stale_endpoints.items():
            svc = self.services.get(name)
            if not svc:
                continue
            for ep in eps:
                for ip in (svc.cluster_ip, *svc.external_ips, *svc.load_balancer_ips):
                    ct.clear_entries_for_nat(ip, ep.ip)
                if svc.node_port:
                    ct.clear_entries_for_port_nat(ep.ip, svc.node_port)
