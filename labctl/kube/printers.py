"""Printing objects as kubectl shows them: ``meta.k8s.io/v1`` Tables and the cells of each kind's row.

kubectl asks for ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` and prints the
cells it gets back; it knows nothing about pods or services itself. The column definitions
and cell logic here are a port of Kubernetes' ``pkg/printers/internalversion/printers.go``
(priority-1 columns are the ``-o wide`` ones), and ages use ``duration.HumanDuration``.
The API server serves Tables with it (each kind's :class:`TablePrinter` is named by its
strategy, :mod:`labctl.apiserver.strategies`); the terminal UI prints its rows with the same
``print_*`` functions, so both show what ``kubectl get`` shows. Everything is pure: objects
(and a :class:`Clock`) in, cells or a Table dict out; the caller fills ``metadata.resourceVersion``.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .labels import SelectorError, format_label_selector, format_labels, selector_from_label_selector
from .meta import now as clock_now
from .meta import parse_time, timestamp
from .storage import access_modes, is_default_class

log = logging.getLogger("labctl.kube.printers")

Obj = dict[str, Any]

_NAME_DOC = ("Name must be unique within a namespace. Is required when creating resources, although some "
             "resources may allow a client to request the generation of an appropriate name automatically. "
             "Name is primarily intended for creation idempotence and configuration definition. Cannot be "
             "updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names")
_AGE_DOC = ("CreationTimestamp is a timestamp representing the server time when this object was created. It is "
            "not guaranteed to be set in happens-before order across separate operations. Clients may not set "
            "this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. "
            "Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/"
            "api-conventions.md#metadata")


def human_duration(seconds: float) -> str:
    """``duration.HumanDuration``: ~2-3 significant figures (``5s``, ``3m20s``, ``10h``, ``2d3h``, ``3y``).

    Up to 2 s in the future still reads ``0s`` (clock skew between machines).
    """
    secs = int(seconds)  # Go's int(d.Seconds()) truncates toward zero
    if secs < -1:
        return "<invalid>"
    if secs < 0:
        return "0s"
    if secs < 60 * 2:
        return f"{secs}s"
    minutes = secs // 60
    if minutes < 10:
        s = secs % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = secs // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


class Clock:
    """Ages relative to one instant, so every row of a Table agrees."""

    def __init__(self, now: datetime | None) -> None:
        self.now = now or clock_now()

    def since(self, value: str | None) -> str:
        """``translateTimestampSince``: ``<unknown>`` for a zero time."""
        when = parse_time(value)
        if when is None:
            return "<unknown>"
        return human_duration((self.now - when).total_seconds())


def _col(name: str, type_: str, description: str, priority: int = 0, format_: str = "") -> Obj:
    return {"name": name, "type": type_, "format": format_, "description": description, "priority": priority}


_NAME = _col("Name", "string", _NAME_DOC, format_="name")
_AGE = _col("Age", "string", _AGE_DOC)


def _get(obj: Any, *path: str, default: Any = None) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj or obj[key] is None:
            return default
        obj = obj[key]
    return obj


def _name(obj: Obj) -> str:
    return _get(obj, "metadata", "name", default="")


def _created(obj: Obj, clock: Clock) -> str:
    return clock.since(_get(obj, "metadata", "creationTimestamp"))


def _containers(template_spec: Obj | None) -> tuple[str, str]:
    """``layoutContainerCells``: container names and images, comma-joined."""
    containers = _get(template_spec or {}, "containers", default=[])
    return (",".join(c.get("name", "") for c in containers), ",".join(c.get("image", "") for c in containers))


# --------------------------------------------------------------------------------------------
# Pods
# --------------------------------------------------------------------------------------------

POD_COLUMNS = [
    _NAME,
    _col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "string", "The aggregate status of the containers in this pod."),
    _col("Restarts", "string", "The number of times the containers in this pod have been restarted and when the "
                               "last container in this pod has restarted."),
    _AGE,
    _col("IP", "string", "podIP address allocated to the pod. Routable at least within the cluster.", priority=1),
    _col("Node", "string", "NodeName indicates in which node this pod is scheduled.", priority=1),
    _col("Nominated Node", "string", "nominatedNodeName is set only when this pod preempts other pods on the node.",
         priority=1),
    _col("Readiness Gates", "string", "If specified, all readiness gates will be evaluated for pod readiness.",
         priority=1),
]


def _has_condition(pod: Obj, type_: str) -> bool:
    """True when the pod's first condition of ``type_`` has status True."""
    for cond in _get(pod, "status", "conditions", default=[]):
        if cond.get("type") == type_:
            return cond.get("status") == "True"
    return False


class _Restarts:
    """Restart count and the newest ``lastState.terminated.finishedAt`` seen."""

    def __init__(self) -> None:
        self.count = 0
        self.last: datetime | None = None

    def add(self, status: Obj) -> None:
        self.count += status.get("restartCount", 0)
        finished = parse_time(_get(status, "lastState", "terminated", "finishedAt"))
        if finished is not None and (self.last is None or finished > self.last):
            self.last = finished


def _terminated_reason(term: Obj, prefix: str) -> str:
    if term.get("reason"):
        return prefix + term["reason"]
    if term.get("signal"):
        return f"{prefix}Signal:{term['signal']}"
    return f"{prefix}ExitCode:{term.get('exitCode', 0)}"


def _pod_init_status(pod: Obj, reason: str, all_restarts: _Restarts, sidecar_restarts: _Restarts
                     ) -> tuple[str, int, bool]:
    """Walk init containers like ``printPod``: (reason, ready sidecars, still initializing)."""
    specs = {c.get("name"): c for c in _get(pod, "spec", "initContainers", default=[])}
    n_init, ready = len(specs), 0
    for i, status in enumerate(_get(pod, "status", "initContainerStatuses", default=[])):
        sidecar = _get(specs.get(status.get("name")) or {}, "restartPolicy") == "Always"
        all_restarts.add(status)
        if sidecar:
            sidecar_restarts.add(status)
        state = status.get("state") or {}
        terminated, waiting = state.get("terminated"), state.get("waiting")
        if terminated is not None and terminated.get("exitCode", 0) == 0:
            continue
        if sidecar and status.get("started"):
            ready += 1 if status.get("ready") else 0
            continue
        if terminated is not None:
            return _terminated_reason(terminated, "Init:"), ready, True
        if waiting is not None and waiting.get("reason") and waiting["reason"] != "PodInitializing":
            return "Init:" + waiting["reason"], ready, True
        return f"Init:{i}/{n_init}", ready, True
    return reason, ready, False


