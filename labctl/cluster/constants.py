"""Names and Docker labels that identify a lab's objects.

Docker labels are the source of truth, as in kind: ``labctl status`` and ``labctl down``
find a cluster's containers, networks and volumes by label, with no local state file, so
they work after a reboot or from another shell. The cluster label itself and the node
container namer belong to the Kubernetes vocabulary (:mod:`labctl.kube.containers`), which
the node agent and the API server share.
"""

import hashlib

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


#: Linux's IFNAMSIZ less the terminating NUL: the longest interface name
MAX_INTERFACE_NAME = 15


def bridge_name(cluster: str) -> str:
    """The lab network's Linux bridge on the host: ``lab-<name>`` when that fits in 15 characters,
    else ``lab-<first 6 characters>-<4 hex digits of the name's SHA-256>``.

    Cutting ``lab-<name>`` to 15 characters gave two labs whose names share their first 11
    characters the same bridge; the hash keeps them apart, the prefix keeps ``ip link`` readable.
    """
    name = f"lab-{cluster}"
    if len(name) <= MAX_INTERFACE_NAME:
        return name
    return f"lab-{cluster[:6]}-{hashlib.sha256(cluster.encode()).hexdigest()[:4]}"
