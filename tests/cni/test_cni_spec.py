"""CNI spec behaviour, run side by side against labctl's plugins and the reference ones."""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from typing import Any

import pytest
from cni_helpers import GATEWAY, POD_CIDR, Flavour, unique

pytestmark = pytest.mark.root


def shape(result: dict[str, Any]) -> dict[str, Any]:
    """The parts of a result that must agree between plugins (names and MACs vary)."""
    return {
        "cniVersion": result["cniVersion"],
        "interfaces": [
            {"name": re.sub(r"^veth[0-9a-f]{8}$", "veth*", i["name"]), "mac": bool(i.get("mac")), "sandbox": "sandbox" in i}
            for i in result["interfaces"]
        ],
        "ips": [
            {"interface": i["interface"], "gateway": i.get("gateway"), "in_cidr": ipaddress.ip_interface(i["address"]).network == ipaddress.ip_network(POD_CIDR)}
            for i in result["ips"]
        ],
        "routes": result.get("routes"),
    }


def with_prev(conf: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    return dict(conf, prevResult=result)


def reserved_ips(flavour: Flavour) -> set[str]:
    d = flavour.data_dir / "labctl"
    return {p.name for p in d.iterdir() if re.match(r"^\d+\.\d+\.\d+\.\d+$", p.name)} if d.exists() else set()


def test_add_wires_pod_onto_bridge(flavour: Flavour, netns_factory: Any) -> None:
    pod = netns_factory()
    result = flavour.add(pod, unique("c")).out
    assert result is not None
    assert shape(result) == {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "cni0", "mac": True, "sandbox": False}, {"name": "veth*", "mac": True, "sandbox": False},
                       {"name": "eth0", "mac": True, "sandbox": True}],
        "ips": [{"interface": 2, "gateway": GATEWAY, "in_cidr": True}],
        "routes": [{"dst": "0.0.0.0/0"}],
    }
    assert result["interfaces"][2]["sandbox"] == pod.path
    address = result["ips"][0]["address"]
    assert address != f"{GATEWAY}/24"
    assert f"inet {address}" in pod.run("ip", "addr", "show", "eth0").stdout
    assert f"default via {GATEWAY} dev eth0" in pod.run("ip", "route").stdout
    assert f"inet {GATEWAY}/24" in flavour.node.run("ip", "addr", "show", "cni0").stdout
    ports = flavour.node.run("bridge", "-d", "link").stdout
    host_veth = result["interfaces"][1]["name"]
    assert re.search(rf"{host_veth}@\S+:.*master cni0", ports), ports
    assert "hairpin on" in ports


def test_labctl_result_matches_reference(cni_bin: Any, netns_factory: Any, tmp_path: Any) -> None:
    """Same config, same shape of answer; ADD latency is printed, measured properly in bench/."""
    shapes, seconds = {}, {}
    for name, bridge, ipam in (("labctl", "labctl-bridge", "labctl-host-local"), ("reference", "bridge", "host-local")):
        if not (cni_bin / bridge).exists():
            pytest.skip(f"plugin {bridge!r} missing")
        f = Flavour(name, bridge, ipam, node=netns_factory("lcn"), cni_bin=cni_bin, data_dir=tmp_path / name)
        run = f.add(netns_factory(), unique("c"))
        shapes[name], seconds[name] = shape(run.out or {}), run.seconds
    print(f"ADD latency: labctl {seconds['labctl'] * 1000:.0f} ms, reference {seconds['reference'] * 1000:.0f} ms")
    assert shapes["labctl"] == shapes["reference"]


def test_check_passes_then_detects_drift(flavour: Flavour, netns_factory: Any) -> None:
    pod, cid = netns_factory(), unique("c")
    result = flavour.add(pod, cid).out
    conf = with_prev(flavour.netconf(), result)
    ok = flavour.call("CHECK", container_id=cid, netns=pod.path, conf=conf)
    assert (ok.rc, ok.out) == (0, None), ok
    pod.run("ip", "route", "del", "default")
    drift = flavour.call("CHECK", container_id=cid, netns=pod.path, conf=conf)
    assert drift.rc != 0 and drift.out and drift.out["code"] and "0.0.0.0" in drift.out["msg"], drift


