"""The Node object a node agent registers and keeps fresh, as the kubelet does.

Pure functions of the agent's config and what it reads from the machine, so the shape
(addresses, podCIDR, capacity, conditions, nodeInfo) is unit-tested without a cluster.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

from ..clusterconfig import NodeConfig
from ..kube.meta import timestamp
from ..kube.objects import CONTROL_PLANE_ROLE, NODE_CONDITION_TYPES, condition_status

KUBELET_VERSION = "v1.37.0-labctl"
MAX_PODS = 110


def memory_capacity_kib(meminfo: Path = Path("/proc/meminfo")) -> int:
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1])
    return 0


def os_image(os_release: Path = Path("/etc/os-release")) -> str:
    try:
        for line in os_release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def node_labels(cfg: NodeConfig) -> dict[str, str]:
    labels = {
        "kubernetes.io/hostname": cfg.node_name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine()),
        "beta.kubernetes.io/os": "linux",
        "beta.kubernetes.io/arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine()),
    }
    if cfg.role == "control-plane":
        labels[CONTROL_PLANE_ROLE] = ""
    labels.update(cfg.labels)
    return labels


#: What a healthy kubelet reports for each condition it owns: (status, reason, message).
HEALTHY_CONDITIONS: dict[str, tuple[str, str, str]] = {
    "MemoryPressure": ("False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
    "DiskPressure": ("False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
    "PIDPressure": ("False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
    "Ready": ("True", "KubeletReady", "kubelet is posting ready status"),
}


def node_conditions(previous: list[dict] | None, now: str) -> list[dict]:
    """The conditions the kubelet posts: every heartbeat ``now``, a transition time kept
    while the status holds (the kubelet's condition setters), so ``kubectl describe node``
    shows since when a node has been Ready, not when it last reported."""
    before = {c.get("type"): c for c in previous or [] if isinstance(c, dict)}
    out = []
    for typ in NODE_CONDITION_TYPES:
        status, reason, message = HEALTHY_CONDITIONS[typ]
        old = before.get(typ) or {}
        since = old.get("lastTransitionTime") if old.get("status") == status else None
        out.append({"type": typ, "status": status, "reason": reason, "message": message,
                    "lastHeartbeatTime": now, "lastTransitionTime": since or now})
    return out


def conditions_drifted(node: dict) -> bool:
    """True when a condition the kubelet owns no longer says what the kubelet reports — the
    node lifecycle controller set it ``Unknown`` while this agent was cut off, or someone
    else wrote it. The kubelet is the owner: it posts its own view again at once."""
    return any(condition_status(node, typ) != HEALTHY_CONDITIONS[typ][0] for typ in NODE_CONDITION_TYPES)


def build_node(cfg: NodeConfig, cpus: int | None = None, memory_kib: int | None = None) -> dict:
    """The Node a freshly started agent registers."""
    cpus = cpus or os.cpu_count() or 1
    memory_kib = memory_kib or memory_capacity_kib()
    capacity = {"cpu": str(cpus), "memory": f"{memory_kib}Ki", "pods": str(MAX_PODS),
                "ephemeral-storage": "10Gi"}
    now = timestamp()
    uname = platform.uname()
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": cfg.node_name, "labels": node_labels(cfg),
                     "annotations": {"node.alpha.kubernetes.io/ttl": "0",
                                     "labctl.dev/cluster": cfg.cluster.name}},
        "spec": {"podCIDR": cfg.pod_cidr, "podCIDRs": [cfg.pod_cidr],
                 **({"taints": cfg.taints} if cfg.taints else {})},
        "status": {
            "capacity": capacity,
            "allocatable": dict(capacity),
            "conditions": node_conditions(None, now),
            "addresses": [{"type": "InternalIP", "address": cfg.internal_ip},
                          {"type": "Hostname", "address": cfg.node_name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": "", "systemUUID": "", "bootID": "",
                         "kernelVersion": uname.release, "osImage": os_image(),
                         "containerRuntimeVersion": "docker://labctl", "kubeletVersion": KUBELET_VERSION,
                         "kubeProxyVersion": KUBELET_VERSION, "operatingSystem": "linux",
                         "architecture": node_labels(cfg)["kubernetes.io/arch"]},
        },
    }


def build_lease(cfg: NodeConfig, now_micro: str) -> dict:
    return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": cfg.node_name, "namespace": "kube-node-lease"},
            "spec": {"holderIdentity": cfg.node_name, "leaseDurationSeconds": cfg.cluster.lifecycle.lease_duration_seconds,
                     "renewTime": now_micro}}