def pod_status(pod: Obj, clock: Clock) -> tuple[str, str, str]:
    """kubectl's READY, STATUS and RESTARTS cells for a pod (``printPod``)."""
    status = pod.get("status") or {}
    phase = status.get("phase", "")
    reason = status.get("reason") or phase
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("reason") == "SchedulingGated":
            reason = "SchedulingGated"
    init_specs = _get(pod, "spec", "initContainers", default=[])
    total = len(_get(pod, "spec", "containers", default=[])) + sum(
        1 for c in init_specs if c.get("restartPolicy") == "Always")
    restarts, sidecar_restarts = _Restarts(), _Restarts()
    reason, ready, initializing = _pod_init_status(pod, reason, restarts, sidecar_restarts)
    if not initializing or _has_condition(pod, "Initialized"):
        restarts, has_running = sidecar_restarts, False
        for cs in reversed(status.get("containerStatuses") or []):
            restarts.add(cs)
            state = cs.get("state") or {}
            waiting, terminated = state.get("waiting"), state.get("terminated")
            if waiting is not None and waiting.get("reason"):
                reason = waiting["reason"]
            elif terminated is not None:
                reason = _terminated_reason(terminated, "")
            elif cs.get("ready") and state.get("running") is not None:
                has_running, ready = True, ready + 1
        if reason == "Completed" and has_running:
            reason = "Running" if _has_condition(pod, "Ready") else "NotReady"
    if _get(pod, "metadata", "deletionTimestamp"):
        if status.get("reason") == "NodeLost":  # NodeUnreachablePodReason
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"
    restarts_cell = str(restarts.count)
    if restarts.count and restarts.last is not None:
        restarts_cell = f"{restarts.count} ({human_duration((clock.now - restarts.last).total_seconds())} ago)"
    return f"{ready}/{total}", reason, restarts_cell


def print_pod(pod: Obj, clock: Clock) -> list[Any]:
    ready, reason, restarts = pod_status(pod, clock)
    status = pod.get("status") or {}
    ips = status.get("podIPs") or []
    pod_ip = (ips[0].get("ip") if ips else status.get("podIP")) or "<none>"
    gates = _get(pod, "spec", "readinessGates", default=[])
    gates_cell = "<none>"
    if gates:
        conditions: dict[str, str] = {}
        for cond in status.get("conditions") or []:
            conditions.setdefault(cond.get("type"), cond.get("status"))
        true = sum(1 for g in gates if conditions.get(g.get("conditionType")) == "True")
        gates_cell = f"{true}/{len(gates)}"
    return [_name(pod), ready, reason, restarts, _created(pod, clock), pod_ip,
            _get(pod, "spec", "nodeName") or "<none>", status.get("nominatedNodeName") or "<none>", gates_cell]


# --------------------------------------------------------------------------------------------
# Services, endpoints, endpoint slices
# --------------------------------------------------------------------------------------------

SERVICE_COLUMNS = [
    _NAME,
    _col("Type", "string", "type determines how the Service is exposed."),
    _col("Cluster-IP", "string", "clusterIP is the IP address of the service and is usually assigned randomly."),
    _col("External-IP", "string", "externalIPs is a list of IP addresses for which nodes in the cluster will "
                                  "also accept traffic for this service."),
    _col("Port(s)", "string", "The list of ports that are exposed by this service."),
    _AGE,
    _col("Selector", "string", "Route service traffic to pods with label keys and values matching this selector.",
         priority=1),
]


def _load_balancer_ips(svc: Obj) -> str:
    """``loadBalancerStatusStringer`` (wide): ingress IPs, else hostnames, de-duplicated."""
    seen: dict[str, None] = {}
    for ingress in _get(svc, "status", "loadBalancer", "ingress", default=[]):
        value = ingress.get("ip") or ingress.get("hostname")
        if value:
            seen[value] = None
    return ",".join(seen)


def _service_external_ip(svc: Obj) -> str:
    spec = svc.get("spec") or {}
    svc_type, external_ips = spec.get("type", "ClusterIP"), spec.get("externalIPs") or []
    if svc_type in ("ClusterIP", "NodePort"):
        return ",".join(external_ips) if external_ips else "<none>"
    if svc_type == "LoadBalancer":
        lb_ips = _load_balancer_ips(svc)
        if external_ips:
            return ",".join(([*lb_ips.split(",")] if lb_ips else []) + external_ips)
        return lb_ips or "<pending>"
    if svc_type == "ExternalName":
        return spec.get("externalName", "")
    return "<unknown>"


def make_port_string(ports: list[Obj]) -> str:
    """``makePortString``: ``80/TCP``, or ``80:30080/TCP`` when a node port is allocated."""
    pieces = []
    for port in ports:
        proto = port.get("protocol", "TCP")
        node_port = port.get("nodePort") or 0
        pieces.append(f"{port.get('port')}:{node_port}/{proto}" if node_port > 0 else f"{port.get('port')}/{proto}")
    return ",".join(pieces)


def print_service(svc: Obj, clock: Clock) -> list[Any]:
    spec = svc.get("spec") or {}
    cluster_ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    ports = make_port_string(spec.get("ports") or []) or "<none>"
    return [_name(svc), spec.get("type", "ClusterIP"), cluster_ips[0] if cluster_ips else "<none>",
            _service_external_ip(svc), ports, _created(svc, clock), format_labels(spec.get("selector"))]


ENDPOINTS_COLUMNS = [_NAME, _col("Endpoints", "string", "The set of all endpoints is the union of all subsets."),
                     _AGE]


def _join_host_port(host: str, port: Any) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def format_endpoints(endpoints: Obj) -> str:
    """``formatEndpoints``: up to three ``ip:port`` then ``+ N more...``; ``<none>`` without subsets."""
    subsets = endpoints.get("subsets") or []
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count, more, maximum = 0, False, 3
    for subset in subsets:
        addresses = subset.get("addresses") or []
        ports = subset.get("ports") or [None]  # headless services may have no ports
        for port in ports:
            count += len(addresses)
            for addr in addresses:
                if len(shown) == maximum:
                    more = True
                    break
                ip = addr.get("ip", "")
                shown.append(ip if port is None else _join_host_port(ip, port.get("port")))
    text = ",".join(shown)
    return f"{text} + {count - maximum} more..." if more else text


def print_endpoints(ep: Obj, clock: Clock) -> list[Any]:
    return [_name(ep), format_endpoints(ep), _created(ep, clock)]


