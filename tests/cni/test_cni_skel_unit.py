"""The protocol layer (skel) and config parsing, without running any plugin (no root)."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from labctl.cni import skel
from labctl.cni.types import CNIError, IPConfig, Result

ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "abc", "CNI_NETNS": "/run/netns/x", "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin"}
CONF = {"cniVersion": "1.0.0", "name": "labctl", "type": "labctl-bridge", "ipam": {"type": "labctl-host-local"}}


def run(env: dict[str, str], stdin: bytes, handler: Any = None) -> tuple[int, Any]:
    calls: list[skel.CmdArgs] = []

    def default(args: skel.CmdArgs) -> Result:
        calls.append(args)
        return Result(ips=[IPConfig("10.244.1.2/24", "10.244.1.1", 2)])

    funcs = skel.PluginFuncs(handler or default, handler or default, handler or default)
    out = io.StringIO()
    code = skel.run(funcs, env, io.BytesIO(stdin), out, io.StringIO())
    return code, json.loads(out.getvalue()) if out.getvalue() else None


def test_add_prints_result() -> None:
    code, out = run(ENV, json.dumps(CONF).encode())
    assert code == 0 and out["ips"] == [{"address": "10.244.1.2/24", "gateway": "10.244.1.1", "interface": 2}]


@pytest.mark.parametrize(
    "env,stdin,code,msg",
    [
        ({"CNI_NETNS": ""}, None, 4, "required env variables [CNI_NETNS] missing"),
        ({"CNI_COMMAND": "FROB"}, None, 4, "unknown CNI_COMMAND"),
        ({"CNI_IFNAME": "a/b"}, None, 4, "invalid interface name"),
        ({"CNI_IFNAME": "x" * 16}, None, 4, "invalid interface name"),
        ({}, b"{nope", 6, "failed to decode network configuration"),
        ({}, json.dumps(dict(CONF, cniVersion="2.0.0")).encode(), 1, "incompatible CNI versions"),
        ({"CNI_COMMAND": "CHECK"}, json.dumps(dict(CONF, cniVersion="0.3.1")).encode(), 1, "does not allow CHECK"),
    ],
)
def test_protocol_errors(env: dict[str, str], stdin: bytes | None, code: int, msg: str) -> None:
    rc, out = run({**ENV, **env}, stdin or json.dumps(CONF).encode())
    assert rc == 1 and out["code"] == code and msg in out["msg"]
    assert out["cniVersion"] == "1.0.0"


def test_del_needs_no_netns_and_prints_nothing() -> None:
    rc, out = run({**ENV, "CNI_COMMAND": "DEL", "CNI_NETNS": ""}, json.dumps(CONF).encode(), handler=lambda a: None)
    assert (rc, out) == (0, None)


def test_version_needs_no_other_env() -> None:
    rc, out = run({"CNI_COMMAND": "VERSION"}, b"")
    assert rc == 0 and out == {"cniVersion": "1.0.0", "supportedVersions": ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]}


def test_plugin_bug_is_still_protocol_json() -> None:
    def boom(args: skel.CmdArgs) -> None:
        raise RuntimeError("kaput")

    rc, out = run(ENV, json.dumps(CONF).encode(), handler=boom)
    assert rc == 1 and out["code"] == 999 and "kaput" in out["msg"]


def test_older_result_shape_has_ip_version() -> None:
    res = Result(cni_version="0.4.0", ips=[IPConfig("fd00::2/64", "fd00::1", 2)])
    assert res.to_json()["ips"][0]["version"] == "6"
    assert "version" not in Result(ips=[IPConfig("10.0.0.2/24")]).to_json()["ips"][0]


@pytest.mark.parametrize(
    "conf,msg",
    [
        ({"name": ""}, "'name' is required"),
        ({"ipam": {}}, "'ipam.type' is required"),
        ({"mtu": "1500"}, "'mtu' must be int"),
        ({"hairpinMode": "yes"}, "'hairpinMode' must be bool"),
        ({"bridge": "a-very-long-bridge-name"}, "longer than 15"),
    ],
)
def test_bridge_netconf_validation(conf: dict[str, Any], msg: str) -> None:
    from labctl.cni.bridge import load_netconf

    with pytest.raises(CNIError, match=msg) as err:
        load_netconf(json.dumps({**CONF, **conf}).encode())
    assert err.value.code == 7


def test_bridge_netconf_defaults_and_node_agent_config() -> None:
    from labctl.cni.bridge import host_veth_name, load_netconf

    n = load_netconf(json.dumps(CONF).encode())
    assert (n.bridge, n.mtu, n.is_gateway, n.hairpin_mode) == ("cni0", 1500, False, False)
    n = load_netconf(json.dumps({**CONF, "isDefaultGateway": True}).encode())
    assert n.is_gateway
    name = host_veth_name("abc", "eth0")
    assert name == host_veth_name("abc", "eth0") != host_veth_name("abc", "eth1")
    assert len(name) == 12 and name.startswith("veth")

