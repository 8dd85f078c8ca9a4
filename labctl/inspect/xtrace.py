"""``xtables-monitor --trace`` output → the rules one packet matched, hook by hook.

With iptables-nft, an iptables ``-j TRACE`` rule in the ``raw`` table sets nftables'
``meta nftrace``; from then on the kernel reports every rule the packet matches in that
network namespace, and ``xtables-monitor --trace`` prints them::

    PACKET: 2 8d0c6b5c IN=cni0 OUT=eth0 … SRC=10.244.1.3 DST=10.102.205.55 … ID=45350 DF SPORT=45002 DPORT=80 SYN
     TRACE: 2 8d0c6b5c filter:FORWARD:rule:0xe:JUMP:KUBE-SERVICES  -4 -t filter -A FORWARD … -j KUBE-SERVICES
     TRACE: 2 8d0c6b5c filter:KUBE-SERVICES:rule:0x9c:DROP  -4 -t filter -A KUBE-SERVICES … -j REJECT …

A ``PACKET`` line starts each base chain the packet enters (it shows the packet as it is
*then*: after a DNAT the destination has changed), followed by the rules it matched. The
trace id changes from hook to hook, so one packet is followed by its IP header's
identification field (``ID=``), which stays the same through NAT and from node to node.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ruleset import Rule, parse_rule

__all__ = ["TraceEvent", "TracedHook", "packets_of", "parse_monitor"]

#: nftables' verdict codes as xtables-monitor prints the ones it has no name for
_VERDICTS = {"0xffffffff": "CONTINUE", "0xfffffffe": "BREAK", "0xfffffffd": "JUMP", "0xfffffffc": "GOTO",
             "0xfffffffb": "RETURN"}


@dataclass(frozen=True)
class TraceEvent:
    """One reported step: a rule that matched (``rule``) or a base chain's policy (``rule`` None)."""

    table: str
    chain: str
    verdict: str  # CONTINUE, ACCEPT, DROP, REJECT, RETURN, or the chain jumped to
    rule: Rule | None


@dataclass
class TracedHook:
    """A ``PACKET`` line and the events after it: one packet through one base chain of one table."""

    fields: dict[str, str]
    flags: frozenset[str]
    events: list[TraceEvent] = field(default_factory=list)

    @property
    def hook(self) -> str:
        return self.events[0].chain if self.events else ""

    @property
    def table(self) -> str:
        return self.events[0].table if self.events else ""

    def get(self, key: str) -> str:
        return self.fields.get(key, "")

    @property
    def first_packet(self) -> bool:
        """A TCP SYN (not the SYN-ACK), or any UDP datagram."""
        return "ACK" not in self.flags if "SYN" in self.flags else not ({"ACK", "RST", "FIN"} & self.flags)


def parse_monitor(text: str) -> list[TracedHook]:
    """Every PACKET group of the monitor's output, in order."""
    hooks: list[TracedHook] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("PACKET:"):
            fields, flags = {}, set()
            for word in line.split()[3:]:
                key, sep, value = word.partition("=")
                if sep:
                    fields[key] = value
                else:
                    flags.add(word)
            hooks.append(TracedHook(fields, frozenset(flags)))
        elif line.startswith("TRACE:") and hooks:
            event = _event(line)
            if event is not None:
                hooks[-1].events.append(event)
    return hooks


def _event(line: str) -> TraceEvent | None:
    """``TRACE: 2 <id> table:chain:rule:<handle>:VERDICT[:target]  -4 -t table -A …`` or ``…:policy:VERDICT``."""
    head, _, text = line.partition("  ")
    words = head.split()
    if len(words) < 4:
        return None
    parts = words[3].split(":")
    table, chain, kind = parts[0], parts[1], parts[2]
    verdict = parts[-1] if kind == "policy" else ":".join(parts[4:])
    rule = None
    if kind == "rule" and " -A " in text:
        rule = parse_rule(table, "-A " + text.split(" -A ", 1)[1])
    verdict = _VERDICTS.get(verdict, verdict)
    if verdict.startswith(("JUMP:", "GOTO:")):
        verdict = verdict.split(":", 1)[1]
    elif rule is not None and rule.target in ("REJECT", "DNAT", "SNAT", "MASQUERADE", "MARK"):
        verdict = rule.target  # nftables reports REJECT as DROP and the NATs as ACCEPT/CONTINUE
    return TraceEvent(table, chain, verdict, rule)


def packets_of(hooks: list[TracedHook], protocol: str, ip_id: str) -> list[TracedHook]:
    """The traversals of one packet (by IP id), up to the first hook it enters a second time (a retransmission)."""
    out: list[TracedHook] = []
    seen: set[tuple[str, str]] = set()
    for h in hooks:
        if h.get("ID") != ip_id or not h.first_packet or not h.events or _proto(h) != protocol:
            continue
        key = (h.table, h.hook)
        if key in seen:
            break
        seen.add(key)
        out.append(h)
    return out


def _proto(hook: TracedHook) -> str:
    return hook.get("PROTO").lower() or ("tcp" if {"SYN", "ACK", "FIN", "RST"} & hook.flags else "udp")
