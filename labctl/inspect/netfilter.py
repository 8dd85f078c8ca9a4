"""What a node's iptables rules do to one packet: the first packet of a new connection.

``labctl trace --explain`` walks a packet through parsed rules instead of the kernel. It
understands the matches kube-proxy, Docker and labctl write (addresses, protocol, ports,
``addrtype``, ``mark``, ``conntrack --ctstate``, ``statistic``, ``recent``, ``comment``) and
their targets (jumps, ``RETURN``, ``ACCEPT``/``DROP``/``REJECT``, ``DNAT``, ``MASQUERADE``/
``SNAT``, ``MARK``). A ``statistic --mode random`` rule splits the walk in two — matched with
probability *p*, not matched with *1 − p* — so the walk returns every outcome with its
probability: four endpoints give four outcomes of 1/4 each. A match it does not know never
matches, and is reported in :attr:`Walk.unknown` rather than guessed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection
from dataclasses import dataclass, field, replace

from .ruleset import Rule, Ruleset, Table

__all__ = ["HOOK_TABLES", "Hit", "Outcome", "Packet", "Walk", "run_hook"]

#: the tables each netfilter hook consults, in priority order (raw, mangle, nat, filter)
HOOK_TABLES = {
    "PREROUTING": ("raw", "mangle", "nat"),
    "INPUT": ("mangle", "nat", "filter"),
    "FORWARD": ("mangle", "filter"),
    "OUTPUT": ("raw", "mangle", "nat", "filter"),
    "POSTROUTING": ("mangle", "nat"),
}
_TERMINAL = {"ACCEPT", "DROP", "REJECT"}
_CONTINUE = {"", "MARK", "LOG", "TRACE", "CT", "NOTRACK", "CONNMARK", "CHECKSUM", "NFLOG"}
_MAX_DEPTH = 32


@dataclass(frozen=True)
class Packet:
    """The packet as it is now; NAT rewrites it. ``dnat``/``snat`` are conntrack's status bits."""

    protocol: str
    src: str
    sport: int
    dst: str
    dport: int
    mark: int = 0
    in_iface: str = ""
    out_iface: str = ""
    dnat: bool = False
    snat: bool = False


@dataclass(frozen=True)
class Hit:
    """A rule the packet matched (``rule``), or a built-in chain's policy (``rule`` is None)."""

    table: str
    chain: str
    rule: Rule | None
    verdict: str  # ACCEPT, DROP, REJECT, DNAT, MASQUERADE, MARK, RETURN, or the chain jumped to
    packet: Packet  # after the rule


@dataclass(frozen=True)
class Outcome:
    """One way the walk can end, and how likely it is."""

    probability: float
    hits: tuple[Hit, ...]
    verdict: str  # ACCEPT | DROP | REJECT
    packet: Packet


@dataclass
class Walk:
    """What the walk needs to know of the node: its addresses, and where masquerade takes its source."""

    local_addresses: Collection[str]
    masquerade_source: str = ""  # the out interface's address, known once the packet is routed
    unknown: list[str] = field(default_factory=list)


def run_hook(ruleset: Ruleset, hook: str, packet: Packet, walk: Walk, probability: float = 1.0
             ) -> list[Outcome]:
    """Every outcome of ``hook`` (all its tables in order) for ``packet``."""
    outcomes = [Outcome(probability, (), "ACCEPT", packet)]
    for table_name in HOOK_TABLES[hook]:
        table = ruleset.tables.get(table_name)
        if table is None or hook not in table.chains:
            continue
        after: list[Outcome] = []
        for o in outcomes:
            if o.verdict != "ACCEPT":
                after.append(o)
                continue
            for end in _walk(table, hook, 0, o.packet, o.probability, o.hits, walk, 0):
                after.append(Outcome(end.probability, end.hits, end.verdict or "ACCEPT", end.packet))
        outcomes = after
    return outcomes


@dataclass(frozen=True)
class _End:
    probability: float
    hits: tuple[Hit, ...]
    verdict: str | None  # None: fell off (or RETURNed from) a user chain, continue in the caller
    packet: Packet


def _walk(table: Table, name: str, start: int, pkt: Packet, prob: float, hits: tuple[Hit, ...],
          walk: Walk, depth: int) -> list[_End]:
    """Rules of chain ``name`` from index ``start``; every way out of it."""
    chain = table.chain(name)
    if depth > _MAX_DEPTH:
        return [_End(prob, hits, "DROP", pkt)]
    ends: list[_End] = []
    for i in range(start, len(chain.rules)):
        rule = chain.rules[i]
        p = _matches(rule, pkt, walk)
        if p == 0.0:
            continue
        if p < 1.0:  # statistic: the packet may also go on to the next rule
            ends += _walk(table, name, i + 1, pkt, prob * (1 - p), hits, walk, depth)
            prob *= p
        for end in _apply(table, rule, pkt, prob, hits, walk, depth):
            if end.verdict == "CONTINUE":
                ends += _walk(table, name, i + 1, end.packet, end.probability, end.hits, walk, depth)
            elif end.verdict == "RETURN":
                ends += _fall_off(table, name, _End(end.probability, end.hits, None, end.packet))
            else:
                ends.append(end)
        return ends
    return ends + _fall_off(table, name, _End(prob, hits, None, pkt))


def _fall_off(table: Table, name: str, end: _End) -> list[_End]:
    """Leaving a chain: a built-in one applies its policy, a user chain returns to its caller."""
    chain = table.chain(name)
    if not chain.builtin:
        return [end]
    hit = Hit(table.name, name, None, chain.policy, end.packet)
    return [_End(end.probability, (*end.hits, hit), chain.policy, end.packet)]


