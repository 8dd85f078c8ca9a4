"""Chain names, exactly kube-proxy's, and the fixed table of jumps from built-in chains.

Per-service chain names are a hash because "IPTables Chain Names must be <= 28 chars
long, and the longer they are the harder they are to read" (kube-proxy's
``portProtoHash``): ``KUBE-SVC-`` + the first 16 characters of
base32(sha256(servicePortName + protocol)). With the same inputs labctl prints the same
names a student would see on a real node.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from functools import lru_cache

# Fixed chains (kube-proxy's constants).
KUBE_SERVICES = "KUBE-SERVICES"
KUBE_EXTERNAL_SERVICES = "KUBE-EXTERNAL-SERVICES"
KUBE_NODEPORTS = "KUBE-NODEPORTS"
KUBE_POSTROUTING = "KUBE-POSTROUTING"
KUBE_MARK_MASQ = "KUBE-MARK-MASQ"
KUBE_FORWARD = "KUBE-FORWARD"
KUBE_PROXY_FIREWALL = "KUBE-PROXY-FIREWALL"
KUBE_FIREWALL = "KUBE-FIREWALL"
KUBE_PROXY_CANARY = "KUBE-PROXY-CANARY"

# The packet mark meaning "masquerade me in POSTROUTING" (kube-proxy's --masquerade-bit=14).
MASQ_MARK = "0x4000"

SVC_PREFIX = "KUBE-SVC-"
SEP_PREFIX = "KUBE-SEP-"
EXT_PREFIX = "KUBE-EXT-"
FW_PREFIX = "KUBE-FW-"
SVL_PREFIX = "KUBE-SVL-"
# Per-service prefixes whose chains sync may delete; KUBE-XLB- is the pre-1.24 name of SVL.
SERVICE_CHAIN_PREFIXES = (SVC_PREFIX, SEP_PREFIX, EXT_PREFIX, FW_PREFIX, SVL_PREFIX, "KUBE-XLB-")

NAT_FIXED_CHAINS = (KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ)
FILTER_FIXED_CHAINS = (
    KUBE_NODEPORTS,
    KUBE_SERVICES,
    KUBE_EXTERNAL_SERVICES,
    KUBE_FIREWALL,
    KUBE_FORWARD,
    KUBE_PROXY_FIREWALL,
)


def chain_hash(text: str, length: int = 16) -> str:
    """kube-proxy's chain hash: the first ``length`` characters of base32(sha256(text)).

    The network policy rules (:mod:`labctl.netpol`) name their chains the same way.
    """
    digest = hashlib.sha256(text.encode()).digest()
    return base64.b32encode(digest).decode()[:length]


@lru_cache(maxsize=1 << 16)
def service_chain(prefix: str, service_port_name: str, protocol: str) -> str:
    """``KUBE-SVC-``/``KUBE-EXT-``/``KUBE-FW-``/``KUBE-SVL-`` name of a service port.

    ``protocol`` is lower case (``tcp``), as kube-proxy passes it.
    """
    return prefix + chain_hash(service_port_name + protocol)


@lru_cache(maxsize=1 << 17)
def endpoint_chain(service_port_name: str, protocol: str, endpoint: str) -> str:
    """``KUBE-SEP-`` name: the same hash with the endpoint ``ip:port`` appended."""
    return SEP_PREFIX + chain_hash(service_port_name + protocol + endpoint)


def is_service_chain(name: str) -> bool:
    """True for per-service chains, the only ones a sync ever deletes ("ignore chains that aren't ours")."""
    return name.startswith(SERVICE_CHAIN_PREFIXES)


@dataclass(frozen=True)
class JumpChain:
    """A jump from a built-in chain into one of ours (kube-proxy's ``iptablesJumpChain``)."""

    table: str
    dst_chain: str
    src_chain: str
    comment: str = ""
    extra_args: tuple[str, ...] = ()

    def rule_args(self) -> str:
        """The rule after ``-A <src>``, in the order kube-proxy's ``EnsureRule`` writes it."""
        parts = list(self.extra_args)
        if self.comment:
            parts += ["-m", "comment", "--comment", f'"{self.comment}"']
        parts += ["-j", self.dst_chain]
        return " ".join(parts)


_NEW = ("-m", "conntrack", "--ctstate", "NEW")

# kube-proxy's iptablesJumpChains plus the kubelet's KUBE-FIREWALL jumps. Sync inserts the
# missing ones and cleanup removes them: both read this one table.
JUMP_CHAINS: tuple[JumpChain, ...] = (
    JumpChain("filter", KUBE_EXTERNAL_SERVICES, "INPUT", "kubernetes externally-visible service portals", _NEW),
    JumpChain("filter", KUBE_EXTERNAL_SERVICES, "FORWARD", "kubernetes externally-visible service portals", _NEW),
    JumpChain("filter", KUBE_NODEPORTS, "INPUT", "kubernetes health check service ports"),
    JumpChain("filter", KUBE_SERVICES, "FORWARD", "kubernetes service portals", _NEW),
    JumpChain("filter", KUBE_SERVICES, "OUTPUT", "kubernetes service portals", _NEW),
    JumpChain("filter", KUBE_FORWARD, "FORWARD", "kubernetes forwarding rules"),
    JumpChain("filter", KUBE_PROXY_FIREWALL, "INPUT", "kube-proxy firewall rules", _NEW),
    JumpChain("filter", KUBE_PROXY_FIREWALL, "OUTPUT", "kube-proxy firewall rules", _NEW),
    JumpChain("filter", KUBE_PROXY_FIREWALL, "FORWARD", "kube-proxy firewall rules", _NEW),
    JumpChain("filter", KUBE_FIREWALL, "INPUT"),
    JumpChain("filter", KUBE_FIREWALL, "OUTPUT"),
    JumpChain("nat", KUBE_SERVICES, "OUTPUT", "kubernetes service portals"),
    JumpChain("nat", KUBE_SERVICES, "PREROUTING", "kubernetes service portals"),
    JumpChain("nat", KUBE_POSTROUTING, "POSTROUTING", "kubernetes postrouting rules"),
)
