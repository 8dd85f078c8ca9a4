"""Resolve what a student types — ``client``, ``default/ex1-svc``, ``kube-dns.kube-system.svc.cluster.local``,
``10.96.0.10``, ``127.0.0.1:30000`` — into addresses, from the lab's own network.

Everything needed is in a :class:`~.model.LabNetwork`: pods by name (sandbox labels) and IP
(IPAM), Services by name, ClusterIP, NodePort and LoadBalancer IP (the rules' comments),
nodes by name and InternalIP, and Docker's port mappings. No API server is asked, so a trace
works even when the control plane is the thing that is broken.
"""

from __future__ import annotations

import ipaddress

from ..errors import LabctlError
from .model import LabNetwork, PodRef
from .services import ServicePort
from .tracemodel import ObjectRef, Peer

__all__ = ["pod_ref", "resolve_destination", "resolve_source", "service_index", "service_ref"]

_PREFIXES = {"pod": "pod", "po": "pod", "pods": "pod", "svc": "service", "service": "service",
             "services": "service", "node": "node", "no": "node", "nodes": "node"}


def pod_ref(pod: PodRef) -> ObjectRef:
    return ObjectRef("Pod", pod.name, pod.namespace, ip=pod.ip)


def service_ref(port: ServicePort) -> ObjectRef:
    return ObjectRef("Service", port.service, port.namespace, port.port_name, port.cluster_ip)


def service_index(net: LabNetwork) -> list[ServicePort]:
    """Every Service port any node serves (the nodes agree, unless one has not synced yet)."""
    seen: dict[tuple[str, str], ServicePort] = {}
    for node in net.nodes:
        for port in node.services:
            seen.setdefault((port.name, port.protocol), port)
    return list(seen.values())


def resolve_source(net: LabNetwork, spec: str) -> Peer:
    """``host``, a node (``worker``, ``node/worker``) or a pod (``[ns/]name``, ``pod/[ns/]name``)."""
    kind, name = _kind_prefix(spec)
    if spec == "host":
        return Peer(spec, "host", net.gateway, object=ObjectRef("Host", "host", ip=net.gateway))
    if kind in (None, "node") and (node := net.node(name)) is not None:
        return Peer(spec, "node", node.internal_ip, node=node.node, object=ObjectRef("Node", node.node,
                                                                                   ip=node.internal_ip))
    if kind in (None, "pod"):
        pod = _find_pod(net, name)
        if pod is not None:
            return Peer(spec, "pod", pod.ip, node=pod.node, object=pod_ref(pod))
    raise LabctlError(f"no pod or node named {spec!r} in lab {net.lab!r}",
                      hint="FROM is a pod ([namespace/]name), a node (" + ", ".join(n.node for n in net.nodes)
                      + ") or host")


def resolve_destination(net: LabNetwork, spec: str, port: int | str | None, protocol: str
                        ) -> tuple[Peer, ServicePort | None]:
    """The destination and, when it is one, the Service port the rules will treat it as.

    A name may carry its port (``ex1-svc:80``, ``ex1-svc:web``, ``example-1-abcde:80``) instead of ``--port``.
    """
    ip, parsed_port = _split_address(spec)
    if ip is not None:
        return _by_address(net, spec, ip, parsed_port or _number(port), protocol)
    name_part, colon, port_part = spec.rpartition(":")
    if colon and port_part and "/" not in port_part:  # ex1-svc:80, ex1-svc:web, kube-dns.kube-system:53
        spec_name, port = name_part, port if port is not None else port_part
    else:
        spec_name = spec
    kind, name = _kind_prefix(spec_name)
    if kind in (None, "service"):
        found = _find_service(net, name, port, protocol)
        if found is not None:
            return Peer(spec, "service", found.cluster_ip, found.port, object=service_ref(found)), found
    if kind in (None, "pod"):
        pod = _find_pod(net, name)
        if pod is not None:
            return Peer(spec, "pod", pod.ip, _need_port(spec, port), pod.node, pod_ref(pod)), None
    if kind in (None, "node") and (node := net.node(name)) is not None:
        return _by_address(net, spec, node.internal_ip, _need_port(spec, port), protocol)
    raise LabctlError(f"no Service, pod or node named {spec!r} in lab {net.lab!r}",
                      hint="TO is a pod, a Service ([ns/]name or its DNS name), a ClusterIP, NODE_IP:NODEPORT, "
                           "127.0.0.1:HOSTPORT or a LoadBalancer IP; `labctl net` lists them")


