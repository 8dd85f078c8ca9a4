"""Kernel work for ``labctl-bridge``: the bridge, the veth pair, the pod's addresses and routes.

Everything goes through :mod:`labctl.cni.iproute`, i.e. the ``ip``/``bridge``
commands a student would type (``LABCTL_CNI_DEBUG=1`` prints them). The host
side (bridge, veth) is done while the IPAM plugin runs; the pod side needs its
addresses. Every helper is idempotent where "already exists" is success.
"""

from __future__ import annotations

import ipaddress
import os

from labctl.cni import iproute, skel, types
from labctl.cni.iproute import IPCommandError
from labctl.cni.types import CNIError, Interface, Result

TYPE_CHECKING = False  # typing costs every plugin exec ~6 ms; only the type checker needs it
if TYPE_CHECKING:
    from typing import Any

    from labctl.cni.bridge import NetConf


def ensure_bridge(n: NetConf) -> dict[str, Any]:
    """Return bridge ``n.bridge`` (an :func:`iproute.link` dict), creating it up if absent."""
    bridge = iproute.link(n.bridge)
    if bridge is None:
        try:
            iproute.ip("link", "add", n.bridge, "mtu", str(n.mtu), "type", "bridge")
            created = iproute.link(n.bridge)
            # Pin the MAC: otherwise a bridge takes its lowest port's MAC, and the pods'
            # gateway MAC changes whenever that pod goes away (stale ARP, dropped packets).
            if created is not None:
                iproute.ip("link", "set", "dev", n.bridge, "address", created["mac"])
        except IPCommandError as err:
            if not err.exists:  # a concurrent ADD made it first: fine
                raise CNIError(types.ERR_IO, f"failed to create bridge {n.bridge!r}", err.output) from err
        bridge = iproute.link(n.bridge)
    if bridge is None or bridge["kind"] != "bridge":
        raise CNIError(types.ERR_INVALID_NETCONF, f"{n.bridge!r} already exists but is not a bridge")
    if not bridge["up"] or (n.promisc_mode and not bridge["promisc"]):
        try:
            iproute.ip("link", "set", "dev", n.bridge, "up", *(["promisc", "on"] if n.promisc_mode else []))
        except IPCommandError as err:
            raise CNIError(types.ERR_IO, f"failed to set bridge {n.bridge!r} up", err.output) from err
    return bridge


def ensure_addr(address: str, bridge: str, have: list[str]) -> None:
    """Give the bridge the gateway address (``10.244.1.1/24``) unless it has it (``have``)."""
    if str(ipaddress.ip_interface(address)) in have:
        return
    try:
        iproute.ip("addr", "add", str(ipaddress.ip_interface(address)), "dev", bridge)
    except IPCommandError as err:
        if not err.exists:
            raise CNIError(types.ERR_IO, f"failed to add IP address {address!r} to {bridge!r}", err.output) from err


def enable_ip_forward(version: int) -> None:
    """Turn on forwarding in this (node) netns; skip the write when it already reads 1.

    Docker nodes mount /proc/sys read-only but start with forwarding on.
    """
    path = "/proc/sys/net/ipv4/ip_forward" if version == 4 else "/proc/sys/net/ipv6/conf/all/forwarding"
    try:
        with open(path) as f:
            if f.read().strip() == "1":
                return
        with open(path, "w") as f:
            f.write("1")
    except OSError as err:
        raise CNIError(types.ERR_IO, f"failed to enable forwarding in {path!r}", str(err)) from err


def create_veth(args: skel.CmdArgs, n: NetConf, host_name: str) -> None:
    """Create the pair in one call, the container end born in the pod netns (no switching)."""
    iproute.require_netns(args.netns)
    try:
        iproute.ip("link", "add", host_name, "mtu", str(n.mtu), "type", "veth",
                   "peer", "name", args.ifname, "mtu", str(n.mtu), "netns", os.path.abspath(args.netns))
    except IPCommandError as err:
        if err.exists and iproute.link(args.ifname, args.netns) is not None:
            raise CNIError(types.ERR_INVALID_NETCONF,
                           f"container veth name provided ({args.ifname}) already exists") from err
        msg = f"failed to create veth {host_name!r} for container {args.container_id!r}"
        raise CNIError(types.ERR_IO, msg, err.output) from err


def attach_veth(args: skel.CmdArgs, n: NetConf, host_name: str) -> tuple[Interface, Interface]:
    """Put the host end ``host_name`` on the bridge (hairpin if asked); return both ends."""
    host = iproute.link(host_name)  # looked up again by name, as the reference does after a move
    if host is None:
        raise CNIError(types.ERR_IO, f"failed to find host veth {host_name!r} after creating it")
    lines = [f"link set dev {host_name} master {n.bridge} up"]
    if n.hairpin_mode:  # a pod reaching a Service backed by itself goes out and back this port
        lines.append(f"link set dev {host_name} type bridge_slave hairpin on")
    try:
        iproute.batch(lines)
    except IPCommandError as err:
        raise CNIError(types.ERR_IO, f"failed to connect {host_name!r} to bridge {n.bridge!r}", err.output) from err
    cont = iproute.link(args.ifname, args.netns) or {}
    return Interface(host_name, host["mac"]), Interface(args.ifname, cont.get("mac") or "", args.netns)


def configure_iface(args: skel.CmdArgs, result: Result) -> None:
    """Inside the pod, in one ``ip -batch``: lo and the interface up, addresses, then routes."""
    lines = ["link set dev lo up", f"link set dev {args.ifname} up"]  # lo up saves a loopback plugin call
    lines += [f"addr add {ipc.ip_interface} dev {args.ifname}" for ipc in result.ips]
    first_route = len(lines)
    gateways = []
    for route in result.routes:
        dst = ipaddress.ip_network(route.dst, strict=False)
        gw = route.gw or next((i.gateway for i in result.ips if i.ip_interface.version == dst.version), "")
        gateways.append(gw)
        lines.append(f"route add {dst}" + (f" via {gw}" if gw else "") + f" dev {args.ifname}")
    try:
        iproute.batch(lines, args.netns, may_exist=frozenset(range(first_route, len(lines))))
    except IPCommandError as err:
        if err.line is not None and err.line >= first_route:
            route, gw = result.routes[err.line - first_route], gateways[err.line - first_route]
            raise CNIError(types.ERR_IO, f"failed to add route to {route.dst!r} via {gw!r}", err.output) from err
        what = lines[err.line] if err.line is not None else "ip -batch"
        raise CNIError(types.ERR_IO, f"failed to configure {args.ifname!r} in {args.netns!r} ({what})",
                       err.output) from err


def delete_link(name: str) -> None:
    """Delete link ``name`` if present (rollback of a half-done ADD)."""
    try:
        iproute.ip("link", "del", "dev", name)
    except IPCommandError as err:
        if not err.no_device:
            raise


def remove_pod_iface(netns: str, ifname: str) -> None:
    """Delete the pod's interface (its veth peer goes too); a missing netns or link is fine."""
    try:
        iproute.require_netns(netns)
        iproute.ip("link", "del", "dev", ifname, netns=netns)
    except CNIError as err:
        if err.code != types.ERR_UNKNOWN_CONTAINER:  # netns already gone: nothing left to remove
            raise
    except IPCommandError as err:
        if not err.no_device:
            raise CNIError(types.ERR_IO, f"failed to delete {ifname!r} in {netns!r}", err.output) from err
