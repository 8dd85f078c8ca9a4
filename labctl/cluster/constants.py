"""Names and Docker labels that identify a lab's objects.

Docker labels are the source of truth, as in kind: ``labctl status`` and ``labctl down``
find a cluster's containers, networks and volumes by label, with no local state file, so
they work after a reboot or from another shell. The cluster label itself and the node
container namer belong to the Kubernetes vocabulary (:mod:`labctl.kube.containers`), which
the node agent and the API server share.
"""

ROLE_LABEL = "io.labctl.role"
NODE_LABEL = "io.labctl.node"
NETWORK_LABEL = "io.labctl.network"
STATE_VOLUME_LABEL = "io.labctl.state"

DEFAULT_CLUSTER_NAME = "lab"
API_SERVER_CONTAINER_PORT = 6443


def network_name(cluster: str) -> str:
    return f"labctl-{cluster}"


def state_volume_name(cluster: str) -> str:
    return f"labctl-{cluster}-state"