def _by_address(net: LabNetwork, spec: str, ip: str, port: int | None, protocol: str
                ) -> tuple[Peer, ServicePort | None]:
    services = [s for s in service_index(net) if s.protocol == protocol]
    if ip.startswith("127."):
        port = _need_port(spec, port)
        mapping = next((m for m in net.port_mappings if m.host_port == port and m.protocol == protocol), None)
        if mapping is None:
            raise LabctlError(f"nothing is published on {ip}:{port}/{protocol}",
                              hint="the lab's port mappings: " + (", ".join(
                                  f"{m.host_ip}:{m.host_port} → {m.node}:{m.node_port}" for m in net.port_mappings)
                                  or "none (topology portMappings)"))
        svc = next((s for s in services if s.node_port == mapping.node_port), None)
        return Peer(spec, "host-port", ip, mapping.host_port, mapping.node,
                    service_ref(svc) if svc else None), svc
    port = _need_port(spec, port) if not any(s.cluster_ip == ip for s in services) else port
    for kind, match in (("cluster-ip", lambda s: s.cluster_ip == ip and (port is None or s.port == port)),
                        ("load-balancer", lambda s: ip in s.load_balancer_ips and s.port == port),
                        ("external-ip", lambda s: ip in s.external_ips and s.port == port)):
        svc = next((s for s in services if match(s)), None)
        if svc is not None:
            owner = net.node_by_ip(ip)
            return Peer(spec, kind, ip, svc.port, owner.node if owner else "", service_ref(svc)), svc
    if (node := net.node_by_ip(ip)) is not None:
        svc = next((s for s in services if s.node_port and s.node_port == port), None)
        ref = service_ref(svc) if svc else ObjectRef("Node", node.node, ip=ip)
        return Peer(spec, "node-port" if svc else "node", ip, _need_port(spec, port), node.node, ref), svc
    if (pod := net.pod_by_ip(ip)) is not None:
        return Peer(spec, "pod", ip, _need_port(spec, port), pod.node, pod_ref(pod)), None
    return Peer(spec, "ip", ip, _need_port(spec, port)), None


def _find_service(net: LabNetwork, name: str, port: int | str | None, protocol: str) -> ServicePort | None:
    """``ns/name``, ``name`` (namespace default) or a DNS name ``name.ns[.svc[.<domain>]]``."""
    namespace, _, service = name.rpartition("/")
    if not namespace and "." in service:
        parts = service.rstrip(".").split(".")
        service, namespace = parts[0], parts[1]
        domain = net.nodes[0].cluster.cluster_domain if net.nodes and net.nodes[0].cluster else "cluster.local"
        if parts[2:] and ".".join(parts[2:]) not in ("svc", f"svc.{domain}"):
            return None
    ports = [s for s in service_index(net) if s.service == service and s.namespace == (namespace or "default")]
    if not ports:
        return None
    fitting = [s for s in ports if s.protocol == protocol and (port is None or str(port) in (str(s.port), s.port_name))]
    if not fitting:
        raise LabctlError(f"Service {ports[0].namespace}/{service} has no {protocol} port {port or ''}".rstrip(),
                          hint="its ports: " + ", ".join(f"{s.port_name or '-'} {s.port}/{s.protocol}" for s in ports))
    return fitting[0]


def _find_pod(net: LabNetwork, name: str) -> PodRef | None:
    namespace, _, pod = name.rpartition("/")
    found = net.find_pods(pod, namespace or "default")
    if not found and not namespace:
        found = net.find_pods(pod)  # a unique pod of another namespace
        if len(found) > 1:
            raise LabctlError(f"pod {pod!r} exists in several namespaces",
                              hint="say which: " + ", ".join(str(p) for p in found))
    return found[0] if found else None


def _kind_prefix(spec: str) -> tuple[str | None, str]:
    head, sep, rest = spec.partition("/")
    if sep and head in _PREFIXES:
        return _PREFIXES[head], rest
    return None, spec


def _split_address(spec: str) -> tuple[str | None, int | None]:
    host, sep, port = spec.rpartition(":")
    for ip, p in ((spec, None), (host, port) if sep else (None, None)):
        try:
            if ip is not None:
                ipaddress.IPv4Address(ip)
                return ip, int(p) if p else None
        except ValueError:
            continue
    return None, None


def _number(port: int | str | None) -> int | None:
    return int(port) if port is not None and str(port).isdigit() else None


def _need_port(spec: str, port: int | str | None) -> int:
    number = _number(port)
    if number is None:
        raise LabctlError(f"which port of {spec}?", hint="add --port PORT")
    return number
