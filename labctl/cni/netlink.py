"""Kernel work for ``labctl-bridge`` over netlink (pyroute2), for the node's CNI daemon.

The same functions as :mod:`labctl.cni.links` (which runs ``ip`` commands in a plugin
process), the same layout in the kernel, the same CNI errors: a bridge ``cni0`` with a
pinned MAC, a veth pair whose pod end is born in the pod's netns, the host end on the
bridge with hairpin on, ``lo`` and ``eth0`` up, the addresses and routes with iproute2's
default route protocol (``boot``, which ``ip route`` does not print). Error ``details``
read like iproute2's (``RTNETLINK answers: File exists``).

Pod-side work uses a netlink socket opened inside the pod's netns: the calling thread
enters it (``setns(2)`` changes only the calling thread's network namespace), opens the
socket and comes straight back; the socket stays bound to the pod's netns. That costs
well under a millisecond, where pyroute2's ``IPRoute(netns=...)`` forks a helper.
A socket serves one thread at a time: node sockets are kept in a pool for the next call,
pod sockets are opened per call.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import hashlib
import ipaddress
import os
import queue
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from labctl.cni import iproute, skel, types
from labctl.cni.links import enable_ip_forward
from labctl.cni.types import CNIError, Interface, Result

if TYPE_CHECKING:
    from labctl.cni.bridge import NetConf

__all__ = ["attach_veth", "configure_iface", "create_veth", "delete_link", "enable_ip_forward", "ensure_addr",
           "ensure_bridge", "remove_pod_iface"]

CLONE_NEWNET = 0x40000000
IFF_UP, IFF_PROMISC = 0x1, 0x100
RTPROT_BOOT = 3  # what `ip route add` sets when no protocol is given
_libc = ctypes.CDLL(None, use_errno=True)


def _details(err: NetlinkError) -> str:
    return f"RTNETLINK answers: {os.strerror(err.code)}"


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


#: idle netlink sockets in the node's netns: opening one costs ~3 ms of CPU with pyroute2 0.9
_node_sockets: queue.SimpleQueue[IPRoute] = queue.SimpleQueue()


@contextlib.contextmanager
def _node() -> Iterator[IPRoute]:
    """A netlink socket in this (the node's) netns, for this thread alone until it is handed back."""
    try:
        ipr = _node_sockets.get_nowait()
    except queue.Empty:
        ipr = IPRoute()
    try:
        yield ipr
    except NetlinkError:  # the kernel said no: the socket itself is fine
        _node_sockets.put(ipr)
        raise
    except BaseException:
        ipr.close()
        raise
    _node_sockets.put(ipr)


@contextlib.contextmanager
def _pod(netns: str) -> Iterator[IPRoute]:
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
            ipr = IPRoute()
        finally:
            _setns(own)  # a thread that cannot come back raises here and must not serve again
    finally:
        os.close(target)
        os.close(own)
    try:
        yield ipr
    finally:
        ipr.close()


def _get(ipr: IPRoute, name: str) -> Any | None:
    """The link message of ``name``, or None."""
    try:
        return ipr.link("get", ifname=name)[0]
    except NetlinkError as err:
        if err.code == errno.ENODEV:
            return None
        raise


def _index(ipr: IPRoute, name: str) -> int:
    """The ifindex of ``name`` with one RTM_GETLINK (``link_lookup`` dumps every link: one per pod on a node)."""
    link = _get(ipr, name)
    if link is None:
        raise NetlinkError(errno.ENODEV, f"Cannot find device {name!r}")
    return int(link["index"])


def _mac(msg: Any) -> str:
    return str(msg.get_attr("IFLA_ADDRESS") or "")


def ensure_bridge(n: NetConf) -> dict[str, Any]:
    """Return ``{"mac", "addrs": []}`` of bridge ``n.bridge``, creating it (MAC pinned) and setting it up."""
    with _node() as ipr:
        bridge = _get(ipr, n.bridge)
        if bridge is None:
            try:
                ipr.link("add", ifname=n.bridge, kind="bridge", mtu=n.mtu)
                created = _get(ipr, n.bridge)
                # Pin the MAC: otherwise a bridge takes its lowest port's MAC, and the pods'
                # gateway MAC changes whenever that pod goes away (stale ARP, dropped packets).
                if created is not None:
                    ipr.link("set", index=created["index"], address=_mac(created))
            except NetlinkError as err:
                if err.code != errno.EEXIST:  # a concurrent ADD made it first: fine
                    raise CNIError(types.ERR_IO, f"failed to create bridge {n.bridge!r}", _details(err)) from err
            bridge = _get(ipr, n.bridge)
        kind = bridge.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND") if bridge is not None else None
        if bridge is None or kind != "bridge":
            raise CNIError(types.ERR_INVALID_NETCONF, f"{n.bridge!r} already exists but is not a bridge")
        flags = bridge["flags"]
        try:
            if not flags & IFF_UP:
                ipr.link("set", index=bridge["index"], state="up")
            if n.promisc_mode and not flags & IFF_PROMISC:
                ipr.link("set", index=bridge["index"], flags=IFF_PROMISC, change=IFF_PROMISC)
        except NetlinkError as err:
            raise CNIError(types.ERR_IO, f"failed to set bridge {n.bridge!r} up", _details(err)) from err
        # No address dump (1.4 ms of CPU, every address of the node): ensure_addr adds the
        # gateway and takes the kernel's "File exists" for "already there".
        return {"mac": _mac(bridge), "addrs": []}


def ensure_addr(address: str, bridge: str, have: list[str]) -> None:
    """Give the bridge the gateway address (``10.244.1.1/24``) unless it has it (EEXIST, or in ``have``)."""
    iface = ipaddress.ip_interface(address)
    if str(iface) in have:
        return
    with _node() as ipr:
        try:
            ipr.addr("add", index=_index(ipr, bridge), address=str(iface.ip), prefixlen=iface.network.prefixlen)
        except NetlinkError as err:
            if err.code != errno.EEXIST:
                raise CNIError(types.ERR_IO, f"failed to add IP address {address!r} to {bridge!r}",
                               _details(err)) from err


def pod_mac(container_id: str, ifname: str) -> str:
    """The pod interface's MAC, chosen at creation so that nothing has to be read back from the pod.

    Locally administered unicast, from sha256(container ID + ifname) like the host veth's name:
    as random as the kernel's choice, and the same again for a repeated ADD of the sandbox.
    Reading it back would open a second netlink socket in the pod's netns (~3 ms of CPU).
    """
    digest = bytearray(hashlib.sha256(f"{container_id}{ifname}/mac".encode()).digest()[:6])
    digest[0] = (digest[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in digest)


def create_veth(args: skel.CmdArgs, n: NetConf, host_name: str) -> None:
    """Create the pair in one request, the container end born in the pod netns."""
    iproute.require_netns(args.netns)
    fd = os.open(args.netns, os.O_RDONLY | os.O_CLOEXEC)
    try:
        with _node() as ipr:
            ipr.link("add", ifname=host_name, kind="veth", mtu=n.mtu,
                     peer={"ifname": args.ifname, "mtu": n.mtu, "net_ns_fd": fd,
                           "address": pod_mac(args.container_id, args.ifname)})
    except NetlinkError as err:
        if err.code == errno.EEXIST:
            with _pod(args.netns) as pod:
                if _get(pod, args.ifname) is not None:
                    raise CNIError(types.ERR_INVALID_NETCONF,
                                   f"container veth name provided ({args.ifname}) already exists") from err
        msg = f"failed to create veth {host_name!r} for container {args.container_id!r}"
        raise CNIError(types.ERR_IO, msg, _details(err)) from err
    finally:
        os.close(fd)


def attach_veth(args: skel.CmdArgs, n: NetConf, host_name: str) -> tuple[Interface, Interface]:
    """Put the host end ``host_name`` on the bridge (hairpin if asked); return both ends."""
    with _node() as ipr:
        host = _get(ipr, host_name)
        if host is None:
            raise CNIError(types.ERR_IO, f"failed to find host veth {host_name!r} after creating it")
        try:
            ipr.link("set", index=host["index"], master=_index(ipr, n.bridge), state="up")
            if n.hairpin_mode:  # a pod reaching a Service backed by itself goes out and back this port
                ipr.brport("set", index=host["index"], mode=1)
        except NetlinkError as err:
            raise CNIError(types.ERR_IO, f"failed to connect {host_name!r} to bridge {n.bridge!r}",
                           _details(err)) from err
    return Interface(host_name, _mac(host)), Interface(args.ifname, pod_mac(args.container_id, args.ifname), args.netns)


def configure_iface(args: skel.CmdArgs, result: Result) -> None:
    """Inside the pod: lo and the interface up, addresses, then routes (one already there is fine)."""
    with _pod(args.netns) as pod:
        step = f"link set dev {args.ifname} up"
        try:
            index = _index(pod, args.ifname)
            pod.link("set", index=1, state="up")  # lo is always ifindex 1; saves a loopback plugin call
            pod.link("set", index=index, state="up")
            for ipc in result.ips:
                iface = ipc.ip_interface
                step = f"addr add {iface} dev {args.ifname}"
                pod.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        except NetlinkError as err:
            raise CNIError(types.ERR_IO, f"failed to configure {args.ifname!r} in {args.netns!r} ({step})",
                           _details(err)) from err
        for route in result.routes:
            dst = ipaddress.ip_network(route.dst, strict=False)
            gw = route.gw or next((i.gateway for i in result.ips if i.ip_interface.version == dst.version), "")
            spec: dict[str, Any] = {"dst": str(dst.network_address), "dst_len": dst.prefixlen, "oif": index,
                                    "proto": RTPROT_BOOT, "family": 2 if dst.version == 4 else 10}
            if gw:
                spec["gateway"] = gw
            try:
                pod.route("add", **spec)
            except NetlinkError as err:
                if err.code != errno.EEXIST:  # the kernel has it already: skipped, as the reference does
                    raise CNIError(types.ERR_IO, f"failed to add route to {route.dst!r} via {gw!r}",
                                   _details(err)) from err


def delete_link(name: str) -> None:
    """Delete link ``name`` if present (rollback of a half-done ADD)."""
    with _node() as ipr:
        link = _get(ipr, name)
        if link is not None:
            try:
                ipr.link("del", index=link["index"])
            except NetlinkError as err:
                if err.code != errno.ENODEV:
                    raise CNIError(types.ERR_IO, f"failed to delete {name!r}", _details(err)) from err


def remove_pod_iface(netns: str, ifname: str) -> None:
    """Delete the pod's interface (its veth peer goes too); a missing netns or link is fine."""
    if not os.path.exists(netns):
        return
    try:
        with _pod(netns) as pod:
            link = _get(pod, ifname)
            if link is not None:
                pod.link("del", index=link["index"])
    except CNIError as err:
        if err.code != types.ERR_UNKNOWN_CONTAINER:  # netns already gone: nothing left to remove
            raise
    except NetlinkError as err:
        if err.code != errno.ENODEV:
            raise CNIError(types.ERR_IO, f"failed to delete {ifname!r} in {netns!r}", _details(err)) from err
