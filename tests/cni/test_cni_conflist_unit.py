"""Network configuration lists as libcni reads and runs them (pure parts of labctl.cni.invoke)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from labctl.agent.kubelet.network import build_netconf
from labctl.cni import invoke
from labctl.cni.types import CNIError


def test_node_config_is_a_bridge_then_portmap_list() -> None:
    conf = invoke.parse_netconf_file("10-labctl.conflist", json.dumps(build_netconf("10.244.1.0/24")).encode())
    assert (conf["cniVersion"], conf["name"]) == ("1.0.0", "labctl")
    assert [p["type"] for p in conf["plugins"]] == ["labctl-bridge", "labctl-portmap"]
    assert conf["plugins"][1]["capabilities"] == {"portMappings": True}


@pytest.mark.parametrize("name, body, message", [
    ("10-x.conflist", {"cniVersion": "1.0.0", "name": "x", "type": "bridge"}, "no 'plugins' key"),
    ("10-x.conflist", {"cniVersion": "1.0.0", "name": "x", "plugins": []}, "'plugins' must be a non-empty list"),
    ("10-x.conflist", {"cniVersion": "1.0.0", "plugins": [{"type": "bridge"}]}, "no name"),
    ("10-x.conflist", {"name": "x", "plugins": [{"bridge": "cni0"}]}, "plugins[0] has no 'type'"),
    ("10-x.conf", {"name": "x"}, "missing 'type'"),
])
def test_bad_files_fail_with_libcni_messages(name: str, body: dict[str, Any], message: str) -> None:
    with pytest.raises(CNIError) as err:
        invoke.parse_netconf_file(name, json.dumps(body).encode())
    assert message in err.value.msg


def test_a_conf_file_becomes_a_list_of_one() -> None:
    conf = invoke.parse_netconf_file("10-x.conf", b'{"cniVersion":"0.4.0","name":"x","type":"bridge","mtu":1400}')
    assert conf == {"cniVersion": "0.4.0", "name": "x", "plugins": [{"type": "bridge", "mtu": 1400}]}


def test_capability_args_go_only_to_plugins_declaring_them() -> None:
    ports = [{"hostPort": 8081, "containerPort": 80, "protocol": "tcp"}]
    confs = invoke._plugin_confs(build_netconf("10.244.1.0/24"), {"portMappings": ports, "bandwidth": {}})
    assert [c["name"] for c in confs] == ["labctl", "labctl"] and all(c["cniVersion"] == "1.0.0" for c in confs)
    assert "runtimeConfig" not in confs[0]
    assert confs[1]["runtimeConfig"] == {"portMappings": ports}
    assert "runtimeConfig" not in invoke._plugin_confs(build_netconf("10.244.1.0/24"))[1]


def test_load_dir_picks_the_first_file_by_name(tmp_path: Any) -> None:
    (tmp_path / "20-b.conf").write_text('{"name":"b","type":"bridge"}')
    (tmp_path / "10-a.conflist").write_text('{"name":"a","plugins":[{"type":"bridge"}]}')
    (tmp_path / "05-ignored.txt").write_text("not a config")
    assert invoke.load_netconf_dir(str(tmp_path))["name"] == "a"
