"""LoadBalancer IP announcement: one node answers ARP for each external IP (MetalLB's L2 mode).

The LoadBalancer controller writes an IP of the lab network into a Service's
``status.loadBalancer.ingress``; every node's proxy already DNATs it (``KUBE-EXT-…``),
but the host must know *where* to send the packets. Exactly one node per IP adds it as
a ``/32`` on the interface holding its InternalIP (label ``eth0:lb``), so the kernel
answers the host's ARP requests for it, and sends a gratuitous ARP so the host's
neighbour cache follows when the IP moves.

**Which node.** Every agent computes the same answer from the same Nodes: among the Ready
nodes (workers first: the control plane only when no worker is Ready; nodes labelled
``node.kubernetes.io/exclude-from-external-load-balancers`` never), the one with the
lowest ``sha256(node + "#" + ip)`` — rendezvous hashing, so IPs spread over the nodes
and only the IPs of a node that leaves or joins move. With
``externalTrafficPolicy: Local`` only nodes with a Ready endpoint qualify (the others
would drop the traffic). ``labctl exec worker -- ip -4 addr show label eth0:lb`` shows
what a node announces.

**Which addresses.** A Service's status can be patched by anyone allowed to, so the
announcer trusts none of it: it announces only addresses of the lab's LoadBalancer pool
(:func:`labctl.clusterconfig.load_balancer_pool`, the same derivation as the controller's:
``.200``–``.250`` of its own InternalIP's /24), never a Node's address, a ClusterIP or the
gateway, and logs what it refuses. A node that put the control plane's address on its
interface would cut every node off the API server — and then never hear that the Service
is gone. For the same reason an agent that has lost the API server for longer than the
node monitor grace period (its watches failing) withdraws every address it announces: its
cache no longer says what to announce, and by then the Node is NotReady anyway and another
node has taken the addresses over.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import struct
import time
from collections.abc import Collection, Iterable
from pathlib import Path

from ..client.informer import FuncHandler, Informer
from ..clusterconfig import NodeConfig, load_balancer_pool
from ..cni import rtnl
from ..kube.objects import endpoint_slice_service, is_control_plane, node_address, node_is_ready

log = logging.getLogger("labctl.lbannounce")

EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
ADDRESS_LABEL_SUFFIX = ":lb"
RESYNC_S = 30.0


# -- the choice (pure, unit-tested) ---------------------------------------------------------
def eligible_nodes(nodes: list[dict]) -> list[str]:
    """Ready nodes that may announce: workers, or the control plane when no worker is Ready."""
    ready = [n for n in nodes if node_is_ready(n) and EXCLUDE_LABEL not in (n["metadata"].get("labels") or {})]
    workers = [n for n in ready if not is_control_plane(n)]
    return sorted(n["metadata"]["name"] for n in (workers or ready))


def announcer_for(ip: str, candidates: list[str]) -> str | None:
    """Rendezvous hashing: the candidate with the lowest ``sha256(node#ip)``."""
    if not candidates:
        return None
    return min(candidates, key=lambda node: hashlib.sha256(f"{node}#{ip}".encode()).hexdigest())


def nodes_with_ready_endpoints(slices: Iterable[dict]) -> set[str]:
    """Nodes holding a ready endpoint of a Service, from its EndpointSlices (as the proxy reads them)."""
    return {ep["nodeName"] for s in slices for ep in s.get("endpoints") or []
            if ep.get("nodeName") and (ep.get("conditions") or {}).get("ready") is not False}


def slices_by_service(slices: Iterable[dict]) -> dict[tuple[str, str], list[dict]]:
    """EndpointSlices grouped by ``(namespace, service)``; slices of no Service left out."""
    out: dict[tuple[str, str], list[dict]] = {}
    for s in slices:
        key = endpoint_slice_service(s)
        if key is not None:
            out.setdefault(key, []).append(s)
    return out


def ingress_ips(svc: dict) -> list[str]:
    ingress = ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    return [i["ip"] for i in ingress if isinstance(i, dict) and isinstance(i.get("ip"), str)]


def announceable(pool: Collection[str], services: list[dict], nodes: list[dict]) -> set[str]:
    """The pool minus every Node's address and every ClusterIP: all a node may ever announce."""
    taken = {node_address(n) for n in nodes}
    for svc in services:
        spec = svc.get("spec") or {}
        taken.update(ip for ip in [spec.get("clusterIP"), *(spec.get("clusterIPs") or [])] if isinstance(ip, str))
    return set(pool) - taken


def refused_ips(services: list[dict], allowed: set[str]) -> set[tuple[str, str]]:
    """``(namespace/name, ip)`` of the ingress IPs no node may announce (for the log)."""
    out: set[tuple[str, str]] = set()
    for svc in services:
        if (svc.get("spec") or {}).get("type") != "LoadBalancer":
            continue
        meta = svc["metadata"]
        out.update((f"{meta.get('namespace', '')}/{meta['name']}", ip) for ip in ingress_ips(svc) if ip not in allowed)
    return out


def announced_ips(node_name: str, services: list[dict], nodes: list[dict],
                  slices_of: dict[tuple[str, str], list[dict]], pool: Collection[str]) -> set[str]:
    """The load balancer IPs ``node_name`` must announce: its share of the allowed ingress IPs."""
    eligible = eligible_nodes(nodes)
    allowed = announceable(pool, services, nodes)
    mine: set[str] = set()
    for svc in services:
        spec = svc.get("spec") or {}
        if spec.get("type") != "LoadBalancer":
            continue
        candidates = eligible
        if spec.get("externalTrafficPolicy") == "Local":
            meta = svc["metadata"]
            local = nodes_with_ready_endpoints(slices_of.get((meta.get("namespace", ""), meta["name"]), []))
            candidates = [n for n in eligible if n in local]
        for ip in ingress_ips(svc):
            if ip in allowed and announcer_for(ip, candidates) == node_name:
                mine.add(ip)
    return mine


# -- the node's side: addresses and gratuitous ARP ------------------------------------------
def sync_addresses(internal_ip: str, wanted: set[str]) -> tuple[set[str], set[str]]:
    """Make the ``<if>:lb`` /32s on the InternalIP's interface equal ``wanted``; returns (added, removed).

    Over :mod:`labctl.cni.rtnl`'s socket (an address dump and a route dump): it runs on every
    node at start, where pyroute2's ``IPRoute`` cost more to import than the lookups themselves.
    """
    with rtnl.Socket() as nl:
        addrs = nl.addresses(socket.AF_INET)
        found = [a["index"] for a in addrs if a.get_attr("IFA_ADDRESS") == internal_ip]
        if not found:
            raise RuntimeError(f"failed to find the interface holding the InternalIP {internal_ip!r}")
        index = found[0]
        ifname = socket.if_indextoname(index)
        gateways = {r.get_attr("RTA_GATEWAY") for r in nl.routes(socket.AF_INET)
                    if r["dst_len"] == 0 and (r.get_attr("RTA_TABLE") or r["table"]) == rtnl.RT_TABLE_MAIN}
        if wanted & gateways:  # the pool never holds it; a hand-made pool might
            log.warning("refusing to announce the gateway's address %s", ", ".join(sorted(wanted & gateways)))
            wanted = wanted - gateways
        label = f"{ifname}{ADDRESS_LABEL_SUFFIX}"[:15]
        present = {a.get_attr("IFA_ADDRESS") for a in addrs if a["index"] == index and a.get_attr("IFA_LABEL") == label}
        for ip in sorted(wanted - present):
            nl.add_address(index, ip, 32, 4, label=label)
        for ip in sorted(present - wanted):
            nl.delete_address(index, ip, 32, 4)
    added, removed = wanted - present, present - wanted
    for ip in sorted(added):
        try:
            send_gratuitous_arp(ifname, ip)
        except OSError as err:  # the host learns by ARP request anyway; only a move is slower
            log.warning("failed to send a gratuitous ARP for %s on %s: %s", ip, ifname, err)
    return added, removed


def gratuitous_arp_frame(mac: bytes, ip: str) -> bytes:
    """A broadcast ARP request for ``ip`` from ``ip`` (RFC 5227's announcement)."""
    addr = socket.inet_aton(ip)
    eth = b"\xff" * 6 + mac + struct.pack("!H", 0x0806)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + mac + addr + b"\x00" * 6 + addr
    return eth + arp


def send_gratuitous_arp(ifname: str, ip: str) -> None:
    mac = bytes.fromhex(Path(f"/sys/class/net/{ifname}/address").read_text().strip().replace(":", ""))
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((ifname, 0))
        sock.send(gratuitous_arp_frame(mac, ip))


class LBAnnouncer:
    """Keeps this node's announced IPs right; fed by the informers the service proxy already runs."""

    def __init__(self, cfg: NodeConfig) -> None:
        self.cfg = cfg
        self.pool = load_balancer_pool(cfg.internal_ip)
        self.grace = cfg.cluster.lifecycle.node_monitor_grace_seconds
        self.dirty = asyncio.Event()
        #: add it to the services, nodes and endpointslices informers
        self.handler = FuncHandler(lambda _o: self.dirty.set(), lambda _o, _n: self.dirty.set(),
                                   lambda _o: self.dirty.set())
        self._refused: set[tuple[str, str]] = set()
        self._cut_off = False

    async def run(self, services: Informer, nodes: Informer, slices: Informer) -> None:
        """Resync on every change and every RESYNC_S; withdraw everything once cut off from the API."""
        informers = (services, nodes, slices)
        started = time.monotonic()
        while True:
            self.dirty.clear()
            now = time.monotonic()
            failing = max(i.failing_for(now) for i in informers)
            synced = all(i.synced.is_set() for i in informers)
            cut_off = failing > self.grace or (not synced and now - started > self.grace)
            if cut_off != self._cut_off:
                self._cut_off = cut_off
                if cut_off:
                    log.warning("cut off from the API server for more than %.0fs: withdrawing every load "
                                "balancer IP of %s", self.grace, self.cfg.node_name)
                    await self._sync(set())
                else:
                    log.info("the API server is back: announcing load balancer IPs again")
            if synced and not cut_off:
                await self._sync(self._wanted(services.list(), nodes.list(), slices_by_service(slices.list())))
            # while a watch fails, look again when the grace period runs out (then every second,
            # to notice the way back); else on changes and every RESYNC_S
            timeout = RESYNC_S
            if failing or not synced:
                timeout = max(1.0, min(RESYNC_S, self.grace - max(failing, now - started) + 0.1))
            try:
                await asyncio.wait_for(self.dirty.wait(), timeout)
            except TimeoutError:
                pass

    def _wanted(self, services: list[dict], nodes: list[dict], slices_of: dict[tuple[str, str], list[dict]]) -> set[str]:
        refused = refused_ips(services, announceable(self.pool, services, nodes))
        for service, ip in sorted(refused - self._refused):
            log.warning("refusing to announce %s of Service %s: not an address of the load balancer pool "
                        "%s-%s (or a node's or a Service's)", ip, service, self.pool[0], self.pool[-1])
        self._refused = refused
        return announced_ips(self.cfg.node_name, services, nodes, slices_of, self.pool)

    async def _sync(self, wanted: set[str]) -> None:
        try:
            added, removed = await asyncio.to_thread(sync_addresses, self.cfg.internal_ip, wanted)
            for ip in sorted(added):
                log.info("announcing load balancer IP %s from %s", ip, self.cfg.node_name)
            for ip in sorted(removed):
                log.info("no longer announcing load balancer IP %s", ip)
        except Exception as err:
            log.warning("failed to sync load balancer IPs %s: %s", sorted(wanted), err)
