"""Value types of the service proxy, as kube-proxy names them.

They are frozen so they can be map keys and compared cheaply: the change trackers decide
"nothing changed" by plain equality, like kube-proxy's ``reflect.DeepEqual``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from labctl.proxy import chains


@dataclass(frozen=True, order=True)
class NamespacedName:
    """A Service's ``namespace/name``."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, order=True)
class ServicePortName:
    """One port of one Service: ``ns/svc:port`` plus its protocol.

    ``str()`` leaves the protocol out, exactly as kube-proxy's ``ServicePortName.String()``,
    because that string is both the rule comment and the input of the chain-name hash.
    """

    namespace: str
    name: str
    port: str
    protocol: str = "TCP"

    @property
    def namespaced_name(self) -> NamespacedName:
        return NamespacedName(self.namespace, self.name)

    def __str__(self) -> str:
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port}" if self.port else base


@dataclass(frozen=True)
class Endpoint:
    """A backend ``ip:port`` of a Service port, with its EndpointSlice conditions.

    ``node_name`` says where it runs (``internalTrafficPolicy``/``externalTrafficPolicy: Local``
    pick this node's ones). The conditions are kube-proxy's reading of
    ``endpoints[].conditions``: ``ready`` endpoints get new connections; ``serving`` and
    ``terminating`` ones only when no endpoint is ready (ProxyTerminatingEndpoints), so a
    rollout's last old pod still answers while it drains. They take part in equality: an
    endpoint turning not ready is a change the proxy must sync.
    """

    ip: str
    port: int
    node_name: str = ""
    ready: bool = True
    serving: bool = True
    terminating: bool = False

    def __str__(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def sort_key(self) -> tuple[int, int]:
        """Numeric order, so 10.244.1.2 comes before 10.244.1.10 in the rules a student reads."""
        return int(ipaddress.IPv4Address(self.ip)), self.port


@dataclass(frozen=True)
class ServicePortInfo:
    """What the proxy needs of one Service port (kube-proxy's ``serviceInfo``).

    The chain names are hashed once here and cached, as kube-proxy caches them on
    ``serviceInfo``: hashing 5,000 names on every sync would be wasted work.
    """

    name: ServicePortName
    cluster_ip: str
    port: int
    protocol: str = "TCP"
    node_port: int = 0
    external_ips: tuple[str, ...] = ()
    load_balancer_ips: tuple[str, ...] = ()
    load_balancer_source_ranges: tuple[str, ...] = ()
    session_affinity_seconds: int = 0  # 0: no ClientIP affinity
    external_policy_local: bool = False  # spec.externalTrafficPolicy == Local
    internal_policy_local: bool = False  # spec.internalTrafficPolicy == Local
    name_string: str = field(init=False, compare=False, repr=False)
    proto: str = field(init=False, compare=False, repr=False)
    svc_chain: str = field(init=False, compare=False, repr=False)
    ext_chain: str = field(init=False, compare=False, repr=False)
    svl_chain: str = field(init=False, compare=False, repr=False)
    fw_chain: str = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        name_string = str(self.name)
        proto = self.protocol.lower()
        setattr_ = object.__setattr__
        setattr_(self, "name_string", name_string)
        setattr_(self, "proto", proto)
        setattr_(self, "svc_chain", chains.service_chain(chains.SVC_PREFIX, name_string, proto))
        setattr_(self, "ext_chain", chains.service_chain(chains.EXT_PREFIX, name_string, proto))
        setattr_(self, "svl_chain", chains.service_chain(chains.SVL_PREFIX, name_string, proto))
        setattr_(self, "fw_chain", chains.service_chain(chains.FW_PREFIX, name_string, proto))

    @property
    def externally_accessible(self) -> bool:
        """True when anything outside the cluster IP reaches it (kube-proxy's ``ExternallyAccessible``)."""
        return bool(self.node_port or self.external_ips or self.load_balancer_ips)

    @property
    def external_local(self) -> bool:
        """``externalTrafficPolicy: Local`` only matters for externally reachable ports (``ExternalPolicyLocal``)."""
        return self.external_policy_local and self.externally_accessible

    @property
    def uses_cluster_endpoints(self) -> bool:
        """kube-proxy's ``UsesClusterEndpoints``: some traffic goes to any node's endpoints.

        Cluster internal policy, or any externally reachable port: even with
        ``externalTrafficPolicy: Local`` pod and node traffic to an external address is
        "short-circuited" to all endpoints.
        """
        return not self.internal_policy_local or self.externally_accessible

    @property
    def uses_local_endpoints(self) -> bool:
        """kube-proxy's ``UsesLocalEndpoints``: some traffic goes only to this node's endpoints."""
        return self.internal_policy_local or self.external_local

    def endpoint_chain(self, endpoint: Endpoint) -> str:
        """The ``KUBE-SEP-`` chain of one endpoint of this port."""
        return chains.endpoint_chain(self.name_string, self.proto, str(endpoint))
