"""Address ranges and the round-robin allocator (host-local ``backend/allocator``).

Pure logic over a :class:`~labctl.cni.ipam.store.Store`, unit-tested with a
fake store. Round robin (start after the last reserved IP) matters for pods:
a just-freed IP is not handed straight to the next pod, so a stale
Endpoints entry or conntrack flow does not reach the wrong pod.
"""

from __future__ import annotations

import ipaddress

from labctl.cni import types
from labctl.cni.types import CNIError, IPConfig

TYPE_CHECKING = False  # typing costs every plugin exec ~6 ms; only the type checker needs it
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any

    from labctl.cni.ipam.store import Store

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class Range(types.Record):
    """One ``ranges`` entry: a subnet, the usable span inside it and its gateway."""

    __slots__ = ("gateway", "range_end", "range_start", "subnet")

    def __init__(self, subnet: IPNetwork, range_start: IPAddress, range_end: IPAddress,
                 gateway: IPAddress | None) -> None:
        self.subnet, self.range_start, self.range_end, self.gateway = subnet, range_start, range_end, gateway

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Range:
        """Parse and default a range like host-local: .1 is the gateway, the rest is usable."""
        try:
            subnet = ipaddress.ip_network(obj["subnet"], strict=False)
            first = subnet.network_address + 1
            last = subnet.broadcast_address - (1 if subnet.version == 4 else 0)
            start = ipaddress.ip_address(obj["rangeStart"]) if obj.get("rangeStart") else first
            end = ipaddress.ip_address(obj["rangeEnd"]) if obj.get("rangeEnd") else last
            gateway = ipaddress.ip_address(obj["gateway"]) if obj.get("gateway") else first
        except KeyError as err:
            raise CNIError(types.ERR_INVALID_NETCONF, "IPAM range is missing 'subnet'") from err
        except (TypeError, ValueError) as err:
            raise CNIError(types.ERR_INVALID_NETCONF, "invalid IPAM range", str(err)) from err
        if subnet.num_addresses < 4:
            raise CNIError(types.ERR_INVALID_NETCONF, f"network {str(subnet)!r} too small to allocate from")
        for name, ip in (("rangeStart", start), ("rangeEnd", end), ("gateway", gateway)):
            if ip not in subnet:
                raise CNIError(types.ERR_INVALID_NETCONF, f"{name} {str(ip)!r} not in network {str(subnet)!r}")
        if int(start) > int(end):  # same family: both are inside subnet
            raise CNIError(types.ERR_INVALID_NETCONF, f"rangeStart {str(start)!r} is after rangeEnd {str(end)!r}")
        return cls(subnet, start, end, gateway)

    def __contains__(self, ip: object) -> bool:
        return (
            isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address))
            and ip.version == self.subnet.version
            and int(self.range_start) <= int(ip) <= int(self.range_end)
        )

    def overlaps(self, other: Range) -> bool:
        return self.subnet.version == other.subnet.version and not (
            int(self.range_end) < int(other.range_start) or int(other.range_end) < int(self.range_start)
        )


RangeSet = list[Range]


def parse_range_sets(ipam: dict[str, Any]) -> list[RangeSet]:
    """Return the config's range sets (``ranges``, or the legacy top-level ``subnet``)."""
    raw = ipam.get("ranges")
    if raw is None and ipam.get("subnet"):
        raw = [[{k: ipam[k] for k in ("subnet", "rangeStart", "rangeEnd", "gateway") if k in ipam}]]
    if not raw or not isinstance(raw, list) or not all(isinstance(rs, list) and rs for rs in raw):
        raise CNIError(types.ERR_INVALID_NETCONF, "IPAM config has no usable 'ranges'")
    sets = [[Range.from_json(r) for r in rs] for rs in raw]
    flat = [r for rs in sets for r in rs]
    for i, a in enumerate(flat):
        for b in flat[i + 1 :]:
            if a.overlaps(b):
                raise CNIError(types.ERR_INVALID_NETCONF, f"range {str(a.subnet)!r} overlaps with {str(b.subnet)!r}")
    return sets


class IPAllocator:
    """Hands out one address of one range set, round robin, never the gateway."""

    def __init__(self, range_set: RangeSet, store: Store, range_id: int) -> None:
        self.range_set = range_set
        self.store = store
        self.range_id = str(range_id)

    def _candidates(self) -> Iterator[tuple[Range, IPAddress]]:
        """Every usable address once, starting just after the last reserved one.

        Computed lazily by position, since an IPv6 range holds 2**64 addresses.
        """
        sizes = [int(r.range_end) - int(r.range_start) + 1 for r in self.range_set]
        total = sum(sizes)
        start = 0
        last = self.store.last_reserved_ip(self.range_id)
        if last:
            last_ip = ipaddress.ip_address(last)
            offset = 0
            for rng, size in zip(self.range_set, sizes):
                if last_ip in rng:
                    start = offset + int(last_ip) - int(rng.range_start) + 1
                    break
                offset += size
        for k in range(total):
            pos = (start + k) % total
            for rng, size in zip(self.range_set, sizes):
                if pos < size:
                    yield rng, rng.range_start + pos
                    break
                pos -= size

    def get(self, container_id: str, ifname: str) -> IPConfig:
        """Reserve the next free address; the caller holds the store lock."""
        for held in self.store.get_by_id(container_id, ifname):
            if any(ipaddress.ip_address(held) in r for r in self.range_set):
                raise CNIError(
                    types.ERR_INVALID_NETCONF,
                    f"{held} has been allocated to {container_id}, duplicate allocation is not allowed",
                )
        taken = self.store.reserved_ips()
        for rng, ip in self._candidates():
            if ip == rng.gateway or str(ip) in taken:
                continue
            if self.store.reserve(container_id, ifname, str(ip), self.range_id):
                gateway = str(rng.gateway) if rng.gateway else ""
                return IPConfig(address=f"{ip}/{rng.subnet.prefixlen}", gateway=gateway)
        subnets = ", ".join(str(r.subnet) for r in self.range_set)
        raise CNIError(types.ERR_RANGE_FULL, f"no IP addresses available in range set: {subnets}")
