"""The topology schema: YAML data → a validated :class:`~labctl.topology.types.Topology`.

One parser per section, in document order, then the checks that span sections (subnet sizes
and overlaps, NodePorts inside the range, port mappings naming real nodes).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from datetime import timedelta
from types import MappingProxyType
from typing import Any

from labctl.kube.quantity import value as quantity_value
from labctl.kube.validators import is_qualified_name, is_valid_label_value
from labctl.topology._fields import (
    _check_networks,
    _describe,
    _duration,
    _integer,
    _parse_address,
    _parse_cidr,
    _Problems,
    _quote,
    _section,
    _string,
    _string_map,
    format_duration,
)
from labctl.topology.aliases import DEFAULT_ALIASES
from labctl.topology.types import (
    _DNS1123_LABEL_RE,
    API_VERSION,
    CONTROL_PLANE_TAINT,
    KIND,
    MAX_NODE_NAME,
    PROTOCOLS,
    ROLE_CONTROL_PLANE,
    ROLE_LABEL_PREFIX,
    ROLES,
    TAINT_EFFECTS,
    ImageAliases,
    Limits,
    Networking,
    NodeLifecycle,
    NodeSpec,
    PortMapping,
    Resources,
    Taint,
    Topology,
    TopologyError,
    _cluster_name_problem,
    normalize_image,
)

_TOP_FIELDS = ("apiVersion", "kind", "name", "nodes", "networking", "portMappings", "images", "nodeLifecycle",
               "serviceAccounts", "resources", "addons")
#: the optional add-ons ``labctl up`` installs, each on unless the topology says ``false``
#: (kube-dns is not optional: ``up`` waits for cluster DNS)
_ADDON_FIELDS = ("ingress",)
_NODE_FIELDS = ("role", "name", "labels", "taints")
_TAINT_FIELDS = ("key", "value", "effect")
_NETWORKING_FIELDS = ("podSubnet", "serviceSubnet", "labSubnet", "nodePortRange", "apiServerPort",
                      "apiServerAddress")
_PORT_FIELDS = ("hostPort", "nodePort", "listenAddress", "protocol", "node")
_LIFECYCLE_FIELDS = ("nodeMonitorGracePeriod", "podEvictionTimeout", "leaseDurationSeconds",
                     "leaseRenewInterval")
_SERVICE_ACCOUNT_FIELDS = ("tokenExpirationSeconds",)
#: pods' tokens: from 10 s (a test watching several rotations; below kube's 600 the API server is
#: started with a lower floor) to kube's maximum
_TOKEN_SECONDS_RANGE = (10, 1 << 32)
_RESOURCE_FIELDS = ("controlPlane", "workers", "pods")
_LIMIT_FIELDS = ("memory", "pids")
#: the least a container of each kind runs with: a node's idle use with room to work (docs/reliability.md);
#: 6 MiB is Docker's own floor for a container's memory
_MIN_LIMITS = {"controlPlane": Limits(memory=256 * 2**20, pids=64), "workers": Limits(memory=128 * 2**20, pids=64),
               "pods": Limits(memory=6 * 2**20, pids=16)}
_MAX_MEMORY = 2**40        # 1Ti
_MAX_PIDS = 4_194_304      # the kernel's PID_MAX_LIMIT



@dataclass
class _RawNode:
    """A node as written, before names, CIDRs and default taints are resolved."""

    index: int
    role: str | None
    name: str | None
    labels: dict[str, str]
    taints: tuple[Taint, ...] | None       # None: not given, so the role's default applies
    resolved_name: str = ""                # set by _name_nodes


def parse_topology(data: Any, source: str = "<topology>") -> Topology:
    """Validate ``data`` (a parsed YAML document) and resolve every default; ``source`` names it in errors."""
    p = _Problems()
    top = _section(data, "", _TOP_FIELDS, p)
    _check_header(top, p)
    name = _string(top, "name", "", "lab", p)
    if problem := _cluster_name_problem(name):
        p.add("name", problem)
    raw_nodes = _parse_nodes(top.get("nodes", [{"role": ROLE_CONTROL_PLANE}]), p)
    networking, nets = _parse_networking(top.get("networking"), p)
    _check_networks(p, len(raw_nodes), nets)
    nodes = _resolve_nodes(raw_nodes, nets.get("podSubnet"))
    mappings = _parse_port_mappings(top.get("portMappings"), networking, nodes, p)
    images = _parse_images(top.get("images"), p)
    lifecycle = _parse_lifecycle(top.get("nodeLifecycle"), p)
    accounts = _section(top.get("serviceAccounts"), "serviceAccounts", _SERVICE_ACCOUNT_FIELDS, p)
    token_seconds = _integer(accounts, "tokenExpirationSeconds", "serviceAccounts",
                             Topology.service_account_token_seconds, p, *_TOKEN_SECONDS_RANGE)
    resources = _parse_resources(top.get("resources"), p)
    addons = _parse_addons(top.get("addons"), p)
    if p.items:
        raise TopologyError(source, p.items)
    return Topology(name=name, nodes=nodes, networking=networking, port_mappings=mappings,
                    images=images, node_lifecycle=lifecycle, service_account_token_seconds=token_seconds,
                    resources=resources, addons=addons, source=source)


def _parse_addons(value: Any, p: _Problems) -> tuple[str, ...]:
    """The optional add-ons switched on: ``addons: {ingress: false}`` leaves the ingress controller out."""
    d = _section(value, "addons", _ADDON_FIELDS, p)
    enabled = []
    for name in _ADDON_FIELDS:
        on = d.get(name, True)
        if not isinstance(on, bool):
            p.add(f"addons.{name}", f"must be true or false, got {_describe(on)}")
        elif on:
            enabled.append(name)
    return tuple(enabled)


def _check_header(top: dict[str, Any], p: _Problems) -> None:
    if "apiVersion" in top and top["apiVersion"] != API_VERSION:
        p.add("apiVersion", f"{_quote(top['apiVersion'])} is not supported; use {_quote(API_VERSION)}")
    if "kind" in top and top["kind"] != KIND:
        p.add("kind", f"{_quote(top['kind'])} is not allowed; use {_quote(KIND)}")


def _parse_nodes(value: Any, p: _Problems) -> list[_RawNode]:
    if not isinstance(value, list):
        p.add("nodes", f"must be a list of nodes like [{{role: control-plane}}, {{role: worker}}], "
                       f"got {_describe(value)}")
        return []
    nodes = [_parse_node(i, item, p) for i, item in enumerate(value)]
    control_planes = [f"nodes[{n.index}]" for n in nodes if n.role == ROLE_CONTROL_PLANE]
    if len(control_planes) != 1:
        found = f"{len(control_planes)} ({', '.join(control_planes)})" if control_planes else "none"
        p.add("nodes", f"needs exactly one node with role: {ROLE_CONTROL_PLANE}, found {found}")
    _name_nodes(nodes, p)
    return nodes


def _parse_node(index: int, value: Any, p: _Problems) -> _RawNode:
    path = f"nodes[{index}]"
    d = _section(value, path, _NODE_FIELDS, p)
    role = d.get("role")
    if isinstance(value, dict) and role not in ROLES:
        what = "required" if role is None else f"{_quote(role)} is not allowed"
        p.add(f"{path}.role", f"{what}; use one of: {', '.join(ROLES)}")
        role = None
    name = None
    if "name" in d:
        name = _string(d, "name", path, "", p) or None
        if name is not None and not (_DNS1123_LABEL_RE.fullmatch(name) and len(name) <= MAX_NODE_NAME):
            p.add(f"{path}.name", f"{_quote(name)} is not a valid node name; use at most {MAX_NODE_NAME} lowercase "
                                  "letters, digits and '-', starting and ending with a letter or digit")
            name = None
        elif name is None:
            p.add(f"{path}.name", "must not be empty; leave it out for the default name")
    labels = _string_map(d.get("labels"), f"{path}.labels", p)
    for key, label in labels.items():
        if errs := is_qualified_name(key):
            p.add(f"{path}.labels[{_quote(key)}]", "invalid label key: " + "; ".join(errs))
        if errs := is_valid_label_value(label):
            p.add(f"{path}.labels[{_quote(key)}]", "invalid label value: " + "; ".join(errs))
    taints = _parse_taints(d["taints"], f"{path}.taints", p) if "taints" in d else None
    return _RawNode(index, role, name, labels, taints)


def _parse_taints(value: Any, path: str, p: _Problems) -> tuple[Taint, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        p.add(path, f"must be a list of {{key, value, effect}}, got {_describe(value)}")
        return ()
    taints: list[Taint] = []
    for i, item in enumerate(value):
        ipath = f"{path}[{i}]"
        d = _section(item, ipath, _TAINT_FIELDS, p)
        if not isinstance(item, dict):
            continue
        key = _string(d, "key", ipath, "", p)
        if not key:
            p.add(f"{ipath}.key", "required; a label key like \"dedicated\" or \"example.com/gpu\"")
        elif errs := is_qualified_name(key):
            p.add(f"{ipath}.key", f"{_quote(key)} is not a valid taint key: " + "; ".join(errs))
        value_ = _string(d, "value", ipath, "", p)
        if errs := is_valid_label_value(value_):
            p.add(f"{ipath}.value", f"{_quote(value_)} is not a valid taint value: " + "; ".join(errs))
        effect = d.get("effect")
        if effect not in TAINT_EFFECTS:
            what = "required" if effect is None else f"{_quote(effect)} is not allowed"
            p.add(f"{ipath}.effect", f"{what}; use one of: {', '.join(TAINT_EFFECTS)}")
            continue
        if any(t.key == key and t.effect == effect for t in taints):
            p.add(ipath, f"duplicate taint {key}:{effect}; a key may appear once per effect")
        taints.append(Taint(key, effect, value_))
    return tuple(taints)


def _name_nodes(raw: list[_RawNode], p: _Problems) -> None:
    """kind's namer: the i-th node of a role is ``<role>`` (i = 1) or ``<role><i>``, unless named."""
    counts: dict[str, int] = {}
    used: dict[str, int] = {}
    for node in raw:
        if node.role is None:
            continue
        counts[node.role] = counts.get(node.role, 0) + 1
        name = node.name or (node.role if counts[node.role] == 1 else f"{node.role}{counts[node.role]}")
        if name in used:
            why = "" if node.name else " (its default name)"
            p.add(f"nodes[{node.index}].name", f"{_quote(name)}{why} is already used by nodes[{used[name]}]; "
                                               "node names must be unique")
        used.setdefault(name, node.index)
        node.resolved_name = name


