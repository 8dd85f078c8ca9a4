"""The node's CNI configuration list driven through libcni, the library real runtimes use.

containerd, CRI-O and podman do not exec plugins themselves: they load ``/etc/cni/net.d``
with libcni and call ``AddNetworkList``/``CheckNetworkList``/``DelNetworkList``. A small Go
program (``libcni/main.go``) built against Debian's ``golang-github-appc-cni-dev`` does the
same here, on a copy of the file the node agent writes (:func:`build_netconf`) next to the
plugin executables, inside a throwaway node netns, and in a real lab node on its own
``/etc/cni/net.d`` and ``/opt/cni/bin``. Built once per source version (static, so it runs in
a node too) and cached in the temp dir; without ``go`` the tests skip and say which packages
to install.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cni_helpers import POD_CIDR, Flavour, unique

from labctl.agent.kubelet.network import CNI_CONF_FILE, build_netconf
from labctl.cni import invoke
from labctl.cni.portmap_rules import dnat_chain_name
from labctl.cni.types import CNIError

SOURCE = Path(__file__).parent / "libcni" / "main.go"
GOPATH = Path("/usr/share/gocode")  # where Debian's golang-*-dev packages put Go library sources
LIBCNI = GOPATH / "src/github.com/containernetworking/cni/libcni"
PACKAGES = "apt-get install -y golang-go golang-github-appc-cni-dev"
MAPPINGS = [{"hostPort": 8081, "containerPort": 80, "protocol": "tcp"}]

Tool = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def libcni_binary() -> Path:
    """``cnichain-libcni`` built offline (GOPATH mode: no module proxy), cached by source hash."""
    go = shutil.which("go")
    if go is None or not LIBCNI.is_dir():
        reason = f"needs go and libcni's sources ({PACKAGES})"
        print(f"SKIP libcni tests: {reason}")
        pytest.skip(reason)
    digest = hashlib.sha256(SOURCE.read_bytes()).hexdigest()[:16]
    out_dir = Path(tempfile.gettempdir()) / f"labctl-libcni-{digest}"
    binary = out_dir / "cnichain-libcni"
    if not binary.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "GO111MODULE": "off", "GOPATH": str(GOPATH), "GOFLAGS": "",
               "GOCACHE": str(out_dir / "cache"), "CGO_ENABLED": "0"}
        tmp = out_dir / f"cnichain-libcni.{os.getpid()}"
        proc = subprocess.run([go, "build", "-o", str(tmp), SOURCE.name], cwd=SOURCE.parent, env=env,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"go build failed:\n{proc.stderr}"
        os.replace(tmp, binary)  # atomic: parallel sessions never run a half-written binary
    return binary


def conf_dir_for(flavour: Flavour, tmp_path: Path) -> Path:
    """A copy of the node's /etc/cni/net.d: labctl's exact list, or the reference plugins in its shape."""
    conf = build_netconf(POD_CIDR) if flavour.name.startswith("labctl") else flavour.conflist()
    conf["plugins"][0]["ipam"]["dataDir"] = str(flavour.data_dir)
    if not flavour.name.startswith("labctl"):
        conf["plugins"][0]["type"], conf["plugins"][0]["ipam"]["type"] = flavour.bridge_type, flavour.ipam_type
    d = tmp_path / "net.d"
    d.mkdir()
    (d / CNI_CONF_FILE).write_text(json.dumps(conf, indent=2))
    return d


def tool_for(binary: Path, flavour: Flavour, conf_dir: Path, cache: Path) -> Tool:
    def run(command: str, container_id: str, netns: str, mappings: list[dict[str, Any]] | None = None) -> Any:
        argv = ["nsenter", f"--net={flavour.node.path}", str(binary), command, str(conf_dir), str(flavour.cni_bin),
                str(cache), container_id, netns]
        if mappings is not None:
            argv.append(json.dumps(mappings))
        return subprocess.run(argv, capture_output=True, text=True, timeout=120)
    return run


def nat_rules(flavour: Flavour) -> str:
    return flavour.node.run("iptables-save", "-t", "nat").stdout


@pytest.mark.root
def test_add_check_del_through_libcni(flavour: Flavour, netns_factory: Any, libcni_binary: Path,
                                      tmp_path: Path) -> None:
    """The list loads; ADD wires eth0 and the hostPort; CHECK passes; DEL (twice) releases all."""
    if not (flavour.cni_bin / flavour.portmap_type).exists():
        pytest.skip("reference portmap missing: apt-get install containernetworking-plugins")
    run = tool_for(libcni_binary, flavour, conf_dir_for(flavour, tmp_path), tmp_path / "cache")
    pod, cid = netns_factory(), unique("c")
    added = run("add", cid, pod.path, MAPPINGS)
    assert added.returncode == 0, added.stderr
    result = json.loads(added.stdout)
    address = result["ips"][0]["address"]
    ip = address.split("/")[0]
    assert address.startswith("10.244.1.") and result["interfaces"][result["ips"][0]["interface"]]["name"] == "eth0"
    assert f"inet {address}" in pod.run("ip", "-4", "addr", "show", "dev", "eth0").stdout
    chain = dnat_chain_name("labctl", cid)
    assert f"-A {chain} -p tcp -m tcp --dport 8081 -j DNAT --to-destination {ip}:80" in nat_rules(flavour)
    checked = run("check", cid, pod.path, MAPPINGS)
    # Debian's portmap 1.1.1 also checks ip6tables for an IPv4-only pod (fixed upstream since)
    reference_bug = flavour.name == "reference" and "could not check ipv6 dnat" in checked.stderr
    assert checked.returncode == 0 or reference_bug, checked.stderr
    for _ in range(2):
        deleted = run("del", cid, pod.path, MAPPINGS)
        assert deleted.returncode == 0, deleted.stderr
    assert chain not in nat_rules(flavour)
    assert not (flavour.data_dir / "labctl" / ip).exists(), "the IP must be released"
    assert "eth0" not in pod.run("ip", "link").stdout


@pytest.mark.root
def test_check_through_libcni_notices_a_lost_hostport_rule(labctl: Flavour, netns_factory: Any,
                                                          libcni_binary: Path, tmp_path: Path) -> None:
    run = tool_for(libcni_binary, labctl, conf_dir_for(labctl, tmp_path), tmp_path / "cache")
    pod, cid = netns_factory(), unique("c")
    assert run("add", cid, pod.path, MAPPINGS).returncode == 0
    labctl.node.run("iptables", "-t", "nat", "-F", dnat_chain_name("labctl", cid))
    checked = run("check", cid, pod.path, MAPPINGS)
    assert checked.returncode == 1 and "not found in iptables table nat" in checked.stderr
    assert run("del", cid, pod.path, MAPPINGS).returncode == 0


def test_single_plugin_conflist_is_refused_like_libcni(libcni_binary: Path, tmp_path: Path) -> None:
    """The old file (one plugin under a .conflist name) fails in libcni and in labctl alike."""
    old = {"cniVersion": "1.0.0", "name": "labctl", "type": "labctl-bridge", "bridge": "cni0",
           "ipam": {"type": "labctl-host-local"}}
    d = tmp_path / "net.d"
    d.mkdir()
    (d / CNI_CONF_FILE).write_text(json.dumps(old))
    proc = subprocess.run([str(libcni_binary), "add", str(d), str(tmp_path), str(tmp_path), "c", "/nonexistent"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "error parsing configuration list: no 'plugins' key" in proc.stderr
    with pytest.raises(CNIError, match="error parsing configuration list: no 'plugins' key"):
        invoke.load_netconf_dir(str(d))


@pytest.mark.docker
def test_libcni_runs_the_list_a_lab_node_wrote(lab: Any, libcni_binary: Path) -> None:
    """In a node: its /etc/cni/net.d and /opt/cni/bin (thin clients of the agent's CNI daemon), the kubelet's
    cache dir; its own pods untouched."""
    node, ns, cid = f"{lab.name}-worker", unique("lc"), unique("libcni")
    copied = subprocess.run(["docker", "cp", str(libcni_binary), f"{node}:/usr/local/bin/cnichain-libcni"],
                            capture_output=True, text=True, timeout=60)
    assert copied.returncode == 0, copied.stderr
    tool = ["cnichain-libcni", "{}", "/etc/cni/net.d", "/opt/cni/bin", "/var/lib/cni", cid, f"/run/netns/{ns}"]
    before = reservations(lab)
    lab.exec("worker", "ip", "netns", "add", ns)
    try:
        added = lab.exec("worker", "env", "LABCTL_CNI_DEBUG=1", *[a.format("add") for a in tool], json.dumps(MAPPINGS))
        assert "+ ip " not in added.stderr  # the agent's CNI daemon did the work (netlink), not `ip` in the plugin
        ip = json.loads(added.stdout)["ips"][0]["address"].split("/")[0]
        assert f"--dport 8081 -j DNAT --to-destination {ip}:80" in lab.exec("worker", "iptables-save", "-t", "nat").stdout
        lab.exec("worker", *[a.format("check") for a in tool], json.dumps(MAPPINGS))
        lab.exec("worker", *[a.format("del") for a in tool], json.dumps(MAPPINGS))
    finally:
        lab.exec("worker", "ip", "netns", "del", ns, check=False)
    assert f"{ip}:80" not in lab.exec("worker", "iptables-save", "-t", "nat").stdout
    after = reservations(lab)
    assert ip not in after and before <= after  # the IP released; the node's pods keep theirs (more may start)


def reservations(lab: Any) -> set[str]:
    """The worker's host-local reservations (none before its first pod: no directory yet)."""
    listed = lab.exec("worker", "sh", "-c", "ls /var/lib/cni/networks/labctl 2>/dev/null || true").stdout
    return set(listed.split())
