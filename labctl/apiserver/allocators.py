"""ClusterIP and NodePort allocation for Services.

kube-apiserver owns these allocations (not a controller) so that two Services can never
get the same virtual IP or node port. Here the set of used values is derived from the
stored Services on each allocation: at lab scale that scan is cheaper than keeping a
separate bitmap consistent across restarts.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable

from .errors import FieldError, invalid

#: kube-apiserver hands out dynamic ClusterIPs from the upper part of the range and keeps
#: the lower part (here the first 16 addresses) for Services that ask for a fixed IP.
STATIC_BAND = 16


class ServiceIPAllocator:
    """Allocates ClusterIPs from the lab's service subnet."""

    def __init__(self, cidr: str) -> None:
        self.network = ipaddress.ip_network(cidr)

    def allocate(self, used: set[str], requested: str | None, path: str) -> tuple[str | None, FieldError | None]:
        if requested:
            try:
                ip = ipaddress.ip_address(requested)
            except ValueError:
                return None, invalid(path, [requested], "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")
            if ip not in self.network or ip in (self.network.network_address, self.network.broadcast_address):
                return None, invalid(path, [requested], f"failed to allocate IP {requested}: provided IP is not in the "
                                                        f"valid range. The range of valid IPs is {self.network}")
            if requested in used:
                return None, invalid(path, [requested], f"failed to allocate IP {requested}: provided IP is already allocated")
            return requested, None
        size = self.network.num_addresses
        first = STATIC_BAND if size > 4 * STATIC_BAND else 1
        for _ in range(64):
            candidate = str(self.network.network_address + random.randrange(first, size - 1))
            if candidate not in used:
                return candidate, None
        for offset in range(first, size - 1):  # nearly full: scan
            candidate = str(self.network.network_address + offset)
            if candidate not in used:
                return candidate, None
        return None, invalid(path, None, "failed to allocate a serviceIP: range is full")


class NodePortAllocator:
    """Allocates node ports from the lab's NodePort range."""

    def __init__(self, port_range: tuple[int, int]) -> None:
        self.low, self.high = port_range

    def allocate(self, used: set[int], requested: int | None, path: str) -> tuple[int | None, FieldError | None]:
        if requested:
            if not self.low <= requested <= self.high:
                return None, invalid(path, requested, "provided port is not in the valid range. "
                                                      f"The range of valid ports is {self.low}-{self.high}")
            if requested in used:
                return None, invalid(path, requested, "provided port is already allocated")
            return requested, None
        free = [p for p in range(self.low, self.high + 1) if p not in used]
        if not free:
            return None, invalid(path, None, "failed to allocate a nodePort: range is full")
        return random.choice(free), None


def used_cluster_ips(services: Iterable[dict]) -> set[str]:
    used: set[str] = set()
    for svc in services:
        spec = svc.get("spec", {})
        used.update(ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None")
    return used


def used_node_ports(services: Iterable[dict]) -> set[int]:
    return {p["nodePort"] for svc in services for p in svc.get("spec", {}).get("ports") or [] if p.get("nodePort")}


def needs_node_ports(spec: dict) -> bool:
    t = spec.get("type", "ClusterIP")
    return t == "NodePort" or (t == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts", True))


def allocate_service(spec: dict, old_spec: dict | None, other_services: list[dict],
                     ips: ServiceIPAllocator, ports: NodePortAllocator) -> list[FieldError]:
    """Fill ``spec.clusterIP(s)`` and ``ports[].nodePort``, keeping what ``old_spec`` had.

    Mutates ``spec``. Returns field errors for requested values that are taken or out of range.
    """
    errors: list[FieldError] = []
    stype = spec.get("type", "ClusterIP")
    if stype == "ExternalName":
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
        for p in spec.get("ports") or []:
            p.pop("nodePort", None)
        return errors
    old_spec = old_spec or {}
    # an update that leaves clusterIP out keeps the allocated one, as kube does for apply/replace
    if not spec.get("clusterIP") and old_spec.get("clusterIP") and old_spec.get("type") != "ExternalName":
        spec["clusterIP"] = old_spec["clusterIP"]
    wanted = spec.get("clusterIP")
    if wanted != "None" and (not wanted or wanted != old_spec.get("clusterIP")):
        ip, err = ips.allocate(used_cluster_ips(other_services), wanted, "spec.clusterIPs")
        if err:
            errors.append(err)
        else:
            spec["clusterIP"] = ip
    if spec.get("clusterIP"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    if not needs_node_ports(spec):
        for p in spec.get("ports") or []:
            p.pop("nodePort", None)
        return errors
    used = used_node_ports(other_services)
    old_by_port = {(p.get("port"), p.get("protocol", "TCP")): p.get("nodePort")
                   for p in old_spec.get("ports") or [] if p.get("nodePort")}
    old_ports = set(old_by_port.values())
    for i, p in enumerate(spec.get("ports") or []):
        requested = p.get("nodePort") or old_by_port.get((p.get("port"), p.get("protocol", "TCP")))
        if requested and requested in old_ports:
            p["nodePort"] = requested
            used.add(requested)
            continue
        port, err = ports.allocate(used, requested, f"spec.ports[{i}].nodePort")
        if err:
            errors.append(err)
        elif port is not None:
            p["nodePort"] = port
            used.add(port)
    return errors
