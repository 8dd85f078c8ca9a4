"""The node agent's load balancer addresses (``lbannounce.sync_addresses``) in a throwaway netns.

It lives beside the route sync's test: both are the agent's netlink work on its own node,
over :mod:`labctl.cni.rtnl`, run here in a fresh Python inside the node (``ip netns exec``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest
from cni_helpers import Netns

pytestmark = pytest.mark.root

SYNC = """import json, sys
from labctl.agent.lbannounce import sync_addresses
added, removed = sync_addresses("172.30.0.2", set(json.loads(sys.argv[1])))
print(json.dumps([sorted(added), sorted(removed)]))
"""


@pytest.fixture
def node(netns_factory: Any) -> Netns:
    """A node with its InternalIP on eth0 (a veth standing in for Docker's) and a default route."""
    ns = netns_factory("lcl").as_lab_node()
    ns.run("ip", "route", "add", "default", "via", "172.30.0.1")
    return ns


def sync(ns: Netns, wanted: list[str]) -> list[list[str]]:
    return json.loads(ns.run(sys.executable, "-c", SYNC, json.dumps(wanted)).stdout)


def labelled(ns: Netns) -> list[str]:
    return sorted(line.split()[3] for line in ns.run("ip", "-4", "-o", "addr", "show", "label", "eth0:lb").stdout.splitlines())


def test_addresses_are_added_labelled_and_withdrawn(node: Netns) -> None:
    assert sync(node, ["172.30.0.200", "172.30.0.201"]) == [["172.30.0.200", "172.30.0.201"], []]
    assert labelled(node) == ["172.30.0.200/32", "172.30.0.201/32"]
    assert sync(node, ["172.30.0.201"]) == [[], ["172.30.0.200"]]
    assert sync(node, ["172.30.0.201"]) == [[], []]
    assert sync(node, []) == [[], ["172.30.0.201"]]
    assert labelled(node) == []
    assert "172.30.0.2/24" in node.run("ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout  # the node's own stays


def test_the_gateway_is_never_announced(node: Netns) -> None:
    assert sync(node, ["172.30.0.1", "172.30.0.202"]) == [["172.30.0.202"], []]
    assert labelled(node) == ["172.30.0.202/32"]
