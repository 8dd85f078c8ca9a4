"""Helpers for the CNI tests: throwaway node/pod netns and plugin runners.

Every test gets its own "node" netns holding its own ``cni0`` and runs each
plugin inside it with ``nsenter --net`` (so the host's links are never
touched), against pod namespaces at ``/run/netns/<name>``. The same tests run
against labctl's plugins and the reference bridge + host-local from Debian's
containernetworking-plugins, selected by the ``flavour`` parameter; ``labctl-daemon``
is labctl's plugins as a node has them, thin clients of a CNI daemon that runs in
the node netns.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.cni import shim

REPO = Path(__file__).resolve().parents[2]
REFERENCE_DIR = Path("/usr/lib/cni")
POD_CIDR = "10.244.1.0/24"
GATEWAY = "10.244.1.1"


def unique(prefix: str) -> str:
    """A netns/container name no other test (or run) uses."""
    return f"{prefix}{os.getpid() % 10000}{uuid.uuid4().hex[:6]}"


def write_wrapper(path: Path, module: str) -> None:
    """An executable that runs ``module:main`` from this checkout, as a console script would."""
    path.write_text(
        f"#!{sys.executable}\nimport sys\nsys.path.insert(0, {str(REPO)!r})\n"
        f"from {module} import main\nmain()\n"
    )
    path.chmod(0o755)


def write_shim(path: Path, module: str, socket_path: str) -> None:
    """A plugin executable as a node has it: the thin client of the CNI daemon at ``socket_path``."""
    path.write_text(shim.client_script(path.name, module, socket_path, sys.executable, str(REPO)))
    path.chmod(0o755)


@dataclass
class Netns:
    """A named network namespace at /run/netns/<name>."""

    name: str

    @property
    def path(self) -> str:
        return f"/run/netns/{self.name}"

    def run(self, *argv: str, check: bool = True, **kw: Any) -> subprocess.CompletedProcess[str]:
        """Run a command inside the namespace (``ip netns exec``)."""
        return subprocess.run(["ip", "netns", "exec", self.name, *argv], capture_output=True, text=True, check=check, **kw)

    def as_lab_node(self) -> Netns:
        """Give it a node's InternalIP 172.30.0.2/24 on ``eth0`` (a veth standing in for Docker's)."""
        self.run("ip", "link", "add", "eth0", "type", "veth", "peer", "name", "peer0")
        for link in ("eth0", "peer0"):
            self.run("ip", "link", "set", link, "up")
        self.run("ip", "addr", "add", "172.30.0.2/24", "dev", "eth0")
        return self


@dataclass
class PluginRun:
    """One plugin invocation's outcome."""

    rc: int
    out: dict[str, Any] | None
    stderr: str
    seconds: float


@dataclass
class Flavour:
    """A plugin pair (bridge type + IPAM type) wired to one node netns."""

    name: str
    bridge_type: str
    ipam_type: str
    node: Netns
    cni_bin: Path
    data_dir: Path
    bridge: str = "cni0"

    def netconf(self, **overrides: Any) -> dict[str, Any]:
        """The config the node agent writes, with this flavour's plugin types."""
        conf: dict[str, Any] = {
            "cniVersion": "1.0.0", "name": "labctl", "type": self.bridge_type, "bridge": self.bridge,
            "isGateway": True, "ipMasq": False, "hairpinMode": True, "mtu": 1500,
            "ipam": {"type": self.ipam_type, "ranges": [[{"subnet": POD_CIDR, "gateway": GATEWAY}]],
                     "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(self.data_dir)},
        }
        conf.update(overrides)
        return conf

    @property
    def portmap_type(self) -> str:
        return "labctl-portmap" if self.bridge_type.startswith("labctl-") else "portmap"

    def conflist(self, **bridge_overrides: Any) -> dict[str, Any]:
        """The node's configuration list (bridge, then portmap), as the node agent writes it."""
        bridge = {k: v for k, v in self.netconf(**bridge_overrides).items() if k not in ("cniVersion", "name")}
        portmap = {"type": self.portmap_type, "capabilities": {"portMappings": True}, "snat": True}
        return {"cniVersion": "1.0.0", "name": "labctl", "plugins": [bridge, portmap]}

    def call(self, command: str, *, container_id: str = "", netns: str = "", ifname: str = "eth0",
             conf: dict[str, Any] | bytes | None = None, env: dict[str, str] | None = None,
             plugin: str | None = None) -> PluginRun:
        """Exec the plugin inside the node netns exactly as a runtime would."""
        stdin = conf if isinstance(conf, bytes) else json.dumps(conf if conf is not None else self.netconf()).encode()
        full_env = {"PATH": os.environ.get("PATH", ""), "CNI_COMMAND": command, "CNI_CONTAINERID": container_id,
                    "CNI_NETNS": netns, "CNI_IFNAME": ifname, "CNI_PATH": str(self.cni_bin)}
        full_env.update(env or {})
        argv = ["nsenter", f"--net={self.node.path}", str(self.cni_bin / (plugin or self.bridge_type))]
        start = time.perf_counter()
        proc = subprocess.run(argv, input=stdin, env=full_env, capture_output=True, timeout=60)
        seconds = time.perf_counter() - start
        text = proc.stdout.decode().strip()
        return PluginRun(proc.returncode, json.loads(text) if text else None, proc.stderr.decode(), seconds)

    def add(self, pod: Netns, container_id: str, **kw: Any) -> PluginRun:
        run = self.call("ADD", container_id=container_id, netns=pod.path, **kw)
        assert run.rc == 0, f"{self.name} ADD failed: {run.out} {run.stderr}"
        return run


