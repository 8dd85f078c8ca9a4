"""Labels on the Docker containers that make up a lab: nodes and pods.

Docker labels are the source of truth, as in kind: ``labctl status``, ``labctl down``, the
kubelet role's orphan collector and the API server's logs/exec find containers by label,
with no local state file. Pod containers also carry the labels dockershim gave them, so
``docker ps --filter label=io.kubernetes.pod.name=web-1`` works for students too.
"""

#: every Docker object of a lab (node containers, pod containers, network, volume)
CLUSTER_LABEL = "io.labctl.cluster"
#: pod containers created by node agents carry this label with the node's container name
POD_NODE_LABEL = "io.labctl.pod.node"
#: on a sandbox: the pod has ``hostNetwork: true``, its containers are in the node's network namespace
HOST_NETWORK_LABEL = "io.labctl.pod.hostNetwork"

POD_NAME_LABEL = "io.kubernetes.pod.name"
POD_NAMESPACE_LABEL = "io.kubernetes.pod.namespace"
POD_UID_LABEL = "io.kubernetes.pod.uid"
CONTAINER_NAME_LABEL = "io.kubernetes.container.name"   # "POD" for the sandbox
CONTAINER_ATTEMPT_LABEL = "io.kubernetes.container.attempt"  # restart count of this instance
CONTAINER_TYPE_LABEL = "io.kubernetes.docker.type"      # "podsandbox" | "container"
#: the image as the pod's spec names it when the container was made (the kubelet restarts a
#: container whose spec image changed since: ``kubectl set image pod/...``)
CONTAINER_SPEC_IMAGE_LABEL = "io.labctl.container.specImage"
VOLUME_NAME_LABEL = "io.kubernetes.volume.name"        # a pod's Docker volume (Memory emptyDir)

#: the kubelet's directory of a pod on its node (``<uid>/``: volumes, ``etc-hosts``, ``resolv.conf``)
KUBELET_PODS_DIR = "/var/lib/kubelet/pods"


def node_container_name(cluster: str, node: str) -> str:
    """The Docker container (and hostname) of node ``node`` in lab ``cluster``."""
    return f"{cluster}-{node}"
