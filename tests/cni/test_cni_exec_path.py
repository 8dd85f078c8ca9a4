"""What a plugin exec costs and shows: stdlib-only imports, iproute2 commands, route edge cases.

Each CNI call is a fresh process, so what the plugins import is paid per pod
(pyroute2 alone cost 0.3-0.9 s). These tests pin the import set instead of
timing it (timings live in bench/cni_add.py).
"""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from cni_helpers import REPO, Flavour, unique

#: Imported by nothing on a plugin's exec path: pyroute2 and the stdlib modules that cost most.
HEAVY = ("pyroute2", "asyncio", "pathlib", "dataclasses", "inspect", "typing", "traceback")

IMPORT_PLUGINS = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
import labctl.cni.bridge, labctl.cni.ipam.plugin, labctl.cni.portmap
labctl.cni.bridge.host_veth_name("c", "eth0")
labctl.cni.portmap_rules.dnat_chain_name("labctl", "c")
print(" ".join(sorted({{m.split(".")[0] for m in sys.modules}} & set(sys.argv[1:]))))
"""


def test_plugins_import_only_cheap_stdlib_modules() -> None:
    """``python -S``: no site-packages at all, so a third-party import would fail here too."""
    proc = subprocess.run([sys.executable, "-S", "-c", IMPORT_PLUGINS, *HEAVY], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [], f"plugin exec path imports {proc.stdout.strip()}"


@pytest.mark.root
def test_debug_log_shows_the_iproute2_commands(labctl: Flavour, netns_factory: Any) -> None:
    pod, cid = netns_factory(), unique("c")
    run = labctl.call("ADD", container_id=cid, netns=pod.path, env={"LABCTL_CNI_DEBUG": "1"})
    assert run.rc == 0, run
    assert f"+ ip link add {(run.out or {})['interfaces'][1]['name']} mtu 1500 type veth peer name eth0" in run.stderr
    assert f"+ nsenter --net={pod.path} ip -batch -" in run.stderr


@pytest.mark.root
def test_route_duplicating_the_subnet_route_is_skipped(flavour: Flavour, netns_factory: Any) -> None:
    """Like the reference, a route the kernel already has (the connected podCIDR) is not an error."""
    conf = flavour.netconf()
    conf["ipam"]["routes"] = [{"dst": "10.244.1.0/24", "gw": "10.244.1.1"}, {"dst": "0.0.0.0/0"}]
    pod = netns_factory()
    flavour.add(pod, unique("c"), conf=conf)
    routes = pod.run("ip", "route").stdout
    assert "default via 10.244.1.1 dev eth0" in routes and "10.244.1.0/24 dev eth0 proto kernel" in routes


@pytest.mark.root
def test_unroutable_gateway_fails_with_the_route_named_and_no_leak(labctl: Flavour, netns_factory: Any) -> None:
    conf = labctl.netconf()
    conf["ipam"]["routes"] = [{"dst": "10.99.0.0/16", "gw": "192.168.99.1"}]
    pod = netns_factory()
    run = labctl.call("ADD", container_id=unique("c"), netns=pod.path, conf=conf)
    assert run.rc == 1 and run.out, run
    assert (run.out["code"], run.out["msg"]) == (5, "failed to add route to '10.99.0.0/16' via '192.168.99.1'")
    assert [p.name for p in (labctl.data_dir / "labctl").iterdir() if p.name[0].isdigit()] == []
    assert "veth" not in labctl.node.run("ip", "link").stdout
    assert "eth0" not in pod.run("ip", "link").stdout
