"""Planning a lab: from a topology to the exact Docker objects to create.

Planning is pure (no Docker calls), so what ``labctl up`` will create — container names,
IPs, capabilities, mounts, ports — is unit-tested and can be shown with ``--dry-run``.
Running the plan is ``create.py``'s job.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ..addons import DEFAULT_INGRESS_IMAGE, addons_for
from ..clusterconfig import ClusterConfig, NodeConfig
from ..kube.containers import CLUSTER_LABEL, node_container_name
from ..topology import Limits, PortMapping, Topology
from .constants import (
    API_SERVER_CONTAINER_PORT,
    NETWORK_LABEL,
    NODE_LABEL,
    ROLE_LABEL,
    STATE_VOLUME_LABEL,
    bridge_name,
    network_name,
    state_volume_name,
)

#: What a node container may do, and why. Never --privileged (it also fails on hosts whose
#: bounding set lacks CAP_SYS_RESOURCE); each capability is here for a named reason.
NODE_CAPABILITIES = (
    "NET_ADMIN",  # create cni0, veth pairs and routes; program iptables and conntrack
    "NET_RAW",    # iptables' raw sockets, ping from the node
    "SYS_ADMIN",  # setns() into pod sandboxes' network namespaces (the CNI plugin's job)
)

#: The control plane's CPU weight (cgroup ``cpu.shares``) while the lab starts, and a node's
#: weight (Docker's default) from the moment its API server answers, when ``up`` sets it back.
#: Each node container is one cgroup, so on a contended host the nodes share the CPU node by
#: node: the API server, which every other component waits for, would get a third of two cores
#: while the workers' agents import. Twice a worker's weight gives it a core (the API server's
#: import, about 0.35 CPU-s, is most of that phase).
CONTROL_PLANE_START_CPU_SHARES = 2048
NODE_CPU_SHARES = 1024

#: Namespaced sysctls a node needs; /proc/sys is read-only inside the container, so Docker
#: sets them when it creates the node's network namespace.
NODE_SYSCTLS = {
    "net.ipv4.ip_forward": "1",                # route between pods, nodes and Services
    "net.ipv4.conf.all.route_localnet": "1",   # NodePorts on 127.0.0.1 inside the node, like kube-proxy
}


@dataclass(frozen=True)
class NodePlan:
    name: str            # node name as Kubernetes shows it: control-plane, worker, worker2
    role: str            # control-plane | worker
    container: str       # <cluster>-<name>
    ip: str
    pod_cidr: str
    limits: Limits                # memory and pids of the node container (topology ``resources``)
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict, ...] = ()


@dataclass(frozen=True)
class ClusterPlan:
    name: str
    image: str
    subnet: str
    gateway: str
    nodes: tuple[NodePlan, ...]
    cluster: ClusterConfig
    api_server_address: str = "127.0.0.1"
    api_server_port: int = 6443
    port_mappings: tuple[PortMapping, ...] = ()
    image_aliases: dict[str, str] = field(default_factory=dict)
    #: the add-ons ``up`` installs (labctl/addons), and the ingress controller's image
    addons: tuple[str, ...] = ("kube-dns",)
    ingress_image: str = DEFAULT_INGRESS_IMAGE

    @property
    def control_plane(self) -> NodePlan:
        return next(n for n in self.nodes if n.role == "control-plane")

    @property
    def network(self) -> str:
        return network_name(self.name)

    @property
    def state_volume(self) -> str:
        return state_volume_name(self.name)

    @property
    def bridge(self) -> str:
        """The lab network's Linux bridge on the host (unique per lab name)."""
        return bridge_name(self.name)

    @property
    def api_server_url(self) -> str:
        """The API server's URL from this host (its published address, loopback for ``0.0.0.0``)."""
        reach = "127.0.0.1" if self.api_server_address == "0.0.0.0" else self.api_server_address
        return f"https://{reach}:{self.api_server_port}"

    @property
    def internal_api_url(self) -> str:
        return f"https://{self.control_plane.ip}:{API_SERVER_CONTAINER_PORT}"


def node_ips(subnet: str, count: int) -> tuple[str, list[str]]:
    """Gateway (first address) and one address per node after it, in topology order."""
    net = ipaddress.ip_network(subnet)
    hosts = net.hosts()
    gateway = str(next(hosts))
    ips = [str(next(hosts)) for _ in range(count)]
    return gateway, ips


