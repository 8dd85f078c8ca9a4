"""host-gw routes: ``<other node's podCIDR> via <its InternalIP>`` on this node.

The node agent calls :func:`sync_pod_cidr_routes` with the full wanted set
whenever Nodes come and go (like kindnet / flannel host-gw). Our routes carry
their own protocol number, :data:`RTPROT_LABCTL`, so sync only ever replaces
or deletes routes it made, never the Docker default route or a student's own
experiment. ``ip route show proto 108`` lists exactly them on a node.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from pyroute2.netlink import NLM_F_CREATE, NLM_F_REPLACE
from pyroute2.netlink.rtnl import RTM_DELROUTE, RTM_NEWROUTE
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from labctl.cni import rtnl

#: Route protocol tag for labctl's routes (``proto 108`` in ``ip route``); 108 is 'l',
#: unused by the kernel's and routing daemons' well-known numbers (<= 99, 186-192).
RTPROT_LABCTL = 108
#: ``ip route replace``: create it, or replace the route to the same destination
REPLACE = NLM_F_CREATE | NLM_F_REPLACE


class RouteSyncError(Exception):
    """Some routes could not be programmed; ``errors`` lists each failure."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def list_pod_cidr_routes() -> dict[str, str]:
    """Return ``{podCIDR: InternalIP}`` for the routes labctl made on this node (in this netns)."""
    current: dict[str, str] = {}
    with rtnl.Socket() as nl:
        for family in (socket.AF_INET, socket.AF_INET6):
            for msg in nl.routes(family):
                if msg["proto"] != RTPROT_LABCTL or (msg.get_attr("RTA_TABLE") or msg["table"]) != rtnl.RT_TABLE_MAIN:
                    continue
                any_ = "0.0.0.0" if family == socket.AF_INET else "::"
                cidr = str(ipaddress.ip_network(f"{msg.get_attr('RTA_DST') or any_}/{msg['dst_len']}"))
                current[cidr] = msg.get_attr("RTA_GATEWAY") or ""
    return current


def _normalize(routes: dict[str, str]) -> dict[str, str]:
    out = {}
    for cidr, gateway in routes.items():
        try:
            out[str(ipaddress.ip_network(cidr, strict=True))] = str(ipaddress.ip_address(gateway))
        except ValueError as err:
            raise RouteSyncError([f"invalid route {cidr!r} via {gateway!r}: {err}"]) from err
    return out


def sync_pod_cidr_routes(routes: dict[str, str]) -> None:
    """Make labctl's routes exactly ``routes`` (``{podCIDR: InternalIP}``); idempotent.

    Tries every route even when one fails (a node whose IP is not yet reachable
    must not block the others) and raises :class:`RouteSyncError` at the end.
    """
    wanted = _normalize(routes)
    current = list_pod_cidr_routes()
    errors: list[str] = []
    with rtnl.Socket() as nl:
        for cidr, gateway in sorted(wanted.items()):
            if current.get(cidr) == gateway:
                continue
            try:
                nl.request(RTM_NEWROUTE, _route(cidr, gateway), REPLACE)
            except rtnl.NetlinkError as err:
                errors.append(f"failed to add route {cidr!r} via {gateway!r}: {err}")
        for cidr, gateway in sorted(current.items()):
            if cidr in wanted:
                continue
            try:
                nl.request(RTM_DELROUTE, _route(cidr, gateway))
            except rtnl.NetlinkError as err:
                if err.errno != errno.ESRCH:  # already gone
                    errors.append(f"failed to delete route {cidr!r} via {gateway!r}: {err}")
    if errors:
        raise RouteSyncError(errors)


def _route(cidr: str, gateway: str) -> rtmsg:
    """``<cidr> via <gateway> proto 108`` in the main table (the device is the kernel's choice)."""
    net = ipaddress.ip_network(cidr)
    return rtnl.route_msg(str(net.network_address), net.prefixlen, gateway, 0, net.version, proto=RTPROT_LABCTL)
