"""Kernel work for ``labctl-bridge`` over netlink, for the node's CNI daemon.

The same functions as :mod:`labctl.cni.links` (which runs ``ip`` commands in a plugin
process), the same layout in the kernel, the same CNI errors: a bridge ``cni0`` with a
pinned MAC, a veth pair whose pod end is born in the pod's netns, the host end on the
bridge with hairpin on, ``lo`` and ``eth0`` up, the addresses and routes with iproute2's
default route protocol (``boot``, which ``ip route`` does not print). Error ``details``
read like iproute2's (``RTNETLINK answers: File exists``).

The requests are iproute2's, sent by :mod:`labctl.cni.rtnl` on plain sockets, and as few
as the answers allow. An ADD asks the node for the bridge (one RTM_GETLINK; created and
its MAC pinned on a node's first ADD), creates the veth pair in one request with both
MACs chosen (nothing is read back), puts its host end on the bridge and up and sets
hairpin (by name: the host veth is never looked up), adds the gateway address ("File exists" is "already there", no address dump);
in the pod it reads ``eth0``'s index and sets ``lo`` and ``eth0`` up, the addresses and
the routes. A DEL is one request in the pod. Links are found by name with one request,
never by a dump (every link of a node: one per pod).

Pod-side work uses a netlink socket opened inside the pod's netns: the calling thread
enters it (``setns(2)`` changes only the calling thread's network namespace), opens the
socket and comes straight back; the socket stays bound to the pod's netns. Sockets are
opened per call (a few µs) and serve that call's thread alone.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import ipaddress
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE
from pyroute2.netlink.rtnl.ifinfmsg import IFF_PROMISC, IFF_UP

from labctl.cni import iproute, rtnl, skel, types
from labctl.cni.links import enable_ip_forward
from labctl.cni.rtnl import CREATE, NetlinkError
from labctl.cni.types import CNIError, Interface, Result

if TYPE_CHECKING:
    from labctl.cni.bridge import NetConf

__all__ = ["attach_veth", "configure_iface", "create_veth", "delete_link", "enable_ip_forward", "ensure_addr",
           "ensure_bridge", "remove_pod_iface"]

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
#: each bridge's ifindex as its last ensure_bridge saw it: the veth's master and the gateway's link
_bridge_index: dict[str, int] = {}


def _details(err: NetlinkError) -> str:
    return f"RTNETLINK answers: {err.strerror}"


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


@contextlib.contextmanager
def _pod(netns: str) -> Iterator[rtnl.Socket]:
    """A netlink socket inside the pod's netns (CNI error 3 if there is none)."""
    try:
        target = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise CNIError(types.ERR_UNKNOWN_CONTAINER, f"failed to open netns {netns!r}", str(err)) from err
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            _setns(target)
        except OSError as err:
            raise CNIError(types.ERR_UNKNOWN_CONTAINER, f"failed to enter netns {netns!r}", str(err)) from err
        try:
            sock = rtnl.Socket()
        finally:
            _setns(own)  # a thread that cannot come back raises here and must not serve again
    finally:
        os.close(target)
        os.close(own)
    with sock:
        yield sock


