"""Service and Endpoints port validation (core ``ValidateService``, ``ValidateServiceUpdate``)."""

from __future__ import annotations

from typing import Any

from labctl.apiserver._validate_common import (
    as_dict,
    as_list,
    validate_dns1123_label,
    validate_dns1123_subdomain,
    validate_labels,
    validate_port_num_or_name,
    validate_protocol,
)
from labctl.apiserver.errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from labctl.kube import validators as v

__all__ = ["normalize_cluster_ips", "validate_endpoint_ports", "validate_service", "validate_service_update"]

Obj = dict[str, Any]

SERVICE_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]
_KUBELET_PORT = 10250


def _is_headless(spec: Obj) -> bool:
    ips = as_list(spec.get("clusterIPs"))
    return (len(ips) == 1 and ips[0] == "None") or (not ips and spec.get("clusterIP") == "None")


def _externally_accessible(spec: Obj) -> bool:
    kind = spec.get("type")
    return kind in ("NodePort", "LoadBalancer") or (kind == "ClusterIP" and bool(as_list(spec.get("externalIPs"))))


def _validate_service_port(port: Obj, path: str, require_name: bool, names: set[str]) -> list[FieldError]:
    errs: list[FieldError] = []
    name = port.get("name")
    if require_name and not name:
        errs.append(required(f"{path}.name"))
    elif name:
        errs += validate_dns1123_label(name, f"{path}.name")
        if name in names:
            errs.append(duplicate(f"{path}.name", name))
        names.add(str(name))
    errs += [invalid(f"{path}.port", port.get("port"), m) for m in v.is_valid_port_num(port.get("port"))]
    errs += validate_protocol(port.get("protocol"), f"{path}.protocol")
    errs += validate_port_num_or_name(port.get("targetPort"), f"{path}.targetPort")
    return errs


def _validate_type_rules(spec: Obj) -> list[FieldError]:
    """What depends on ``type``: no ``None`` clusterIP for NodePort/LoadBalancer, externalName for ExternalName."""
    errs: list[FieldError] = []
    kind = spec.get("type")
    if kind in ("NodePort", "LoadBalancer") and _is_headless(spec):
        errs.append(invalid("spec.clusterIPs[0]", "None", f"may not be set to 'None' for {kind} services"))
    if kind == "LoadBalancer":
        for i, port in enumerate(as_list(spec.get("ports"))):
            if as_dict(port).get("port") == _KUBELET_PORT:
                errs.append(invalid(f"spec.ports[{i}]", _KUBELET_PORT,
                                    f"may not expose port {_KUBELET_PORT} externally since it is used by kubelet"))
    if kind == "ExternalName":
        for key in ("clusterIPs", "ipFamilies", "ipFamilyPolicy"):
            if spec.get(key) or (key == "clusterIPs" and spec.get("clusterIP")):
                errs.append(forbidden(f"spec.{key}", "may not be set for ExternalName services"))
        cname = str(spec.get("externalName") or "").removesuffix(".")
        if cname:
            errs += validate_dns1123_subdomain(cname, "spec.externalName")
        else:
            errs.append(required("spec.externalName"))
    if kind == "ClusterIP":
        for i, port in enumerate(as_list(spec.get("ports"))):
            if as_dict(port).get("nodePort"):
                errs.append(forbidden(f"spec.ports[{i}].nodePort", "may not be used when `type` is 'ClusterIP'"))
    return errs