def _resolve_nodes(raw: list[_RawNode], pod_net: ipaddress.IPv4Network | None) -> tuple[NodeSpec, ...]:
    """Give each node the next /24 of the pod subnet, its role label and the default taints."""
    nodes = []
    for node in raw:
        if node.role is None:
            continue
        taints = node.taints
        if taints is None:
            tainted = node.role == ROLE_CONTROL_PLANE and len(raw) > 1
            taints = (CONTROL_PLANE_TAINT,) if tainted else ()
        labels = {ROLE_LABEL_PREFIX + node.role: ""} | node.labels
        nodes.append(NodeSpec(role=node.role, name=node.resolved_name, labels=MappingProxyType(labels),
                              taints=taints, pod_cidr=_nth_slash24(pod_net, node.index), index=node.index))
    return tuple(nodes)


def _nth_slash24(net: ipaddress.IPv4Network | None, index: int) -> str:
    if net is None or net.prefixlen > 24 or index >= 2 ** (24 - net.prefixlen):
        return ""   # already reported by _check_networks
    return str(ipaddress.IPv4Network((int(net.network_address) + index * 256, 24)))


def _parse_networking(value: Any, p: _Problems) -> tuple[Networking, dict[str, ipaddress.IPv4Network]]:
    """The networking section, and its valid CIDRs by field name (for the cross checks)."""
    path, default = "networking", Networking()
    d = _section(value, path, _NETWORKING_FIELDS, p)
    nets: dict[str, ipaddress.IPv4Network] = {}
    for key, fallback in (("podSubnet", default.pod_subnet), ("serviceSubnet", default.service_subnet)):
        if (net := _parse_cidr(d.get(key, fallback), f"{path}.{key}", p)) is not None:
            nets[key] = net
    lab = d.get("labSubnet", "auto")
    if lab not in ("auto", None):
        if not isinstance(lab, str):
            p.add(f"{path}.labSubnet", f"must be \"auto\" or an IPv4 CIDR like \"172.30.0.0/24\", got {_describe(lab)}")
        elif (net := _parse_cidr(lab, f"{path}.labSubnet", p)) is not None:
            nets["labSubnet"] = net
    networking = Networking(
        pod_subnet=str(nets.get("podSubnet", default.pod_subnet)),
        service_subnet=str(nets.get("serviceSubnet", default.service_subnet)),
        lab_subnet=str(nets["labSubnet"]) if "labSubnet" in nets else None,
        node_port_range=_port_range(d.get("nodePortRange", default.node_port_range_text), f"{path}.nodePortRange", p),
        api_server_port=_integer(d, "apiServerPort", path, default.api_server_port, p),
        api_server_address=_parse_address(d, "apiServerAddress", path, default.api_server_address, p),
    )
    return networking, nets


