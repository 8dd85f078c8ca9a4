"""Readers for the topology schema: each records a problem and returns a default, so parsing goes on.

That is what lets one run report every mistake in a file. Also Go-style durations and the
subnet size/overlap checks shared by the schema and ``Topology.with_lab_subnet``.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import re
from datetime import timedelta
from typing import Any

import yaml


class _Problems:
    """Problems found so far, each ``<field path>: <message>``."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, message: str) -> None:
        self.items.append(f"{path}: {message}" if path else message)


def _quote(value: Any) -> str:
    """Go's ``%q`` for strings, YAML-ish text for the rest (``true``, ``null``, ``5``)."""
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({_quote(value)})"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    if isinstance(value, str):
        return f"a string ({_quote(value)})"
    return "a list" if isinstance(value, list) else "a mapping" if isinstance(value, dict) else type(value).__name__


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _section(value: Any, path: str, fields: tuple[str, ...], p: _Problems) -> dict[str, Any]:
    """``value`` as a mapping with only ``fields`` (``null`` = empty); reports anything else."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        what = "must be a mapping" if path else "the topology must be a mapping"
        p.add(path, f"{what} with fields {', '.join(fields)}; got {_describe(value)}")
        return {}
    for key in value:
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            guess = f' (did you mean "{close[0]}"?)' if close else ""
            p.add(_join(path, key), f"unknown field{guess}; allowed fields: {', '.join(fields)}")
    return value


def _string(d: dict[str, Any], key: str, path: str, default: str, p: _Problems) -> str:
    value = d.get(key, default)
    if isinstance(value, str):
        return value
    p.add(_join(path, key), f"must be a string, got {_describe(value)}")
    return default


def _integer(d: dict[str, Any], key: str, path: str, default: int, p: _Problems,
             low: int = 0, high: int = 65535) -> int:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        p.add(_join(path, key), f"must be an integer from {low} to {high}, got {_describe(value)}")
        return default
    if not low <= value <= high:
        p.add(_join(path, key), f"{value} is out of range; use an integer from {low} to {high}")
        return default
    return value


def _string_map(value: Any, path: str, p: _Problems) -> dict[str, str]:
    """A ``{string: string}`` mapping; YAML numbers and booleans must be quoted to be strings."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        p.add(path, f"must be a mapping of strings to strings, got {_describe(value)}")
        return {}
    out = {}
    for key, item in value.items():
        if not isinstance(key, str):
            p.add(f"{path}[{_quote(key)}]", f"keys must be strings; quote it: \"{key}\"")
        elif not isinstance(item, str):
            hint = f'; quote it: "{item}"' if isinstance(item, (int, float, bool)) else ""
            p.add(f"{path}[{_quote(key)}]", f"must be a string, got {_describe(item)}{hint}")
        else:
            out[key] = item
    return out


def _parse_cidr(value: Any, path: str, p: _Problems) -> ipaddress.IPv4Network | None:
    if not isinstance(value, str):
        p.add(path, f"must be an IPv4 CIDR like \"10.244.0.0/16\", got {_describe(value)}")
        return None
    try:
        net = ipaddress.ip_network(value, strict=False)
    except ValueError:
        p.add(path, f"{_quote(value)} is not a CIDR; use an IPv4 network like \"10.244.0.0/16\"")
        return None
    if net.version != 4:
        p.add(path, f"{_quote(value)} is IPv6; labctl labs are IPv4 only")
        return None
    if str(net) != value and "/" in value:
        p.add(path, f"{_quote(value)} has host bits set; did you mean {_quote(str(net))}?")
        return None
    if "/" not in value:
        p.add(path, f"{_quote(value)} has no prefix length; did you mean {_quote(value + '/24')}?")
        return None
    return net


def _parse_address(d: dict[str, Any], key: str, path: str, default: str, p: _Problems) -> str:
    value = _string(d, key, path, default, p)
    try:
        if ipaddress.ip_address(value).version == 4:
            return value
    except ValueError:
        pass
    p.add(_join(path, key), f"{_quote(value)} is not an IPv4 address; use e.g. \"127.0.0.1\" or \"0.0.0.0\"")
    return default


_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> timedelta:
    """``"40s"``, ``"5m"``, ``"1m30s"``, ``"500ms"`` or a number of seconds → ``timedelta``; ``ValueError`` else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError(value)
    text = value.strip()
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    if text == "0":
        return timedelta(0)
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if not match:
            raise ValueError(value)
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text:
        raise ValueError(value)
    return timedelta(seconds=sign * total)


def format_duration(value: timedelta) -> str:
    """Go's ``Duration.String()`` for whole seconds: ``40s``, ``5m0s``, ``1h2m3s``."""
    seconds = value.total_seconds()
    if seconds != int(seconds):
        return f"{seconds:g}s"
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _duration(d: dict[str, Any], key: str, path: str, default: timedelta, p: _Problems) -> timedelta:
    if key not in d:
        return default
    try:
        value = parse_duration(d[key])
    except ValueError:
        p.add(_join(path, key), f"{_quote(d[key])} is not a duration; use a number of seconds "
                                "or a Go duration like \"40s\", \"5m\", \"1m30s\"")
        return default
    if value <= timedelta(0):
        p.add(_join(path, key), f"must be positive, got {_quote(d[key])}")
        return default
    return value


def _nodes_text(count: int) -> str:
    return f"{count} node" if count == 1 else f"{count} nodes"


def _check_networks(p: _Problems, node_count: int, nets: dict[str, ipaddress.IPv4Network]) -> None:
    """Sizes (a /24 per node, room for kube-dns, an address per node) and no overlaps."""
    count = max(node_count, 1)
    if (pod := nets.get("podSubnet")) is not None:
        needed = 24 - math.ceil(math.log2(count))
        if pod.prefixlen > needed:
            p.add("networking.podSubnet", f"{_quote(str(pod))} is too small for {_nodes_text(count)} "
                                          f"(needs one /24 per node, at least a /{needed})")
    if (svc := nets.get("serviceSubnet")) is not None:
        if svc.prefixlen < 12:
            p.add("networking.serviceSubnet", f"{_quote(str(svc))} is too large; Kubernetes allows at most a /12")
        elif svc.prefixlen > 28:
            p.add("networking.serviceSubnet", f"{_quote(str(svc))} is too small; use at least a /28 "
                                              "(the cluster DNS Service takes its 10th address)")
    if (lab := nets.get("labSubnet")) is not None:
        needed = 32 - math.ceil(math.log2(count + 3))
        if lab.prefixlen > needed:
            p.add("networking.labSubnet", f"{_quote(str(lab))} is too small for {_nodes_text(count)} (needs the "
                                          f"network, broadcast and gateway addresses and one per node, at least a /{needed})")
    names = list(nets)
    for i, later in enumerate(names):
        for earlier in names[:i]:
            if nets[later].overlaps(nets[earlier]):
                p.add(f"networking.{later}", f"{_quote(str(nets[later]))} overlaps networking.{earlier} "
                                             f"{_quote(str(nets[earlier]))}; the ranges must not share addresses")
