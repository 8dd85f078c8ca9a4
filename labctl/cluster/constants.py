"""Names and Docker labels that identify a lab's objects.

Docker labels are the source of truth, as in kind: ``labctl status`` and ``labctl down``
find a cluster's containers, networks and volumes by label, with no local state file, so
they work after a reboot or from another shell.
"""

from ..kube.containers import CLUSTER_LABEL, node_container_name  # noqa: F401 (one owner: kube)

ROLE_LABEL = "io.labctl.role"
NODE_LABEL = "io.labctl.node"
NETWORK_LABEL = "io.labctl.network"
STATE_VOLUME_LABEL = "io.labctl.state"

DEFAULT_CLUSTER_NAME = "lab"
API_SERVER_CONTAINER_PORT = 6443
#: Docker network pool tried for `labSubnet: auto`
AUTO_SUBNET_POOL = "172.30.0.0/16"
#: the longest cluster name: container names must stay readable and hostnames < 64 chars
CLUSTER_NAME_MAX = 40


def network_name(cluster: str) -> str:
    return f"labctl-{cluster}"


def state_volume_name(cluster: str) -> str:
    return f"labctl-{cluster}-state"
