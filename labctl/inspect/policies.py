"""labctl's NetworkPolicy chains read back from a node's ``iptables-save``: who is isolated, by what.

The enforcer (:mod:`labctl.netpol.rules`) writes a comment on every line, so the chains
read back as the policies they came from: ``LABCTL-NETPOL``'s jumps name each isolated pod,
the direction and the selecting policies; a pod chain's jumps name each policy rule; a rule
chain's lines say what the rule allows (peer and port). ``labctl net`` prints them per node.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..netpol import rules as netpol
from .ruleset import Ruleset

__all__ = ["IsolatedPod", "PolicyRule", "isolated_pods"]


@dataclass(frozen=True)
class PolicyRule:
    """One rule of a policy as this node enforces it: what it allows, one entry per rule line."""

    policy: str  # namespace/name
    direction: str  # ingress | egress
    index: int
    chain: str
    allows: tuple[str, ...]  # "from pods app=web in x (x/b), port TCP/80"


@dataclass(frozen=True)
class IsolatedPod:
    """A pod of this node isolated for one direction, with the rules that may let a packet through."""

    pod: str  # namespace/name
    ip: str
    direction: str
    chain: str
    policies: tuple[str, ...]
    rules: tuple[PolicyRule, ...]


def isolated_pods(ruleset: Ruleset) -> list[IsolatedPod]:
    """Every isolated pod of the node, in ``LABCTL-NETPOL``'s order (egress checks first)."""
    table = ruleset.table("filter")
    out = []
    for jump in table.chain(netpol.NETPOL_CHAIN).rules:
        if not jump.target.startswith(netpol.CHAIN_PREFIXES[1]):
            continue
        # "pod x/a is isolated for ingress by x/p1,x/p2"
        words = jump.comment.split(" ")
        if len(words) < 7 or words[0] != "pod":
            continue
        ip = (jump.value("destination") or jump.value("source")).removesuffix("/32")
        rules = tuple(_rule(ruleset, r.comment, r.target) for r in table.chain(jump.target).rules
                      if r.target.startswith(netpol.RULE_PREFIX))
        out.append(IsolatedPod(words[1], ip, words[5], jump.target, tuple(words[7].split(",")) if len(words) > 7
                               else (), rules))
    return out


def _rule(ruleset: Ruleset, title: str, chain: str) -> PolicyRule:
    """``policy x/p ingress rule 0`` and the chain's lines, each ``<title>: <what it allows>``."""
    words = title.split(" ")
    index = int(words[4]) if len(words) > 4 and words[4].isdigit() else 0
    allows = tuple(r.comment.partition(": ")[2] for r in ruleset.chain("filter", chain).rules)
    return PolicyRule(words[1] if len(words) > 1 else "", words[2] if len(words) > 2 else "", index, chain, allows)
