"""Docker's embedded-DNS rules in a node: remembered, and put back when someone flushes them.

A node is a container on a user-defined Docker network, so its resolver is Docker's
embedded DNS server at ``127.0.0.11``. The server really listens on two random ports, and
Docker writes four nat rules into the node's namespace — once, when the container starts —
to send port 53 there (``iptables-save -t nat`` in a node)::

    -A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT
    -A POSTROUTING -d 127.0.0.11/32 -j DOCKER_POSTROUTING
    -A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:53460
    -A DOCKER_POSTROUTING -s 127.0.0.11/32 -p udp -m udp --sport 53460 -j SNAT --to-source :53

``iptables -t nat -F`` in a node removes them and nothing would ever write them again: the
node (and every ``dnsPolicy: Default`` pod, kube-dns included) could no longer resolve a
name. The proxy keeps the last copy it saw and restores what is missing, the same way it
restores its own rules.
"""

from __future__ import annotations

from dataclasses import dataclass

DOCKER_DNS_CHAINS = ("DOCKER_OUTPUT", "DOCKER_POSTROUTING")


@dataclass(frozen=True)
class DockerDNSRules:
    """The embedded-DNS part of a node's nat table: its chains' rules and the jumps into them."""

    chain_rules: tuple[str, ...]   # ``-A DOCKER_OUTPUT …`` / ``-A DOCKER_POSTROUTING …``, in order
    jumps: tuple[str, ...]         # ``-A OUTPUT … -j DOCKER_OUTPUT`` / ``-A POSTROUTING … -j DOCKER_POSTROUTING``


def nat_lines(save_text: str) -> tuple[set[str], list[str]]:
    """The nat table of an ``iptables-save``: (declared chains, ``-A`` rules in order)."""
    chains: set[str] = set()
    rules: list[str] = []
    table = ""
    for line in save_text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif table == "nat" and line.startswith(":"):
            chains.add(line[1:].split(" ", 1)[0])
        elif table == "nat" and line.startswith("-A "):
            rules.append(line)
    return chains, rules


def parse_docker_dns(save_text: str) -> DockerDNSRules | None:
    """Docker's embedded-DNS rules found in ``save_text``, or None when they are not (all) there."""
    chains, rules = nat_lines(save_text)
    if not set(DOCKER_DNS_CHAINS) <= chains:
        return None
    chain_rules = tuple(r for r in rules if r.split(" ", 2)[1] in DOCKER_DNS_CHAINS)
    jumps = tuple(r for r in rules if r.split(" ", 2)[1] in ("OUTPUT", "POSTROUTING")
                  and r.rsplit(" ", 1)[-1] in DOCKER_DNS_CHAINS)
    if not chain_rules or len(jumps) < len(DOCKER_DNS_CHAINS):
        return None
    return DockerDNSRules(chain_rules, jumps)


def missing_docker_dns(saved: DockerDNSRules, save_text: str) -> list[str]:
    """nat restore lines (``--noflush``) putting back whatever of ``saved`` ``save_text`` lacks.

    A chain with any rule missing is declared (which flushes it) and refilled whole, so its
    rules keep Docker's order; a missing jump is appended to its built-in chain.
    """
    chains, rules = nat_lines(save_text)
    present = set(rules)
    out: list[str] = []
    for chain in DOCKER_DNS_CHAINS:
        mine = [r for r in saved.chain_rules if r.split(" ", 2)[1] == chain]
        if chain not in chains or any(r not in present for r in mine):
            out.append(f":{chain} - [0:0]")
            out.extend(mine)
    out.extend(j for j in saved.jumps if j not in present)
    return out
