"""Ingress and IngressClass validation: kube's ``ValidateIngressCreate``/``ValidateIngressClass``
(``pkg/apis/networking/validation``).

Field paths and messages are upstream's, so a wrong Ingress fails ``kubectl apply`` with the 422
a real cluster gives: neither rules nor a default backend, a host that is an IP address or not a
DNS name, a path rule without ``pathType``, a relative path for Prefix/Exact, a backend naming
both a Service and a resource or a Service port both by name and by number, an IngressClass
whose controller is not a domain-prefixed path, or changes it.
"""

from __future__ import annotations

import ipaddress
import re

from labctl.apiserver._validate_common import as_dict, as_list, validate_dns1123_subdomain
from labctl.apiserver.errors import FieldError, invalid, not_supported, required
from labctl.kube import validators as v

__all__ = ["PATH_TYPES", "validate_ingress", "validate_ingress_class", "validate_ingress_class_update",
           "validate_ingress_status"]

Obj = dict
PATH_TYPES = ["Exact", "ImplementationSpecific", "Prefix"]
_INVALID_PATH_SEQUENCES = ("//", "/./", "/../", "%2f", "%2F")
_INVALID_PATH_SUFFIXES = ("/..", "/.")
_CONTROLLER_MAX = 250
_HTTP_PATH_FMT = r"[A-Za-z0-9/\-._~%!$&'()*+,;=:]+"
_HTTP_PATH_RE = re.compile(_HTTP_PATH_FMT)


def validate_ingress(ingress: Obj) -> list[FieldError]:
    """``ValidateIngressSpec`` on ``spec``."""
    spec = as_dict(ingress.get("spec"))
    errs: list[FieldError] = []
    rules = as_list(spec.get("rules"))
    if not rules and spec.get("defaultBackend") is None:
        errs.append(invalid("spec", rules or None, "either `defaultBackend` or `rules` must be specified"))
    if spec.get("defaultBackend") is not None:
        errs += _validate_backend(as_dict(spec["defaultBackend"]), "spec.defaultBackend")
    for i, rule in enumerate(rules):
        errs += _validate_rule(as_dict(rule), f"spec.rules[{i}]")
    for i, tls in enumerate(as_list(spec.get("tls"))):
        tls, path = as_dict(tls), f"spec.tls[{i}]"
        for j, host in enumerate(as_list(tls.get("hosts"))):
            errs += _validate_host(str(host), f"{path}.hosts[{j}]", allow_ip=True)
        if tls.get("secretName"):
            errs += validate_dns1123_subdomain(tls["secretName"], f"{path}.secretName")
    if spec.get("ingressClassName") is not None:
        errs += validate_dns1123_subdomain(spec["ingressClassName"], "spec.ingressClassName")
    return errs


def validate_ingress_status(ingress: Obj) -> list[FieldError]:
    """``ValidateIngressLoadBalancerStatus``: an ``ip`` is an IP address, a ``hostname`` is not."""
    errs: list[FieldError] = []
    entries = as_list(as_dict(as_dict(ingress.get("status")).get("loadBalancer")).get("ingress"))
    for i, entry in enumerate(entries):
        entry, path = as_dict(entry), f"status.loadBalancer.ingress[{i}]"
        if entry.get("ip"):
            errs += [invalid(f"{path}.ip", entry["ip"], m) for m in v.is_valid_ip(entry["ip"])]
        if entry.get("hostname"):
            if _is_ip(entry["hostname"]):
                errs.append(invalid(f"{path}.hostname", entry["hostname"], "must be a DNS name, not an IP address"))
            errs += [invalid(f"{path}.hostname", entry["hostname"], m)
                     for m in v.is_dns1123_subdomain(entry["hostname"])]
    return errs


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _validate_host(host: str, path: str, allow_ip: bool = False) -> list[FieldError]:
    """A rule's host is a DNS name, ``*.`` allowed; an IP address only in a TLS entry's hosts."""
    errs = []
    if not allow_ip and _is_ip(host):
        errs.append(invalid(path, host, "must be a DNS name, not an IP address"))
    check = v.is_wildcard_dns1123_subdomain if "*" in host else v.is_dns1123_subdomain
    return errs + [invalid(path, host, m) for m in check(host)]


def _validate_rule(rule: Obj, path: str) -> list[FieldError]:
    errs = _validate_host(rule["host"], f"{path}.host") if rule.get("host") else []
    if rule.get("http") is None:
        return errs
    paths = as_list(as_dict(rule["http"]).get("paths"))
    if not paths:
        errs.append(required(f"{path}.http.paths"))
    for i, http_path in enumerate(paths):
        errs += _validate_path(as_dict(http_path), f"{path}.http.paths[{i}]")
    return errs


