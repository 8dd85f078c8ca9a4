"""Storage vocabulary shared by the API server, the PV controller and the kubelet.

The lab's one provisioner is kind's ``rancher.io/local-path``: a claim's volume is a directory
of the node its first pod landed on, ``/var/local-path-provisioner/pvc-<uid>_<ns>_<name>``
(the node container's own disk, never the host's), and the PersistentVolume pins pods to that
node through its ``nodeAffinity``.
"""

from __future__ import annotations

from typing import Any

Obj = dict[str, Any]

DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class"
#: set by the scheduler (here: the PV controller, once the claim's first pod is bound to a node)
SELECTED_NODE_ANNOTATION = "volume.kubernetes.io/selected-node"
#: which provisioner a claim waits for, as the PV controller announces it upstream
STORAGE_PROVISIONER_ANNOTATION = "volume.kubernetes.io/storage-provisioner"
BOUND_BY_CONTROLLER_ANNOTATION = "pv.kubernetes.io/bind-completed"
PROVISIONED_BY_ANNOTATION = "pv.kubernetes.io/provisioned-by"
#: StorageObjectInUseProtection: a claim a pod uses is not removed before the pod is gone
PVC_PROTECTION_FINALIZER = "kubernetes.io/pvc-protection"
LOCAL_PATH_PROVISIONER = "rancher.io/local-path"
LOCAL_PATH_ROOT = "/var/local-path-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
HOSTNAME_LABEL = "kubernetes.io/hostname"


def is_default_class(sc: Obj) -> bool:
    """``IsDefaultAnnotation``: the annotation is exactly ``"true"``."""
    return ((sc.get("metadata") or {}).get("annotations") or {}).get(DEFAULT_CLASS_ANNOTATION) == "true"


def default_class(classes: list[Obj]) -> Obj | None:
    """``GetDefaultClass``: of several defaults, the newest (then by name), as kube 1.26+ picks."""
    defaults = [sc for sc in classes if is_default_class(sc)]
    if not defaults:
        return None
    return max(defaults, key=lambda sc: (sc["metadata"].get("creationTimestamp") or "", sc["metadata"]["name"]))


def local_path(claim: Obj) -> str:
    """The node directory of a claim's local-path volume, named as the provisioner names it."""
    meta = claim["metadata"]
    return f"{LOCAL_PATH_ROOT}/pvc-{meta['uid']}_{meta['namespace']}_{meta['name']}"


def volume_path(pv: Obj) -> str | None:
    """A PersistentVolume's directory on its node: its ``hostPath`` or ``local`` path."""
    spec = pv.get("spec") or {}
    source = spec.get("hostPath") or spec.get("local") or {}
    return source.get("path")


def volume_node(pv: Obj) -> str | None:
    """The node a PV's required ``nodeAffinity`` pins it to (``kubernetes.io/hostname In [node]``), if any."""
    terms = ((((pv.get("spec") or {}).get("nodeAffinity") or {}).get("required") or {})
             .get("nodeSelectorTerms") or [])
    for term in terms:
        for expr in term.get("matchExpressions") or []:
            if expr.get("key") == HOSTNAME_LABEL and expr.get("operator") == "In" and expr.get("values"):
                return str(expr["values"][0])
    return None


def access_modes(modes: list[str] | None) -> str:
    """``GetAccessModesAsString``: ``RWO,ROX,RWX,RWOP`` in that order."""
    short = {"ReadWriteOnce": "RWO", "ReadOnlyMany": "ROX", "ReadWriteMany": "RWX", "ReadWriteOncePod": "RWOP"}
    given = set(modes or [])
    return ",".join(abbr for mode, abbr in short.items() if mode in given)
