"""CHECK for ``labctl-bridge``: does the kernel still match ``prevResult``?

Split out of :mod:`labctl.cni.bridge` to keep each file one screen per
function; every mismatch is reported with its own message (code 101) so a
student reading the node agent's log learns *what* drifted.
"""

from __future__ import annotations

import ipaddress

from labctl.cni import iproute, types
from labctl.cni.types import CNIError, Result

TYPE_CHECKING = False  # typing costs every plugin exec ~6 ms; only the type checker needs it
if TYPE_CHECKING:
    from typing import Any


def _fail(msg: str) -> CNIError:
    return CNIError(types.ERR_CHECK_FAILED, msg)


def _container_iface_index(prev: Result, ifname: str) -> int:
    for i, iface in enumerate(prev.interfaces):
        if iface.name == ifname and iface.sandbox:
            return i
    raise _fail(f"interface {ifname!r} not found in prevResult")


def _route_dst(route: dict[str, Any], version: int) -> str:
    """``ip -j route``'s ``dst`` as CIDR text: it prints ``default`` and host routes without /32."""
    dst = route.get("dst", "default")
    if dst == "default":
        return "0.0.0.0/0" if version == 4 else "::/0"
    return str(ipaddress.ip_network(dst, strict=False))


def pod_routes(netns: str, versions: set[int]) -> set[tuple[str, str]]:
    """(destination CIDR, gateway or "") of the pod's main table, for each IP version asked."""
    have = set()
    for version in sorted(versions):
        for r in iproute.ip_json(f"-{version}", "route", "show", "table", "main", netns=netns):
            have.add((_route_dst(r, version), r.get("gateway") or ""))
    return have


def check_host_side(bridge: str, peer_index: int | None) -> None:
    """The bridge exists and the pod's veth peer is one of its ports."""
    by_index = {link["index"]: link for link in iproute.links()}
    br = next((link for link in by_index.values() if link["ifname"] == bridge), None)
    if br is None or br["kind"] != "bridge":
        raise _fail(f"bridge {bridge!r} not found")
    peer = by_index.get(peer_index) if peer_index else None
    if peer is None or peer["kind"] != "veth" or peer["master"] != bridge:
        raise _fail(f"CNI veth created for bridge {bridge!r} was not found")


def check_network(bridge: str, prev: Result, netns: str, ifname: str) -> None:
    """Raise CNIError(101) on the first difference between ``prev`` and reality."""
    ci = _container_iface_index(prev, ifname)
    want = prev.interfaces[ci]
    iproute.require_netns(netns)
    link = iproute.link(ifname, netns)
    if link is None:
        raise _fail(f"container interface {ifname!r} not found in netns {netns!r}")
    if link["kind"] != "veth":
        raise _fail(f"container interface {ifname!r} is a {link['kind']!r}, not a veth")
    if want.mac and link["mac"] != want.mac.lower():
        raise _fail(f"interface {ifname!r} has MAC {link['mac']!r}, prevResult says {want.mac!r}")
    have_addrs = {
        f"{a['local']}/{a['prefixlen']}"
        for msg in iproute.ip_json("addr", "show", "dev", ifname, netns=netns)
        for a in msg.get("addr_info", [])
    }
    for ipc in prev.ips:
        if ipc.interface in (None, ci) and str(ipc.ip_interface) not in have_addrs:
            raise _fail(f"IP {ipc.address!r} not found on {ifname!r} in netns {netns!r}")
    dsts = [ipaddress.ip_network(route.dst, strict=False) for route in prev.routes]
    have_routes = pod_routes(netns, {dst.version for dst in dsts})
    for route, dst in zip(prev.routes, dsts):
        gw = route.gw or next((i.gateway for i in prev.ips if i.ip_interface.version == dst.version), "")
        if (str(dst), gw) not in have_routes:
            raise _fail(f"route to {route.dst!r} via {gw!r} not found in netns {netns!r}")
    check_host_side(bridge, link["link"])
