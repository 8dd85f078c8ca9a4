"""``ip -j route show`` → routes, each with the node it leads to.

labctl's nodes route pods host-gw style (flannel's host-gw, kindnet): the node agent adds
``10.244.N.0/24 via <InternalIP of node N> proto labctl`` for every other node, and the
kernel's own ``10.244.M.0/24 dev cni0`` holds this node's pods. Naming the node behind each
gateway is what turns ``via 172.30.1.4`` into "to worker2's pods".
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from .model import Route

__all__ = ["parse_routes"]


def parse_routes(routes_json: str, node_ips: Mapping[str, str], bridge: str = "cni0") -> list[Route]:
    """Routes of the main table; ``node_ips`` maps InternalIP → node name for the whole lab."""
    out = []
    for r in json.loads(routes_json or "[]"):
        gateway, device = r.get("gateway", ""), r.get("dev", "")
        dst = r.get("dst", "")
        if gateway and gateway in node_ips:
            leads_to, node = "node", node_ips[gateway]
        elif device == bridge:
            leads_to, node = "bridge", ""
        elif dst == "default":
            leads_to, node = "host", ""
        else:
            leads_to, node = "lab-network", ""
        out.append(Route(dst, gateway, device, r.get("protocol", ""), r.get("scope", ""), r.get("prefsrc", ""),
                         leads_to, node))
    return out
