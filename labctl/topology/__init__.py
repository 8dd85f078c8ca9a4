"""Lab topologies: the YAML file that says which nodes a lab has and how they are wired.

A topology (``topologies/default.yaml`` and friends, shipped in :mod:`labctl.topologies_data`;
every field in ``docs/topology.md``) is read once by ``labctl up`` and turned into frozen
dataclasses with every default filled in and every per-node value resolved: node names
(kind's namer: ``control-plane``, ``worker``, ``worker2``, …), each node's pod CIDR (the
i-th /24 of ``podSubnet``), role labels and the control-plane taint. Nothing here touches
Docker: ``labSubnet: auto`` stays ``None`` until the caller picks a free subnet with
:func:`pick_lab_subnet`.

Validation collects every problem and raises one :class:`TopologyError` whose lines each
name the file, the field path and what is allowed, because a student fixing a topology
should see all the mistakes at once, not one per run.

Layout: :mod:`.types` (the dataclasses and ``TopologyError``), :mod:`.schema` (YAML data →
``Topology``), :mod:`._fields` (readers that record a problem and carry on); this module
reads files and finds the shipped topologies.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from labctl.errors import LabctlError
from labctl.topology._fields import _quote, format_duration, parse_duration
from labctl.topology.schema import parse_topology
from labctl.topology.types import (
    API_VERSION,
    CONTROL_PLANE_TAINT,
    KIND,
    LAB_SUBNET_POOL,
    ROLE_CONTROL_PLANE,
    ROLE_WORKER,
    SHIPPED_TOPOLOGIES,
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
    normalize_image,
)

__all__ = [
    "API_VERSION",
    "CONTROL_PLANE_TAINT",
    "KIND",
    "ROLE_CONTROL_PLANE",
    "ROLE_WORKER",
    "SHIPPED_TOPOLOGIES",
    "ImageAliases",
    "Limits",
    "Networking",
    "NodeLifecycle",
    "NodeSpec",
    "PortMapping",
    "Resources",
    "Taint",
    "Topology",
    "TopologyError",
    "default_topology_path",
    "find_topology",
    "format_duration",
    "load_topology",
    "normalize_image",
    "parse_duration",
    "parse_topology",
    "pick_lab_subnet",
]


class _UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a repeated key is an error instead of "last one wins"."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {_quote(key)}", key_node.start_mark)
            seen.add(key if isinstance(key, (str, int, float, bool)) else id(key_node))
        return super().construct_mapping(node, deep=deep)


def load_topology(path: Path | str) -> Topology:
    """Read and validate the topology file at ``path``; raise :class:`TopologyError` if it is wrong."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise TopologyError(source, [f"failed to read the topology file: {err.strerror or err}"]) from err
    except UnicodeDecodeError as err:
        raise TopologyError(source, [f"failed to read the topology file: not UTF-8 text ({err.reason})"]) from err
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = err.problem or err.context
        if err.problem and err.context and err.problem.startswith("but "):
            what = f"{err.context}, {err.problem}"   # "expected a single document …, but found another …"
        raise TopologyError(source, [f"{where}invalid YAML: {what}"]) from err
    except yaml.YAMLError as err:
        raise TopologyError(source, [f"invalid YAML: {err}"]) from err
    return parse_topology({} if data is None else data, source)


def default_topology_path(name: str = "default") -> Path:
    """The shipped topology ``name`` (default, single, large), from the package.

    One copy for every install (the checkout's ``topologies/*.yaml`` are symlinks to it).
    """
    if name not in SHIPPED_TOPOLOGIES:
        raise TopologyError(name, [f"no shipped topology {_quote(name)}; use one of: "
                                   f"{', '.join(SHIPPED_TOPOLOGIES)}, or the path of a topology file"])
    return Path(str(resources.files("labctl.topologies_data") / f"{name}.yaml"))


def find_topology(name_or_path: str | None) -> Path:
    """What ``labctl up --topology X`` means: a shipped name (``large``) or a file path; ``None`` → default."""
    if name_or_path is None:
        return default_topology_path()
    if name_or_path in SHIPPED_TOPOLOGIES and not Path(name_or_path).exists():
        return default_topology_path(name_or_path)
    return Path(name_or_path)


def pick_lab_subnet(topology: Topology, in_use: Iterable[str]) -> str:
    """``labSubnet: auto``: the first 172.30.N.0/24 that overlaps none of ``in_use`` (every Docker
    network's subnet and the host's networks: ``labctl.cluster.preflight.lab_subnet_conflicts``)
    nor the topology's pod and service subnets."""
    taken = [ipaddress.ip_network(c, strict=False) for c in in_use]
    taken += list(replace(topology.networking, lab_subnet=None).networks().values())
    for candidate in LAB_SUBNET_POOL.subnets(new_prefix=24):
        if not any(candidate.overlaps(t) for t in taken if t.version == 4):
            return str(candidate)
    raise LabctlError(f"failed to pick a lab subnet: every /24 of {LAB_SUBNET_POOL} is in use",
                      hint=f"set networking.labSubnet in {topology.source} to a free IPv4 /24")
