"""host-gw route sync in a throwaway netns standing in for a node.

The sync works on the netns of the process that runs it, as the node agent's does: each
step runs ``labctl.cni.routes`` in a fresh Python inside the node (``ip netns exec``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from cni_helpers import Netns

pytestmark = pytest.mark.root

#: sync to argv[1]'s routes (JSON; null: only list), then print the error and what is listed
SYNC = """import json, sys
from labctl.cni.routes import RouteSyncError, list_pod_cidr_routes, sync_pod_cidr_routes
wanted, error = json.loads(sys.argv[1]), ""
if wanted is not None:
    try:
        sync_pod_cidr_routes(wanted)
    except RouteSyncError as err:
        error = str(err)
print(json.dumps({"error": error, "routes": list_pod_cidr_routes()}))
"""


@pytest.fixture
def node(netns_factory: Any) -> Netns:
    """A node with an InternalIP on a lab network (a veth stands in for Docker's eth0)."""
    ns = netns_factory("lcr").as_lab_node()
    ns.run("ip", "route", "add", "10.99.0.0/24", "via", "172.30.0.254")  # a student's own route
    return ns


def sync(ns: Netns, wanted: dict[str, str] | None) -> tuple[str, dict[str, str]]:
    """(the sync's error, ``list_pod_cidr_routes()`` after it) inside ``ns``."""
    out = json.loads(ns.run(sys.executable, "-c", SYNC, json.dumps(wanted)).stdout)
    return out["error"], out["routes"]


def routes(ns: Netns) -> str:
    return ns.run("ip", "route").stdout


def test_sync_adds_replaces_and_removes_only_its_own(node: Netns) -> None:
    wanted = {"10.244.0.0/24": "172.30.0.3", "10.244.2.0/24": "172.30.0.4"}
    assert sync(node, wanted) == ("", wanted)
    assert "10.244.2.0/24 via 172.30.0.4 dev eth0 proto 108" in routes(node)
    # worker2 went away, control-plane changed its IP
    assert sync(node, {"10.244.0.0/24": "172.30.0.9"}) == ("", {"10.244.0.0/24": "172.30.0.9"})
    assert "10.99.0.0/24 via 172.30.0.254" in routes(node)
    assert sync(node, {}) == ("", {})
    assert "10.99.0.0/24 via 172.30.0.254" in routes(node)


def test_sync_is_idempotent(node: Netns) -> None:
    wanted = {"10.244.3.0/24": "172.30.0.5"}
    sync(node, wanted)
    before = routes(node)
    assert sync(node, wanted) == ("", wanted)
    assert routes(node) == before


def test_a_route_made_by_hand_with_our_protocol_is_listed_and_removed(node: Netns) -> None:
    node.run("ip", "route", "add", "10.244.6.0/24", "via", "172.30.0.7", "proto", "108")
    assert sync(node, None) == ("", {"10.244.6.0/24": "172.30.0.7"})
    assert sync(node, {}) == ("", {})
    assert "10.244.6.0/24" not in routes(node)


def test_unreachable_node_does_not_block_the_others(node: Netns) -> None:
    error, listed = sync(node, {"10.244.4.0/24": "192.168.77.7", "10.244.5.0/24": "172.30.0.6"})
    assert "failed to add route '10.244.4.0/24' via '192.168.77.7'" in error
    assert listed == {"10.244.5.0/24": "172.30.0.6"}


def test_invalid_input_is_rejected_before_touching_routes(node: Netns) -> None:
    error, listed = sync(node, {"10.244.1.7/24": "172.30.0.3"})
    assert "invalid route '10.244.1.7/24'" in error
    assert listed == {}
