"""The pod network, from the kubelet's side: CNI config, ADD/DEL, and host-gw routes.

The agent drives labctl's CNI plugins exactly as a container runtime does
(:mod:`labctl.cni.invoke`: exec ``/opt/cni/bin/<type>`` for each plugin of the network
configuration list it wrote to ``/etc/cni/net.d`` and read back, ``bridge`` then
``portmap``), so a student can replay a pod's wiring by hand, or with libcni. Those
executables are thin clients of the CNI daemon the agent runs in a thread
(:func:`start_cni_daemon`, :mod:`labctl.cni.daemon`), which does the work over netlink. A pod's
``hostPort``s travel as the ``portMappings`` capability argument, as CRI runtimes pass them. The node's
routes to the other nodes' podCIDRs (flannel's host-gw) are kept by
:func:`labctl.cni.routes.sync_pod_cidr_routes` from the Node objects.

A pod's network can be broken behind the kubelet's back (``ip link del veth…`` on the
node): :func:`pod_network_problem` notices, on every resync of the pod, that the sandbox's
veth left the bridge, and the pod worker re-creates the sandbox, as the kubelet does when a
sandbox is no longer ready.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ...cni import daemon as cni_daemon
from ...cni import invoke, shim
from ...cni.bridge import host_veth_name

log = logging.getLogger("labctl.kubelet")

CNI_BIN_DIR = Path("/opt/cni/bin")
CNI_CONF_DIR = Path("/etc/cni/net.d")
CNI_CONF_FILE = "10-labctl.conflist"
NETWORK_NAME = "labctl"
BRIDGE = "cni0"
IPAM_DATA_DIR = "/var/lib/cni/networks"
CNI_CACHE_DIR = "/var/lib/cni"  # results/<network>-<sandbox id>-eth0, libcni's cache layout
SYS_CLASS_NET = Path("/sys/class/net")
CNI_DAEMON_SOCKET = "/run/labctl/cni.sock"  # named in every plugin executable
#: plugin type → the Python module its executable in /opt/cni/bin runs when no daemon answers
PLUGINS = {"labctl-bridge": "labctl.cni.bridge", "labctl-host-local": "labctl.cni.ipam.plugin",
           "labctl-portmap": "labctl.cni.portmap"}


def build_netconf(pod_cidr: str) -> dict[str, Any]:
    """The node's network configuration list (CNI spec 1.0): ``labctl-bridge``, then ``labctl-portmap``.

    The bridge makes ``cni0`` the gateway with host-local IPAM over the podCIDR; ``ipMasq``
    is off because pods talk to each other by their real IPs (no NAT); ``hairpinMode`` lets
    a pod reach itself through a Service. The chained portmap plugin declares the
    ``portMappings`` capability, so only it receives the pod's hostPorts.
    """
    net = ipaddress.ip_network(pod_cidr, strict=False)
    gateway = str(next(net.hosts()))
    bridge = {"type": "labctl-bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "hairpinMode": True,
              "mtu": 1500,
              "ipam": {"type": "labctl-host-local", "ranges": [[{"subnet": str(net), "gateway": gateway}]],
                       "routes": [{"dst": "0.0.0.0/0"}], "dataDir": IPAM_DATA_DIR}}
    portmap = {"type": "labctl-portmap", "capabilities": {"portMappings": True}, "snat": True}
    return {"cniVersion": "1.0.0", "name": NETWORK_NAME, "plugins": [bridge, portmap]}


def port_mappings(pod: dict) -> list[dict[str, Any]]:
    """The ``portMappings`` capability argument: every container port with a ``hostPort`` (pure).

    Spelled as CRI runtimes spell it for CNI: protocol in lower case, ``hostIP`` only when set.
    Init containers' ports count too (a sidecar may serve one): they share the pod's IP.
    """
    out: list[dict[str, Any]] = []
    spec = pod.get("spec") or {}
    for container in (spec.get("initContainers") or []) + (spec.get("containers") or []):
        for port in container.get("ports") or []:
            if port.get("hostPort"):
                entry = {"hostPort": int(port["hostPort"]), "containerPort": int(port["containerPort"]),
                         "protocol": str(port.get("protocol") or "TCP").lower()}
                if port.get("hostIP"):
                    entry["hostIP"] = port["hostIP"]
                out.append(entry)
    return out


def wrapper_script(plugin: str, module: str, python: str = sys.executable) -> str:
    """The plugin executable: a thin client of the node's CNI daemon (:func:`labctl.cni.shim.client_script`).

    A pod's start waits for two of them (bridge, portmap), so it is a few milliseconds of
    Perl, not a Python start; without the daemon ``python`` runs ``module`` in-process.
    """
    packages = str(Path(__file__).resolve().parents[3])
    return shim.client_script(plugin, module, CNI_DAEMON_SOCKET, python, packages)


def start_cni_daemon() -> cni_daemon.Server:
    """Start the node's CNI daemon (a thread of the node agent) that the plugin executables call."""
    return cni_daemon.start(CNI_DAEMON_SOCKET)


