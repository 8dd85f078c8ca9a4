"""A container's environment, resolved as the kubelet's ``makeEnvironmentVariables`` does.

The order is the kubelet's: ``envFrom`` first (ConfigMaps and Secrets, with ``prefix``),
then ``env`` in declaration order (a literal ``value`` may use ``$(VAR)`` of the variables
before it and of the Service variables; ``valueFrom`` reads a ConfigMap or Secret key, a
field of the pod or a resource of the container), and last the **Service environment
variables** (``pkg/kubelet/envvars``: ``WEB_SERVICE_HOST``, ``WEB_PORT_80_TCP_ADDR`` …) for
every name the container did not set itself.

Everything here is pure: the pod worker fetches the ConfigMaps and Secrets the container
names (:func:`referenced_objects`) and hands them in, so every rule — which reference is
optional, which error a missing key gives — is unit-tested. A missing required object or
key raises :class:`ContainerConfigError` with the kubelet's message; the worker shows it as
``CreateContainerConfigError`` and tries again.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ...kube.quantity import parse_quantity
from .runtime import expand

#: The namespace and names of the services every pod learns about, whatever its namespace
#: and ``enableServiceLinks`` (the kubelet's ``masterServiceNamespace`` and ``kubernetes``).
MASTER_SERVICE_NAMESPACE = "default"
MASTER_SERVICES = ("kubernetes",)


class ContainerConfigError(Exception):
    """The container cannot be configured yet (``CreateContainerConfigError``)."""


@dataclass(frozen=True)
class PodAddresses:
    """What ``status.*`` field references read: the pod's and the node's addresses."""

    pod_ips: tuple[str, ...] = ()
    host_ips: tuple[str, ...] = ()


# -- Service environment variables -------------------------------------------------------

def env_name(name: str) -> str:
    """``my-svc`` → ``MY_SVC`` (``makeEnvVariableName``)."""
    return name.replace("-", "_").upper()


def _cluster_ip_set(service: dict) -> bool:
    ip = (service.get("spec") or {}).get("clusterIP") or ""
    return ip not in ("", "None")


def service_link_variables(service: dict) -> list[tuple[str, str]]:
    """The Docker-link style variables of one Service (``makeLinkVariables``)."""
    spec = service["spec"]
    prefix, ip = env_name(service["metadata"]["name"]), spec["clusterIP"]
    out: list[tuple[str, str]] = []
    for i, port in enumerate(spec.get("ports") or []):
        protocol = port.get("protocol") or "TCP"
        host_port = f"[{ip}]:{port['port']}" if ":" in ip else f"{ip}:{port['port']}"
        url = f"{protocol.lower()}://{host_port}"
        if i == 0:
            out.append((f"{prefix}_PORT", url))  # Docker special-cases the first port
        port_prefix = f"{prefix}_PORT_{port['port']}_{protocol.upper()}"
        out += [(port_prefix, url), (f"{port_prefix}_PROTO", protocol.lower()),
                (f"{port_prefix}_PORT", str(port["port"])), (f"{port_prefix}_ADDR", ip)]
    return out


def from_services(services: Iterable[dict]) -> list[tuple[str, str]]:
    """``envvars.FromServices``: HOST, PORT, PORT_<NAME> and the link variables of each
    Service with a cluster IP (headless and ExternalName Services give none)."""
    out: list[tuple[str, str]] = []
    for service in services:
        ports = (service.get("spec") or {}).get("ports") or []
        if not _cluster_ip_set(service) or not ports:
            continue
        name = env_name(service["metadata"]["name"])
        out.append((f"{name}_SERVICE_HOST", service["spec"]["clusterIP"]))
        out.append((f"{name}_SERVICE_PORT", str(ports[0]["port"])))
        out += [(f"{name}_SERVICE_PORT_{env_name(p['name'])}", str(p["port"])) for p in ports if p.get("name")]
        out += service_link_variables(service)
    return out


def service_env(services: Iterable[dict], namespace: str, enable_service_links: bool) -> dict[str, str]:
    """The kubelet's ``getServiceEnvVarMap``: the Services of the pod's namespace (when
    ``enableServiceLinks``) and always the ``kubernetes`` Service of ``default``, one per
    name, in name order."""
    chosen: dict[str, dict] = {}
    for service in services:
        if not _cluster_ip_set(service):
            continue
        meta = service.get("metadata") or {}
        name, ns = meta.get("name", ""), meta.get("namespace", "")
        if ns == MASTER_SERVICE_NAMESPACE and name in MASTER_SERVICES:
            chosen.setdefault(name, service)
        elif ns == namespace and enable_service_links:
            chosen[name] = service  # the pod's own namespace wins a clash of names
    return dict(from_services(chosen[n] for n in sorted(chosen)))


# -- fieldRef and resourceFieldRef --------------------------------------------------------

_SUBSCRIPT = re.compile(r"^(metadata\.(?:labels|annotations))\['(.+)'\]$")


#: The ``fieldRef.fieldPath``s an ``env`` entry may name, besides ``metadata.labels['k']`` and
#: ``metadata.annotations['k']`` (kube's validation allows the same; the API server's
#: admission table lists them, tests/unit/test_podfields.py keeps the two in step).
FIELD_REFS: dict[str, Callable[[dict, PodAddresses], str]] = {
    "metadata.name": lambda pod, _a: (pod.get("metadata") or {}).get("name", ""),
    "metadata.namespace": lambda pod, _a: (pod.get("metadata") or {}).get("namespace", "default"),
    "metadata.uid": lambda pod, _a: (pod.get("metadata") or {}).get("uid", ""),
    "spec.nodeName": lambda pod, _a: (pod.get("spec") or {}).get("nodeName", ""),
    "spec.serviceAccountName": lambda pod, _a: (pod.get("spec") or {}).get("serviceAccountName", ""),
    "status.hostIP": lambda _p, addresses: addresses.host_ips[0] if addresses.host_ips else "",
    "status.hostIPs": lambda _p, addresses: ",".join(addresses.host_ips),
    "status.podIP": lambda _p, addresses: addresses.pod_ips[0] if addresses.pod_ips else "",
    "status.podIPs": lambda _p, addresses: ",".join(addresses.pod_ips),
}


def field_value(pod: dict, path: str, addresses: PodAddresses) -> str:
    """``podFieldSelectorRuntimeValue``: the value of a ``fieldRef.fieldPath``."""
    subscript = _SUBSCRIPT.match(path)
    if subscript:
        field = subscript.group(1).split(".")[1]
        return str(((pod.get("metadata") or {}).get(field) or {}).get(subscript.group(2), ""))
    if path not in FIELD_REFS:
        raise ContainerConfigError(f"unsupported fieldPath: {path}")
    return str(FIELD_REFS[path](pod, addresses))


def resource_value(container: dict, resource: str, divisor: str | None, allocatable: dict[str, str]) -> str:
    """``containerResourceRuntimeValue``: a limit or request divided by ``divisor``, rounded up.

    An unset limit is the node's allocatable (``defaultPodLimitsForDownwardAPI``), so a
    program sizing itself from ``limits.memory`` sees what it may really use at most.
    """
    resources = container.get("resources") or {}
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in ("cpu", "memory", "ephemeral-storage"):
        raise ContainerConfigError(f"unsupported container resource : {resource}")
    amount = (resources.get(kind) or {}).get(name)
    if amount is None and kind == "limits":
        amount = allocatable.get(name)
    quantity = parse_quantity(amount) if amount is not None else parse_quantity(0)
    by = parse_quantity(divisor) if divisor not in (None, "", "0") else parse_quantity(1)
    if name == "cpu":  # milli-values, as the kubelet divides them
        ratio = math.ceil(quantity * 1000) / max(1, math.ceil(by * 1000))
    else:
        ratio = math.ceil(quantity) / max(1, math.ceil(by))
    return str(math.ceil(ratio))


# -- ConfigMaps and Secrets ----------------------------------------------------------------

def referenced_objects(container: dict) -> tuple[set[str], set[str]]:
    """Names of the ConfigMaps and Secrets a container's environment reads."""
    config_maps: set[str] = set()
    secrets: set[str] = set()
    for source in container.get("envFrom") or []:
        if source.get("configMapRef"):
            config_maps.add(source["configMapRef"].get("name", ""))
        if source.get("secretRef"):
            secrets.add(source["secretRef"].get("name", ""))
    for item in container.get("env") or []:
        value_from = item.get("valueFrom") or {}
        if value_from.get("configMapKeyRef"):
            config_maps.add(value_from["configMapKeyRef"].get("name", ""))
        if value_from.get("secretKeyRef"):
            secrets.add(value_from["secretKeyRef"].get("name", ""))
    return config_maps, secrets


