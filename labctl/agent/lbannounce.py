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
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
import struct
from pathlib import Path

from ..client.informer import FuncHandler, Informer
from ..kube.objects import node_is_ready
from ..clusterconfig import NodeConfig

log = logging.getLogger("labctl.lbannounce")

EXCLUDE_LABEL = "node.kubernetes.io/exclude-from-external-load-balancers"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
ADDRESS_LABEL_SUFFIX = ":lb"
RESYNC_S = 30.0


# -- the choice (pure, unit-tested) ---------------------------------------------------------
def eligible_nodes(nodes: list[dict]) -> list[str]:
    """Ready nodes that may announce: workers, or the control plane when no worker is Ready."""
    ready = [n for n in nodes if node_is_ready(n) and EXCLUDE_LABEL not in (n["metadata"].get("labels") or {})]
    workers = [n for n in ready if CONTROL_PLANE_LABEL not in (n["metadata"].get("labels") or {})]
    return sorted(n["metadata"]["name"] for n in (workers or ready))


def announcer_for(ip: str, candidates: list[str]) -> str | None:
    """Rendezvous hashing: the candidate with the lowest ``sha256(node#ip)``."""
    if not candidates:
        return None
    return min(candidates, key=lambda node: hashlib.sha256(f"{node}#{ip}".encode()).hexdigest())


def nodes_with_ready_endpoints(endpoints: dict | None) -> set[str]:
    return {a["nodeName"] for s in (endpoints or {}).get("subsets") or []
            for a in s.get("addresses") or [] if a.get("nodeName")}


def announced_ips(node_name: str, services: list[dict], nodes: list[dict],
                  endpoints_of: dict[tuple[str, str], dict]) -> set[str]:
    """The load balancer IPs ``node_name`` must announce."""
    eligible = eligible_nodes(nodes)
    mine: set[str] = set()
    for svc in services:
        spec = svc.get("spec") or {}
        if spec.get("type") != "LoadBalancer":
            continue
        candidates = eligible
        if spec.get("externalTrafficPolicy") == "Local":
            meta = svc["metadata"]
            local = nodes_with_ready_endpoints(endpoints_of.get((meta.get("namespace", ""), meta["name"])))
            candidates = [n for n in eligible if n in local]
        for ingress in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []:
            ip = ingress.get("ip")
            if ip and announcer_for(ip, candidates) == node_name:
                mine.add(ip)
    return mine


# -- the node's side: addresses and gratuitous ARP ------------------------------------------
def sync_addresses(internal_ip: str, wanted: set[str]) -> tuple[set[str], set[str]]:
    """Make the ``<if>:lb`` /32s on the InternalIP's interface equal ``wanted``; returns (added, removed)."""
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        found = ipr.get_addr(family=socket.AF_INET, address=internal_ip)
        if not found:
            raise RuntimeError(f"failed to find the interface holding the InternalIP {internal_ip!r}")
        index = found[0]["index"]
        ifname = ipr.get_links(index)[0].get_attr("IFLA_IFNAME")
        label = f"{ifname}{ADDRESS_LABEL_SUFFIX}"[:15]
        present = {a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(family=socket.AF_INET, index=index)
                   if a.get_attr("IFA_LABEL") == label}
        for ip in sorted(wanted - present):
            ipr.addr("add", index=index, address=ip, prefixlen=32, label=label)
        for ip in sorted(present - wanted):
            ipr.addr("del", index=index, address=ip, prefixlen=32)
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
        self.dirty = asyncio.Event()
        #: add it to the services, nodes and endpoints informers
        self.handler = FuncHandler(lambda _o: self.dirty.set(), lambda _o, _n: self.dirty.set(),
                                   lambda _o: self.dirty.set())

    async def run(self, services: Informer, nodes: Informer, endpoints: Informer) -> None:
        """Resync on every change (and every RESYNC_S) once the three informers have listed."""
        await asyncio.gather(services.synced.wait(), nodes.synced.wait(), endpoints.synced.wait())
        while True:
            self.dirty.clear()
            wanted = announced_ips(self.cfg.node_name, services.list(), nodes.list(), endpoints.cache)
            try:
                added, removed = await asyncio.to_thread(sync_addresses, self.cfg.internal_ip, wanted)
                for ip in sorted(added):
                    log.info("announcing load balancer IP %s from %s", ip, self.cfg.node_name)
                for ip in sorted(removed):
                    log.info("no longer announcing load balancer IP %s", ip)
            except Exception as err:  # noqa: BLE001 - retried on the next change or period
                log.warning("failed to sync load balancer IPs %s: %s", sorted(wanted), err)
            try:
                await asyncio.wait_for(self.dirty.wait(), RESYNC_S)
            except asyncio.TimeoutError:
                pass
