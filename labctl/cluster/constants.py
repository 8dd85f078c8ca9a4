"""Names and Docker labels that identify a lab's objects.

Docker labels are the source of truth, as in kind: ``labctl status`` and ``labctl down``
find a cluster's containers, networks and volumes by label, with no local state file, so
they work after a reboot or from another shell.
"""

CLUSTER_LABEL = "io.labctl.cluster"
ROLE_LABEL = "io.labctl.role"
NODE_LABEL = "io.labctl.node"
NETWORK_LABEL = "io.labctl.network"
STATE_VOLUME_LABEL = "io.labctl.state"
#: pod containers created by node agents carry this label with the node's container name
POD_NODE_LABEL = "io.labctl.pod.node"

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


def node_container_name(cluster: str, node: str) -> str:
    return f"{cluster}-{node}"

# Labels on pod containers (sandbox and app containers), as dockershim labelled them, so
# `docker ps --filter label=io.kubernetes.pod.name=web-1` works for students too.
POD_NAME_LABEL = "io.kubernetes.pod.name"
POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
POD_UID_LABEL = "io.kubernetes.pod.uid"
CONTAINER_NAME_LABEL = "io.kubernetes.container.name"   # "POD" for the sandbox
CONTAINER_ATTEMPT_LABEL = "io.kubernetes.container.attempt"  # restart count of this instance
CONTAINER_TYPE_LABEL = "io.kubernetes.docker.type"      # "podsandbox" | "container"
