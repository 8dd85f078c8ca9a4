"""The reference ``portmap`` plugin's nat-table layout, as ``iptables-restore`` text (pure).

Same chains, names and rules as containernetworking/plugins' ``portmap`` (iptables
backend), so what a student reads in ``iptables-save`` inside a node matches the
upstream documentation::

    PREROUTING, OUTPUT: -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
    CNI-HOSTPORT-DNAT:  -p tcp -m comment --comment "dnat name: ..." -m multiport --dports 8081 -j CNI-DN-<hash>
    CNI-DN-<hash>:      -s <pod subnet> ... --dport 8081 -j CNI-HOSTPORT-SETMARK   (hairpin: masquerade)
                        -s 127.0.0.1/32 ... --dport 8081 -j CNI-HOSTPORT-SETMARK   (from the node itself)
                        -p tcp -m tcp --dport 8081 -j DNAT --to-destination <pod ip>:80
    POSTROUTING (first): -j CNI-HOSTPORT-MASQ  →  -m mark --mark 0x2000/0x2000 -j MASQUERADE

Every rule is written in ``iptables-save``'s own canonical spelling, so "is it there?" is
a line comparison against the saved table, and one ``iptables-restore --noflush`` applies a
whole ADD or DEL atomically. The shared chains are declared only when absent: declaring
a chain under ``--noflush`` flushes it, which would drop the other pods' entries.
"""

from __future__ import annotations

import ipaddress

from labctl.cni import types
from labctl.cni.types import CNIError

TYPE_CHECKING = False  # typing costs every plugin exec ~6 ms; only the type checker needs it
if TYPE_CHECKING:
    from typing import Any

# The reference's top-level chain names: never change them (upgrades would strand rules).
TOP_DNAT_CHAIN = "CNI-HOSTPORT-DNAT"
SETMARK_CHAIN = "CNI-HOSTPORT-SETMARK"
MASQ_CHAIN = "CNI-HOSTPORT-MASQ"
#: Kubernetes uses mark bits 14 and 15, Calico 20-31; the reference picks 13.
DEFAULT_MARK_BIT = 13
MAX_CHAIN_LENGTH = 28  # the reference's utils.maxChainLength (iptables allows 28 + NUL)
MULTIPORT_MAX = 15     # the multiport match takes at most 15 ports per rule
PROTOCOLS = ("tcp", "udp", "sctp")


class PortMapping(types.Record):
    """One ``runtimeConfig.portMappings`` entry (CNI CONVENTIONS.md)."""

    __slots__ = ("container_port", "host_ip", "host_port", "protocol")

    def __init__(self, host_port: int, container_port: int, protocol: str = "tcp", host_ip: str = "") -> None:
        self.host_port, self.container_port, self.protocol, self.host_ip = host_port, container_port, protocol, host_ip


def parse_port_mappings(entries: Any) -> list[PortMapping]:
    """Validate ``runtimeConfig.portMappings``; each problem is error 7 naming the entry."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise CNIError(types.ERR_INVALID_NETCONF, "invalid runtimeConfig: 'portMappings' must be a list")
    out = []
    for i, entry in enumerate(entries):
        where = f"runtimeConfig.portMappings[{i}]"
        if not isinstance(entry, dict):
            raise CNIError(types.ERR_INVALID_NETCONF, f"invalid {where}: must be an object")
        ports = []
        for key in ("hostPort", "containerPort"):
            port = entry.get(key)
            if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
                raise CNIError(types.ERR_INVALID_NETCONF, f"invalid {where}.{key}: {port!r}")
            ports.append(port)
        protocol = str(entry.get("protocol") or "tcp").lower()
        if protocol not in PROTOCOLS:
            raise CNIError(types.ERR_INVALID_NETCONF, f"invalid {where}.protocol: {entry.get('protocol')!r}")
        host_ip = str(entry.get("hostIP") or "")
        if host_ip:
            try:
                ipaddress.ip_address(host_ip)
            except ValueError as err:
                raise CNIError(types.ERR_INVALID_NETCONF, f"invalid {where}.hostIP: {host_ip!r}") from err
        out.append(PortMapping(ports[0], ports[1], protocol, host_ip))
    return out


def dnat_chain_name(network: str, container_id: str) -> str:
    """``CNI-DN-`` + sha512(network name + container ID), 28 characters, as the reference names it."""
    import hashlib  # here: loading OpenSSL would slow every ADD of a pod without hostPorts

    return ("CNI-DN-" + hashlib.sha512(f"{network}{container_id}".encode()).hexdigest())[:MAX_CHAIN_LENGTH]


def _quote(text: str) -> str:
    """A comment as ``iptables-save`` prints it (and ``iptables-restore`` reads it back)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mark(bit: int) -> str:
    value = hex(1 << bit)
    return f"{value}/{value}"


def shared_rules(mark_bit: int = DEFAULT_MARK_BIT, snat: bool = True) -> list[tuple[str, str]]:
    """(chain, rule line) of the chains every pod's mappings share."""
    rules = [("PREROUTING", f"-A PREROUTING -m addrtype --dst-type LOCAL -j {TOP_DNAT_CHAIN}"),
             ("OUTPUT", f"-A OUTPUT -m addrtype --dst-type LOCAL -j {TOP_DNAT_CHAIN}")]
    if snat:
        rules += [
            (SETMARK_CHAIN, f'-A {SETMARK_CHAIN} -m comment --comment "CNI portfwd masquerade mark" '
                            f"-j MARK --set-xmark {_mark(mark_bit)}"),
            (MASQ_CHAIN, f"-A {MASQ_CHAIN} -m mark --mark {_mark(mark_bit)} -j MASQUERADE"),
            # prepended: the bridge/ptp plugins' own masquerade rules must not see these first
            ("POSTROUTING", f'-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j {MASQ_CHAIN}'),
        ]
    return rules


