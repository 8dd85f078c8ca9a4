"""A pod whose network is gone is noticed from sysfs, without running a process."""

from __future__ import annotations

import pytest

from labctl.agent.kubelet.network import pod_network_problem
from labctl.cni.bridge import host_veth_name

SANDBOX = "4f1c" * 16


@pytest.fixture
def sys_class_net(tmp_path):
    (tmp_path / "cni0").mkdir()
    (tmp_path / "eth0").mkdir()
    return tmp_path


def plug(sys_class_net, name: str, master: str | None = "cni0") -> None:
    (sys_class_net / name).mkdir()
    if master:
        (sys_class_net / name / "master").symlink_to(f"../{master}")


def test_a_veth_on_the_bridge_is_fine(sys_class_net):
    plug(sys_class_net, host_veth_name(SANDBOX, "eth0"))
    assert pod_network_problem(SANDBOX, sys_class_net=sys_class_net) == ""


def test_a_deleted_veth_is_named(sys_class_net):
    veth = host_veth_name(SANDBOX, "eth0")
    assert pod_network_problem(SANDBOX, sys_class_net=sys_class_net) == f"its veth {veth} is gone"


@pytest.mark.parametrize("master", [None, "eth0"])
def test_a_veth_off_the_bridge_is_named(sys_class_net, master):
    veth = host_veth_name(SANDBOX, "eth0")
    plug(sys_class_net, veth, master)
    assert pod_network_problem(SANDBOX, sys_class_net=sys_class_net) == f"its veth {veth} is not attached to cni0"