def install_cni(pod_cidr: str, bin_dir: Path = CNI_BIN_DIR, conf_dir: Path = CNI_CONF_DIR) -> dict[str, Any]:
    """Write the plugins (unless installed) and the network config; return the config."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for plugin, module in PLUGINS.items():
        target = bin_dir / plugin
        text = wrapper_script(plugin, module)
        if target.is_symlink() or not target.exists() or target.read_text() != text:
            tmp = target.with_suffix(".tmp")
            tmp.write_text(text)
            tmp.chmod(0o755)
            os.replace(tmp, target)
    conf_dir.mkdir(parents=True, exist_ok=True)
    path = conf_dir / CNI_CONF_FILE
    text = json.dumps(build_netconf(pod_cidr), indent=2) + "\n"
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return invoke.load_netconf_dir(str(conf_dir))  # read back as a runtime would: a bad file fails here


def result_ip(result: dict[str, Any]) -> str:
    """The pod's IPv4 address from a CNI result (first ``ips`` entry on the container's interface)."""
    for ip in result.get("ips") or []:
        address = ip.get("address", "")
        if address and ":" not in address:
            return address.split("/")[0]
    raise ValueError(f"CNI result has no IPv4 address: {json.dumps(result)[:200]}")


def setup_pod_network(netconf: dict[str, Any], sandbox_id: str, netns: str,
                      mappings: list[dict[str, Any]] | None = None) -> str:
    """CNI ADD of the whole list for a sandbox, with its hostPorts; returns the pod IP (blocking)."""
    return result_ip(invoke.add(netconf, sandbox_id, netns, ifname="eth0", cni_path=[str(CNI_BIN_DIR)],
                                capability_args={"portMappings": mappings} if mappings else None,
                                cache_dir=CNI_CACHE_DIR))


def teardown_pod_network(netconf: dict[str, Any], sandbox_id: str, netns: str = "") -> None:
    """CNI DEL, last plugin first: the hostPort rules, then the IP and the veth; fine to repeat, fine without a netns.

    As a runtime does, the plugins get the ADD's cached result and ``portMappings`` back;
    ``labctl-portmap`` also finds the sandbox's chain by its name without them, so a
    sandbox with no cache entry (made before the cache existed) is cleaned up too.
    """
    if netns and not os.path.exists(netns):
        netns = ""
    invoke.delete(netconf, sandbox_id, netns, ifname="eth0", cni_path=[str(CNI_BIN_DIR)], cache_dir=CNI_CACHE_DIR)


def pod_network_problem(sandbox_id: str, ifname: str = "eth0", bridge: str = BRIDGE,
                        sys_class_net: Path = SYS_CLASS_NET) -> str:
    """What is wrong with a running sandbox's network ('' when its veth is on the bridge).

    The host end of the pod's veth pair is named after the sandbox (``labctl-bridge``); it
    goes when either end is deleted. Reading sysfs costs no process, so every resync can look.
    """
    host = host_veth_name(sandbox_id, ifname)
    link = sys_class_net / host
    if not link.exists():
        return f"its veth {host} is gone"
    master = link / "master"
    if not master.exists() or Path(os.readlink(master)).name != bridge:
        return f"its veth {host} is not attached to {bridge}"
    return ""


def pod_ip_in_netns(netns: str, ifname: str = "eth0") -> str:
    """Read the IP of an adopted sandbox (after an agent restart) from its namespace."""
    if not netns or not os.path.exists(netns):
        return ""
    proc = subprocess.run(["nsenter", f"--net={netns}", "ip", "-4", "-o", "addr", "show", "dev", ifname],
                          capture_output=True, text=True, timeout=10)
    for line in proc.stdout.splitlines():
        fields = line.split()
        if "inet" in fields:
            return fields[fields.index("inet") + 1].split("/")[0]
    return ""


def wanted_routes(nodes: list[dict], own_node: str) -> dict[str, str]:
    """``{podCIDR: InternalIP}`` of every other node that has both (pure)."""
    routes = {}
    for node in nodes:
        if node["metadata"]["name"] == own_node:
            continue
        cidr = (node.get("spec") or {}).get("podCIDR")
        addresses = (node.get("status") or {}).get("addresses") or []
        internal = next((a["address"] for a in addresses if a.get("type") == "InternalIP"), None)
        if cidr and internal:
            routes[cidr] = internal
    return routes
