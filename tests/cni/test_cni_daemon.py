"""The thin plugins and the node's CNI daemon: who does the work, and what happens when it cannot.

The spec tests run against the daemon too (flavour ``labctl-daemon``); these pin what
is particular to it: the work is netlink in the daemon (no ``ip`` exec), the wiring is
the same layout, and a plugin without a usable daemon still answers per the spec.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cni_helpers import GATEWAY, REPO, Flavour, Netns, unique, write_shim
from conftest import PLUGIN_MODULES, cni_daemon

from labctl.cni import daemon, shim


def test_the_plugin_executable_is_perl_builtins_only(tmp_path: Path) -> None:
    """Its start-up is most of an ADD: no module at all (``use Socket`` alone costs ~7 ms), clean under strict."""
    script = shim.client_script("labctl-bridge", "labctl.cni.bridge", "/run/x's.sock", sys.executable, str(REPO))
    assert script.startswith("#!/usr/bin/perl\n")
    assert not re.search(r"^\s*(use|require)\b", script, re.M)
    (tmp_path / "labctl-bridge").write_text(script)
    proc = subprocess.run(["perl", "-Mstrict", "-Mwarnings", "-c", str(tmp_path / "labctl-bridge")],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr.strip().endswith("syntax OK"), proc.stderr


def test_without_a_daemon_version_is_answered_and_the_config_reaches_the_plugin(tmp_path: Path) -> None:
    """No socket: the plugin answers itself, with the stdin the runtime gave and its exit status."""
    write_shim(tmp_path / "labctl-bridge", "labctl.cni.bridge", str(tmp_path / "nobody-listens.sock"))
    run = functools.partial(subprocess.run, [str(tmp_path / "labctl-bridge")], capture_output=True, timeout=60)
    version = run(env={"CNI_COMMAND": "VERSION"}, input=b'{"cniVersion": "0.4.0"}')
    assert version.returncode == 0 and json.loads(version.stdout)["cniVersion"] == "0.4.0"
    bad = run(env={"CNI_COMMAND": "ADD"}, input=b'{"cniVersion": "0.4.0"}')
    assert bad.returncode == 1 and json.loads(bad.stdout)["code"] == 4  # CNI_CONTAINERID etc. missing


def test_request_round_trip() -> None:
    env = {"CNI_COMMAND": "ADD", "CNI_ARGS": "K8S_POD_NAME=web;IgnoreUnknown=1", "HOME": "/root"}
    plugin, netns, got_env, stdin = shim.decode_request(shim.encode_request("labctl-bridge", env, b'{"a": 1}\n'))
    assert (plugin, netns, stdin) == ("labctl-bridge", shim.netns_id(), b'{"a": 1}\n')
    assert got_env == {"CNI_COMMAND": "ADD", "CNI_ARGS": "K8S_POD_NAME=web;IgnoreUnknown=1"}  # only CNI's own


def test_daemon_answers_version_and_refuses_strangers() -> None:
    request = shim.encode_request("labctl-bridge", {"CNI_COMMAND": "VERSION"}, b"")
    code, _, rest = daemon.answer(request, shim.netns_id()).partition(b"\0")
    assert code == b"0" and json.loads(rest.partition(b"\0")[2])["cniVersion"] == "1.0.0"
    assert daemon.answer(request, b"1:2") == b"fallback\0"  # a caller in another netns
    assert daemon.answer(shim.encode_request("bridge", {}, b""), shim.netns_id()) == b"fallback\0"
    assert daemon.answer(b"garbage", shim.netns_id()) == b"fallback\0"


def _call(node: Netns, bin_dir: Path, pod: Netns, command: str, cid: str, conf: dict[str, Any]) -> tuple[int, Any, str]:
    env = {"PATH": os.environ["PATH"], "CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": pod.path,
           "CNI_IFNAME": "eth0", "CNI_PATH": str(bin_dir), "LABCTL_CNI_DEBUG": "1"}
    proc = subprocess.run(["nsenter", f"--net={node.path}", str(bin_dir / "labctl-bridge")], env=env,
                          input=json.dumps(conf).encode(), capture_output=True, timeout=60)
    out = proc.stdout.decode().strip()
    return proc.returncode, json.loads(out) if out else None, proc.stderr.decode()


@pytest.fixture
def daemon_flavour(netns_factory: Any, tmp_path: Path) -> Iterator[Flavour]:
    node = netns_factory("lcn")
    with cni_daemon(node) as bin_dir:
        yield Flavour("labctl-daemon", "labctl-bridge", "labctl-host-local", node=node, cni_bin=bin_dir,
                      data_dir=tmp_path / "ipam")


#: what differs between any two pods (MACs, indexes, names, timers), and an up link's operstate: a new
#: bridge's UP or UNKNOWN is settled later by the kernel's linkwatch work (up to 1 s, machine-wide), so
#: it depends on timing, not on the requests; the flags (``<…,UP,LOWER_UP>``) are compared as they are
MASK = re.compile(r"([0-9a-f]{2}:){5}[0-9a-f]{2}|\d+: |@if\d+|fe80::\S+|link-netns \S+|veth[0-9a-f]{8}|"
                  r"\d+\.\d+sec|tentative |state (UP|UNKNOWN) ")


def _layout(pod: Netns, node: Netns) -> list[str]:
    """What a student sees in the pod and on the node, minus what differs between any two pods (MACs, indexes)."""
    text = "\n".join([pod.run("ip", "-d", "addr").stdout, pod.run("ip", "-d", "route", "show", "table", "all").stdout,
                      node.run("bridge", "-d", "link").stdout, node.run("ip", "addr", "show", "cni0").stdout])
    return [MASK.sub("*", line) for line in text.splitlines()]


@pytest.mark.root
def test_daemon_wires_the_pod_over_netlink_in_the_documented_layout(daemon_flavour: Flavour, labctl: Flavour,
                                                                    netns_factory: Any, tmp_path: Path) -> None:
    """Through the daemon (netlink) the pod looks exactly as when the plugin process runs ``ip``."""
    f, pod, cid = daemon_flavour, netns_factory(), unique("c")
    rc, result, stderr = _call(f.node, f.cni_bin, pod, "ADD", cid, f.netconf())
    assert rc == 0, (result, stderr)
    assert "+ ip" not in stderr  # the fallback would print every ip command it runs
    veth = result["interfaces"][1]["name"]
    assert pod.run("ip", "route").stdout.splitlines()[0].strip() == f"default via {GATEWAY} dev eth0"
    by_ip = netns_factory()
    dataclasses.replace(labctl, data_dir=tmp_path / "ipam-exec").add(by_ip, unique("c"))  # the same first IP
    assert _layout(pod, f.node) == _layout(by_ip, labctl.node)
    assert f"{veth}@" in f.node.run("bridge", "link").stdout
    assert "hairpin on" in f.node.run("bridge", "-d", "link", "show", "dev", veth).stdout
    assert f"inet {GATEWAY}/24" in f.node.run("ip", "addr", "show", "cni0").stdout
    rc, _, stderr = _call(f.node, f.cni_bin, pod, "DEL", cid, f.netconf())
    assert rc == 0, stderr
    assert veth not in f.node.run("ip", "link").stdout


@pytest.mark.root
def test_without_a_daemon_the_plugin_does_the_work_itself(labctl: Flavour, netns_factory: Any,
                                                           tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for plugin, module in PLUGIN_MODULES.items():
        write_shim(bin_dir / plugin, module, str(tmp_path / "nobody-listens.sock"))
    pod, cid = netns_factory(), unique("c")
    rc, result, stderr = _call(labctl.node, bin_dir, pod, "ADD", cid, labctl.netconf())
    assert rc == 0, (result, stderr)
    assert "+ ip link add" in stderr  # done in the plugin process, with iproute2
    assert _call(labctl.node, bin_dir, pod, "DEL", cid, labctl.netconf())[0] == 0


@pytest.mark.root
def test_a_daemon_in_another_netns_is_not_used(daemon_flavour: Flavour, netns_factory: Any) -> None:
    """A plugin run by hand in some other netns must wire that netns, not the daemon's node."""
    other, pod, cid = netns_factory("lcn"), netns_factory(), unique("c")
    rc, result, stderr = _call(other, daemon_flavour.cni_bin, pod, "ADD", cid, daemon_flavour.netconf())
    assert rc == 0, (result, stderr)
    assert "+ ip link add" in stderr
    assert result["interfaces"][1]["name"] in other.run("ip", "link").stdout
    assert "cni0" not in daemon_flavour.node.run("ip", "link").stdout


