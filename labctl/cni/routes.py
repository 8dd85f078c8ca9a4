"""host-gw routes: ``<other node's podCIDR> via <its InternalIP>`` on this node.

The node agent calls :func:`sync_pod_cidr_routes` with the full wanted set
whenever Nodes come and go (like kindnet / flannel host-gw). Our routes carry
their own protocol number, :data:`RTPROT_LABCTL`, so sync only ever replaces
or deletes routes it made, never the Docker default route or a student's own
experiment. ``ip route show proto 108`` lists exactly them on a node.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

#: Route protocol tag for labctl's routes (``proto 108`` in ``ip route``); 108 is 'l',
#: unused by the kernel's and routing daemons' well-known numbers (<= 99, 186-192).
RTPROT_LABCTL = 108
MAIN_TABLE = 254
ESRCH = 3  # route already gone


class RouteSyncError(Exception):
    """Some routes could not be programmed; ``errors`` lists each failure."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def _open(netns: str | None) -> IPRoute:
    return IPRoute(netns=netns) if netns else IPRoute()


def _route_key(msg: Any) -> str:
    family_any = "0.0.0.0" if msg["family"] == 2 else "::"
    return str(ipaddress.ip_network(f"{msg.get('RTA_DST') or family_any}/{msg['dst_len']}"))


def list_pod_cidr_routes(netns: str | None = None) -> dict[str, str]:
    """Return ``{podCIDR: InternalIP}`` for the routes labctl made on this node."""
    current: dict[str, str] = {}
    with _open(netns) as ipr:
        for family in (2, 10):
            for msg in ipr.get_routes(family=family, table=MAIN_TABLE):
                if msg["proto"] == RTPROT_LABCTL:
                    current[_route_key(msg)] = msg.get("RTA_GATEWAY") or ""
    return current


def _normalize(routes: dict[str, str]) -> dict[str, str]:
    out = {}
    for cidr, gateway in routes.items():
        try:
            out[str(ipaddress.ip_network(cidr, strict=True))] = str(ipaddress.ip_address(gateway))
        except ValueError as err:
            raise RouteSyncError([f"invalid route {cidr!r} via {gateway!r}: {err}"]) from err
    return out


def sync_pod_cidr_routes(routes: dict[str, str], netns: str | None = None) -> None:
    """Make labctl's routes exactly ``routes`` (``{podCIDR: InternalIP}``); idempotent.

    Tries every route even when one fails (a node whose IP is not yet reachable
    must not block the others) and raises :class:`RouteSyncError` at the end.
    """
    wanted = _normalize(routes)
    current = list_pod_cidr_routes(netns)
    errors: list[str] = []
    with _open(netns) as ipr:
        for cidr, gateway in sorted(wanted.items()):
            if current.get(cidr) == gateway:
                continue
            net = ipaddress.ip_network(cidr)
            try:
                ipr.route("replace", dst=str(net.network_address), dst_len=net.prefixlen, gateway=gateway,
                          proto=RTPROT_LABCTL, table=MAIN_TABLE)
            except NetlinkError as err:
                errors.append(f"failed to add route {cidr!r} via {gateway!r}: {err}")
        for cidr, gateway in sorted(current.items()):
            if cidr in wanted:
                continue
            net = ipaddress.ip_network(cidr)
            try:
                ipr.route("del", dst=str(net.network_address), dst_len=net.prefixlen, proto=RTPROT_LABCTL,
                          table=MAIN_TABLE, **({"gateway": gateway} if gateway else {}))
            except NetlinkError as err:
                if err.code != ESRCH:
                    errors.append(f"failed to delete route {cidr!r} via {gateway!r}: {err}")
    if errors:
        raise RouteSyncError(errors)
