"""CNI spec 1.0 vocabulary: error codes, the error type and the result shape.

Kept free of heavy imports because every plugin process loads it and a
plugin's latency is mostly Python start-up: the records below are plain
classes, since ``dataclasses`` imports ``inspect`` (~40 ms per exec here).
"""

from __future__ import annotations

import ipaddress

TYPE_CHECKING = False  # typing costs every plugin exec ~6 ms; only the type checker needs it
if TYPE_CHECKING:
    from typing import Any

#: Versions every labctl plugin accepts in a network config. CHECK needs >= 0.4.0.
SUPPORTED_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]
CURRENT_VERSION = "1.0.0"

# Well-known error codes of the CNI spec ("Error" section); 100+ are ours.
ERR_INCOMPATIBLE_VERSION = 1
ERR_UNSUPPORTED_FIELD = 2
ERR_UNKNOWN_CONTAINER = 3
ERR_INVALID_ENV = 4
ERR_IO = 5
ERR_DECODE = 6
ERR_INVALID_NETCONF = 7
ERR_TRY_AGAIN_LATER = 11
ERR_INTERNAL = 999  # our catch-all for a bug, like libcni's "internal" errors
ERR_RANGE_FULL = 100  # no free address left in the podCIDR
ERR_CHECK_FAILED = 101  # CHECK found the network differs from prevResult


class Record:
    """Base of the plain record classes: a readable repr and field-wise equality."""

    __slots__: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={getattr(self, k)!r}' for k in self.__slots__)})"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]  # mutable, like a dataclass with eq=True


class CNIError(Exception):
    """A CNI failure that travels as the spec's error JSON.

    Raised by plugins (turned into JSON by :mod:`labctl.cni.skel`) and by
    :mod:`labctl.cni.invoke` when a plugin it ran answered with error JSON.
    """

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg if not details else f"{msg}: {details}")
        self.code = code
        self.msg = msg
        self.details = details

    def to_json(self, cni_version: str = CURRENT_VERSION) -> dict[str, Any]:
        """Return the error object the spec prescribes on stdout."""
        out: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> CNIError:
        """Rebuild an error from a plugin's error JSON."""
        return cls(int(obj.get("code", ERR_INTERNAL)), str(obj.get("msg", "")), str(obj.get("details", "")))


class Interface(Record):
    """One entry of a result's ``interfaces`` list."""

    __slots__ = ("mac", "mtu", "name", "sandbox")

    def __init__(self, name: str, mac: str = "", sandbox: str = "", mtu: int = 0) -> None:
        self.name, self.mac, self.sandbox, self.mtu = name, mac, sandbox, mtu

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.mac:
            out["mac"] = self.mac
        if self.mtu:
            out["mtu"] = self.mtu
        if self.sandbox:
            out["sandbox"] = self.sandbox
        return out


class IPConfig(Record):
    """One entry of ``ips``: CIDR address, optional gateway, index into ``interfaces``."""

    __slots__ = ("address", "gateway", "interface")

    def __init__(self, address: str, gateway: str = "", interface: int | None = None) -> None:
        self.address, self.gateway, self.interface = address, gateway, interface

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"address": self.address}
        if self.gateway:
            out["gateway"] = self.gateway
        if self.interface is not None:
            out["interface"] = self.interface
        return out

    @property
    def ip_interface(self) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
        return ipaddress.ip_interface(self.address)


class Route(Record):
    """One entry of ``routes``: destination CIDR and optional next hop."""

    __slots__ = ("dst", "gw")

    def __init__(self, dst: str, gw: str = "") -> None:
        self.dst, self.gw = dst, gw

    def to_json(self) -> dict[str, Any]:
        return {"dst": self.dst, "gw": self.gw} if self.gw else {"dst": self.dst}


class Result(Record):
    """A CNI result (the 1.0 shape; older versions are derived in :meth:`to_json`)."""

    __slots__ = ("cni_version", "dns", "interfaces", "ips", "routes")

    def __init__(self, cni_version: str = CURRENT_VERSION, interfaces: list[Interface] | None = None,
                 ips: list[IPConfig] | None = None, routes: list[Route] | None = None,
                 dns: dict[str, Any] | None = None) -> None:
        self.cni_version = cni_version
        self.interfaces = interfaces if interfaces is not None else []
        self.ips = ips if ips is not None else []
        self.routes = routes if routes is not None else []
        self.dns = dns if dns is not None else {}

    def to_json(self) -> dict[str, Any]:
        """Return the result JSON for ``cni_version``.

        Before 1.0.0 every ``ips`` entry also carried ``"version": "4"|"6"``;
        that is the only difference between the shapes we emit.
        """
        ips = []
        for ipc in self.ips:
            obj = ipc.to_json()
            if self.cni_version != "1.0.0":
                obj["version"] = str(ipc.ip_interface.version)
            ips.append(obj)
        out: dict[str, Any] = {"cniVersion": self.cni_version}
        if self.interfaces:
            out["interfaces"] = [i.to_json() for i in self.interfaces]
        out["ips"] = ips
        if self.routes:
            out["routes"] = [r.to_json() for r in self.routes]
        out["dns"] = self.dns
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Result:
        """Parse a result (any supported version) into the 1.0 shape."""
        try:
            return cls(
                cni_version=str(obj.get("cniVersion", CURRENT_VERSION)),
                interfaces=[
                    Interface(i["name"], i.get("mac", ""), i.get("sandbox", ""), int(i.get("mtu", 0)))
                    for i in obj.get("interfaces") or []
                ],
                ips=[IPConfig(i["address"], i.get("gateway", ""), i.get("interface")) for i in obj.get("ips") or []],
                routes=[Route(r["dst"], r.get("gw", "")) for r in obj.get("routes") or []],
                dns=dict(obj.get("dns") or {}),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise CNIError(ERR_DECODE, "failed to parse result", str(err)) from err
