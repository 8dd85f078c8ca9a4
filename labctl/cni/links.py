"""Netlink work for ``labctl-bridge``: the bridge, the veth pair, the pod's addresses and routes.

Kept apart from :mod:`labctl.cni.bridge` so that importing pyroute2 (most of
an ADD's cost after interpreter start-up) can happen while the IPAM plugin
already runs. Every helper is idempotent where "already exists" is success.
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from labctl.cni import skel, types
from labctl.cni.netns import IPRoute, NetlinkError, get_link, link_index, netns_fd, pod_netlink
from labctl.cni.types import CNIError, Interface, Result

if TYPE_CHECKING:
    from labctl.cni.bridge import NetConf

EEXIST = 17
ENODEV = 19
IFF_PROMISC = 0x100
BRIDGE_MODE_HAIRPIN = 1  # IFLA_BRPORT_MODE value that turns hairpin on


def ensure_bridge(ipr: IPRoute, n: NetConf) -> int:
    """Return the index of bridge ``n.bridge``, creating it up if absent."""
    index = link_index(ipr, n.bridge)
    if index is None:
        try:
            ipr.link("add", ifname=n.bridge, kind="bridge", mtu=n.mtu)
            created = link_index(ipr, n.bridge)
            # Pin the MAC: otherwise a bridge takes its lowest port's MAC, and the pods'
            # gateway MAC changes whenever that pod goes away (stale ARP, dropped packets).
            if created is not None:
                ipr.link("set", index=created, address=get_link(ipr, created)["mac"])
        except NetlinkError as err:
            if err.code != EEXIST:  # a concurrent ADD made it first: fine
                raise CNIError(types.ERR_IO, f"failed to create bridge {n.bridge!r}", str(err)) from err
        index = link_index(ipr, n.bridge)
    if index is None or get_link(ipr, index)["kind"] != "bridge":
        raise CNIError(types.ERR_INVALID_NETCONF, f"{n.bridge!r} already exists but is not a bridge")
    ipr.link("set", index=index, state="up")
    if n.promisc_mode:
        ipr.link("set", index=index, flags=IFF_PROMISC, change=IFF_PROMISC)
    return index


def ensure_addr(ipr: IPRoute, index: int, address: str, bridge: str) -> None:
    """Give the bridge the gateway address (``10.244.1.1/24``) unless it has it."""
    iface = ipaddress.ip_interface(address)
    try:
        ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
    except NetlinkError as err:
        if err.code != EEXIST:
            raise CNIError(types.ERR_IO, f"failed to add IP address {address!r} to {bridge!r}", str(err)) from err


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


def setup_veth(
    ipr: IPRoute, args: skel.CmdArgs, n: NetConf, bridge_index: int, host_name: str
) -> tuple[Interface, Interface]:
    """Create the pair (container end born in the pod netns), attach the host end ``host_name``."""
    with pod_netlink(args.netns) as pod:
        if link_index(pod, args.ifname) is not None:
            raise CNIError(types.ERR_INVALID_NETCONF, f"container veth name provided ({args.ifname}) already exists")
    with netns_fd(args.netns) as fd:
        try:
            peer = {"ifname": args.ifname, "net_ns_fd": fd, "mtu": n.mtu}
            ipr.link("add", ifname=host_name, kind="veth", mtu=n.mtu, peer=peer)
        except NetlinkError as err:
            msg = f"failed to create veth {host_name!r} for container {args.container_id!r}"
            raise CNIError(types.ERR_IO, msg, str(err)) from err
    host_index = link_index(ipr, host_name)  # look it up again by name, as the reference does after a move
    if host_index is None:
        raise CNIError(types.ERR_IO, f"failed to find host veth {host_name!r} after creating it")
    try:
        ipr.link("set", index=host_index, master=bridge_index, state="up")
        if n.hairpin_mode:  # a pod reaching a Service backed by itself goes out and back this port
            ipr.brport("set", index=host_index, mode=BRIDGE_MODE_HAIRPIN)
    except NetlinkError as err:
        raise CNIError(types.ERR_IO, f"failed to connect {host_name!r} to bridge {n.bridge!r}", str(err)) from err
    with pod_netlink(args.netns) as pod:
        cont_index = link_index(pod, args.ifname)
        cont = get_link(pod, cont_index) if cont_index is not None else {}
    host = get_link(ipr, host_index)
    return Interface(host_name, host["mac"]), Interface(args.ifname, cont.get("mac", ""), args.netns)


def configure_iface(args: skel.CmdArgs, result: Result) -> None:
    """Inside the pod: lo and the interface up, addresses, then routes via the gateway."""
    with pod_netlink(args.netns) as pod:
        index = link_index(pod, args.ifname)
        lo = link_index(pod, "lo")
        if lo is not None:  # saves the runtime a loopback plugin call; harmless if already up
            pod.link("set", index=lo, state="up")
        pod.link("set", index=index, state="up")
        for ipc in result.ips:
            iface = ipc.ip_interface
            pod.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        for route in result.routes:
            dst = ipaddress.ip_network(route.dst, strict=False)
            gw = route.gw or next((i.gateway for i in result.ips if i.ip_interface.version == dst.version), "")
            kw: dict[str, Any] = {"dst": str(dst.network_address), "dst_len": dst.prefixlen, "oif": index}
            if gw:
                kw["gateway"] = gw
            try:
                pod.route("add", **kw)
            except NetlinkError as err:
                if err.code != EEXIST:
                    raise CNIError(types.ERR_IO, f"failed to add route to {route.dst!r} via {gw!r}", str(err)) from err


def delete_link(ipr: IPRoute, name: str) -> None:
    """Delete link ``name`` if present (rollback of a half-done ADD)."""
    index = link_index(ipr, name)
    if index is not None:
        ipr.link("del", index=index)


def remove_pod_iface(netns: str, ifname: str) -> None:
    """Delete the pod's interface (its veth peer goes too); a missing netns or link is fine."""
    try:
        with pod_netlink(netns) as pod:
            index = link_index(pod, ifname)
            if index is not None:
                pod.link("del", index=index)
    except CNIError as err:
        if err.code != types.ERR_UNKNOWN_CONTAINER:  # netns already gone: nothing left to remove
            raise
    except NetlinkError as err:
        if err.code != ENODEV:
            raise CNIError(types.ERR_IO, f"failed to delete {ifname!r} in {netns!r}", str(err)) from err
