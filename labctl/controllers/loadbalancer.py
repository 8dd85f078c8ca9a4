"""The LoadBalancer IP controller: gives every ``type: LoadBalancer`` Service an external IP.

What a cloud's service controller (or MetalLB's controller) does, for a lab: the IP comes
from a pool at the top of the lab network (by default ``.200``–``.250`` of the nodes'
/24, e.g. ``172.30.0.200``), is written to ``status.loadBalancer.ingress[].ip`` through
the status subresource — so ``kubectl get svc`` shows it under EXTERNAL-IP — and one node
agent announces it on the lab network (:mod:`labctl.agent.lbannounce`); every node's
service proxy DNATs it (``KUBE-EXT-…``).

An IP, once given, stays with its Service until the Service is deleted or stops being a
LoadBalancer. ``spec.loadBalancerIP`` asks for one IP of the pool; Services with a
``spec.loadBalancerClass`` belong to another implementation and are left alone.
"""

from __future__ import annotations

import ipaddress
import logging

from ..client.informer import FuncHandler
from ..client.rest import APIStatusError, resource_path
from ..clusterconfig import load_balancer_pool
from ..kube.objects import node_address
from .base import Controller, key_of, split_key
from .context import ControllerContext

log = logging.getLogger("labctl.controllers.loadbalancer")

def parse_pool(text: str) -> list[str]:
    """A pool as ``FIRST-LAST`` or a CIDR (every host address)."""
    if "-" in text:
        first, last = (ipaddress.ip_address(p.strip()) for p in text.split("-", 1))
        if first.version != last.version:
            raise ValueError(f"failed to parse load balancer pool {text!r}: first and last address of different families")
        if int(last) < int(first):
            raise ValueError(f"failed to parse load balancer pool {text!r}: last address before first")
        return [str(ipaddress.ip_address(i)) for i in range(int(first), int(last) + 1)]
    return [str(ip) for ip in ipaddress.ip_network(text, strict=False).hosts()]


def is_managed(svc: dict) -> bool:
    spec = svc.get("spec") or {}
    return spec.get("type") == "LoadBalancer" and not spec.get("loadBalancerClass")


def ingress_ips(svc: dict) -> list[str]:
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [i["ip"] for i in ingress if i.get("ip")]


def choose_ip(svc: dict, pool: list[str], taken: dict[str, str]) -> tuple[str | None, str]:
    """The IP ``svc`` should have, and why not if None. ``taken`` maps IP → owning Service key.

    Keeps the IP it already has (if it is in the pool and not someone else's), else the
    requested ``spec.loadBalancerIP``, else the lowest free address.
    """
    key = key_of(svc)
    in_pool = set(pool)
    for ip in ingress_ips(svc):
        if ip in in_pool and taken.get(ip, key) == key:
            return ip, ""
    requested = (svc.get("spec") or {}).get("loadBalancerIP")
    if requested:
        if requested not in in_pool:
            return None, f"requested IP {requested} is not in the pool {pool[0]}-{pool[-1]}"
        if taken.get(requested, key) != key:
            return None, f"requested IP {requested} is already used by service {taken[requested]}"
        return requested, ""
    for ip in pool:
        if ip not in taken:
            return ip, ""
    return None, f"no available IP in the pool {pool[0]}-{pool[-1]}"


class LoadBalancerController(Controller):
    name = "service-lb-controller"

    def __init__(self, ctx: ControllerContext, pool: str | None = None) -> None:
        super().__init__()
        self.client = ctx.client
        self.recorder = ctx.recorder(self.name)
        self.services = ctx.informer("services")
        self.nodes = ctx.informer("nodes")
        self._pool = parse_pool(pool) if pool else None
        self.allocated: dict[str, str] = {}  # IP → Service key: what we gave, before the cache shows it
        self.services.add_handler(FuncHandler(self._enqueue, lambda _old, new: self._enqueue(new), self._deleted))
        self.nodes.add_handler(FuncHandler(self._nodes_changed))

    def _enqueue(self, svc: dict) -> None:
        self.queue.add(key_of(svc))

    def _deleted(self, svc: dict) -> None:
        key = key_of(svc)
        for ip in [ip for ip, owner in self.allocated.items() if owner == key]:
            del self.allocated[ip]
        self._enqueue_waiting()

    def _nodes_changed(self, _node: dict) -> None:
        if self._pool is None:  # the first Node tells us the lab network
            self._enqueue_waiting()

    def _enqueue_waiting(self) -> None:
        """Services still without an IP: a freed address or a known pool may serve them now."""
        for svc in self.services.list():
            if is_managed(svc) and not ingress_ips(svc):
                self._enqueue(svc)

    def keys_for_resync(self) -> list[str]:
        return [key_of(s) for s in self.services.list() if is_managed(s) or ingress_ips(s)]

    def pool(self) -> list[str] | None:
        if self._pool is not None:
            return self._pool
        ips = sorted(ip for ip in (node_address(n) for n in self.nodes.list()) if ip)
        return load_balancer_pool(ips[0]) if ips else None

    def taken(self, key: str) -> dict[str, str]:
        """Every IP in use by another LoadBalancer Service (cache plus our own recent grants)."""
        out = {ip: owner for ip, owner in self.allocated.items() if owner != key}
        for svc in self.services.list():
            if key_of(svc) != key and is_managed(svc):
                for ip in ingress_ips(svc):
                    out.setdefault(ip, key_of(svc))
        return out

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        svc = self.services.get(namespace, name)
        if svc is None:
            return
        if not is_managed(svc):
            for released in [ip for ip, owner in self.allocated.items() if owner == key]:
                del self.allocated[released]
            if ingress_ips(svc) and (svc.get("spec") or {}).get("type") != "LoadBalancer":
                await self._write_ingress(svc, None)  # no longer a LoadBalancer: release the IP
            return
        pool = self.pool()
        if pool is None:
            raise RuntimeError("failed to pick a load balancer IP: no Node has an InternalIP yet")
        ip, why = choose_ip(svc, pool, self.taken(key))
        if ip is None:
            await self.recorder.record({"kind": "Service", "apiVersion": "v1", **svc}, "Warning",
                                       "AllocationFailed", f"Failed to allocate IP for \"{key}\": {why}")
            return
        self.allocated[ip] = key
        if ingress_ips(svc) == [ip]:
            return
        await self._write_ingress(svc, ip)
        await self.recorder.record({"kind": "Service", "apiVersion": "v1", **svc}, "Normal", "IPAllocated",
                                   f"Assigned IP [\"{ip}\"]")

    async def _write_ingress(self, svc: dict, ip: str | None) -> None:
        meta = svc["metadata"]
        lb = {"ingress": [{"ip": ip, "ipMode": "VIP"}]} if ip else {"ingress": None}
        try:
            await self.client.patch(resource_path("services", meta["namespace"], meta["name"], "status"),
                                    {"status": {"loadBalancer": lb}})
        except APIStatusError as err:
            if err.code == 404:
                return
            raise RuntimeError(f"failed to write the load balancer status of service "
                               f"\"{meta['namespace']}/{meta['name']}\": {err}") from err
        log.info("service %s/%s: load balancer ingress %s", meta["namespace"], meta["name"], ip or "released")
