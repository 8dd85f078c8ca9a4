"""Is an object shaped as labctl's components read it? The clients' guard against malformed objects.

The API server refuses bodies of the wrong types (``labctl.apiserver.typecheck``), but an
object stored before it did (or written past it by a bug) can still come down a watch,
and code that trusts ``metadata.labels`` to be a map would fail for its whole namespace:
one Pod with ``labels: [a]`` once stopped the ReplicaSet, Endpoints and EndpointSlice
controllers for every object next to it. The informer (:mod:`labctl.client.informer`)
asks :func:`problem` about every object and leaves the malformed ones out of its cache,
with one log line, so every controller, the service proxy, the DNS server and the agent
see only objects of the shape below.

:data:`SHAPES` is not a schema: it lists only the fields labctl's components read, with
their JSON types, for the resources they watch (``tests/unit/test_wellformed.py`` checks
every entry against the OpenAPI schemas the API server publishes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Map:
    """A JSON object with any keys, whose values have one shape (``map[string]string``)."""

    values: Any


#: an IntOrString field (``targetPort``)
INT_OR_STRING = (int, str)
STRING_MAP = Map(str)

OBJECT_META = {
    "name": str, "generateName": str, "namespace": str, "uid": str, "resourceVersion": str,
    "generation": int, "creationTimestamp": str, "deletionTimestamp": str, "deletionGracePeriodSeconds": int,
    "labels": STRING_MAP, "annotations": STRING_MAP, "finalizers": [str],
    "ownerReferences": [{"apiVersion": str, "kind": str, "name": str, "uid": str, "controller": bool,
                         "blockOwnerDeletion": bool}],
}
LABEL_SELECTOR = {"matchLabels": STRING_MAP,
                  "matchExpressions": [{"key": str, "operator": str, "values": [str]}]}
CONTAINER = {"name": str, "image": str, "command": [str], "args": [str],
             "ports": [{"name": str, "containerPort": int, "protocol": str}]}
POD_SPEC = {"nodeName": str, "hostname": str, "subdomain": str, "containers": [CONTAINER],
            "initContainers": [CONTAINER], "terminationGracePeriodSeconds": int, "nodeSelector": STRING_MAP}
CONDITIONS = [{"type": str, "status": str, "reason": str, "message": str}]
WORKLOAD = {"metadata": OBJECT_META,
            "spec": {"replicas": int, "selector": LABEL_SELECTOR,
                     "template": {"metadata": OBJECT_META, "spec": POD_SPEC}},
            "status": {"replicas": int, "readyReplicas": int, "availableReplicas": int, "conditions": CONDITIONS}}
ENDPOINT_ADDRESS = {"ip": str, "hostname": str, "nodeName": str}
PORT = {"name": str, "port": int, "protocol": str, "appProtocol": str}

#: resource (plural) -> the shape of the fields labctl's components read
SHAPES: dict[str, dict[str, Any]] = {
    "pods": {"metadata": OBJECT_META, "spec": POD_SPEC,
             "status": {"phase": str, "podIP": str, "podIPs": [{"ip": str}], "hostIP": str,
                        "conditions": CONDITIONS}},
    "services": {"metadata": OBJECT_META,
                 "spec": {"type": str, "selector": STRING_MAP, "clusterIP": str, "clusterIPs": [str],
                          "externalIPs": [str], "externalName": str, "loadBalancerClass": str,
                          "externalTrafficPolicy": str, "sessionAffinity": str, "publishNotReadyAddresses": bool,
                          "loadBalancerSourceRanges": [str],
                          "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": int}},
                          "ports": [{**PORT, "targetPort": INT_OR_STRING, "nodePort": int}]},
                 "status": {"loadBalancer": {"ingress": [{"ip": str, "hostname": str}]}}},
    "endpoints": {"metadata": OBJECT_META,
                  "subsets": [{"addresses": [ENDPOINT_ADDRESS], "notReadyAddresses": [ENDPOINT_ADDRESS],
                               "ports": [PORT]}]},
    "endpointslices": {"metadata": OBJECT_META, "addressType": str,
                       "endpoints": [{"addresses": [str], "nodeName": str, "hostname": str,
                                      "conditions": {"ready": bool, "serving": bool, "terminating": bool}}],
                       "ports": [PORT]},
    "deployments": WORKLOAD,
    "replicasets": WORKLOAD,
    "nodes": {"metadata": OBJECT_META,
              "spec": {"podCIDR": str, "podCIDRs": [str], "unschedulable": bool,
                       "taints": [{"key": str, "value": str, "effect": str}]},
              "status": {"addresses": [{"type": str, "address": str}], "conditions": CONDITIONS}},
    "configmaps": {"metadata": OBJECT_META, "data": STRING_MAP, "binaryData": STRING_MAP},
    "secrets": {"metadata": OBJECT_META, "data": STRING_MAP, "stringData": STRING_MAP, "type": str},
}
DEFAULT_SHAPE = {"metadata": OBJECT_META}


def problem(resource: str, obj: Any) -> str | None:
    """The path of the first field of ``obj`` that is not of the shape labctl reads (None: well-formed)."""
    if not isinstance(obj, dict):
        return "<object>"
    if not isinstance(obj.get("metadata"), dict) or not isinstance(obj["metadata"].get("name"), str):
        return "metadata.name"
    return _problem(SHAPES.get(resource, DEFAULT_SHAPE), obj, "")


def _problem(shape: Any, value: Any, path: str) -> str | None:
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return path
        for key, sub in shape.items():
            # a field sent as null reads as an absent one: `(x.get("labels") or {})`
            if value.get(key) is not None and (found := _problem(sub, value[key], f"{path}.{key}" if path else key)):
                return found
        return None
    if isinstance(shape, list):
        if not isinstance(value, list):
            return path
        return next((found for i, item in enumerate(value) if (found := _problem(shape[0], item, f"{path}[{i}]"))),
                    None)
    if isinstance(shape, Map):
        if not isinstance(value, dict):
            return path
        return next((found for k, v in value.items() if (found := _problem(shape.values, v, f"{path}.{k}"))), None)
    types = shape if isinstance(shape, tuple) else (shape,)
    if isinstance(value, bool) and bool not in types:
        return path
    return None if isinstance(value, types) else path
