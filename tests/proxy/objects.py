"""Builders of v1 Service / Endpoints dicts, shaped as the API server returns them."""

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


def endpoints(ns: str, name: str, ips: list[str] | list[tuple[str, str]], ports: list[dict[str, Any]],
              not_ready: list[str] = ()) -> dict[str, Any]:
    addresses = []
    for ip in ips:
        ip, node = (ip, "node1") if isinstance(ip, str) else ip
        addresses.append({"ip": ip, "nodeName": node, "targetRef": {"kind": "Pod", "name": f"pod-{ip}"}})
    subset: dict[str, Any] = {"addresses": addresses, "ports": ports}
    if not_ready:
        subset["notReadyAddresses"] = [{"ip": ip} for ip in not_ready]
    return {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"namespace": ns, "name": name},
            "subsets": [subset] if addresses or not_ready else []}


def ep_port(name: str, port: int, protocol: str = "TCP") -> dict[str, Any]:
    return {"name": name, "port": port, "protocol": protocol}