def entry_rules(network: str, container_id: str, mappings: list[PortMapping]) -> list[str]:
    """The ``CNI-HOSTPORT-DNAT`` rules sending this pod's host ports to its own chain."""
    chain = dnat_chain_name(network, container_id)
    comment = _quote(f'dnat name: "{network}" id: "{container_id}"'[:255])
    out = []
    for protocol in sorted({m.protocol for m in mappings}):
        ports = [str(m.host_port) for m in mappings if m.protocol == protocol]
        for start in range(0, len(ports), MULTIPORT_MAX):
            out.append(f"-A {TOP_DNAT_CHAIN} -p {protocol} -m comment --comment {comment} -m multiport "
                       f"--dports {','.join(ports[start:start + MULTIPORT_MAX])} -j {chain}")
    return out


def dnat_rules(chain: str, mappings: list[PortMapping], container: ipaddress.IPv4Interface, snat: bool = True,
               masq_all: bool = False) -> list[str]:
    """The per-pod chain: hairpin and localhost marks, then the DNAT, per mapping (order matters)."""
    out = []
    for m in mappings:
        if m.host_ip and ipaddress.ip_address(m.host_ip).version != container.version:
            continue
        dst = f" -d {m.host_ip}/32" if m.host_ip and not ipaddress.ip_address(m.host_ip).is_unspecified else ""
        match = f"-p {m.protocol} -m {m.protocol} --dport {m.host_port}"
        if snat:
            # the reference marks its pod's whole subnet (the result's address with its mask):
            # a neighbour on the bridge would otherwise get replies straight from the pod
            masq_source = "" if masq_all else f" -s {container.network}"  # 0.0.0.0/0 prints as nothing
            out.append(f"-A {chain}{masq_source}{dst} {match} -j {SETMARK_CHAIN}")
            if not masq_all:
                out.append(f"-A {chain} -s 127.0.0.1/32{dst} {match} -j {SETMARK_CHAIN}")
        out.append(f"-A {chain}{dst} {match} -j DNAT --to-destination {container.ip}:{m.container_port}")
    return out


class SavedNat(types.Record):
    """The nat table as ``iptables-save -t nat`` printed it: its chains and its rule lines."""

    __slots__ = ("chains", "rules")

    def __init__(self, chains: set[str], rules: list[str]) -> None:
        self.chains, self.rules = chains, rules

    @classmethod
    def parse(cls, text: str) -> SavedNat:
        chains: set[str] = set()
        rules: list[str] = []
        in_nat = False
        for line in text.splitlines():
            if line.startswith("*"):
                in_nat = line == "*nat"
            elif in_nat and line.startswith(":"):
                chains.add(line[1:].split(" ", 1)[0])
            elif in_nat and line.startswith("-A "):
                rules.append(line)
        return cls(chains, rules)

    def jumps_to(self, chain: str) -> list[str]:
        return [r for r in self.rules if r.endswith(f" -j {chain}")]


def setup_text(saved: SavedNat, network: str, container_id: str, mappings: list[PortMapping],
               container: ipaddress.IPv4Interface, snat: bool = True, mark_bit: int = DEFAULT_MARK_BIT,
               masq_all: bool = False) -> str:
    """``iptables-restore --noflush`` text forwarding ``mappings`` to ``container`` (idempotent).

    The pod's own chain is declared (so flushed) and refilled; shared chains and rules are
    added only where missing; stale entries of this pod (an ADD again with other ports) go.
    """
    chain = dnat_chain_name(network, container_id)
    present = set(saved.rules)
    shared = shared_rules(mark_bit, snat)
    declare = [c for c in (TOP_DNAT_CHAIN, *((SETMARK_CHAIN, MASQ_CHAIN) if snat else ())) if c not in saved.chains]
    lines = ["*nat", *[f":{c} - [0:0]" for c in declare], f":{chain} - [0:0]"]
    for owner, rule in shared:
        if rule not in present:
            lines.append(rule.replace("-A POSTROUTING ", "-I POSTROUTING 1 ", 1) if owner == "POSTROUTING" else rule)
    lines += dnat_rules(chain, mappings, container, snat, masq_all)
    wanted_entries = entry_rules(network, container_id, mappings)
    lines += ["-D" + r[2:] for r in saved.jumps_to(chain) if r not in wanted_entries]
    lines += [r for r in wanted_entries if r not in present]
    return "\n".join([*lines, "COMMIT"]) + "\n"


def teardown_text(saved: SavedNat, network: str, container_id: str) -> str:
    """Restore text removing this pod's chain and every jump to it ('' when there is none)."""
    chain = dnat_chain_name(network, container_id)
    if chain not in saved.chains:
        return ""
    lines = ["*nat", f":{chain} - [0:0]", *["-D" + r[2:] for r in saved.jumps_to(chain)], f"-X {chain}", "COMMIT"]
    return "\n".join(lines) + "\n"


def check_problem(saved: SavedNat, network: str, container_id: str, mappings: list[PortMapping],
                  container: ipaddress.IPv4Interface, snat: bool = True, mark_bit: int = DEFAULT_MARK_BIT,
                  masq_all: bool = False) -> str:
    """What differs from the rules an ADD would have written ('' when all are there)."""
    chain = dnat_chain_name(network, container_id)
    if chain not in saved.chains:
        return f"chain {chain} not found in iptables table nat"
    present = set(saved.rules)
    wanted = [r for _, r in shared_rules(mark_bit, snat)] + dnat_rules(chain, mappings, container, snat, masq_all)
    wanted += entry_rules(network, container_id, mappings)
    missing = [r for r in wanted if r not in present]
    return f"rule {missing[0]!r} not found in iptables table nat" if missing else ""
