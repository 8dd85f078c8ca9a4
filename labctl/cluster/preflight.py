"""Checks ``labctl up`` makes against the host before it creates anything (kubeadm's preflight).

A lab that cannot work should fail in a second with one line saying which field to change,
not two minutes later with an SSL time-out, a Python traceback or a half-made lab:

- the addresses the topology publishes on (``apiServerAddress``, ``listenAddress``) are this
  host's, and its host ports are free;
- the lab network overlaps no network the host is attached to, no more specific route and no
  Docker network; pod and Service subnets overlap no network the host is attached to (their
  addresses would be unreachable from pods) — the subnets' sizes and mutual overlaps are the
  topology's own checks (``labctl.topology``);
- the lab's Linux bridge name is not taken;
- the host has the memory the nodes need when idle (measured: docs/benchmarks.md).

The host facts (``/proc/net/route``, ``/proc/meminfo``, ``/sys/class/net``) can be passed
in, so every check is unit-tested without touching the host.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ..errors import LabctlError
from ..topology import Topology, TopologyError
from .plan import ClusterPlan

MIB = 1 << 20
#: a node's memory when idle, measured by ``bench/up.py`` (docs/benchmarks.md): the least a lab needs
IDLE_CONTROL_PLANE_BYTES = 131 * MIB
IDLE_WORKER_BYTES = 56 * MIB
#: beyond the nodes: the add-ons' pods (kube-dns), a student's first pods, the host itself
HEADROOM_BYTES = 512 * MIB


@dataclass(frozen=True)
class HostRoute:
    """One IPv4 route of the host's main table; ``gateway`` is ``""`` for a network on an interface."""

    network: ipaddress.IPv4Network
    interface: str
    gateway: str = ""

    @property
    def connected(self) -> bool:
        """Whether the host is attached to this network (an address on ``interface``), not routing via a gateway."""
        return not self.gateway

    def describe(self) -> str:
        via = f"via {self.gateway} " if self.gateway else ""
        return f"the host's route {self.network} {via}dev {self.interface}"


def host_routes(table: str | None = None) -> list[HostRoute]:
    """The host's IPv4 routes (``/proc/net/route``: the main table), the default route left out."""
    if table is None:
        table = Path("/proc/net/route").read_text()
    routes = []
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        interface, dest, gateway, mask = fields[0], fields[1], fields[2], fields[7]
        prefix = bin(_le_hex(mask)).count("1")
        if prefix == 0:
            continue  # the default route overlaps everything and conflicts with nothing
        network = ipaddress.IPv4Network((_le_hex(dest), prefix), strict=False)
        via = "" if _le_hex(gateway) == 0 else str(ipaddress.IPv4Address(_le_hex(gateway)))
        routes.append(HostRoute(network, interface, via))
    return routes


def _le_hex(text: str) -> int:
    """``/proc/net/route`` writes addresses as little-endian hex: ``0100A8C0`` is 192.168.0.1."""
    return int.from_bytes(int(text, 16).to_bytes(4, "little"), "big")


def lab_subnet_conflicts(routes: Iterable[HostRoute], docker_networks: Mapping[str, str]) -> list[str]:
    """What a lab network must not overlap, as CIDRs (``labSubnet: auto`` skips them).

    A network the host is attached to, a Docker network, and a route more specific than a /24
    (a lab network's size) would take some of the lab's addresses; a broader route through a
    gateway (a VPN's 10.0.0.0/8, 0.0.0.0/1) does not — the lab's /24 is more specific and wins.
    """
    return [str(r.network) for r in routes if r.connected or r.network.prefixlen >= 24] + list(docker_networks)


def check_subnets(topology: Topology, routes: Iterable[HostRoute], docker_networks: Mapping[str, str]) -> None:
    """The lab's subnets against the host's: every problem at once, each naming the field to change.

    No subnet of the lab may overlap a network the host is attached to (an interface's, a
    Docker network's): the host could not tell their addresses apart, and pods could not reach
    that network. The lab network may also not hold a route more specific than itself (the host
    would send part of the lab's traffic there); broader routes through a gateway are fine.
    """
    net = topology.networking
    attached = {ipaddress.IPv4Network(cidr): f"the Docker network {name!r}" for cidr, name in docker_networks.items()}
    routes = list(routes)
    for route in routes:
        if route.connected:
            attached.setdefault(route.network, f"the network of the host's interface {route.interface}")
    problems = []
    for field, cidr in (("labSubnet", net.lab_subnet), ("podSubnet", net.pod_subnet),
                        ("serviceSubnet", net.service_subnet)):
        if cidr is None:
            continue
        mine = ipaddress.IPv4Network(cidr)
        why = "the host would mix up their addresses" if field == "labSubnet" else \
            "pods could not reach that network's addresses"
        problems += [f"networking.{field}: \"{mine}\" overlaps {other}, {what}; {why}"
                     for other, what in attached.items() if mine.overlaps(other)]
    if net.lab_subnet:
        lab = ipaddress.IPv4Network(net.lab_subnet)
        problems += [f"networking.labSubnet: \"{lab}\" overlaps {r.describe()}; the host would send part of the "
                     "lab's traffic there" for r in routes
                     if not r.connected and r.network.prefixlen >= lab.prefixlen and lab.overlaps(r.network)]
    if problems:
        raise TopologyError(topology.source, problems)