def _validate_cluster_ips(spec: Obj) -> list[FieldError]:
    """ValidateServiceClusterIPsRelatedFields, IPv4/IPv6 single stack."""
    if spec.get("type") == "ExternalName":
        return []
    errs: list[FieldError] = []
    ips = as_list(spec.get("clusterIPs"))
    if spec.get("clusterIP"):
        if not ips:
            errs.append(required("spec.clusterIPs"))
        elif ips[0] != spec["clusterIP"]:
            errs.append(invalid("spec.clusterIPs", ips, "first value must match `clusterIP`"))
    elif ips:
        errs.append(invalid("spec.clusterIPs", ips, "must be empty when `clusterIP` is not specified"))
    for i, family in enumerate(as_list(spec.get("ipFamilies"))):
        if family not in ("IPv4", "IPv6"):
            errs.append(not_supported(f"spec.ipFamilies[{i}]", family, ["IPv4", "IPv6"]))
    policy = spec.get("ipFamilyPolicy")
    if policy is not None and policy not in ("PreferDualStack", "RequireDualStack", "SingleStack"):
        errs.append(not_supported("spec.ipFamilyPolicy", policy, ["PreferDualStack", "RequireDualStack", "SingleStack"]))
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                errs.append(invalid("spec.clusterIPs", ips, "'None' must be the first and only value"))
            continue
        errs += [invalid(f"spec.clusterIPs[{i}]", ip, m) for m in v.is_valid_ip(ip)]
    if len(ips) > 2:
        errs.append(invalid("spec.clusterIPs", ips, "may only hold up to 2 values"))
    return errs


def _validate_node_ports(spec: Obj) -> list[FieldError]:
    """Duplicate node ports per protocol.

    The range (``--service-node-port-range``, 30000-32767) and conflicts with other
    Services are the allocator's to check, as in kube-apiserver, so that the range
    stays configurable in one place and the error is reported once.
    """
    errs: list[FieldError] = []
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(as_list(spec.get("ports"))):
        port = as_dict(port)
        node_port = port.get("nodePort")
        if not node_port or spec.get("type") not in ("NodePort", "LoadBalancer"):
            continue
        if not isinstance(node_port, int) or isinstance(node_port, bool):
            errs.append(invalid(f"spec.ports[{i}].nodePort", node_port, "must be an integer"))
        key = (port.get("protocol"), node_port)
        if key in seen:
            errs.append(duplicate(f"spec.ports[{i}].nodePort", node_port))
        seen.add(key)
    return errs


def validate_service(svc: Obj) -> list[FieldError]:
    """ValidateService (the spec; metadata is checked by the caller)."""
    spec = as_dict(svc.get("spec"))
    ports = as_list(spec.get("ports"))
    errs: list[FieldError] = []
    if not ports and not _is_headless(spec) and spec.get("type") != "ExternalName":
        errs.append(required("spec.ports"))
    errs += _validate_type_rules(spec)
    names: set[str] = set()
    seen: set[tuple[Any, Any]] = set()
    for i, port in enumerate(ports):
        port = as_dict(port)
        errs += _validate_service_port(port, f"spec.ports[{i}]", len(ports) > 1, names)
        key = (port.get("protocol"), port.get("port"))
        if key in seen:
            errs.append(duplicate(f"spec.ports[{i}]", {"port": key[1], "protocol": key[0]}))
        seen.add(key)
    if spec.get("selector") is not None:
        errs += validate_labels(spec.get("selector"), "spec.selector")
    errs += _validate_session_affinity(spec)
    errs += _validate_cluster_ips(spec)
    for i, ip in enumerate(as_list(spec.get("externalIPs"))):
        errs += [invalid(f"spec.externalIPs[{i}]", ip, m) for m in v.is_valid_ip(ip)]
    kind = spec.get("type")
    if not kind:
        errs.append(required("spec.type"))
    elif kind not in SERVICE_TYPES:
        errs.append(not_supported("spec.type", kind, SERVICE_TYPES))
    errs += _validate_node_ports(spec)
    errs += _validate_traffic_policies(spec)
    return errs


def _validate_session_affinity(spec: Obj) -> list[FieldError]:
    affinity = spec.get("sessionAffinity")
    if not affinity:
        return [required("spec.sessionAffinity")]
    if affinity not in ("ClientIP", "None"):
        return [not_supported("spec.sessionAffinity", affinity, ["ClientIP", "None"])]
    config = spec.get("sessionAffinityConfig")
    if affinity == "None" and config is not None:
        return [forbidden("spec.sessionAffinityConfig", "must not be set when session affinity is None")]
    if affinity == "ClientIP":
        timeout = as_dict(as_dict(config).get("clientIP")).get("timeoutSeconds")
        path = "spec.sessionAffinityConfig.clientIP.timeoutSeconds"
        if timeout is None:
            return [required(path)]
        if not isinstance(timeout, int) or not 0 < timeout <= 86400:
            return [invalid(path, timeout, "must be greater than 0 and less than 86400")]
    return []