def test_check_detects_veth_moved_off_bridge(flavour: Flavour, netns_factory: Any) -> None:
    pod, cid = netns_factory(), unique("c")
    result = flavour.add(pod, cid).out or {}
    flavour.node.run("ip", "link", "set", result["interfaces"][1]["name"], "nomaster")
    drift = flavour.call("CHECK", container_id=cid, netns=pod.path, conf=with_prev(flavour.netconf(), result))
    assert drift.rc != 0 and drift.out and "veth" in drift.out["msg"], drift


def test_check_without_prev_result_is_an_error(flavour: Flavour, netns_factory: Any) -> None:
    pod, cid = netns_factory(), unique("c")
    flavour.add(pod, cid)
    run = flavour.call("CHECK", container_id=cid, netns=pod.path)
    assert run.rc != 0 and run.out and "prevResult" in run.out["msg"], run


def test_del_releases_and_twice_is_fine(flavour: Flavour, netns_factory: Any) -> None:
    pod, cid = netns_factory(), unique("c")
    result = flavour.add(pod, cid).out or {}
    assert len(reserved_ips(flavour)) == 1
    for _ in range(2):
        run = flavour.call("DEL", container_id=cid, netns=pod.path)
        assert (run.rc, run.out) == (0, None), run
    assert reserved_ips(flavour) == set()
    assert "eth0" not in pod.run("ip", "link").stdout
    assert result["interfaces"][1]["name"] not in flavour.node.run("ip", "link").stdout


def test_del_after_netns_is_gone_still_releases(flavour: Flavour, netns_factory: Any) -> None:
    pod, cid = netns_factory(), unique("c")
    flavour.add(pod, cid)
    subprocess.run(["ip", "netns", "del", pod.name], check=True)
    assert flavour.call("DEL", container_id=cid, netns=pod.path).rc == 0
    assert flavour.call("DEL", container_id=cid, netns="").rc == 0
    assert reserved_ips(flavour) == set()


def test_version_lists_supported_versions(flavour: Flavour) -> None:
    run = flavour.call("VERSION", conf=b"")
    assert run.rc == 0 and run.out
    assert {"0.4.0", "1.0.0"} <= set(run.out["supportedVersions"])
    assert run.out["cniVersion"] == "1.0.0"


BAD_CONFIGS = {
    "not-json": (b'{"cniVersion": "1.0.0", "name": ', {}, 6),
    "no-name": ({"name": ""}, {}, 7),
    "unknown-version": ({"cniVersion": "9.9.9"}, {}, 1),
    "missing-netns-env": (None, {"CNI_NETNS": ""}, 4),
    "bad-container-id": (None, {"CNI_CONTAINERID": "-bad id"}, 4),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_input_gives_spec_error(flavour: Flavour, netns_factory: Any, case: str) -> None:
    raw, env, code = BAD_CONFIGS[case]
    conf = raw if isinstance(raw, bytes) else flavour.netconf(**raw) if raw is not None else None
    pod = netns_factory()
    run = flavour.call("ADD", container_id=unique("c"), netns=pod.path, conf=conf, env=env)
    assert run.rc != 0
    assert run.out and run.out["code"] == code and run.out["msg"], run
    assert reserved_ips(flavour) == set()


def test_failed_add_leaks_no_address(flavour: Flavour) -> None:
    """ADD into a netns that does not exist fails cleanly and keeps the IP free."""
    run = flavour.call("ADD", container_id=unique("c"), netns=f"/run/netns/{unique('gone')}")
    assert run.rc != 0 and run.out and run.out["msg"], run
    assert reserved_ips(flavour) == set()


def test_second_add_for_same_container_is_refused(flavour: Flavour, netns_factory: Any) -> None:
    pod, cid = netns_factory(), unique("c")
    first = flavour.add(pod, cid).out or {}
    again = flavour.call("ADD", container_id=cid, netns=pod.path)
    assert again.rc != 0 and again.out and again.out["msg"]
    assert reserved_ips(flavour) == {first["ips"][0]["address"].split("/")[0]}


def test_conflist_version_040_result(flavour: Flavour, netns_factory: Any) -> None:
    """An older but spec-valid config gets the older result shape (ips carry "version")."""
    run = flavour.add(netns_factory(), unique("c"), conf=flavour.netconf(cniVersion="0.4.0"))
    assert run.out and run.out["cniVersion"] == "0.4.0"
    assert run.out["ips"][0]["version"] == "4"
    assert json.dumps(run.out)