ENDPOINTSLICE_COLUMNS = [
    _NAME, _col("AddressType", "string", "addressType specifies the type of address carried by this EndpointSlice."),
    _col("Ports", "string", "ports specifies the list of network ports exposed by each endpoint in this slice."),
    _col("Endpoints", "string", "endpoints is a list of unique endpoints in this slice."), _AGE,
]


def _list_with_more(items: list[str], maximum: int = 3) -> str:
    """``listWithMoreString``: the first three, ``+ N more...``, or ``<unset>`` when empty."""
    text = ",".join(items[:maximum])
    if len(items) > maximum:
        return f"{text} + {len(items) - maximum} more..."
    return text or "<unset>"


def print_endpointslice(eps: Obj, clock: Clock) -> list[Any]:
    ports = [str(p["port"]) if p.get("port") is not None else (p.get("name") or "*") for p in eps.get("ports") or []]
    addresses = [a for e in eps.get("endpoints") or [] for a in e.get("addresses") or []]
    return [_name(eps), eps.get("addressType", ""), _list_with_more(ports), _list_with_more(addresses),
            _created(eps, clock)]


# --------------------------------------------------------------------------------------------
# Nodes, namespaces, events
# --------------------------------------------------------------------------------------------

NODE_COLUMNS = [
    _NAME, _col("Status", "string", "The status of the node"), _col("Roles", "string", "The roles of the node"),
    _AGE, _col("Version", "string", "Kubelet Version reported by the node."),
    _col("Internal-IP", "string", "List of addresses reachable to the node.", priority=1),
    _col("External-IP", "string", "List of addresses reachable to the node.", priority=1),
    _col("OS-Image", "string", "OS Image reported by the node from /etc/os-release.", priority=1),
    _col("Kernel-Version", "string", "Kernel Version reported by the node from 'uname -r'.", priority=1),
    _col("Container-Runtime", "string", "ContainerRuntime Version reported by the node through runtime remote API.",
         priority=1),
]


def node_roles(labels: dict[str, str]) -> list[str]:
    """``findNodeRoles``: ``node-role.kubernetes.io/<role>`` keys and the ``kubernetes.io/role`` value."""
    roles = set()
    for key, value in labels.items():
        if key.startswith("node-role.kubernetes.io/") and key[len("node-role.kubernetes.io/"):]:
            roles.add(key[len("node-role.kubernetes.io/"):])
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return sorted(roles)


def _node_address(node: Obj, kind: str) -> str:
    for address in _get(node, "status", "addresses", default=[]):
        if address.get("type") == kind:
            return address.get("address", "")
    return "<none>"


def print_node(node: Obj, clock: Clock) -> list[Any]:
    status = []
    for cond in _get(node, "status", "conditions", default=[]):
        if cond.get("type") == "Ready":  # NodeAllConditions is just Ready
            status = ["Ready" if cond.get("status") == "True" else "NotReady"]
    status = status or ["Unknown"]
    if _get(node, "spec", "unschedulable"):
        status.append("SchedulingDisabled")
    info = _get(node, "status", "nodeInfo", default={})
    return [_name(node), ",".join(status), ",".join(node_roles(_get(node, "metadata", "labels", default={})))
            or "<none>", _created(node, clock), info.get("kubeletVersion", ""),
            _node_address(node, "InternalIP"), _node_address(node, "ExternalIP"),
            info.get("osImage") or "<unknown>", info.get("kernelVersion") or "<unknown>",
            info.get("containerRuntimeVersion") or "<unknown>"]


NAMESPACE_COLUMNS = [_NAME, _col("Status", "string", "The status of the namespace"), _AGE]


def print_namespace(ns: Obj, clock: Clock) -> list[Any]:
    return [_name(ns), _get(ns, "status", "phase", default=""), _created(ns, clock)]