def _apply(table: Table, rule: Rule, pkt: Packet, prob: float, hits: tuple[Hit, ...], walk: Walk,
           depth: int) -> list[_End]:
    """The rule's target: ``CONTINUE`` (go on in this chain), ``RETURN``, or a final verdict."""
    target = rule.target
    if target in _TERMINAL:
        return [_End(prob, (*hits, Hit(table.name, rule.chain, rule, target, pkt)), target, pkt)]
    if target == "RETURN":
        return [_End(prob, (*hits, Hit(table.name, rule.chain, rule, "RETURN", pkt)), "RETURN", pkt)]
    if target == "DNAT":
        ip, _, port = rule.target_option("to-destination").partition(":")
        new = replace(pkt, dst=ip or pkt.dst, dport=int(port) if port else pkt.dport, dnat=True)
        return [_End(prob, (*hits, Hit(table.name, rule.chain, rule, "DNAT", new)), "ACCEPT", new)]
    if target in ("MASQUERADE", "SNAT"):
        source = rule.target_option("to-source").partition(":")[0] if target == "SNAT" else walk.masquerade_source
        new = replace(pkt, src=source or pkt.src, sport=0 if target == "MASQUERADE" else pkt.sport, snat=True)
        return [_End(prob, (*hits, Hit(table.name, rule.chain, rule, target, new)), "ACCEPT", new)]
    if target in _CONTINUE:
        new = _mark(rule, pkt) if target == "MARK" else pkt
        return [_End(prob, (*hits, Hit(table.name, rule.chain, rule, target or "match", new)), "CONTINUE", new)]
    if target in table.chains:  # a jump (or goto) into a user chain
        jumped = (*hits, Hit(table.name, rule.chain, rule, target, pkt))
        ends = []
        for end in _walk(table, target, 0, pkt, prob, jumped, walk, depth + 1):
            if end.verdict is None:  # returned: go on after the jump (a goto returns past it)
                ends.append(_End(end.probability, end.hits, "RETURN" if rule.goto else "CONTINUE", end.packet))
            else:
                ends.append(end)
        return ends
    walk.unknown.append(rule.text)
    return [_End(prob, hits, "CONTINUE", pkt)]


def _mark(rule: Rule, pkt: Packet) -> Packet:
    """``MARK --set-xmark v/m`` (what iptables-save prints for set, or and xor): mark = (mark & ~m) ^ v."""
    value, mask = _value_mask(rule.target_option("set-xmark") or rule.target_option("set-mark"))
    if rule.target_option("or-mark"):
        return replace(pkt, mark=pkt.mark | int(rule.target_option("or-mark"), 0))
    if rule.target_option("xor-mark"):
        return replace(pkt, mark=pkt.mark ^ int(rule.target_option("xor-mark"), 0))
    return replace(pkt, mark=(pkt.mark & ~mask) ^ value)


def _value_mask(text: str) -> tuple[int, int]:
    value, _, mask = text.partition("/")
    return int(value or "0", 0), int(mask, 0) if mask else 0xFFFFFFFF


def _matches(rule: Rule, pkt: Packet, walk: Walk) -> float:
    """1.0 if every match holds, 0.0 if one fails, *p* for a ``statistic`` rule whose others hold."""
    probability = 1.0
    for m in rule.matches:
        if m.module == "statistic":
            if m.option == "probability":
                probability = float(m.value)
            continue
        result = _holds(m.module, m.option, m.value, pkt, walk)
        if result is None:
            walk.unknown.append(rule.text)
            return 0.0
        if result == m.negated:
            return 0.0
    return probability


def _holds(module: str, option: str, value: str, pkt: Packet, walk: Walk) -> bool | None:
    """Whether one (un-negated) match holds; None for a match this walk does not model."""
    if option in ("source", "destination", "protocol", "in-interface", "out-interface") and not module:
        return _short(option, value, pkt)
    if option in ("dport", "dports", "destination-port", "destination-ports"):
        return _in_ports(pkt.dport, value)
    if option in ("sport", "sports", "source-port", "source-ports"):
        return _in_ports(pkt.sport, value)
    if module in ("comment", "statistic") or option == "syn":
        return True  # the walked packet is the first one: a SYN
    if module == "addrtype" and option in ("dst-type", "src-type"):
        local = (pkt.dst if option == "dst-type" else pkt.src) in walk.local_addresses
        return local if value == "LOCAL" else not local
    if module == "mark" and option == "mark":
        mark, mask = _value_mask(value)
        return pkt.mark & mask == mark
    if module == "conntrack" and option == "ctstate":
        states = {"NEW"} | ({"DNAT"} if pkt.dnat else set()) | ({"SNAT"} if pkt.snat else set())
        return bool(states & set(value.split(",")))
    if module == "recent":
        return option not in ("rcheck", "update")  # a first connection is in no list yet
    if module in ("tcp", "udp", "sctp", "multiport", "addrtype"):
        return True  # options that only refine the ones above (--limit-iface-in, --tcp-flags of a SYN)
    return None


def _short(option: str, value: str, pkt: Packet) -> bool | None:
    if option in ("source", "destination"):
        ip = pkt.src if option == "source" else pkt.dst
        try:
            return ipaddress.ip_address(ip) in ipaddress.ip_network(value, strict=False)
        except ValueError:
            return False
    if option == "protocol":
        return pkt.protocol == value.lower() or value == "all"
    if option in ("in-interface", "out-interface"):
        iface = pkt.in_iface if option == "in-interface" else pkt.out_iface
        return iface.startswith(value[:-1]) if value.endswith("+") else iface == value
    return None


def _in_ports(port: int, value: str) -> bool:
    for part in value.split(","):
        low, _, high = part.partition(":")
        if int(low or 0) <= port <= int(high or low or 65535):
            return True
    return False