def ensure_bridge(n: NetConf) -> dict[str, Any]:
    """Return ``{"mac", "addrs": []}`` of bridge ``n.bridge``, creating it (MAC pinned) and setting it up."""
    with rtnl.Socket() as nl:
        bridge = nl.link(n.bridge)
        if bridge is None:
            try:
                nl.request(RTM_NEWLINK, rtnl.link_msg(name=n.bridge, mtu=n.mtu, kind="bridge"), CREATE)
                created = nl.link(n.bridge)
                # Pin the MAC: otherwise a bridge takes its lowest port's MAC, and the pods'
                # gateway MAC changes whenever that pod goes away (stale ARP, dropped packets).
                if created is not None:
                    nl.request(RTM_NEWLINK, rtnl.link_msg(created.index, address=created.mac))
            except NetlinkError as err:
                if err.errno != errno.EEXIST:  # a concurrent ADD made it first: fine
                    raise CNIError(types.ERR_IO, f"failed to create bridge {n.bridge!r}", _details(err)) from err
            bridge = nl.link(n.bridge)
        if bridge is None or bridge.kind != "bridge":
            raise CNIError(types.ERR_INVALID_NETCONF, f"{n.bridge!r} already exists but is not a bridge")
        try:
            if not bridge.flags & IFF_UP:
                nl.request(RTM_NEWLINK, rtnl.link_msg(bridge.index, IFF_UP, IFF_UP))
            if n.promisc_mode and not bridge.flags & IFF_PROMISC:
                nl.request(RTM_NEWLINK, rtnl.link_msg(bridge.index, IFF_PROMISC, IFF_PROMISC))
        except NetlinkError as err:
            raise CNIError(types.ERR_IO, f"failed to set bridge {n.bridge!r} up", _details(err)) from err
    _bridge_index[n.bridge] = bridge.index
    # No address dump (every address of the node): ensure_addr adds the gateway and takes
    # the kernel's "File exists" for "already there".
    return {"mac": bridge.mac, "addrs": []}


def ensure_addr(address: str, bridge: str, have: list[str]) -> None:
    """Give the bridge the gateway address (``10.244.1.1/24``) unless it has it (EEXIST, or in ``have``)."""
    iface = ipaddress.ip_interface(address)
    if str(iface) in have:
        return
    with rtnl.Socket() as nl:
        try:
            index = _bridge_index.get(bridge) or _index(nl, bridge)
            nl.request(RTM_NEWADDR, rtnl.addr_msg(index, str(iface.ip), iface.network.prefixlen, iface.version),
                       CREATE)
        except NetlinkError as err:
            if err.errno != errno.EEXIST:
                raise CNIError(types.ERR_IO, f"failed to add IP address {address!r} to {bridge!r}",
                               _details(err)) from err


def _index(nl: rtnl.Socket, name: str) -> int:
    link = nl.link(name)
    if link is None:
        raise NetlinkError(errno.ENODEV)
    return link.index


