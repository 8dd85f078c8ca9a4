"""``iptables-save`` text → tables, chains and rules, each rule with its matches and target parsed.

The same parser reads a node's whole ``iptables-save`` and the single rules the kernel's
trace prints (``xtables-monitor --trace`` writes each matched rule as ``-A CHAIN …`` in the
same syntax), so a traced hop and a listed rule are the same :class:`Rule`. Only the syntax
is understood here; what kube-proxy's chains *mean* is :mod:`.services`, and what a rule
does to a packet is :mod:`.netfilter`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

__all__ = ["Chain", "Match", "Rule", "Ruleset", "Table", "parse_rule", "parse_ruleset"]

#: a word, or a double-quoted comment (iptables-save quotes nothing else); a regex, not shlex: 20x faster
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\S+')
#: iptables' short options and the "module" a match belongs to in :attr:`Rule.matches`
_SHORT = {"-s": "source", "-d": "destination", "-p": "protocol", "-i": "in-interface",
          "-o": "out-interface"}


@dataclass(frozen=True)
class Match:
    """One condition of a rule: ``-m <module> [!] --<option> <value>`` (or ``-s``/``-d``/``-p``/``-i``/``-o``).

    ``module`` is ``""`` for the short options, whose ``option`` is their long name
    (``source``); ``value`` is ``""`` for flags such as ``--rcheck``.
    """

    module: str
    option: str
    value: str
    negated: bool = False


@dataclass(frozen=True)
class Rule:
    """One rule of a chain, as ``iptables-save`` prints it.

    ``position`` counts from 1 in its chain, as ``iptables -L --line-numbers`` does, so a
    student can find the rule by hand; ``target`` is the ``-j`` (or ``-g``) target, ``""``
    for a rule that only counts.
    """

    table: str
    chain: str
    position: int
    text: str
    comment: str = ""
    target: str = ""
    matches: tuple[Match, ...] = field(default=(), metadata={"json": False})
    target_options: tuple[tuple[str, str], ...] = field(default=(), metadata={"json": False})
    goto: bool = field(default=False, metadata={"json": False})

    def match(self, option: str) -> Match | None:
        """The first match with this long option name (``source``, ``dport``, ``probability``)."""
        return next((m for m in self.matches if m.option == option), None)

    def value(self, option: str) -> str:
        """The value of ``option`` (``""`` when the rule has no such match)."""
        found = self.match(option)
        return found.value if found else ""

    def target_option(self, option: str) -> str:
        """A target's option: ``to-destination`` of a DNAT, ``set-xmark`` of a MARK."""
        return next((v for k, v in self.target_options if k == option), "")

    @property
    def probability(self) -> float | None:
        """The ``statistic --mode random --probability`` of the rule, if it has one."""
        text = self.value("probability")
        return float(text) if text else None

    @property
    def args(self) -> str:
        """The rule after ``-A CHAIN``: what ``iptables -t T -D CHAIN`` would take back."""
        return self.text.split(" ", 2)[2] if self.text.count(" ") >= 2 else ""


@dataclass
class Chain:
    """A chain: its policy (``ACCEPT``/``DROP`` for built-in chains, ``-`` for user chains) and rules."""

    name: str
    policy: str = "-"
    rules: list[Rule] = field(default_factory=list)

    @property
    def builtin(self) -> bool:
        return self.policy != "-"


@dataclass
class Table:
    name: str
    chains: dict[str, Chain] = field(default_factory=dict)

    def chain(self, name: str) -> Chain:
        """The chain ``name``; an empty user chain when the table has none (a jump to nowhere matches nothing)."""
        return self.chains.get(name) or Chain(name)

    def rules(self) -> Iterator[Rule]:
        for chain in self.chains.values():
            yield from chain.rules


@dataclass
class Ruleset:
    """Every table ``iptables-save`` printed (``raw``, ``mangle``, ``nat``, ``filter``, …)."""

    tables: dict[str, Table] = field(default_factory=dict)

    def table(self, name: str) -> Table:
        return self.tables.get(name) or Table(name)

    def chain(self, table: str, chain: str) -> Chain:
        return self.table(table).chain(chain)


def parse_ruleset(text: str) -> Ruleset:
    """Parse ``iptables-save`` output (any tables, comments and counters ignored)."""
    ruleset = Ruleset()
    table: Table | None = None
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        if line[0] == "*":
            table = ruleset.tables.setdefault(line[1:].strip(), Table(line[1:].strip()))
        elif table is None or line == "COMMIT":
            continue
        elif line[0] == ":":
            name, policy = ([*line[1:].split(), "-"])[:2]
            table.chains.setdefault(name, Chain(name, policy)).policy = policy
        elif line.startswith("-A "):
            name = line.split(" ", 2)[1]
            chain = table.chains.setdefault(name, Chain(name))
            chain.rules.append(parse_rule(table.name, line, len(chain.rules) + 1))
    return ruleset


def parse_rule(table: str, text: str, position: int = 0) -> Rule:
    """Parse one ``-A CHAIN …`` line; options iptables does not print never occur here."""
    tokens = [t[1:-1].replace('\\"', '"') if t[0] == '"' else t for t in _TOKEN.findall(text)]
    chain = tokens[1]
    matches: list[Match] = []
    target, goto, target_options = "", False, []
    module, negate, i = "", False, 2
    while i < len(tokens):
        tok = tokens[i]
        if tok == "!":
            negate = True
        elif tok in ("-j", "-g"):
            target, goto = tokens[i + 1], tok == "-g"
            target_options = _options(tokens[i + 2:])
            break
        elif tok == "-m":
            module = tokens[i + 1]
            i += 1
        elif tok in _SHORT:
            matches.append(Match("", _SHORT[tok], tokens[i + 1], negate))
            negate = False
            i += 1
        elif tok.startswith("--"):
            value = tokens[i + 1] if i + 1 < len(tokens) and not _is_option(tokens[i + 1]) else ""
            matches.append(Match(module, tok[2:], value, negate))
            negate = False
            i += 1 if value else 0
        i += 1
    comment = next((m.value for m in matches if m.option == "comment"), "")
    return Rule(table, chain, position, text, comment, target, tuple(matches), tuple(target_options), goto)


def _is_option(token: str) -> bool:
    return token == "!" or (token.startswith("-") and not token[1:2].isdigit())


def _options(tokens: list[str]) -> list[tuple[str, str]]:
    """A target's ``--option value`` pairs (flags get ``""``)."""
    out, i = [], 0
    while i < len(tokens):
        if tokens[i].startswith("--"):
            value = tokens[i + 1] if i + 1 < len(tokens) and not _is_option(tokens[i + 1]) else ""
            out.append((tokens[i][2:], value))
            i += 1 if value else 0
        i += 1
    return out