def check_addresses(topology: Topology) -> None:
    """Every address the lab publishes on (``apiServerAddress``, ``listenAddress``) is this host's."""
    wanted = [("networking.apiServerAddress", topology.networking.api_server_address)]
    wanted += [(f"portMappings[{i}].listenAddress", m.listen_address) for i, m in enumerate(topology.port_mappings)]
    problems = []
    for field, address in dict(wanted).items():
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((address, 0))
        except OSError as err:
            why = ("is not an address of this host" if err.errno == errno.EADDRNOTAVAIL
                   else f"cannot be listened on: {os.strerror(err.errno or 0)}")
            problems.append(f"{field}: {address} {why}; use 127.0.0.1, 0.0.0.0 or an address `ip -4 addr` shows")
    if problems:
        raise TopologyError(topology.source, problems)


def check_ports_free(plan: ClusterPlan) -> None:
    """The host ports the lab publishes are free (Docker would fail only when it starts the node)."""
    wanted = [(plan.api_server_address, plan.api_server_port, "TCP")] if plan.api_server_port else []
    wanted += [(m.listen_address, m.host_port, m.protocol) for m in plan.port_mappings]
    for address, port, protocol in wanted:
        if protocol not in ("TCP", "UDP"):
            continue  # SCTP: Docker reports a clash when it starts the node
        kind = socket.SOCK_STREAM if protocol == "TCP" else socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, kind) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((address, port))
            except OSError as err:
                if err.errno != errno.EADDRINUSE:
                    raise LabctlError(f"cannot listen on host port {address}:{port}: {os.strerror(err.errno or 0)}"
                                      ) from None
                raise LabctlError(f"host port {address}:{port} is already in use",
                                  hint=f"stop what uses it (`ss -lnp 'sport = :{port}'`), or change the topology's "
                                       "networking.apiServerPort / portMappings") from None


def free_port(address: str) -> int:
    """A host port nothing listens on now (the caller holds the host lock until Docker binds it)."""
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def check_bridge_free(plan: ClusterPlan, interfaces: Iterable[str] | None = None) -> None:
    """No host interface already has the lab network's bridge name."""
    if interfaces is None:
        interfaces = os.listdir("/sys/class/net")
    if plan.bridge in set(interfaces):
        raise LabctlError(f"the host already has an interface {plan.bridge!r}, the bridge name of lab {plan.name!r}",
                          hint=f"see `ip link show {plan.bridge}`; pick another --name")


def memory_needed(topology: Topology) -> int:
    """The bytes a lab of this topology needs when idle: its nodes, plus room for pods and the host."""
    return IDLE_CONTROL_PLANE_BYTES + len(topology.workers) * IDLE_WORKER_BYTES + HEADROOM_BYTES


def check_memory(topology: Topology, meminfo: str | None = None) -> None:
    """Refuse a lab the host's available memory (``MemAvailable``) cannot hold even when idle."""
    if meminfo is None:
        meminfo = Path("/proc/meminfo").read_text()
    fields = dict(line.split(":", 1) for line in meminfo.splitlines() if ":" in line)
    if "MemAvailable" not in fields:
        return  # a kernel older than 3.14: nothing to compare with
    available = int(fields["MemAvailable"].split()[0]) * 1024
    needed = memory_needed(topology)
    if needed > available:
        workers = len(topology.workers)
        raise LabctlError(
            f"lab {topology.name!r} needs about {needed // MIB:,} MiB of memory ({len(topology.nodes)} nodes: the "
            f"control plane {IDLE_CONTROL_PLANE_BYTES // MIB} MiB and {workers} worker(s) × "
            f"{IDLE_WORKER_BYTES // MIB} MiB when idle, plus {HEADROOM_BYTES // MIB} MiB for pods), "
            f"but this host has {available // MIB:,} MiB available",
            hint=f"use fewer workers in {topology.source}, or free memory (stop other labs: `labctl status`)")