def node_config(plan: ClusterPlan, node: NodePlan) -> NodeConfig:
    """The ``/etc/labctl/node.json`` of one node."""
    return NodeConfig(cluster=plan.cluster, node_name=node.name, role=node.role, internal_ip=node.ip,
                      pod_cidr=node.pod_cidr, labels=dict(node.labels), taints=list(node.taints),
                      image_aliases=dict(plan.image_aliases))


def container_spec(plan: ClusterPlan, node: NodePlan) -> dict:
    """Arguments for the Docker API's container create, for one node (pure, unit-tested)."""
    labels = {CLUSTER_LABEL: plan.name, ROLE_LABEL: node.role, NODE_LABEL: node.name}
    ports: dict[str, list[tuple[str, int | None]]] = {}  # None: the engine picks the host port
    binds = [
        # the kubelet role creates pod sandboxes through the host's engine (dockershim model)
        "/var/run/docker.sock:/var/run/docker.sock",
        # pod sandboxes' network namespaces, for the CNI plugin; rslave so new ones appear
        "/var/run/docker/netns:/var/run/docker/netns:rslave",
        # the node's iptables must load modules the host already has
        "/lib/modules:/lib/modules:ro",
    ]
    if node.role == "control-plane":
        binds.append(f"{plan.state_volume}:/var/lib/labctl")
        ports[f"{API_SERVER_CONTAINER_PORT}/tcp"] = [(plan.api_server_address, plan.api_server_port or None)]
    for m in plan.port_mappings:
        if m.node == node.name:
            ports.setdefault(f"{m.node_port}/{m.protocol.lower()}", []).append((m.listen_address, m.host_port))
    return {
        "name": node.container,
        "hostname": node.name,
        "image": plan.image,
        "command": ["python3", "-m", "labctl.nodeinit"],
        "labels": labels,
        "environment": {"LABCTL_CLUSTER": plan.name, "LABCTL_NODE": node.name, "PYTHONUNBUFFERED": "1"},
        "cap_add": list(NODE_CAPABILITIES),
        # docker's default seccomp profile forbids setns() and mount() unless --privileged;
        # the capabilities above are the real boundary
        "security_opt": ["seccomp=unconfined", "apparmor=unconfined"],
        "sysctls": dict(NODE_SYSCTLS),
        # kubectl debug node/…'s hostIPC pod joins the node's IPC namespace (never the host's)
        "ipc_mode": "shareable",
        "binds": binds,
        "ports": ports,
        "ip": node.ip,
        # restart with the Docker engine (host reboot) but not after `docker stop`
        "restart_policy": {"Name": "unless-stopped"},
        "tmpfs": {"/run": "rw,nosuid,nodev", "/tmp": "rw,nosuid,nodev"},
        # bounded, so a runaway component (or a fork bomb in `labctl shell`) stops at its node; the
        # kernel's OOM killer picks the biggest process, nodeinit restarts it. Memory and swap
        # limits equal: a node that swaps stalls the whole class
        "mem_limit": node.limits.memory,
        "memswap_limit": node.limits.memory,
        "pids_limit": node.limits.pids,
        "cpu_shares": CONTROL_PLANE_START_CPU_SHARES if node.role == "control-plane" else NODE_CPU_SHARES,
    }


def plan_from_topology(topology: Topology, subnet: str, image: str) -> ClusterPlan:
    """Resolve a validated topology against a lab subnet and the node image to use."""
    gateway, ips = node_ips(subnet, len(topology.nodes))
    nodes = tuple(
        NodePlan(name=n.name, role=n.role, container=node_container_name(topology.name, n.name), ip=ip,
                 pod_cidr=n.pod_cidr, limits=topology.resources.node(n.role), labels=dict(n.labels),
                 taints=tuple(t.to_dict() for t in n.taints))
        for n, ip in zip(topology.nodes, ips, strict=True))
    net = topology.networking
    return ClusterPlan(
        name=topology.name, image=image, subnet=subnet, gateway=gateway, nodes=nodes,
        cluster=topology.cluster_config(),
        api_server_address=net.api_server_address, api_server_port=net.api_server_port,
        port_mappings=tuple(topology.port_mappings), image_aliases=dict(topology.images.aliases),
        addons=addons_for(topology.addons))


def network_labels(plan: ClusterPlan) -> dict[str, str]:
    return {CLUSTER_LABEL: plan.name, NETWORK_LABEL: "true"}


def volume_labels(plan: ClusterPlan) -> dict[str, str]:
    return {CLUSTER_LABEL: plan.name, STATE_VOLUME_LABEL: "true"}