EVENT_COLUMNS = [
    _col("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
    _col("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
    _col("Reason", "string", "This should be a short, machine understandable string that gives the reason for "
                             "the transition into the object's current status."),
    _col("Object", "string", "The object that this event is about."),
    _col("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string "
                                "should contain a valid JSON/Go field access statement.", priority=1),
    _col("Source", "string", "The component reporting this event. Should be a short machine understandable "
                             "string.", priority=1),
    _col("Message", "string", "A human-readable description of the status of this operation."),
    _col("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in "
                                 "TypeMeta.)", priority=1),
    _col("Count", "string", "The number of times this event has occurred.", priority=1),
    _col("Name", "string", _NAME_DOC, priority=1, format_="name"),
]


def print_event(ev: Obj, clock: Clock) -> list[Any]:
    first = clock.since(ev.get("firstTimestamp")) if ev.get("firstTimestamp") else clock.since(ev.get("eventTime"))
    last = clock.since(ev.get("lastTimestamp")) if ev.get("lastTimestamp") else first
    count = ev.get("count") or 0
    if ev.get("series"):
        last, count = clock.since(ev["series"].get("lastObservedTime")), ev["series"].get("count", 0)
    elif count == 0:
        count = 1  # singleton events of the new API carry no count
    involved = ev.get("involvedObject") or {}
    kind = (involved.get("kind") or "").lower()
    target = f"{kind}/{involved['name']}" if involved.get("name") else kind
    component = _get(ev, "source", "component") or ev.get("reportingComponent") or ""
    host = _get(ev, "source", "host") or ev.get("reportingInstance") or ""
    source = f"{component}, {host}" if host else component
    return [last, ev.get("type", ""), ev.get("reason", ""), target, involved.get("fieldPath", ""), source,
            (ev.get("message") or "").strip(), first, count, _name(ev)]


# --------------------------------------------------------------------------------------------
# Config, workloads, leases, and the default
# --------------------------------------------------------------------------------------------

CONFIGMAP_COLUMNS = [_NAME, _col("Data", "string", "Data contains the configuration data."), _AGE]
SECRET_COLUMNS = [_NAME, _col("Type", "string", "Used to facilitate programmatic handling of secret data."),
                  _col("Data", "string", "Data contains the secret data."), _AGE]
SERVICEACCOUNT_COLUMNS = [_NAME, _col("Secrets", "string", "Secrets is a list of the secrets in the same namespace "
                                                           "that pods running using this ServiceAccount are allowed "
                                                           "to use."), _AGE]
LEASE_COLUMNS = [_NAME, _col("Holder", "string", "holderIdentity contains the identity of the holder of a current "
                                                 "lease."), _AGE]
NETWORKPOLICY_COLUMNS = [
    _NAME, _col("Pod-Selector", "string", "podSelector selects the pods to which this NetworkPolicy object applies. "
                                          "The array of rules is applied to any pods selected by this field. An empty "
                                          "selector matches all pods in the policy's namespace. Multiple network "
                                          "policies can select the same set of pods. In this case, the ingress rules "
                                          "for each are combined additively. This field is optional. If it is not "
                                          "specified, it defaults to an empty selector."), _AGE]
PODDISRUPTIONBUDGET_COLUMNS = [
    _NAME, _col("Min Available", "string", "The minimum number of pods that must be available."),
    _col("Max Unavailable", "string", "The maximum number of pods that may be unavailable."),
    _col("Allowed Disruptions", "integer", "Calculated number of pods that may be disrupted at this time."), _AGE]
HORIZONTALPODAUTOSCALER_COLUMNS = [
    _NAME, _col("Reference", "string", "The reference to the autoscaled object."),
    _col("Targets", "string", "The current and target metric values for this autoscaler."),
    _col("MinPods", "string", "The lower limit of replicas the autoscaler may scale down to."),
    _col("MaxPods", "integer", "The upper limit of replicas the autoscaler may scale up to."),
    _col("Replicas", "integer", "The current number of replicas of the scaled object."), _AGE]
INGRESS_COLUMNS = [
    _NAME, _col("Class", "string", "The name of the IngressClass resource that should be used for this Ingress."),
    _col("Hosts", "string", "Hosts that incoming requests are matched against before the ingress rule"),
    _col("Address", "string", "Address is a list containing ingress points for the load-balancer"),
    _col("Ports", "string", "Ports of TLS configurations that open"), _AGE]
INGRESSCLASS_COLUMNS = [
    _NAME, _col("Controller", "string", "Controller that is responsible for handling this class"),
    _col("Parameters", "string", "A reference to a resource with additional parameters"), _AGE]
PRIORITYCLASS_COLUMNS = [
    _NAME, _col("Value", "integer", "value represents the integer value of this priority class. This is the actual "
                "priority that pods receive when they have the name of this class in their pod spec."),
    _col("Global-Default", "boolean", "globalDefault specifies whether this PriorityClass should be considered as "
         "the default priority for pods that do not have any priority class."), _AGE,
    _col("PreemptionPolicy", "string", "preemptionPolicy is the Policy for preempting pods with lower priority. "
         "One of Never, PreemptLowerPriority. Defaults to PreemptLowerPriority if unset.")]
STORAGECLASS_COLUMNS = [
    _NAME, _col("Provisioner", "string", "Indicates the type of the provisioner."),
    _col("ReclaimPolicy", "string", "Indicates the type of the reclaim policy."),
    _col("VolumeBindingMode", "string", "Indicates the binding mode of the volume."),
    _col("AllowVolumeExpansion", "string", "Indicates whether the storage class allows volume expand."), _AGE]
PERSISTENTVOLUME_COLUMNS = [
    _NAME, _col("Capacity", "string", "Capacity is the description of the persistent volume's resources and capacity."),
    _col("Access Modes", "string", "AccessModes contains all ways the volume can be mounted."),
    _col("Reclaim Policy", "string", "What happens to a persistent volume when released from its claim."),
    _col("Status", "string", "Phase indicates if a volume is available, bound to a claim, or released by a claim."),
    _col("Claim", "string", "ClaimRef is part of a bi-directional binding between PersistentVolume and "
         "PersistentVolumeClaim."),
    _col("StorageClass", "string", "StorageClassName is the name of StorageClass to which this persistent volume "
         "belongs."),
    _col("VolumeAttributesClass", "string", "Name of VolumeAttributesClass to which this persistent volume belongs."),
    _col("Reason", "string", "Reason is a brief CamelCase string that describes any failure."),
    _AGE, _col("VolumeMode", "string", "Defines if a volume is intended to be used with a formatted filesystem or "
               "to remain in raw block state.", priority=1)]
PERSISTENTVOLUMECLAIM_COLUMNS = [
    _NAME, _col("Status", "string", "Phase represents the current phase of PersistentVolumeClaim."),
    _col("Volume", "string", "VolumeName is the binding reference to the PersistentVolume backing this claim."),
    _col("Capacity", "string", "Capacity represents the actual resources of the underlying volume."),
    _col("Access Modes", "string", "AccessModes contains all ways the volume backing the PVC can be mounted."),
    _col("StorageClass", "string", "StorageClassName is the name of the StorageClass required by the claim."),
    _col("VolumeAttributesClass", "string", "Name of VolumeAttributesClass used by the claim."),
    _AGE, _col("VolumeMode", "string", "Defines what type of volume is required by the claim.", priority=1)]
_TEMPLATE_COLUMNS = [
    _col("Containers", "string", "Names of each container in the template.", priority=1),
    _col("Images", "string", "Images referenced by each container in the template.", priority=1),
    _col("Selector", "string", "Label selector for pods. Existing ReplicaSets whose pods are selected by this will "
                               "be the ones affected by this deployment.", priority=1),
]
REPLICASET_COLUMNS = [
    _NAME, _col("Desired", "integer", "Replicas is the number of desired pods."),
    _col("Current", "integer", "Replicas is the most recently observed number of non-terminating pods."),
    _col("Ready", "integer", "The number of non-terminating pods targeted by this ReplicaSet with a Ready "
                             "Condition."), _AGE, *_TEMPLATE_COLUMNS,
]
DEPLOYMENT_COLUMNS = [
    _NAME, _col("Ready", "string", "Number of the pod with ready state"),
    _col("Up-to-date", "string", "Total number of non-terminating pods targeted by this deployment that have the "
                                 "desired template spec."),
    _col("Available", "string", "Total number of available non-terminating pods (ready for at least "
                                "minReadySeconds) targeted by this deployment."), _AGE, *_TEMPLATE_COLUMNS,
]
DAEMONSET_COLUMNS = [
    _NAME, _col("Desired", "integer", "The total number of nodes that should be running the daemon pod (including "
                                      "nodes correctly running the daemon pod). More info: "
                                      "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
    _col("Current", "integer", "The number of nodes that are running at least 1 daemon pod and are supposed to run "
                               "the daemon pod. More info: "
                               "https://kubernetes.io/docs/concepts/workloads/controllers/daemonset/"),
    _col("Ready", "integer", "numberReady is the number of nodes that should be running the daemon pod and have one "
                             "or more of the daemon pod running with a Ready Condition."),
    _col("Up-to-date", "integer", "The total number of nodes that are running updated daemon pod"),
    _col("Available", "integer", "The number of nodes that should be running the daemon pod and have one or more of "
                                 "the daemon pod running and available (ready for at least spec.minReadySeconds)"),
    _col("Node Selector", "string", "NodeSelector is a selector which must be true for the pod to fit on a node. "
                                    "Selector which must match a node's labels for the pod to be scheduled on that "
                                    "node. More info: https://kubernetes.io/docs/concepts/configuration/assign-pod-node/"),
    _AGE, *_TEMPLATE_COLUMNS[:2],
    _col("Selector", "string", "A label query over pods that are managed by the daemon set. Must match in order to be "
                               "controlled. It must match the pod template's labels. More info: "
                               "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors",
         priority=1),
]
STATEFULSET_COLUMNS = [_NAME, _col("Ready", "string", "Number of the pod with ready state"), _AGE,
                       *_TEMPLATE_COLUMNS[:2]]
_JOB_SELECTOR = _col("Selector", "string", "A label query over pods that should match the pod count. Normally, the "
                                           "system sets this field for you. More info: https://kubernetes.io/docs/"
                                           "concepts/overview/working-with-objects/labels/#label-selectors", priority=1)
JOB_COLUMNS = [
    _NAME, _col("Status", "string", "Status of the job."),
    _col("Completions", "string", "The number of pods which reached phase Succeeded. The value increases "
                                  "monotonically for a given spec. However, it may decrease in reaction to scale down "
                                  "of elastic indexed jobs."),
    _col("Duration", "string", "Time required to complete the job."), _AGE, *_TEMPLATE_COLUMNS[:2], _JOB_SELECTOR,
]
CRONJOB_COLUMNS = [
    _NAME, _col("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    _col("Timezone", "string", "The time zone name for the given schedule, see "
                               "https://en.wikipedia.org/wiki/List_of_tz_database_time_zones. If not specified, this "
                               "will default to the time zone of the kube-controller-manager process."),
    _col("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to "
                               "already started executions.  Defaults to false."),
    _col("Active", "integer", "A list of pointers to currently running jobs."),
    _col("Last Schedule", "string", "Information when was the last time the job was successfully scheduled."),
    _AGE, *_TEMPLATE_COLUMNS[:2], _JOB_SELECTOR,
]
CONTROLLERREVISION_COLUMNS = [
    _NAME, _col("Controller", "string", "Controller of the object"),
    _col("Revision", "string", "Revision indicates the revision of the state represented by Data."), _AGE,
]
RESOURCEQUOTA_COLUMNS = [
    _NAME, _AGE,
    _col("Request", "string", "Request represents a minimum amount of cpu/memory that a container may consume."),
    _col("Limit", "string", "Limits control the maximum amount of cpu/memory that a container may use independent "
                            "of contention on the node."),
]
DEFAULT_COLUMNS = [_NAME, _col("Created At", "date", _AGE_DOC)]
_BINDING_COLUMNS = {
    scope: [_NAME, _col("Role", "string", doc), _AGE,
            _col("Users", "string", f"Users in the {scope}", priority=1),
            _col("Groups", "string", f"Groups in the {scope}", priority=1),
            _col("ServiceAccounts", "string", f"ServiceAccounts in the {scope}", priority=1)]
    for scope, doc in (
        ("roleBinding", "RoleRef can reference a Role in the current namespace or a ClusterRole in the global "
                        "namespace. If the RoleRef cannot be resolved, the Authorizer must return an error."),
        ("clusterRoleBinding", "RoleRef can only reference a ClusterRole in the global namespace. If the RoleRef "
                               "cannot be resolved, the Authorizer must return an error."))
}


def print_replicaset(rs: Obj, clock: Clock) -> list[Any]:
    spec, status = rs.get("spec") or {}, rs.get("status") or {}
    names, images = _containers(_get(spec, "template", "spec"))
    # spec.replicas is defaulted to 1 by the API server, as in Kubernetes.
    return [_name(rs), spec.get("replicas", 1), status.get("replicas", 0), status.get("readyReplicas", 0),
            _created(rs, clock), names, images, format_label_selector(spec.get("selector"))]


def print_deployment(deploy: Obj, clock: Clock) -> list[Any]:
    spec, status = deploy.get("spec") or {}, deploy.get("status") or {}
    names, images = _containers(_get(spec, "template", "spec"))
    try:
        selector = str(selector_from_label_selector(spec.get("selector")))
    except SelectorError:
        selector = "<invalid>"
    return [_name(deploy), f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}",
            status.get("updatedReplicas", 0), status.get("availableReplicas", 0), _created(deploy, clock),
            names, images, selector]


def print_daemonset(ds: Obj, clock: Clock) -> list[Any]:
    spec, status = ds.get("spec") or {}, ds.get("status") or {}
    names, images = _containers(_get(spec, "template", "spec"))
    return [_name(ds), status.get("desiredNumberScheduled", 0), status.get("currentNumberScheduled", 0),
            status.get("numberReady", 0), status.get("updatedNumberScheduled", 0), status.get("numberAvailable", 0),
            format_labels(_get(spec, "template", "spec", "nodeSelector")), _created(ds, clock), names, images,
            format_label_selector(spec.get("selector"))]


def print_statefulset(sts: Obj, clock: Clock) -> list[Any]:
    spec, status = sts.get("spec") or {}, sts.get("status") or {}
    names, images = _containers(_get(spec, "template", "spec"))
    ready = f"{status.get('readyReplicas', 0)}/{spec.get('replicas', 1)}"
    return [_name(sts), ready, _created(sts, clock), names, images]


def _true_condition(obj: Obj, type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True" for c in _get(obj, "status", "conditions", default=[]))


def job_status(job: Obj) -> str:
    """``printJob``'s STATUS: the first of its finished, terminating, suspended or interim states."""
    for condition in ("Complete", "Failed"):
        if _true_condition(job, condition):
            return condition
    if _get(job, "metadata", "deletionTimestamp"):
        return "Terminating"
    for condition in ("Suspended", "FailureTarget", "SuccessCriteriaMet"):
        if _true_condition(job, condition):
            return condition
    return "Running"


def print_job(job: Obj, clock: Clock) -> list[Any]:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    succeeded = status.get("succeeded", 0)
    if spec.get("completions") is not None:
        completions = f"{succeeded}/{spec['completions']}"
    elif (spec.get("parallelism") or 0) > 1:
        completions = f"{succeeded}/1 of {spec['parallelism']}"
    else:
        completions = f"{succeeded}/1"
    started, finished = parse_time(status.get("startTime")), parse_time(status.get("completionTime"))
    if started is None:
        duration = ""
    elif finished is None:
        duration = human_duration((clock.now - started).total_seconds())
    else:
        duration = human_duration((finished - started).total_seconds())
    names, images = _containers(_get(spec, "template", "spec"))
    return [_name(job), job_status(job), completions, duration, _created(job, clock), names, images,
            format_label_selector(spec.get("selector"))]


def print_cronjob(cj: Obj, clock: Clock) -> list[Any]:
    spec, status = cj.get("spec") or {}, cj.get("status") or {}
    last = clock.since(status["lastScheduleTime"]) if status.get("lastScheduleTime") else "<none>"
    suspend = "<unset>" if spec.get("suspend") is None else str(bool(spec["suspend"]))
    job_spec = _get(spec, "jobTemplate", "spec", default={})
    names, images = _containers(_get(job_spec, "template", "spec"))
    return [_name(cj), spec.get("schedule", ""), spec.get("timeZone") or "<none>", suspend,
            len(status.get("active") or []), last, _created(cj, clock), names, images,
            format_label_selector(job_spec.get("selector"))]


def print_controller_revision(rev: Obj, clock: Clock) -> list[Any]:
    owner = next((r for r in _get(rev, "metadata", "ownerReferences", default=[]) if r.get("controller")), None)
    controller = "<none>"
    if owner is not None:
        group = str(owner.get("apiVersion", "")).rpartition("/")[0]
        kind = str(owner.get("kind", "")).lower()
        controller = f"{kind}.{group}/{owner.get('name', '')}" if group else f"{kind}/{owner.get('name', '')}"
    return [_name(rev), controller, rev.get("revision", 0), _created(rev, clock)]


def print_configmap(cm: Obj, clock: Clock) -> list[Any]:
    return [_name(cm), len(cm.get("data") or {}) + len(cm.get("binaryData") or {}), _created(cm, clock)]


def print_secret(secret: Obj, clock: Clock) -> list[Any]:
    return [_name(secret), secret.get("type", ""), len(secret.get("data") or {}), _created(secret, clock)]


def print_serviceaccount(sa: Obj, clock: Clock) -> list[Any]:
    return [_name(sa), len(sa.get("secrets") or []), _created(sa, clock)]


def print_lease(lease: Obj, clock: Clock) -> list[Any]:
    return [_name(lease), _get(lease, "spec", "holderIdentity", default=""), _created(lease, clock)]


def print_network_policy(policy: Obj, clock: Clock) -> list[Any]:
    """``printNetworkPolicy``: an empty podSelector (every pod of the namespace) prints as ``<none>``."""
    return [_name(policy), format_label_selector(_get(policy, "spec", "podSelector")), _created(policy, clock)]


def print_pod_disruption_budget(pdb: Obj, clock: Clock) -> list[Any]:
    """``printPodDisruptionBudget``: the one of minAvailable/maxUnavailable not set prints as ``N/A``."""
    spec = _get(pdb, "spec", default={}) or {}
    return [_name(pdb), str(spec["minAvailable"]) if spec.get("minAvailable") is not None else "N/A",
            str(spec["maxUnavailable"]) if spec.get("maxUnavailable") is not None else "N/A",
            int(_get(pdb, "status", "disruptionsAllowed", default=0) or 0), _created(pdb, clock)]
def _hpa_metric(spec: Obj, status: Obj | None) -> str:
    """One entry of ``formatHPAMetrics`` for a Resource metric: ``cpu: 30%/50%`` or ``memory: 10Mi/64Mi``."""
    resource = spec.get("resource") or {}
    target = resource.get("target") or {}
    current = (status or {}).get("resource", {}).get("current") or {}
    name = resource.get("name", "")
    if target.get("averageValue") is not None:
        return f"{name}: {current.get('averageValue', '<unknown>')}/{target['averageValue']}"
    now = f"{current['averageUtilization']}%" if current.get("averageUtilization") is not None else "<unknown>"
    goal = f"{target['averageUtilization']}%" if target.get("averageUtilization") is not None else "<auto>"
    return f"{name}: {now}/{goal}"


def format_hpa_metrics(specs: list[Obj], statuses: list[Obj]) -> str:
    """``formatHPAMetrics``: the first two metrics, then how many more; ``<none>`` without any."""
    if not specs:
        return "<none>"
    shown = [_hpa_metric(spec, statuses[i] if i < len(statuses) else None) for i, spec in enumerate(specs[:2])]
    more = len(specs) - len(shown)
    return ", ".join(shown) + (f" + {more} more..." if more else "")


def print_horizontal_pod_autoscaler(hpa: Obj, clock: Clock) -> list[Any]:
    """``printHorizontalPodAutoscaler``: ``Kind/name`` of the target, the metrics, the bounds, the replicas."""
    spec = _get(hpa, "spec", default={}) or {}
    ref = spec.get("scaleTargetRef") or {}
    min_pods = str(spec["minReplicas"]) if spec.get("minReplicas") is not None else "<unset>"
    return [_name(hpa), f"{ref.get('kind', '')}/{ref.get('name', '')}",
            format_hpa_metrics(spec.get("metrics") or [], _get(hpa, "status", "currentMetrics", default=[]) or []),
            min_pods, spec.get("maxReplicas", 0), _get(hpa, "status", "currentReplicas", default=0) or 0,
            _created(hpa, clock)]


def _ingress_hosts(rules: list[Obj]) -> str:
    """``formatHosts``: the first three hosts, then how many rules more; ``*`` when no rule names one."""
    hosts = [r["host"] for r in rules[:3] if r.get("host")]
    if not hosts:
        return "*"
    return ",".join(hosts) + (f" + {len(rules) - 3} more..." if len(rules) > 3 else "")


def print_ingress(ingress: Obj, clock: Clock) -> list[Any]:
    """``printIngress``: the class (``<none>``), hosts, the load balancer's addresses (cut at 16
    characters), ``80`` or ``80, 443`` when the Ingress terminates TLS."""
    address = _load_balancer_ips(ingress)
    if len(address) > 16:
        address = address[:13] + "..."
    return [_name(ingress), _get(ingress, "spec", "ingressClassName") or "<none>",
            _ingress_hosts(_get(ingress, "spec", "rules", default=[]) or []), address,
            "80, 443" if _get(ingress, "spec", "tls") else "80", _created(ingress, clock)]


def print_ingress_class(ingress_class: Obj, clock: Clock) -> list[Any]:
    """``printIngressClass``: the parameters as ``Kind[.group]/name`` or ``<none>``."""
    parameters = _get(ingress_class, "spec", "parameters")
    text = "<none>"
    if parameters:
        group = f".{parameters['apiGroup']}" if parameters.get("apiGroup") else ""
        text = f"{parameters.get('kind', '')}{group}/{parameters.get('name', '')}"
    return [_name(ingress_class), _get(ingress_class, "spec", "controller", default=""), text,
            _created(ingress_class, clock)]


def print_priority_class(pc: Obj, clock: Clock) -> list[Any]:
    """``printPriorityClass``: value, globalDefault, age, then the preemption policy."""
    return [_name(pc), pc.get("value", 0), bool(pc.get("globalDefault")), _created(pc, clock),
            pc.get("preemptionPolicy") or "PreemptLowerPriority"]


def print_resource_quota(quota: Obj, clock: Clock) -> list[Any]:
    """``used/hard`` of each limited resource: the ``limits.*`` ones in Limit, the others in Request."""
    status = quota.get("status") or {}
    used, hard = status.get("used") or {}, status.get("hard") or {}
    request: list[str] = []
    limit: list[str] = []
    for name in sorted(_get(quota, "spec", "hard", default={}) or {}):
        column = limit if name.split(".", 1)[0] == "limits" and "." in name else request
        column.append(f"{name}: {used.get(name, '0')}/{hard.get(name, '0')}")
    return [_name(quota), _created(quota, clock), ", ".join(request), ", ".join(limit)]


def print_storage_class(sc: Obj, clock: Clock) -> list[Any]:
    """``printStorageClass``: ``(default)`` after the default class's name."""
    name = _name(sc) + (" (default)" if is_default_class(sc) else "")
    return [name, sc.get("provisioner", ""), sc.get("reclaimPolicy") or "Delete",
            sc.get("volumeBindingMode") or "Immediate", str(bool(sc.get("allowVolumeExpansion"))).lower(),
            _created(sc, clock)]


def print_persistent_volume(pv: Obj, clock: Clock) -> list[Any]:
    """``printPersistentVolume``: the claim as ``namespace/name``."""
    spec = _get(pv, "spec", default={})
    ref = spec.get("claimRef") or {}
    claim = f"{ref.get('namespace', '')}/{ref.get('name', '')}" if ref else ""
    return [_name(pv), _get(spec, "capacity", "storage", default=""), access_modes(spec.get("accessModes")),
            spec.get("persistentVolumeReclaimPolicy", ""), _get(pv, "status", "phase", default=""), claim,
            spec.get("storageClassName", ""), spec.get("volumeAttributesClassName") or "<unset>",
            _get(pv, "status", "reason", default=""), _created(pv, clock), spec.get("volumeMode") or "<unset>"]


def print_persistent_volume_claim(pvc: Obj, clock: Clock) -> list[Any]:
    """``printPersistentVolumeClaim``: capacity and access modes only once bound."""
    spec, status = _get(pvc, "spec", default={}), _get(pvc, "status", default={})
    bound = bool(spec.get("volumeName"))
    capacity = _get(status, "capacity", "storage", default="") if bound else ""
    modes = access_modes(status.get("accessModes")) if bound else ""
    phase = "Terminating" if _get(pvc, "metadata", "deletionTimestamp") else status.get("phase", "")
    return [_name(pvc), phase, spec.get("volumeName", ""), capacity, modes, spec.get("storageClassName", ""),
            spec.get("volumeAttributesClassName") or "<unset>", _created(pvc, clock), spec.get("volumeMode") or "<unset>"]


def _default_printer(obj: Obj, clock: Clock) -> list[Any]:
    """``defaultTableConvertor``: the name and the creation time in RFC 3339 (``kubectl get clusterroles``)."""
    created = parse_time(_get(obj, "metadata", "creationTimestamp"))
    return [_name(obj), timestamp(created) if created else "0001-01-01T00:00:00Z"]


def print_binding(binding: Obj, clock: Clock) -> list[Any]:
    """``printRoleBinding``/``printClusterRoleBinding`` (wide, as servers print): role, then subjects by kind."""
    ref = binding.get("roleRef") or {}
    by_kind: dict[str, list[str]] = {"User": [], "Group": [], "ServiceAccount": []}
    for subject in binding.get("subjects") or []:
        kind = subject.get("kind", "")
        if kind == "ServiceAccount":
            by_kind[kind].append(f"{subject.get('namespace', '')}/{subject.get('name', '')}")
        elif kind in by_kind:
            by_kind[kind].append(subject.get("name", ""))
    return [_name(binding), f"{ref.get('kind', '')}/{ref.get('name', '')}", _created(binding, clock),
            ", ".join(by_kind["User"]), ", ".join(by_kind["Group"]), ", ".join(by_kind["ServiceAccount"])]


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------

def _row_object(obj: Obj, include_object: str) -> Obj | None:
    if include_object == "Object":
        return obj
    if include_object == "None":
        return None
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata") or {}}


@dataclass(frozen=True, eq=False)
class TablePrinter:
    """One kind's print handler: its ``columnDefinitions``, the cells of a row, and any row conditions."""

    columns: list[Obj]
    cells: Callable[[Obj, Clock], list[Any]]
    row_conditions: Callable[[Obj], list[Obj]] | None = None


def build_table(printer: TablePrinter, objects: list[Obj], include_object: str = "Metadata",
                now: datetime | None = None) -> Obj:
    """A ``meta.k8s.io/v1`` Table of ``objects`` printed by ``printer``; ``metadata`` is left for the caller.

    ``include_object`` is the request's ``includeObject`` (``None``, ``Metadata`` — kubectl's
    default — or ``Object``). ``now`` pins the clock for ages (tests; one instant per list).
    """
    clock = Clock(now)
    rows = []
    for obj in objects:
        try:
            row: Obj = {"cells": printer.cells(obj, clock)}
            if printer.row_conditions is not None and (cond := printer.row_conditions(obj)):
                row["conditions"] = cond
        except (AttributeError, IndexError, KeyError, TypeError, ValueError) as err:
            row = _malformed_row(printer, obj, err)
        if (embedded := _row_object(obj, include_object)) is not None:
            row["object"] = embedded
        rows.append(row)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": {},
            "columnDefinitions": [dict(c) for c in printer.columns], "rows": rows}


def _malformed_row(printer: TablePrinter, obj: Obj, err: Exception) -> Obj:
    """The row of an object its handler cannot print: its name, then ``<unknown>``.

    The API server refuses bodies of the wrong types, but an object stored before it did
    may still be there; one such object must not fail a whole ``kubectl get``.
    """
    name = _name(obj) if isinstance(obj.get("metadata"), dict) else ""
    log.warning("cannot print %s %r (malformed): %s: %s", obj.get("kind"), name, type(err).__name__, err)
    return {"cells": [name] + ["<unknown>"] * (len(printer.columns) - 1)}


def _pod_row_conditions(pod: Obj) -> list[Obj]:
    """Completed pods carry a ``Completed`` row condition (kubectl hides such rows on request)."""
    phase = _get(pod, "status", "phase")
    if phase == "Succeeded":
        return [{"type": "Completed", "status": "True", "reason": "Succeeded",
                 "message": "The pod has completed successfully."}]
    if phase == "Failed":
        return [{"type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."}]
    return []


POD_TABLE = TablePrinter(POD_COLUMNS, print_pod, _pod_row_conditions)
SERVICE_TABLE = TablePrinter(SERVICE_COLUMNS, print_service)
ENDPOINTS_TABLE = TablePrinter(ENDPOINTS_COLUMNS, print_endpoints)
ENDPOINTSLICE_TABLE = TablePrinter(ENDPOINTSLICE_COLUMNS, print_endpointslice)
NODE_TABLE = TablePrinter(NODE_COLUMNS, print_node)
NAMESPACE_TABLE = TablePrinter(NAMESPACE_COLUMNS, print_namespace)
EVENT_TABLE = TablePrinter(EVENT_COLUMNS, print_event)
CONFIGMAP_TABLE = TablePrinter(CONFIGMAP_COLUMNS, print_configmap)
SECRET_TABLE = TablePrinter(SECRET_COLUMNS, print_secret)
SERVICEACCOUNT_TABLE = TablePrinter(SERVICEACCOUNT_COLUMNS, print_serviceaccount)
REPLICASET_TABLE = TablePrinter(REPLICASET_COLUMNS, print_replicaset)
DEPLOYMENT_TABLE = TablePrinter(DEPLOYMENT_COLUMNS, print_deployment)
DAEMONSET_TABLE = TablePrinter(DAEMONSET_COLUMNS, print_daemonset)
STATEFULSET_TABLE = TablePrinter(STATEFULSET_COLUMNS, print_statefulset)
CONTROLLERREVISION_TABLE = TablePrinter(CONTROLLERREVISION_COLUMNS, print_controller_revision)
JOB_TABLE = TablePrinter(JOB_COLUMNS, print_job)
CRONJOB_TABLE = TablePrinter(CRONJOB_COLUMNS, print_cronjob)
LEASE_TABLE = TablePrinter(LEASE_COLUMNS, print_lease)
NETWORKPOLICY_TABLE = TablePrinter(NETWORKPOLICY_COLUMNS, print_network_policy)
PODDISRUPTIONBUDGET_TABLE = TablePrinter(PODDISRUPTIONBUDGET_COLUMNS, print_pod_disruption_budget)
HORIZONTALPODAUTOSCALER_TABLE = TablePrinter(HORIZONTALPODAUTOSCALER_COLUMNS, print_horizontal_pod_autoscaler)
INGRESS_TABLE = TablePrinter(INGRESS_COLUMNS, print_ingress)
INGRESSCLASS_TABLE = TablePrinter(INGRESSCLASS_COLUMNS, print_ingress_class)
PRIORITYCLASS_TABLE = TablePrinter(PRIORITYCLASS_COLUMNS, print_priority_class)
RESOURCEQUOTA_TABLE = TablePrinter(RESOURCEQUOTA_COLUMNS, print_resource_quota)
STORAGECLASS_TABLE = TablePrinter(STORAGECLASS_COLUMNS, print_storage_class)
PERSISTENTVOLUME_TABLE = TablePrinter(PERSISTENTVOLUME_COLUMNS, print_persistent_volume)
PERSISTENTVOLUMECLAIM_TABLE = TablePrinter(PERSISTENTVOLUMECLAIM_COLUMNS, print_persistent_volume_claim)
ROLEBINDING_TABLE = TablePrinter(_BINDING_COLUMNS["roleBinding"], print_binding)
CLUSTERROLEBINDING_TABLE = TablePrinter(_BINDING_COLUMNS["clusterRoleBinding"], print_binding)
#: kube's default table convertor: name and creation time, for a kind without a handler of its own (Roles)
DEFAULT_TABLE = TablePrinter(DEFAULT_COLUMNS, _default_printer)


# -- custom resources: additionalPrinterColumns -------------------------------------------------
_PATH_STEP = re.compile(r"\.([A-Za-z0-9_-]+)|\[(\d+)\]|\['([^']*)'\]")
#: the column types a CRD may declare (apiextensions' printColumnDatatypes)
PRINTER_COLUMN_TYPES = ("boolean", "date", "integer", "number", "string")


def parse_column_path(path: str) -> list[str | int] | None:
    """A printer column's ``jsonPath`` (``.spec.cronSpec``, ``.status.conditions[0].type``) as steps.

    None for what labctl does not evaluate: filters, wildcards, recursive descent.
    """
    steps: list[str | int] = []
    pos = 0
    while pos < len(path):
        match = _PATH_STEP.match(path, pos)
        if match is None:
            return None
        name, index, quoted = match.groups()
        steps.append(int(index) if index is not None else (name if name is not None else quoted))
        pos = match.end()
    return steps if steps else None


def _follow(obj: Any, steps: list[str | int]) -> Any:
    for step in steps:
        if isinstance(step, int):
            if not isinstance(obj, list) or step >= len(obj):
                return None
        elif not isinstance(obj, dict):
            return None
        obj = obj[step] if isinstance(step, int) else obj.get(step)
    return obj


def _column_cell(value: Any, type_: str, clock: Clock) -> Any:
    """The cell of one column, as apiextensions' table convertor types it (``<none>`` when missing)."""
    if value is None:
        return None
    if type_ == "date":
        return clock.since(value) if isinstance(value, str) else None
    if type_ == "integer":
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if type_ == "number":
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None
    if type_ == "boolean":
        return value if isinstance(value, bool) else None
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def custom_resource_printer(columns: list[Obj]) -> TablePrinter:
    """A CRD version's ``additionalPrinterColumns`` as a print handler: Name, then each column.

    Without columns a custom resource prints its age (apiextensions' ``serveDefaultColumnsIfEmpty``).
    """
    columns = columns or [{"name": "Age", "type": "date", "description": _AGE_DOC,
                           "jsonPath": ".metadata.creationTimestamp"}]
    definitions = [_NAME] + [
        _col(c["name"], c.get("type", "string"), c.get("description", ""), c.get("priority", 0), c.get("format", ""))
        for c in columns]
    paths = [(parse_column_path(c.get("jsonPath", "")) or [], c.get("type", "string")) for c in columns]

    def cells(obj: Obj, clock: Clock) -> list[Any]:
        return [_name(obj)] + [_column_cell(_follow(obj, steps), type_, clock) for steps, type_ in paths]

    return TablePrinter(definitions, cells)
