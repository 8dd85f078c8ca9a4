"""Scoped netlink access to network namespaces (pyroute2).

Every function that touches a pod works inside ``with pod_netlink(path)``:
pyroute2 opens its netlink socket inside the namespace, so the plugin
process itself never switches namespace and cannot be left in the wrong one
(the hazard containernetworking's ``ns.Do`` documents at length).
"""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from labctl.cni import types
from labctl.cni.types import CNIError

__all__ = ["IPRoute", "NetlinkError", "pod_netlink", "netns_fd", "link_index", "get_link"]


@contextlib.contextmanager
def pod_netlink(netns_path: str) -> Iterator[IPRoute]:
    """Yield an ``IPRoute`` bound to the namespace at ``netns_path``."""
    if not os.path.exists(netns_path):
        raise CNIError(types.ERR_UNKNOWN_CONTAINER, f"failed to open netns {netns_path!r}", "no such file")
    try:
        ipr = IPRoute(netns=netns_path)
    except OSError as err:
        raise CNIError(types.ERR_UNKNOWN_CONTAINER, f"failed to open netns {netns_path!r}", str(err)) from err
    try:
        yield ipr
    finally:
        ipr.close()


@contextlib.contextmanager
def netns_fd(netns_path: str) -> Iterator[int]:
    """Yield an fd on the namespace, for moving a link into it (IFLA_NET_NS_FD)."""
    try:
        fd = os.open(netns_path, os.O_RDONLY)
    except OSError as err:
        raise CNIError(types.ERR_UNKNOWN_CONTAINER, f"failed to open netns {netns_path!r}", str(err)) from err
    try:
        yield fd
    finally:
        os.close(fd)


def link_index(ipr: IPRoute, name: str) -> int | None:
    """Return the index of link ``name`` or None, looked up by name every time."""
    found = ipr.link_lookup(ifname=name)
    return found[0] if found else None


def get_link(ipr: IPRoute, index: int) -> dict:
    """Return a link's attributes as a plain dict (ifname, kind, master, mac, link)."""
    msg = ipr.get_links(index)[0]
    info = msg.get("IFLA_LINKINFO")
    return {
        "index": msg["index"],
        "ifname": msg.get("IFLA_IFNAME"),
        "kind": info.get("IFLA_INFO_KIND") if info else None,
        "master": msg.get("IFLA_MASTER"),
        "mac": msg.get("IFLA_ADDRESS"),
        "link": msg.get("IFLA_LINK"),
        "mtu": msg.get("IFLA_MTU"),
        "up": bool(msg["flags"] & 1),
    }
