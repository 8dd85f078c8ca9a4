"""The cluster-wide settings and each node's configuration: one owner for both.

``labctl up`` makes a :class:`ClusterConfig` from the topology and writes it, inside a
:class:`NodeConfig`, to every node as ``/etc/labctl/node.json``. Every component reads its
cluster-wide settings from there — the API server's service CIDR and NodePort range, the
kubelet's cluster DNS address and search path, the proxy's cluster CIDR, the controllers'
node-lifecycle timings, the kube-dns add-on's address and the API server certificate's
SANs — so a lab with ``serviceSubnet: 10.100.0.0/16`` is consistent everywhere. The
defaults below are the only defaults of these settings in labctl (kubeadm's values).

``labctl exec NODE -- cat /etc/labctl/node.json`` shows a student everything a node was told.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

DEFAULT_POD_SUBNET = "10.244.0.0/16"
DEFAULT_SERVICE_SUBNET = "10.96.0.0/12"
DEFAULT_NODE_PORT_RANGE = (30000, 32767)
DEFAULT_CLUSTER_DOMAIN = "cluster.local"
#: the lifetime of the token the kubelet projects into pods (TokenRequest's default)
DEFAULT_SERVICE_ACCOUNT_TOKEN_SECONDS = 3600
#: kube's shortest TokenRequest ("may not specify a duration less than 10 minutes"); a lab
#: asking for shorter pod tokens (a test of their rotation) starts its API server with a lower floor
MIN_SERVICE_ACCOUNT_TOKEN_SECONDS = 600
#: LoadBalancer IPs: host numbers ``.200``–``.250`` of the lab network's /24 (the nodes get
#: .2, .3, … from Docker, the gateway .1), so no node, gateway or Service address is in the pool
LOAD_BALANCER_POOL_HOSTS = (200, 250)
#: a pod container that sets no ``limits.memory`` gets this one (bytes), as a LimitRange default would:
#: one runaway pod must not take the host's memory from every other lab
DEFAULT_POD_MEMORY_LIMIT = 512 * 2**20
#: every pod container's process limit (the kubelet's ``podPidsLimit``): a fork bomb stops there
DEFAULT_POD_PIDS_LIMIT = 1024

NODE_CONFIG_PATH = Path("/etc/labctl/node.json")
NODE_KUBECONFIG_PATH = Path("/etc/labctl/kubelet.kubeconfig")


@dataclass(frozen=True)
class NodeLifecycleTimings:
    """How fast a stopped node goes NotReady and loses its pods (kube-controller-manager's flags)."""

    node_monitor_grace_seconds: float = 40.0      # --node-monitor-grace-period
    pod_eviction_timeout_seconds: float = 300.0   # the default NoExecute toleration of not-ready/unreachable
    lease_duration_seconds: int = 40              # the kubelet's Lease
    lease_renew_seconds: float = 10.0             # the kubelet renews at a quarter of the duration
    node_status_seconds: float = 60.0             # the kubelet's full status report (--node-status-report-frequency)


@dataclass(frozen=True)
class ClusterConfig:
    """Settings every component of one lab must agree on."""

    name: str = "lab"
    pod_subnet: str = DEFAULT_POD_SUBNET
    service_subnet: str = DEFAULT_SERVICE_SUBNET
    node_port_range: tuple[int, int] = DEFAULT_NODE_PORT_RANGE
    cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    lifecycle: NodeLifecycleTimings = NodeLifecycleTimings()
    #: ``expirationSeconds`` the kubelet asks for pods' tokens; it rotates them at 80 % of that
    service_account_token_seconds: int = DEFAULT_SERVICE_ACCOUNT_TOKEN_SECONDS
    #: ``limits.memory`` (bytes) the kubelet gives a pod container that sets none
    pod_default_memory_limit: int = DEFAULT_POD_MEMORY_LIMIT
    #: the process limit the kubelet puts on every pod container
    pod_pids_limit: int = DEFAULT_POD_PIDS_LIMIT

    @property
    def kubernetes_service_ip(self) -> str:
        """The ``default/kubernetes`` Service's ClusterIP: the first address of the service subnet."""
        return str(ipaddress.ip_network(self.service_subnet)[1])

    @property
    def dns_service_ip(self) -> str:
        """The ``kube-system/kube-dns`` ClusterIP: the tenth address (10.96.0.10), as kubeadm picks it."""
        return str(ipaddress.ip_network(self.service_subnet)[10])

    @property
    def node_port_range_text(self) -> str:
        """``"30000-32767"``, the form of kube-apiserver's ``--service-node-port-range``."""
        return f"{self.node_port_range[0]}-{self.node_port_range[1]}"

    @property
    def api_server_dns_names(self) -> tuple[str, ...]:
        """The names pods use for the API server (the certificate's SANs)."""
        return ("kubernetes", "kubernetes.default", "kubernetes.default.svc",
                f"kubernetes.default.svc.{self.cluster_domain}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["node_port_range"] = list(self.node_port_range)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClusterConfig:
        """The inverse of :meth:`to_dict`; unknown keys are an error (a node.json from another version)."""
        data = dict(data)
        lifecycle = NodeLifecycleTimings(**data.pop("lifecycle", {}))
        if "node_port_range" in data:
            low, high = data.pop("node_port_range")
            data["node_port_range"] = (int(low), int(high))
        return cls(lifecycle=lifecycle, **data)


def load_balancer_pool(node_ip: str) -> list[str]:
    """The lab's LoadBalancer IPs: ``.200``–``.250`` of the /24 holding a node's InternalIP.

    One derivation for both sides: the LoadBalancer controller hands these out, and a node
    agent announces nothing else, whatever a Service's status says.
    """
    net = ipaddress.ip_network(f"{node_ip}/24", strict=False)
    first, last = LOAD_BALANCER_POOL_HOSTS
    return [str(net.network_address + host) for host in range(first, last + 1)]


@dataclass(frozen=True)
class NodeConfig:
    """What one node is told: the cluster's settings plus its own identity (``node.json``)."""

    cluster: ClusterConfig
    node_name: str
    role: str                                   # control-plane | worker
    internal_ip: str
    pod_cidr: str
    kubeconfig: str = str(NODE_KUBECONFIG_PATH)
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict[str, str]] = field(default_factory=list)
    image_aliases: dict[str, str] = field(default_factory=dict)

    @property
    def cluster_name(self) -> str:
        return self.cluster.name

    def dump(self) -> str:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["cluster"] = self.cluster.to_dict()
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> NodeConfig:
        data = json.loads(text)
        data["cluster"] = ClusterConfig.from_dict(data["cluster"])
        return cls(**data)

    @classmethod
    def load(cls, path: Path = NODE_CONFIG_PATH) -> NodeConfig:
        return cls.loads(Path(path).read_text())