def test_a_daemon_that_breaks_off_is_a_cni_error(tmp_path: Path) -> None:
    """Accepted, then closed without an answer: error code 5 in the config's cniVersion, no hang."""
    d = Path(tempfile.mkdtemp(prefix="lcd", dir="/tmp"))
    path = str(d / "cni.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()

    def accept_and_drop() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        conn.close()

    thread = threading.Thread(target=accept_and_drop)
    thread.start()
    write_shim(tmp_path / "labctl-bridge", "labctl.cni.bridge", path)
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/proc/self/ns/net", "CNI_IFNAME": "eth0",
           "CNI_PATH": str(tmp_path)}
    try:
        proc = subprocess.run([str(tmp_path / "labctl-bridge")], env=env, input=b'{"cniVersion": "0.4.0"}',
                              capture_output=True, timeout=30)
    finally:
        thread.join()
        server.close()
        os.unlink(path)
        d.rmdir()
    assert proc.returncode == 1
    error = json.loads(proc.stdout)
    assert (error["cniVersion"], error["code"]) == ("0.4.0", 5)
    assert "labctl CNI daemon" in error["msg"]


@pytest.mark.root
def test_daemon_repairs_the_node_bridge_between_adds(daemon_flavour: Flavour, netns_factory: Any) -> None:
    """The daemon keeps no stale view of the node: a bridge set down, then deleted, by hand is back at the next ADD."""
    f = daemon_flavour
    conf = f.netconf(promiscMode=True, mtu=1400)
    f.add(netns_factory(), unique("c"), conf=conf)
    details = f.node.run("ip", "-d", "link", "show", "cni0").stdout
    assert "promiscuity 1" in details and "mtu 1400" in details
    f.node.run("ip", "link", "set", "cni0", "down")
    pod = netns_factory()
    f.add(pod, unique("c"), conf=conf)
    flags = f.node.run("ip", "link", "show", "cni0").stdout.partition("<")[2].partition(">")[0]
    assert "UP" in flags.split(","), flags
    assert "mtu 1400" in pod.run("ip", "link", "show", "eth0").stdout
    f.node.run("ip", "link", "del", "cni0")
    result = f.add(netns_factory(), unique("c"), conf=conf).out or {}
    assert f"{result['interfaces'][1]['name']}@" in f.node.run("bridge", "link", "show", "master", "cni0").stdout
    assert f"inet {GATEWAY}/24" in f.node.run("ip", "addr", "show", "cni0").stdout
    f.node.run("ip", "link", "del", "cni0")
    f.node.run("ip", "link", "add", "cni0", "type", "veth", "peer", "name", "cni0p")
    refused = f.call("ADD", container_id=unique("c"), netns=netns_factory().path, conf=conf)
    assert (refused.rc, (refused.out or {}).get("code")) == (1, 7), refused