def _validate_path(rule: Obj, path: str) -> list[FieldError]:
    """``validateHTTPIngressPath``: a pathType, an absolute path without dot segments for Prefix/Exact."""
    kind, text = rule.get("pathType"), rule.get("path") or ""
    if kind is None:
        return [required(f"{path}.pathType", "pathType must be specified")]
    errs: list[FieldError] = []
    if kind in ("Exact", "Prefix"):
        if not text.startswith("/"):
            errs.append(invalid(f"{path}.path", text, "must be an absolute path"))
        errs += [invalid(f"{path}.path", text, f"must not contain '{seq}'")
                 for seq in _INVALID_PATH_SEQUENCES if seq in text]
        errs += [invalid(f"{path}.path", text, f"cannot end with '{suffix}'")
                 for suffix in _INVALID_PATH_SUFFIXES if text.endswith(suffix)]
    elif kind == "ImplementationSpecific":
        if text and not text.startswith("/"):
            errs.append(invalid(f"{path}.path", text, "must be an absolute path"))
    else:
        errs.append(not_supported(f"{path}.pathType", kind, PATH_TYPES))
    return errs + _validate_backend(as_dict(rule.get("backend")), f"{path}.backend")


def _validate_backend(backend: Obj, path: str) -> list[FieldError]:
    """``validateIngressBackend``: exactly one of ``service`` and ``resource``; a Service port by name or number."""
    resource, service = backend.get("resource"), backend.get("service")
    if resource is not None and service is not None:
        return [invalid(path, "", "cannot set both resource and service backends")]
    if resource is not None:
        resource = as_dict(resource)
        return [required(f"{path}.resource.{key}") for key in ("kind", "name") if not resource.get(key)]
    if service is None:
        return [invalid(path, "", "resource or service backend is required")]
    service = as_dict(service)
    name = service.get("name")
    errs = [invalid(f"{path}.service.name", name, m) for m in v.is_dns1035_label(name)] if name else \
        [required(f"{path}.service.name")]
    port = as_dict(service.get("port"))
    port_name, number = port.get("name"), port.get("number")
    if port_name and number:
        errs.append(invalid(path, "", "cannot set both port name & port number"))
    elif port_name:
        errs += [invalid(f"{path}.service.port.name", port_name, m) for m in v.is_valid_port_name(port_name)]
    elif number:
        errs += [invalid(f"{path}.service.port.number", number, m) for m in v.is_valid_port_num(number)]
    else:
        errs.append(required(path, "port name or number is required"))
    return errs


def validate_ingress_class(ingress_class: Obj) -> list[FieldError]:
    """``validateIngressClassSpec``: ``controller`` is a domain-prefixed path of at most 250 characters."""
    spec = as_dict(ingress_class.get("spec"))
    controller, path = spec.get("controller") or "", "spec.controller"
    if len(controller) > _CONTROLLER_MAX:
        return [FieldError("FieldValueTooLong", path, controller, f"must have at most {_CONTROLLER_MAX} bytes")]
    if not controller:
        return [required(path)]
    host, _, rest = controller.partition("/")
    if not host or not rest:
        return [invalid(path, controller, 'must be a domain-prefixed path (such as "acme.io/foo")')]
    errs = [invalid(path, host, m) for m in v.is_dns1123_subdomain(host)]
    if not _HTTP_PATH_RE.fullmatch(rest):
        errs.append(invalid(path, rest, v.regex_error("must be a valid path", _HTTP_PATH_FMT)))
    parameters = spec.get("parameters")
    if parameters is not None:
        parameters = as_dict(parameters)
        errs += [required(f"spec.parameters.{key}") for key in ("kind", "name") if not parameters.get(key)]
        scope = parameters.get("scope")
        if scope is not None and scope not in ("Cluster", "Namespace"):
            errs.append(not_supported("spec.parameters.scope", scope, ["Cluster", "Namespace"]))
    return errs


def validate_ingress_class_update(old: Obj, new: Obj) -> list[FieldError]:
    """``ValidateIngressClassUpdate``: the controller of a class never changes."""
    before, after = as_dict(old.get("spec")).get("controller"), as_dict(new.get("spec")).get("controller")
    return [] if before == after else [invalid("spec.controller", after, "field is immutable")]
