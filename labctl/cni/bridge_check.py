"""CHECK for ``labctl-bridge``: does the kernel still match ``prevResult``?

Split out of :mod:`labctl.cni.bridge` to keep each file one screen per
function; every mismatch is reported with its own message (code 101) so a
student reading the node agent's log learns *what* drifted.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from labctl.cni import types
from labctl.cni.netns import IPRoute, get_link, link_index, pod_netlink
from labctl.cni.types import CNIError, Result


def _fail(msg: str) -> CNIError:
    return CNIError(types.ERR_CHECK_FAILED, msg)


def _container_iface_index(prev: Result, ifname: str) -> int:
    for i, iface in enumerate(prev.interfaces):
        if iface.name == ifname and iface.sandbox:
            return i
    raise _fail(f"interface {ifname!r} not found in prevResult")


def _route_dst(msg: Any) -> str:
    """A kernel route's destination as CIDR text (the default route has no RTA_DST)."""
    any_addr = "0.0.0.0" if msg["family"] == 2 else "::"
    return f"{msg.get('RTA_DST') or any_addr}/{msg['dst_len']}"


def check_host_side(bridge: str, peer_index: int | None) -> None:
    """The bridge exists and the pod's veth peer is one of its ports."""
    with IPRoute() as ipr:
        br_index = link_index(ipr, bridge)
        if br_index is None or get_link(ipr, br_index)["kind"] != "bridge":
            raise _fail(f"bridge {bridge!r} not found")
        peer = get_link(ipr, peer_index) if peer_index and ipr.get_links(peer_index) else None
        if peer is None or peer["kind"] != "veth" or peer["master"] != br_index:
            raise _fail(f"CNI veth created for bridge {bridge!r} was not found")


def check_network(bridge: str, prev: Result, netns: str, ifname: str) -> None:
    """Raise CNIError(101) on the first difference between ``prev`` and reality."""
    ci = _container_iface_index(prev, ifname)
    want = prev.interfaces[ci]
    with pod_netlink(netns) as pod:
        index = link_index(pod, ifname)
        if index is None:
            raise _fail(f"container interface {ifname!r} not found in netns {netns!r}")
        link = get_link(pod, index)
        if link["kind"] != "veth":
            raise _fail(f"container interface {ifname!r} is a {link['kind']!r}, not a veth")
        if want.mac and link["mac"] != want.mac.lower():
            raise _fail(f"interface {ifname!r} has MAC {link['mac']!r}, prevResult says {want.mac!r}")
        have_addrs = {f"{a.get('IFA_ADDRESS')}/{a['prefixlen']}" for a in pod.get_addr(index=index)}
        for ipc in prev.ips:
            if ipc.interface in (None, ci) and str(ipc.ip_interface) not in have_addrs:
                raise _fail(f"IP {ipc.address!r} not found on {ifname!r} in netns {netns!r}")
        have_routes = {
            (_route_dst(r), r.get("RTA_GATEWAY") or "") for r in pod.get_routes(table=254)
        }
        for route in prev.routes:
            dst = ipaddress.ip_network(route.dst, strict=False)
            gw = route.gw or next((i.gateway for i in prev.ips if i.ip_interface.version == dst.version), "")
            if (str(dst), gw) not in have_routes:
                raise _fail(f"route to {route.dst!r} via {gw!r} not found in netns {netns!r}")
    check_host_side(bridge, link["link"])