@dataclass
class EnvSources:
    """What a container's references point to: name → object, or None when it does not exist."""

    namespace: str
    config_maps: dict[str, dict | None]
    secrets: dict[str, dict | None]

    def config_map_data(self, name: str, optional: bool) -> dict[str, str] | None:
        obj = self.config_maps.get(name)
        if obj is None:
            if optional:
                return None
            raise ContainerConfigError(f'configmap "{name}" not found')
        return dict(obj.get("data") or {})

    def secret_data(self, name: str, optional: bool) -> dict[str, str] | None:
        obj = self.secrets.get(name)
        if obj is None:
            if optional:
                return None
            raise ContainerConfigError(f'secret "{name}" not found')
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}


def _key(data: dict[str, str] | None, ref: dict, kind: str, sources: EnvSources) -> str | None:
    if data is None:
        return None
    key = ref.get("key", "")
    if key in data:
        return data[key]
    if ref.get("optional"):
        return None
    raise ContainerConfigError(f"couldn't find key {key} in {kind} {sources.namespace}/{ref.get('name', '')}")


def container_env(pod: dict, container: dict, sources: EnvSources, services: dict[str, str],
                  addresses: PodAddresses, allocatable: dict[str, str]) -> dict[str, str]:
    """The container's final environment (insertion order: envFrom, env, Service variables)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix") or ""
        if source.get("configMapRef"):
            ref = source["configMapRef"]
            data = sources.config_map_data(ref.get("name", ""), bool(ref.get("optional")))
        elif source.get("secretRef"):
            ref = source["secretRef"]
            data = sources.secret_data(ref.get("name", ""), bool(ref.get("optional")))
        else:
            continue
        env.update({prefix + k: v for k, v in (data or {}).items()})
    for item in container.get("env") or []:
        name, value_from = item["name"], item.get("valueFrom") or {}
        resolved: str | None
        if item.get("value"):
            resolved = expand(str(item["value"]), {**services, **env})
        elif value_from.get("fieldRef"):
            resolved = field_value(pod, value_from["fieldRef"].get("fieldPath", ""), addresses)
        elif value_from.get("resourceFieldRef"):
            ref = value_from["resourceFieldRef"]
            named = ref.get("containerName") or container["name"]
            spec = pod.get("spec") or {}
            target = next((c for c in [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
                           if c["name"] == named), container)
            resolved = resource_value(target, ref.get("resource", ""), ref.get("divisor"), allocatable)
        elif value_from.get("configMapKeyRef"):
            ref = value_from["configMapKeyRef"]
            data = sources.config_map_data(ref.get("name", ""), bool(ref.get("optional")))
            resolved = _key(data, ref, "ConfigMap", sources)
        elif value_from.get("secretKeyRef"):
            ref = value_from["secretKeyRef"]
            data = sources.secret_data(ref.get("name", ""), bool(ref.get("optional")))
            resolved = _key(data, ref, "Secret", sources)
        else:
            resolved = ""
        if resolved is None:
            continue  # an optional reference that is missing: the variable is not set
        env[name] = resolved
    for name, value in services.items():
        env.setdefault(name, value)
    return env
