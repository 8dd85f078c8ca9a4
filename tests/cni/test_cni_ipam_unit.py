"""Allocator logic over a fake store (no root): round robin, gateway, ranges, full."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from labctl.cni.ipam.allocator import IPAllocator, Range, parse_range_sets
from labctl.cni.ipam.store import DiskStore
from labctl.cni.types import CNIError


class FakeStore:
    """In-memory Store (host-local's backend/testing)."""

    def __init__(self) -> None:
        self.ips: dict[str, tuple[str, str]] = {}
        self.last: dict[str, str] = {}

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        yield

    def reserve(self, container_id: str, ifname: str, ip: str, range_id: str) -> bool:
        if ip in self.ips:
            return False
        self.ips[ip] = (container_id, ifname)
        self.last[range_id] = ip
        return True

    def last_reserved_ip(self, range_id: str) -> str | None:
        return self.last.get(range_id)

    def release(self, ip: str) -> None:
        self.ips.pop(ip, None)

    def release_by_id(self, container_id: str, ifname: str) -> list[str]:
        gone = self.get_by_id(container_id, ifname)
        for ip in gone:
            del self.ips[ip]
        return gone

    def get_by_id(self, container_id: str, ifname: str) -> list[str]:
        return [ip for ip, owner in self.ips.items() if owner == (container_id, ifname)]

    def reserved_ips(self) -> set[str]:
        return set(self.ips)


def allocator(ranges: list[dict[str, str]], store: FakeStore | None = None) -> IPAllocator:
    return IPAllocator(parse_range_sets({"ranges": [ranges]})[0], store or FakeStore(), 0)


def test_defaults_skip_network_gateway_and_broadcast() -> None:
    r = Range.from_json({"subnet": "10.244.1.0/24"})
    assert (str(r.range_start), str(r.range_end), str(r.gateway)) == ("10.244.1.1", "10.244.1.254", "10.244.1.1")
    a = allocator([{"subnet": "10.244.1.0/24"}])
    got = a.get("c1", "eth0")
    assert (got.address, got.gateway) == ("10.244.1.2/24", "10.244.1.1")


@pytest.mark.parametrize(
    "ranges,expect",
    [
        ([{"subnet": "10.0.0.0/29"}], ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]),
        ([{"subnet": "10.0.0.0/29", "gateway": "10.0.0.6"}], ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]),
        ([{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.10", "rangeEnd": "10.0.0.11"}], ["10.0.0.10", "10.0.0.11"]),
        ([{"subnet": "10.0.0.0/30"}, {"subnet": "10.0.1.0/30"}], ["10.0.0.2", "10.0.1.2"]),
    ],
)
def test_allocates_every_usable_address_once_then_reports_full(ranges: list[dict[str, str]], expect: list[str]) -> None:
    a = allocator(ranges)
    got = [a.get(f"c{i}", "eth0").address.split("/")[0] for i in range(len(expect))]
    assert got == expect
    with pytest.raises(CNIError) as err:
        a.get("one-too-many", "eth0")
    assert err.value.code == 100


def test_round_robin_does_not_reuse_a_just_freed_address() -> None:
    store = FakeStore()
    a = allocator([{"subnet": "10.0.0.0/29"}], store)
    first = a.get("c1", "eth0").address
    a.get("c2", "eth0")
    store.release_by_id("c1", "eth0")
    assert a.get("c3", "eth0").address == "10.0.0.4/29"
    assert first == "10.0.0.2/29"


def test_duplicate_allocation_is_refused() -> None:
    a = allocator([{"subnet": "10.0.0.0/24"}])
    a.get("c1", "eth0")
    with pytest.raises(CNIError, match="duplicate allocation is not allowed"):
        a.get("c1", "eth0")
    assert a.get("c1", "net1").address == "10.0.0.3/24"


@pytest.mark.parametrize(
    "ipam,message",
    [
        ({}, "no usable 'ranges'"),
        ({"ranges": [[{"rangeStart": "10.0.0.1"}]]}, "missing 'subnet'"),
        ({"ranges": [[{"subnet": "10.0.0.0/24", "gateway": "10.9.9.9"}]]}, "gateway '10.9.9.9' not in network"),
        ({"ranges": [[{"subnet": "10.0.0.0/24", "rangeStart": "10.0.0.9", "rangeEnd": "10.0.0.3"}]]}, "is after rangeEnd"),
        ({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "10.0.0.0/25"}]]}, "overlaps"),
        ({"ranges": [[{"subnet": "not-a-cidr"}]]}, "invalid IPAM range"),
    ],
)
def test_bad_ranges_are_config_errors(ipam: dict, message: str) -> None:
    with pytest.raises(CNIError, match=message) as err:
        parse_range_sets(ipam)
    assert err.value.code == 7


def test_legacy_top_level_subnet_and_ipv6() -> None:
    assert str(parse_range_sets({"subnet": "10.1.0.0/16"})[0][0].subnet) == "10.1.0.0/16"
    a = allocator([{"subnet": "fd00:10:244:1::/64"}])
    assert a.get("c1", "eth0").address == "fd00:10:244:1::2/64"


def test_dual_stack_gets_one_address_per_range_set() -> None:
    store = FakeStore()
    sets = parse_range_sets({"ranges": [[{"subnet": "10.0.0.0/24"}], [{"subnet": "fd00::/64"}]]})
    got = [IPAllocator(rs, store, i).get("c1", "eth0").address for i, rs in enumerate(sets)]
    assert got == ["10.0.0.2/24", "fd00::2/64"]


def test_disk_store_persists_reservations(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = DiskStore("labctl", str(tmp_path))
    with store.locked():
        assert store.reserve("c1", "eth0", "10.0.0.2", "0")
        assert not store.reserve("c2", "eth0", "10.0.0.2", "0")
    again = DiskStore("labctl", str(tmp_path))  # a restarted agent sees the same state
    assert again.get_by_id("c1", "eth0") == ["10.0.0.2"]
    assert again.last_reserved_ip("0") == "10.0.0.2"
    assert (tmp_path / "labctl" / "10.0.0.2").read_text() == "c1\neth0"
    assert again.release_by_id("c1", "eth0") == ["10.0.0.2"]
    assert again.release_by_id("c1", "eth0") == []
    with pytest.raises(CNIError):
        DiskStore("../escape", str(tmp_path))
