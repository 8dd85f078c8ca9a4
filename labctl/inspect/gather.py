"""Read a lab's network: one ``docker exec`` per node, all at once, then pure parsing.

Each node runs :data:`SNAPSHOT_SCRIPT`, which prints every section (``ip``, ``bridge``,
``iptables-save``, the IPAM files, a few sysctls, ``node.json``) behind a separator line, so
a node costs one round trip to the engine however many tools it runs; the nodes run
concurrently and one Docker list call names the pods' sandboxes. A 3-node lab is read in
well under the 1 s a UI refresh allows (``bench/net.py``).

:func:`snapshot` is the asyncio API (the TUI calls it from a worker); :func:`read_lab` wraps
it for plain callers. :func:`build_network` is the pure part the unit tests feed with
outputs captured on a real node.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..cluster import Lab, Node, NodeInfo
from ..cluster.constants import API_SERVER_CONTAINER_PORT, NODE_LABEL
from ..clusterconfig import NodeConfig
from ..errors import LabctlError
from ..kube import containers as labels
from .conntrack import parse_conntrack
from .links import SandboxLabels, parse_bridge, parse_interfaces, parse_reservations, pods_of
from .model import LabNetwork, NodeNetwork, PodRef, PortMapping
from .policies import isolated_pods
from .routes import parse_routes
from .ruleset import parse_ruleset
from .services import service_ports

__all__ = ["SECTION_MARK", "SNAPSHOT_SCRIPT", "NodeOutput", "build_network", "read_lab", "snapshot",
           "split_sections"]

SECTION_MARK = "@@labctl-inspect "
BRIDGE = "cni0"
#: the sysctls the lesson is about: routing between interfaces, iptables on bridged frames, NodePorts on 127.0.0.1
SYSCTLS = ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables", "net/ipv4/conf/all/route_localnet")

#: what runs in each node (bash -c SCRIPT labctl-inspect [conntrack]); every section behind a mark line
SNAPSHOT_SCRIPT = f"""
s() {{ printf '\\n{SECTION_MARK}%s\\n' "$1"; }}
s nodeconfig; cat /etc/labctl/node.json 2>/dev/null
s links; ip -j -d link show
s addrs; ip -j addr show
s routes; ip -j route show
s bridge; bridge -j link show
s ipam; grep -H '' /var/lib/cni/networks/*/[0-9]* 2>/dev/null
s sysctl; cd /proc/sys && grep -H '' {' '.join(SYSCTLS)} 2>/dev/null
s iptables; iptables-save
if [ "${{1:-}}" = conntrack ]; then s conntrack; conntrack -L -o extended 2>/dev/null; fi
s end
"""


@dataclass(frozen=True)
class NodeOutput:
    """What one node printed, split into sections, with the node it came from."""

    info: NodeInfo
    sections: Mapping[str, str]


def split_sections(text: str) -> dict[str, str]:
    """The script's output → ``{section: text}``."""
    out: dict[str, str] = {}
    for chunk in ("\n" + text).split("\n" + SECTION_MARK)[1:]:
        name, _, body = chunk.partition("\n")
        out[name.strip()] = body
    return out


async def snapshot(lab: Lab, *, conntrack: bool = False) -> LabNetwork:
    """Every running node of ``lab`` now; ``conntrack`` adds each node's connection-tracking table.

    Nodes that are not running are left out (``labctl net`` says so); an API server is not
    needed: everything comes from the nodes and the Docker labels of the pods' sandboxes.
    """
    started = time.perf_counter()
    infos = await asyncio.to_thread(lab.nodes)
    running = [n for n in infos if n.state == "running"]
    if not running:
        raise LabctlError(f"no node of lab {lab.name!r} is running", hint=f"`labctl status` shows lab {lab.name}")
    argv = ["bash", "-c", SNAPSHOT_SCRIPT, "labctl-inspect"] + (["conntrack"] if conntrack else [])
    containers_task = asyncio.create_task(asyncio.to_thread(_lab_containers, lab))
    results = await asyncio.gather(*(Node(lab, n).exec(argv) for n in running))
    containers = await containers_task
    outputs = []
    for info, result in zip(running, results, strict=True):
        if not result.ok:
            raise LabctlError(f"failed to read the network of node {info.name!r}: "
                              f"{result.stderr.decode(errors='replace').strip()[:300]}")
        outputs.append(NodeOutput(info, split_sections(result.stdout.decode(errors="replace"))))
    network = build_network(lab.name, outputs, *containers)
    network.elapsed_seconds = time.perf_counter() - started
    return network


def read_lab(lab: Lab, *, conntrack: bool = False) -> LabNetwork:
    """:func:`snapshot` for callers without an event loop (the CLI)."""
    return asyncio.run(snapshot(lab, conntrack=conntrack))


def build_network(lab: str, outputs: Sequence[NodeOutput], sandboxes: Mapping[str, SandboxLabels],
                  gateway: str = "", port_mappings: Sequence[PortMapping] = ()) -> LabNetwork:
    """The lab's network from each node's sections and the sandboxes' labels (pure)."""
    node_ips = {o.info.internal_ip: o.info.name for o in outputs}
    reservations = {o.info.name: parse_reservations(o.sections.get("ipam", "")) for o in outputs}
    pods: list[PodRef] = [p for o in outputs for p in pods_of(reservations[o.info.name], sandboxes, o.info.name)]
    by_ip = {p.ip: p for p in pods}
    nodes = []
    for o in outputs:
        s = o.sections
        config = NodeConfig.loads(s["nodeconfig"]) if s.get("nodeconfig", "").strip() else None
        interfaces = parse_interfaces(s.get("links", ""), s.get("addrs", ""))
        bridge = parse_bridge(BRIDGE, interfaces, s.get("bridge", ""), s.get("links", ""), pods,
                              reservations[o.info.name])
        ruleset = parse_ruleset(s.get("iptables", ""))
        nodes.append(NodeNetwork(
            node=o.info.name, container=o.info.container, role=o.info.role, internal_ip=o.info.internal_ip,
            pod_cidr=config.pod_cidr if config else "", interfaces=interfaces, bridge=bridge,
            routes=parse_routes(s.get("routes", ""), node_ips, BRIDGE), ruleset=ruleset,
            services=service_ports(ruleset, by_ip), sysctls=_sysctls(s.get("sysctl", "")),
            cluster=config.cluster if config else None, conntrack=parse_conntrack(s.get("conntrack", "")),
            policies=isolated_pods(ruleset)))
    return LabNetwork(lab, nodes, pods, gateway, list(port_mappings))


def _sysctls(text: str) -> dict[str, str]:
    """``net/ipv4/ip_forward:1`` lines → ``{"net.ipv4.ip_forward": "1"}``."""
    out = {}
    for line in text.splitlines():
        path, sep, value = line.partition(":")
        if sep:
            out[path.replace("/", ".")] = value.strip()
    return out


def _lab_containers(lab: Lab) -> tuple[dict[str, SandboxLabels], str, list[PortMapping]]:
    """One Docker list call: the running pod sandboxes' labels, the lab network's gateway, port mappings."""
    rows = lab.docker.api.containers(filters={"label": [f"{labels.CLUSTER_LABEL}={lab.name}"]})
    sandboxes, gateway, mappings = {}, "", []
    for row in rows:
        lab_labels = row.get("Labels") or {}
        if lab_labels.get(labels.CONTAINER_TYPE_LABEL) == "podsandbox":
            sandboxes[row["Id"]] = SandboxLabels(row["Id"], lab_labels.get(labels.POD_NAMESPACE_LABEL, ""),
                                                 lab_labels.get(labels.POD_NAME_LABEL, ""),
                                                 lab_labels.get(labels.POD_UID_LABEL, ""))
        elif NODE_LABEL in lab_labels:
            networks = ((row.get("NetworkSettings") or {}).get("Networks") or {}).values()
            gateway = gateway or next((n.get("Gateway") for n in networks if n.get("Gateway")), "")
            for port in row.get("Ports") or []:
                if port.get("PublicPort") and port.get("PrivatePort") != API_SERVER_CONTAINER_PORT:
                    mappings.append(PortMapping(port.get("IP", ""), int(port["PublicPort"]), lab_labels[NODE_LABEL],
                                                int(port["PrivatePort"]), port.get("Type", "tcp")))
    return sandboxes, gateway, mappings
