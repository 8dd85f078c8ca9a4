"""The topology's types: frozen dataclasses with every default filled in and every per-node value resolved.

:mod:`labctl.topology.schema` builds them from YAML; ``labctl up`` reads them. The names follow
Kubernetes (``NodeSpec``, ``Taint``, ``podCIDR``) so the code reads like the objects it creates.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from types import MappingProxyType

from labctl.clusterconfig import (
    DEFAULT_NODE_PORT_RANGE,
    DEFAULT_POD_SUBNET,
    DEFAULT_SERVICE_SUBNET,
    ClusterConfig,
    NodeLifecycleTimings,
)
from labctl.errors import LabctlError
from labctl.kube.images import normalize_image
from labctl.kube.objects import CONTROL_PLANE_ROLE
from labctl.topology._fields import _check_networks, _parse_cidr, _Problems, _quote

API_VERSION = "labctl.dev/v1alpha1"
KIND = "Topology"
ROLE_CONTROL_PLANE = "control-plane"
ROLE_WORKER = "worker"
ROLES = (ROLE_CONTROL_PLANE, ROLE_WORKER)
ROLE_LABEL_PREFIX = "node-role.kubernetes.io/"
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
PROTOCOLS = ("TCP", "UDP", "SCTP")
SHIPPED_TOPOLOGIES = ("default", "single", "large")
MAX_CLUSTER_NAME = 40   # "<cluster>-<node>" is a container name and a hostname (≤ 63 characters)
MAX_NODE_NAME = 22      # 40 + "-" + 22 = 63
LAB_SUBNET_POOL = ipaddress.IPv4Network("172.30.0.0/16")   # "auto" takes the first free /24 of it
_DNS1123_LABEL_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_TIMINGS = NodeLifecycleTimings()
_HINT = "every field, its default and an example are in docs/topology.md"


class TopologyError(LabctlError):
    """An invalid topology: one line per problem, each ``<file>: <field path>: <what is allowed>``."""

    def __init__(self, source: str, problems: Iterable[str]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__("\n".join(f"{source}: {p}" for p in self.problems), hint=_HINT)


@dataclass(frozen=True)
class Taint:
    """A Node taint, as in ``Node.spec.taints``."""

    key: str
    effect: str
    value: str = ""

    def to_dict(self) -> dict[str, str]:
        """The Kubernetes JSON form (``value`` left out when empty, as the API server does)."""
        out = {"key": self.key, "effect": self.effect}
        if self.value:
            out["value"] = self.value
        return out


CONTROL_PLANE_TAINT = Taint(CONTROL_PLANE_ROLE, "NoSchedule")


@dataclass(frozen=True)
class NodeSpec:
    """One node with everything resolved: its name, role labels, taints and pod CIDR."""

    role: str
    name: str                                   # "control-plane", "worker2"; the container is "<cluster>-<name>"
    labels: Mapping[str, str]                   # the role label plus the topology's extra labels
    taints: tuple[Taint, ...]
    pod_cidr: str                               # "10.244.1.0/24": the i-th /24 of networking.podSubnet
    index: int                                  # position in the topology's node list


@dataclass(frozen=True)
class Networking:
    """Address ranges and the API server's published port."""

    pod_subnet: str = DEFAULT_POD_SUBNET
    service_subnet: str = DEFAULT_SERVICE_SUBNET
    lab_subnet: str | None = None               # None: "auto", resolved when the lab is created
    node_port_range: tuple[int, int] = DEFAULT_NODE_PORT_RANGE
    api_server_port: int = 6443                 # 0: pick a free port on the host
    api_server_address: str = "127.0.0.1"

    @property
    def node_port_range_text(self) -> str:
        """``"30000-32767"``, the API server's ``--service-node-port-range`` form."""
        return f"{self.node_port_range[0]}-{self.node_port_range[1]}"

    def networks(self) -> dict[str, ipaddress.IPv4Network]:
        """The subnets by field name (``labSubnet`` only once it is resolved), for overlap checks."""
        nets = {"podSubnet": ipaddress.IPv4Network(self.pod_subnet),
                "serviceSubnet": ipaddress.IPv4Network(self.service_subnet)}
        if self.lab_subnet:
            nets["labSubnet"] = ipaddress.IPv4Network(self.lab_subnet)
        return nets


@dataclass(frozen=True)
class PortMapping:
    """A host port published to a node's port, like kind's ``extraPortMappings``."""

    host_port: int
    node_port: int
    node: str                                   # the node it goes to (default: the control-plane)
    listen_address: str = "127.0.0.1"
    protocol: str = "TCP"


@dataclass(frozen=True)
class ImageAliases:
    """Offline labs: public image names (normalized) mapped to local images."""

    aliases: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def resolve(self, image: str) -> str:
        """The local image to run for ``image``; ``image`` itself when it has no alias.

        Matching is exact after :func:`normalize_image` (``nginx`` = ``nginx:latest`` =
        ``docker.io/library/nginx:latest``), never "any tag": Kubernetes' rollout lessons
        use a mistyped tag (``nginx:1.161``) on purpose, and it must fail to pull.
        """
        return self.aliases.get(normalize_image(image), image)


