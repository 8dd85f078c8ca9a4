"""Builders of v1 Service / discovery.k8s.io/v1 EndpointSlice dicts, shaped as the API server returns them."""

from __future__ import annotations

from typing import Any


def service(ns: str, name: str, cluster_ip: str, ports: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {})
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"namespace": ns, "name": name},
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "ports": ports, **spec},
        "status": status,
    }


def port(name: str, port: int, protocol: str = "TCP", node_port: int = 0, target: int | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "port": port, "protocol": protocol, "targetPort": target or port}
    if node_port:
        p["nodePort"] = node_port
    return p


def endpoint_slice(ns: str, name: str, ips: list[str] | list[tuple[str, str]], ports: list[dict[str, Any]],
                   not_ready: list[str] = (), slice_name: str = "", terminating: list[str] = ()) -> dict[str, Any]:
    """An EndpointSlice of Service ``name``: ready ``ips`` (on node1 unless ``(ip, node)``), not-ready
    ``not_ready`` ones and serving-but-terminating ``terminating`` ones, as the controller writes them."""
    eps: list[dict[str, Any]] = []
    for ip in ips:
        ip, node = (ip, "node1") if isinstance(ip, str) else ip
        eps.append({"addresses": [ip], "conditions": {"ready": True, "serving": True, "terminating": False},
                    "nodeName": node, "targetRef": {"kind": "Pod", "namespace": ns, "name": f"pod-{ip}"}})
    eps += [{"addresses": [ip], "conditions": {"ready": False, "serving": False, "terminating": False}}
            for ip in not_ready]
    eps += [{"addresses": [ip], "conditions": {"ready": False, "serving": True, "terminating": True},
             "nodeName": "node1"} for ip in terminating]
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"namespace": ns, "name": slice_name or f"{name}-abcde",
                         "labels": {"kubernetes.io/service-name": name,
                                    "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
            "ports": ports, "endpoints": eps}


def ep_port(name: str, port: int, protocol: str = "TCP") -> dict[str, Any]:
    return {"name": name, "port": port, "protocol": protocol}