def _port_range(value: Any, path: str, p: _Problems) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*-\s*(\d+)\s*", value) if isinstance(value, str) else None
    if not isinstance(value, str):
        p.add(path, f"must be a port range \"FIRST-LAST\" like \"30000-32767\", got {_describe(value)}")
        return Networking().node_port_range
    if not match:
        p.add(path, f"{_quote(value)} is not a port range; use \"FIRST-LAST\" like \"30000-32767\"")
        return Networking().node_port_range
    first, last = int(match.group(1)), int(match.group(2))
    if not 1 <= first <= last <= 65535:
        p.add(path, f"{_quote(value)} is not a port range; FIRST and LAST must be ports (1-65535) and FIRST <= LAST")
        return Networking().node_port_range
    return first, last


def _parse_port_mappings(value: Any, networking: Networking, nodes: tuple[NodeSpec, ...],
                         p: _Problems) -> tuple[PortMapping, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        p.add("portMappings", f"must be a list of {{hostPort, nodePort, listenAddress, protocol}}, got {_describe(value)}")
        return ()
    first, last = networking.node_port_range
    default_node = next((n.name for n in nodes if n.role == ROLE_CONTROL_PLANE), "")
    mappings: list[PortMapping] = []
    for i, item in enumerate(value):
        path = f"portMappings[{i}]"
        d = _section(item, path, _PORT_FIELDS, p)
        if not isinstance(item, dict):
            continue
        if "nodePort" not in d:
            p.add(f"{path}.nodePort", f"required; the NodePort to publish ({networking.node_port_range_text})")
            continue
        node_port = _integer(d, "nodePort", path, 0, p, low=1)
        if node_port and not first <= node_port <= last:
            p.add(f"{path}.nodePort", f"{node_port} is outside networking.nodePortRange {networking.node_port_range_text}")
        mapping = PortMapping(
            host_port=_integer(d, "hostPort", path, node_port, p, low=1) if "hostPort" in d else node_port,
            node_port=node_port,
            node=_string(d, "node", path, default_node, p),
            listen_address=_parse_address(d, "listenAddress", path, "127.0.0.1", p),
            protocol=_string(d, "protocol", path, "TCP", p),
        )
        _check_mapping(path, mapping, mappings, networking, nodes, p)
        mappings.append(mapping)
    return tuple(mappings)


def _addresses_clash(a: str, b: str) -> bool:
    return a == b or "0.0.0.0" in (a, b)


def _check_mapping(path: str, m: PortMapping, earlier: list[PortMapping], networking: Networking,
                   nodes: tuple[NodeSpec, ...], p: _Problems) -> None:
    if m.protocol not in PROTOCOLS:
        p.add(f"{path}.protocol", f"{_quote(m.protocol)} is not allowed; use one of: {', '.join(PROTOCOLS)}")
    names = list(dict.fromkeys(n.name for n in nodes))
    if names and m.node not in names:
        p.add(f"{path}.node", f"{_quote(m.node)} is not a node of this topology; use one of: {', '.join(names)}")
    for j, other in enumerate(earlier):
        if (other.host_port, other.protocol) == (m.host_port, m.protocol) and \
                _addresses_clash(other.listen_address, m.listen_address):
            p.add(f"{path}.hostPort", f"{m.host_port}/{m.protocol} on {m.listen_address} is already "
                                      f"mapped by portMappings[{j}]; host ports must be unique")
            break
    if m.protocol == "TCP" and m.host_port == networking.api_server_port and \
            _addresses_clash(m.listen_address, networking.api_server_address):
        p.add(f"{path}.hostPort", f"{m.host_port} is networking.apiServerPort; pick another host port")


def _parse_images(value: Any, p: _Problems) -> ImageAliases:
    """:data:`DEFAULT_ALIASES`, which the file's own ``images.aliases`` extend or override."""
    d = _section(value, "images", ("aliases",), p)
    aliases = {normalize_image(key): target for key, target in DEFAULT_ALIASES.items()}
    written: dict[str, str] = {}  # the file's keys, normalized: two naming one image are an error
    for key, target in _string_map(d.get("aliases"), "images.aliases", p).items():
        path = f"images.aliases[{_quote(key)}]"
        if not key.strip() or any(c.isspace() for c in key):
            p.add(path, "the public image name must be non-empty and have no spaces, like \"nginx:1.14.2\"")
            continue
        if not target.strip() or any(c.isspace() for c in target):
            p.add(path, f"{_quote(target)} is not an image; use a non-empty local image name like \"labctl/web:v1\"")
            continue
        normalized = normalize_image(key)
        if normalized in written:
            p.add(path, f"names the same image as images.aliases[{_quote(written[normalized])}] ({normalized})")
            continue
        aliases[normalized], written[normalized] = target.strip(), key
    return ImageAliases(MappingProxyType(aliases))


def _parse_lifecycle(value: Any, p: _Problems) -> NodeLifecycle:
    path, default = "nodeLifecycle", NodeLifecycle()
    before = len(p.items)
    d = _section(value, path, _LIFECYCLE_FIELDS, p)
    lifecycle = NodeLifecycle(
        node_monitor_grace_period=_duration(d, "nodeMonitorGracePeriod", path, default.node_monitor_grace_period, p),
        pod_eviction_timeout=_duration(d, "podEvictionTimeout", path, default.pod_eviction_timeout, p),
        lease_duration_seconds=_integer(d, "leaseDurationSeconds", path, default.lease_duration_seconds, p,
                                        low=1, high=3600),
        lease_renew_interval=_duration(d, "leaseRenewInterval", path, default.lease_renew_interval, p),
    )
    if len(p.items) > before:
        return lifecycle
    renew = lifecycle.lease_renew_interval
    if renew >= timedelta(seconds=lifecycle.lease_duration_seconds):
        p.add(f"{path}.leaseRenewInterval", f"{format_duration(renew)} must be shorter than {path}."
                                            f"leaseDurationSeconds ({lifecycle.lease_duration_seconds}s), "
                                            "or leases expire between renewals")
    if renew >= lifecycle.node_monitor_grace_period:
        p.add(f"{path}.leaseRenewInterval", f"{format_duration(renew)} must be shorter than {path}."
                                            f"nodeMonitorGracePeriod ({format_duration(lifecycle.node_monitor_grace_period)}), "
                                            "or healthy nodes go NotReady between renewals")
    return lifecycle


def _parse_resources(value: Any, p: _Problems) -> Resources:
    """``resources``: memory and process limits per kind of container, each with a floor it needs to run."""
    d = _section(value, "resources", _RESOURCE_FIELDS, p)
    default = Resources()
    limits = {}
    for key, attr in (("controlPlane", "control_plane"), ("workers", "workers"), ("pods", "pods")):
        path, base, low = f"resources.{key}", getattr(default, attr), _MIN_LIMITS[key]
        section = _section(d.get(key), path, _LIMIT_FIELDS, p)
        limits[attr] = Limits(memory=_memory(section, path, base.memory, low.memory, p),
                              pids=_integer(section, "pids", path, base.pids, p, low.pids, _MAX_PIDS))
    return Resources(**limits)


def _memory(d: dict[str, Any], path: str, default: int, low: int, p: _Problems) -> int:
    """A memory size as a Kubernetes quantity (``512Mi``, ``1Gi``) or a number of bytes."""
    if "memory" not in d:
        return default
    raw = d["memory"]
    try:
        size = quantity_value(raw)
    except ValueError:
        p.add(f"{path}.memory", f"{_quote(raw)} is not a memory size; use a quantity like \"512Mi\" or \"1Gi\"")
        return default
    if not low <= size <= _MAX_MEMORY:
        p.add(f"{path}.memory", f"{_quote(raw)} is out of range; use from {low // 2**20}Mi to 1Ti")
        return default
    return size