@dataclass(frozen=True)
class NodeLifecycle:
    """How fast a stopped node goes NotReady and loses its pods."""

    node_monitor_grace_period: timedelta = timedelta(seconds=_TIMINGS.node_monitor_grace_seconds)
    pod_eviction_timeout: timedelta = timedelta(seconds=_TIMINGS.pod_eviction_timeout_seconds)
    lease_duration_seconds: int = _TIMINGS.lease_duration_seconds
    lease_renew_interval: timedelta = timedelta(seconds=_TIMINGS.lease_renew_seconds)

    def timings(self) -> NodeLifecycleTimings:
        return NodeLifecycleTimings(node_monitor_grace_seconds=self.node_monitor_grace_period.total_seconds(),
                                    pod_eviction_timeout_seconds=self.pod_eviction_timeout.total_seconds(),
                                    lease_duration_seconds=self.lease_duration_seconds,
                                    lease_renew_seconds=self.lease_renew_interval.total_seconds())


@dataclass(frozen=True)
class Limits:
    """What one container may take: memory in bytes (no swap beyond it) and processes (``--pids-limit``)."""

    memory: int
    pids: int


_MIB = 2**20


@dataclass(frozen=True)
class Resources:
    """Bounds on what a lab takes from the host it shares with other labs.

    ``control_plane`` and ``workers`` bound each node container — its agent, the API server and
    controllers on the control plane, its CNI and iptables calls — not its pods, which are
    sibling containers on the host's engine: each pod container gets ``pods`` (the memory only
    when it sets no ``limits.memory``). The defaults are about three times what a node used at
    its peak in a lab under load (docs/reliability.md).
    """

    control_plane: Limits = Limits(memory=1024 * _MIB, pids=1024)
    workers: Limits = Limits(memory=512 * _MIB, pids=1024)
    pods: Limits = Limits(memory=ClusterConfig.pod_default_memory_limit, pids=ClusterConfig.pod_pids_limit)

    def node(self, role: str) -> Limits:
        """The limits of a node container of ``role``."""
        return self.control_plane if role == ROLE_CONTROL_PLANE else self.workers


@dataclass(frozen=True)
class Topology:
    """A validated lab topology; ``source`` is the file it came from (for messages)."""

    name: str
    nodes: tuple[NodeSpec, ...]
    networking: Networking = Networking()
    port_mappings: tuple[PortMapping, ...] = ()
    images: ImageAliases = ImageAliases()
    node_lifecycle: NodeLifecycle = NodeLifecycle()
    #: serviceAccounts.tokenExpirationSeconds: the lifetime of pods' tokens (the kubelet renews them at 80 %)
    service_account_token_seconds: int = ClusterConfig().service_account_token_seconds
    #: resources: memory and process limits of the node containers and of pods
    resources: Resources = Resources()
    #: addons: the optional add-ons switched on (``ingress``: the nginx ingress controller)
    addons: tuple[str, ...] = ("ingress",)
    source: str = "<topology>"

    @property
    def control_plane(self) -> NodeSpec:
        """The one control-plane node."""
        return next(n for n in self.nodes if n.role == ROLE_CONTROL_PLANE)

    def cluster_config(self) -> ClusterConfig:
        """The settings every component of a lab of this topology shares."""
        net = self.networking
        return ClusterConfig(name=self.name, pod_subnet=net.pod_subnet, service_subnet=net.service_subnet,
                             node_port_range=net.node_port_range, lifecycle=self.node_lifecycle.timings(),
                             service_account_token_seconds=self.service_account_token_seconds,
                             pod_default_memory_limit=self.resources.pods.memory,
                             pod_pids_limit=self.resources.pods.pids)

    @property
    def workers(self) -> tuple[NodeSpec, ...]:
        return tuple(n for n in self.nodes if n.role == ROLE_WORKER)

    def node(self, name: str) -> NodeSpec:
        """The node called ``name`` (the topology name, e.g. ``worker2``); ``KeyError`` if none."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def with_name(self, name: str, source: str = "--name") -> Topology:
        """This topology under another cluster name (``labctl up --name``), validated like ``name:``."""
        problem = _cluster_name_problem(name)
        if problem:
            raise TopologyError(source, [problem])
        return replace(self, name=name)

    def with_lab_subnet(self, cidr: str, source: str | None = None) -> Topology:
        """This topology with ``labSubnet: auto`` resolved (or overridden) to ``cidr``, validated."""
        p = _Problems()
        net = _parse_cidr(cidr, "networking.labSubnet", p)
        if net is not None:
            _check_networks(p, len(self.nodes), self.networking.networks() | {"labSubnet": net})
        if p.items:
            raise TopologyError(source or self.source, p.items)
        return replace(self, networking=replace(self.networking, lab_subnet=str(net)))

    def with_publish_address(self, address: str, source: str = "--publish-address") -> Topology:
        """This topology publishing the API server and every port mapping on ``address``.

        Inside a VM whose ports the hypervisor forwards (Vagrant), forwarded traffic arrives on
        the VM's NAT interface, not its loopback, so the lab must publish on ``0.0.0.0`` there.
        """
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            raise TopologyError(source, [f"{_quote(address)} is not an IPv4 address"]) from None
        mappings = tuple(replace(m, listen_address=address) for m in self.port_mappings)
        return replace(self, networking=replace(self.networking, api_server_address=address),
                       port_mappings=mappings)


def _cluster_name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a cluster name (it prefixes container, network and volume names)."""
    if _DNS1123_LABEL_RE.fullmatch(name) and len(name) <= MAX_CLUSTER_NAME:
        return None
    return (f"{_quote(name)} is not a valid cluster name; use at most {MAX_CLUSTER_NAME} lowercase letters, "
            "digits and '-', starting and ending with a letter or digit (it prefixes container and network names)")
