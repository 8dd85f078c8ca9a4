"""A resolv.conf as data: what the kubelet writes into a pod and what the grader reads back out of it."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DNSConfig", "parse_resolv_conf", "render"]


@dataclass
class DNSConfig:
    nameservers: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    @property
    def ndots(self) -> int:
        """The resolver's ``ndots`` (glibc's default 1 when no option sets it)."""
        return next((int(o.split(":", 1)[1]) for o in reversed(self.options)
                     if o.startswith("ndots:") and o[6:].isdigit()), 1)


def parse_resolv_conf(text: str) -> DNSConfig:
    """nameserver, search/domain and options lines of a resolv.conf (the last search wins, as glibc)."""
    config = DNSConfig()
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].split(";", 1)[0].split()
        if not line:
            continue
        if line[0] == "nameserver" and len(line) > 1:
            config.nameservers.append(line[1])
        elif line[0] in ("search", "domain"):
            config.searches = line[1:]
        elif line[0] == "options":
            config.options += line[1:]
    return config


def render(config: DNSConfig) -> str:
    """resolv.conf text, in the order the kubelet writes it."""
    lines = [f"nameserver {s}" for s in config.nameservers]
    if config.searches:
        lines.append("search " + " ".join(config.searches))
    if config.options:
        lines.append("options " + " ".join(config.options))
    return "\n".join(lines) + "\n"
