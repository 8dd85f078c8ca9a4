"""Reading Kubernetes objects: conditions, readiness, addresses, owners.

The small questions every component asks of the JSON objects it gets from the API — is
this node Ready, what is its InternalIP, is this pod Ready, which object controls it —
answered once, the way Kubernetes' helpers answer them (``podutil.IsPodReady``,
``nodeutil.GetNodeCondition``, ``metav1.GetControllerOf``). Pure functions over dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Obj = dict[str, Any]


def get_condition(obj: Obj, typ: str) -> Obj | None:
    """The ``status.conditions`` entry of type ``typ``, or None."""
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == typ:
            return cond
    return None


def condition_status(obj: Obj, typ: str) -> str | None:
    """``"True"``, ``"False"``, ``"Unknown"``, or None when the condition is absent."""
    cond = get_condition(obj, typ)
    return cond.get("status") if cond else None


def node_is_ready(node: Obj) -> bool:
    return condition_status(node, "Ready") == "True"


def node_address(node: Obj, typ: str = "InternalIP") -> str | None:
    """The node's first address of type ``typ`` (``InternalIP``, ``ExternalIP``, ``Hostname``)."""
    for addr in (node.get("status") or {}).get("addresses") or []:
        if isinstance(addr, dict) and addr.get("type") == typ:
            return addr.get("address")
    return None


def pod_is_ready(pod: Obj) -> bool:
    return condition_status(pod, "Ready") == "True"


def controller_of(obj: Obj) -> Obj | None:
    """The ownerReference with ``controller: true`` (the ReplicaSet of a pod, …), or None."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return ref
    return None


#: The node conditions the kubelet owns and posts, in the kubelet's order; the node lifecycle
#: controller only sets them to ``Unknown`` when the kubelet stops posting.
#: the label kubeadm puts on the control-plane node, and the key of the taint that keeps pods off it
CONTROL_PLANE_ROLE = "node-role.kubernetes.io/control-plane"


def is_control_plane(node: Obj) -> bool:
    return CONTROL_PLANE_ROLE in ((node.get("metadata") or {}).get("labels") or {})


NODE_CONDITION_TYPES = ("MemoryPressure", "DiskPressure", "PIDPressure", "Ready")

#: the label tying an EndpointSlice to its Service (``discovery.LabelServiceName``): the
#: EndpointSlice controllers write it, the service proxy merges a Service's slices by it
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
#: on the Endpoints and EndpointSlices of a headless Service (``v1.IsHeadlessService``)
HEADLESS_LABEL = "service.kubernetes.io/headless"
#: a Service with this label belongs to another proxy than kube-proxy (``apis.LabelServiceProxyName``)
SERVICE_PROXY_NAME_LABEL = "service.kubernetes.io/service-proxy-name"
#: an IngressClass with this annotation ``"true"`` is given to Ingresses created without a class
#: (``networking.AnnotationIsDefaultIngressClass``)
DEFAULT_INGRESS_CLASS_ANNOTATION = "ingressclass.kubernetes.io/is-default-class"


def endpoint_slice_service(endpoint_slice: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(namespace, service)`` an EndpointSlice belongs to; None for a slice without the label."""
    meta = endpoint_slice.get("metadata") or {}
    name = (meta.get("labels") or {}).get(SERVICE_NAME_LABEL)
    return (meta.get("namespace") or "default", name) if isinstance(name, str) and name else None
