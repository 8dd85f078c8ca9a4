"""host-gw route sync in a throwaway netns standing in for a node."""

from __future__ import annotations

from typing import Any

import pytest
from cni_helpers import Netns

pytestmark = pytest.mark.root


@pytest.fixture
def node(netns_factory: Any) -> Netns:
    """A node with an InternalIP on a lab network (a veth stands in for Docker's eth0)."""
    ns = netns_factory("lcr")
    ns.run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
    for link in ("eth0", "peer0"):
        ns.run("ip", "link", "set", link, "up")
    ns.run("ip", "addr", "add", "172.30.0.2/24", "dev", "eth0")
    ns.run("ip", "route", "add", "10.99.0.0/24", "via", "172.30.0.254")  # a student's own route
    return ns


def routes(ns: Netns) -> str:
    return ns.run("ip", "route").stdout


def test_sync_adds_replaces_and_removes_only_its_own(node: Netns) -> None:
    from labctl.cni.routes import list_pod_cidr_routes, sync_pod_cidr_routes

    sync_pod_cidr_routes({"10.244.0.0/24": "172.30.0.3", "10.244.2.0/24": "172.30.0.4"}, netns=node.path)
    assert list_pod_cidr_routes(node.path) == {"10.244.0.0/24": "172.30.0.3", "10.244.2.0/24": "172.30.0.4"}
    assert "10.244.2.0/24 via 172.30.0.4 dev eth0 proto 108" in routes(node)
    # worker2 went away, control-plane changed its IP
    sync_pod_cidr_routes({"10.244.0.0/24": "172.30.0.9"}, netns=node.path)
    assert list_pod_cidr_routes(node.path) == {"10.244.0.0/24": "172.30.0.9"}
    assert "10.99.0.0/24 via 172.30.0.254" in routes(node)
    sync_pod_cidr_routes({}, netns=node.path)
    assert list_pod_cidr_routes(node.path) == {}
    assert "10.99.0.0/24 via 172.30.0.254" in routes(node)


def test_sync_is_idempotent(node: Netns) -> None:
    from labctl.cni.routes import sync_pod_cidr_routes

    wanted = {"10.244.3.0/24": "172.30.0.5"}
    sync_pod_cidr_routes(wanted, netns=node.path)
    before = routes(node)
    sync_pod_cidr_routes(wanted, netns=node.path)
    assert routes(node) == before


def test_unreachable_node_does_not_block_the_others(node: Netns) -> None:
    from labctl.cni.routes import RouteSyncError, list_pod_cidr_routes, sync_pod_cidr_routes

    with pytest.raises(RouteSyncError) as err:
        sync_pod_cidr_routes({"10.244.4.0/24": "192.168.77.7", "10.244.5.0/24": "172.30.0.6"}, netns=node.path)
    assert "failed to add route '10.244.4.0/24' via '192.168.77.7'" in str(err.value)
    assert list_pod_cidr_routes(node.path) == {"10.244.5.0/24": "172.30.0.6"}


def test_invalid_input_is_rejected_before_touching_routes(node: Netns) -> None:
    from labctl.cni.routes import RouteSyncError, sync_pod_cidr_routes

    with pytest.raises(RouteSyncError, match="invalid route '10.244.1.7/24'"):
        sync_pod_cidr_routes({"10.244.1.7/24": "172.30.0.3"}, netns=node.path)
