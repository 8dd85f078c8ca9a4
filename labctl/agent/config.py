"""The node agent's configuration, written by ``labctl up`` into the node as JSON.

One file (``/etc/labctl/node.json``) rather than many flags: ``labctl exec NODE -- cat
/etc/labctl/node.json`` shows a student everything the node was told.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

CONFIG_PATH = Path("/etc/labctl/node.json")
KUBECONFIG_PATH = Path("/etc/labctl/kubelet.kubeconfig")


@dataclass
class AgentConfig:
    cluster: str
    node_name: str
    role: str  # control-plane | worker
    internal_ip: str
    pod_cidr: str
    kubeconfig: str = str(KUBECONFIG_PATH)
    labels: dict[str, str] = field(default_factory=dict)
    taints: list[dict] = field(default_factory=list)
    cluster_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/12"
    cluster_dns: str = "10.96.0.10"
    node_port_range: str = "30000-32767"
    image_aliases: dict[str, str] = field(default_factory=dict)
    lease_duration_seconds: int = 40
    lease_renew_seconds: float = 10.0
    node_status_seconds: float = 60.0
    node_monitor_grace_seconds: float = 40.0
    pod_eviction_timeout_seconds: float = 300.0

    def dump(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def load(cls, path: Path = CONFIG_PATH) -> "AgentConfig":
        data = json.loads(Path(path).read_text())
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})
