"""``conntrack -L -o extended`` → entries: the kernel's own record of what NAT did to a flow.

Each entry holds the original tuple (what the client sent) and the reply tuple (what the
server answers to): a Service connection shows the ClusterIP in the first and the chosen pod
in the second (the DNAT), a masqueraded one the node's address as the reply destination.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ConntrackEntry", "Tuple", "entries_for", "parse_conntrack"]


@dataclass(frozen=True)
class Tuple:
    src: str
    dst: str
    sport: int = 0
    dport: int = 0


@dataclass(frozen=True)
class ConntrackEntry:
    """One tracked flow. ``dnat``/``snat`` say whether the reply tuple differs from the mirrored original."""

    protocol: str
    state: str  # ESTABLISHED, SYN_SENT, TIME_WAIT, … ("" for UDP)
    original: Tuple
    reply: Tuple
    flags: tuple[str, ...] = ()  # ASSURED, UNREPLIED
    text: str = ""

    @property
    def dnat(self) -> bool:
        """The destination was translated (a Service's DNAT): the reply comes from elsewhere."""
        return (self.reply.src, self.reply.sport) != (self.original.dst, self.original.dport)

    @property
    def snat(self) -> bool:
        """The source was translated (masquerade): the reply goes to another address."""
        return (self.reply.dst, self.reply.dport) != (self.original.src, self.original.sport)

    def involves(self, ip: str) -> bool:
        return ip in (self.original.src, self.original.dst, self.reply.src, self.reply.dst)


def parse_conntrack(text: str) -> list[ConntrackEntry]:
    """Parse conntrack's listing (``-o extended`` or not); the summary line on stderr is ignored."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if "src=" not in line or not fields:
            continue
        if fields[0] in ("ipv4", "ipv6"):
            fields = fields[2:]  # family name and number
        protocol = fields[0]
        kv: list[dict[str, str]] = [{}, {}]
        state, flags, side = "", [], 0
        for f in fields[3:]:
            if "=" in f:
                key, value = f.split("=", 1)
                if key == "src" and "src" in kv[side]:
                    side = 1
                if key in ("src", "dst", "sport", "dport") and key not in kv[side]:
                    kv[side][key] = value
            elif f.startswith("["):
                flags.append(f.strip("[]"))
            elif not state and f.isupper() and not kv[0]:
                state = f
        if len(kv[1]) < 2:
            continue
        out.append(ConntrackEntry(protocol, state, _tuple(kv[0]), _tuple(kv[1]), tuple(flags), line.strip()))
    return out


def entries_for(entries: list[ConntrackEntry], ip: str) -> list[ConntrackEntry]:
    """The entries one address takes part in, on either side of the NAT."""
    return [e for e in entries if e.involves(ip)]


def _tuple(kv: dict[str, str]) -> Tuple:
    return Tuple(kv.get("src", ""), kv.get("dst", ""), int(kv.get("sport", 0)), int(kv.get("dport", 0)))