def _validate_traffic_policies(spec: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    policy = spec.get("externalTrafficPolicy")
    if not _externally_accessible(spec):
        if policy:
            errs.append(invalid("spec.externalTrafficPolicy", policy, "may only be set for externally-accessible services"))
    elif not policy:
        errs.append(required("spec.externalTrafficPolicy"))
    elif policy not in ("Cluster", "Local"):
        errs.append(not_supported("spec.externalTrafficPolicy", policy, ["Cluster", "Local"]))
    internal = spec.get("internalTrafficPolicy")
    if not internal:
        if spec.get("type") in ("ClusterIP", "NodePort", "LoadBalancer"):
            errs.append(required("spec.internalTrafficPolicy"))
    elif internal not in ("Cluster", "Local"):
        errs.append(not_supported("spec.internalTrafficPolicy", internal, ["Cluster", "Local"]))
    return errs


def normalize_cluster_ips(old: Obj, new: Obj) -> Obj:
    """A copy of ``new`` with ``clusterIPs[0]`` following a changed ``clusterIP`` (kube's NormalizeClusterIPs).

    A user who edits only ``clusterIP`` must hear "may not change once set", not that the
    two fields disagree.
    """
    old_spec, new_spec = as_dict(old.get("spec")), as_dict(new.get("spec"))
    ips = as_list(new_spec.get("clusterIPs"))
    if (new_spec.get("clusterIP") and ips and new_spec["clusterIP"] != old_spec.get("clusterIP")
            and ips == as_list(old_spec.get("clusterIPs"))):
        new = {**new, "spec": {**new_spec, "clusterIPs": [new_spec["clusterIP"], *ips[1:]]}}
    return new


def validate_service_update(old: Obj, new: Obj) -> list[FieldError]:
    """ValidateServiceUpdate: a cluster IP never changes once set, except to or from ExternalName."""
    old_spec, new_spec = as_dict(old.get("spec")), as_dict(new.get("spec"))
    if "ExternalName" in (old_spec.get("type"), new_spec.get("type")):
        return []
    if _is_headless(old_spec) and _is_headless(new_spec):
        return []
    if not new_spec.get("clusterIP") and not new_spec.get("clusterIPs"):
        return []  # an update that omits the IP keeps it (the allocator copies it over)
    old_ips, new_ips = as_list(old_spec.get("clusterIPs")), as_list(new_spec.get("clusterIPs"))
    errs: list[FieldError] = []
    if len(old_ips) == len(new_ips):
        for i, ip in enumerate(old_ips):
            if ip != new_ips[i]:
                errs.append(invalid(f"spec.clusterIPs[{i}]", new_ips, "may not change once set"))
    elif old_ips and not new_ips:
        errs.append(invalid("spec.clusterIPs[0]", new_ips, "primary clusterIP can not be unset"))
    elif old_ips and new_ips and old_ips[0] != new_ips[0]:
        errs.append(invalid("spec.clusterIPs[0]", new_ips, "may not change once set"))
    return errs


def validate_endpoint_ports(ports: Any, path: str, require_names: bool = True) -> list[FieldError]:
    """Ports of an Endpoints subset (named when more than one) or an EndpointSlice (port optional)."""
    ports = as_list(ports)
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(ports):
        port, ppath = as_dict(port), f"{path}[{i}]"
        if require_names and len(ports) > 1 and not port.get("name"):
            errs.append(required(f"{ppath}.name"))
        elif port.get("name"):
            errs += validate_dns1123_label(port["name"], f"{ppath}.name")
            if port["name"] in names:
                errs.append(duplicate(f"{ppath}.name", port["name"]))
            names.add(str(port["name"]))
        if require_names or port.get("port") is not None:
            errs += [invalid(f"{ppath}.port", port.get("port"), m) for m in v.is_valid_port_num(port.get("port"))]
        errs += validate_protocol(port.get("protocol"), f"{ppath}.protocol")
    return errs