def _chosen_mac(seed: str) -> str:
    """A locally administered unicast MAC from sha256(``seed``): as random as the kernel's choice,
    the same again for a repeated ADD of the sandbox, and known without reading it back."""
    digest = bytearray(hashlib.sha256(seed.encode()).digest()[:6])
    digest[0] = (digest[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in digest)


def pod_mac(container_id: str, ifname: str) -> str:
    """The pod interface's MAC, chosen at creation (sha256 of container ID + ifname, like the host veth's name)."""
    return _chosen_mac(f"{container_id}{ifname}/mac")


def host_mac(container_id: str, ifname: str) -> str:
    """The host veth's MAC, chosen at creation too (the bridge's own MAC is pinned, so it never takes this one)."""
    return _chosen_mac(f"{container_id}{ifname}/host-mac")


def create_veth(args: skel.CmdArgs, n: NetConf, host_name: str) -> None:
    """Create the pair in one request, the container end born in the pod netns, both MACs chosen."""
    iproute.require_netns(args.netns)
    fd = os.open(args.netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        peer = rtnl.veth_peer(name=args.ifname, mtu=n.mtu, netns_fd=fd, address=pod_mac(args.container_id, args.ifname))
        with rtnl.Socket() as nl:
            nl.request(RTM_NEWLINK, rtnl.link_msg(name=host_name, mtu=n.mtu,
                                                  address=host_mac(args.container_id, args.ifname),
                                                  kind="veth", info_data=peer), CREATE)
    except NetlinkError as err:
        if err.errno == errno.EEXIST:
            with _pod(args.netns) as pod:
                if pod.link(args.ifname) is not None:
                    raise CNIError(types.ERR_INVALID_NETCONF,
                                   f"container veth name provided ({args.ifname}) already exists") from err
        msg = f"failed to create veth {host_name!r} for container {args.container_id!r}"
        raise CNIError(types.ERR_IO, msg, _details(err)) from err
    finally:
        os.close(fd)


def attach_veth(args: skel.CmdArgs, n: NetConf, host_name: str) -> tuple[Interface, Interface]:
    """Put the host end on the bridge and up, hairpin on if asked; return both ends.

    By name, as ``ip link set dev VETH master cni0 up`` and ``… type bridge_slave hairpin on``
    (no index needed), in ``ip``'s order: the port joins the bridge down, then comes up.
    """
    with rtnl.Socket() as nl:
        try:
            nl.request(RTM_NEWLINK, rtnl.link_msg(0, IFF_UP, IFF_UP, name=host_name, master=_bridge_index[n.bridge]))
            if n.hairpin_mode:  # a pod reaching a Service backed by itself goes out and back this port
                nl.request(RTM_NEWLINK, rtnl.link_msg(name=host_name, bridge_port={"IFLA_BRPORT_MODE": 1}))
        except NetlinkError as err:
            raise CNIError(types.ERR_IO, f"failed to connect {host_name!r} to bridge {n.bridge!r}",
                           _details(err)) from err
    return (Interface(host_name, host_mac(args.container_id, args.ifname)),
            Interface(args.ifname, pod_mac(args.container_id, args.ifname), args.netns))


def configure_iface(args: skel.CmdArgs, result: Result) -> None:
    """Inside the pod: lo and the interface up, addresses, then routes (one already there is fine)."""
    with _pod(args.netns) as pod:
        step = f"link set dev {args.ifname} up"
        try:
            index = _index(pod, args.ifname)
            pod.request(RTM_NEWLINK, rtnl.link_msg(1, IFF_UP, IFF_UP))  # lo is ifindex 1; saves a loopback call
            pod.request(RTM_NEWLINK, rtnl.link_msg(index, IFF_UP, IFF_UP))
            for ipc in result.ips:
                iface = ipc.ip_interface
                step = f"addr add {iface} dev {args.ifname}"
                pod.request(RTM_NEWADDR, rtnl.addr_msg(index, str(iface.ip), iface.network.prefixlen, iface.version),
                            CREATE)
        except NetlinkError as err:
            raise CNIError(types.ERR_IO, f"failed to configure {args.ifname!r} in {args.netns!r} ({step})",
                           _details(err)) from err
        for route in result.routes:
            dst = ipaddress.ip_network(route.dst, strict=False)
            gw = route.gw or next((i.gateway for i in result.ips if i.ip_interface.version == dst.version), "")
            try:
                pod.request(RTM_NEWROUTE, rtnl.route_msg(str(dst.network_address), dst.prefixlen, gw or "", index,
                                                         dst.version), CREATE)
            except NetlinkError as err:
                if err.errno != errno.EEXIST:  # the kernel has it already: skipped, as the reference does
                    raise CNIError(types.ERR_IO, f"failed to add route to {route.dst!r} via {gw!r}",
                                   _details(err)) from err


def delete_link(name: str) -> None:
    """Delete link ``name`` if present (rollback of a half-done ADD)."""
    with rtnl.Socket() as nl:
        try:
            nl.request(RTM_DELLINK, rtnl.link_msg(name=name))
        except NetlinkError as err:
            if err.errno != errno.ENODEV:
                raise CNIError(types.ERR_IO, f"failed to delete {name!r}", _details(err)) from err


def remove_pod_iface(netns: str, ifname: str) -> None:
    """Delete the pod's interface by name (its veth peer goes too); a missing netns or link is fine."""
    if not os.path.exists(netns):
        return
    try:
        with _pod(netns) as pod:
            pod.request(RTM_DELLINK, rtnl.link_msg(name=ifname))
    except CNIError as err:
        if err.code != types.ERR_UNKNOWN_CONTAINER:  # netns already gone: nothing left to remove
            raise
    except NetlinkError as err:
        if err.errno != errno.ENODEV:
            raise CNIError(types.ERR_IO, f"failed to delete {ifname!r} in {netns!r}", _details(err)) from err
