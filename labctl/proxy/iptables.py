"""Running ``iptables-restore``/``iptables-save``, behind an injectable command prefix.

The prefix is how one proxier serves every place it runs: ``()`` on a node (the agent
already lives in the node's network namespace), ``("ip", "netns", "exec", NS)`` in tests
and benchmarks, or ``("docker", "exec", "-i", NODE)`` from the host.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from labctl.proxy.chains import JUMP_CHAINS, JumpChain


class IPTablesError(RuntimeError):
    """A failed iptables command, keeping its argv and output for the error message."""

    def __init__(self, message: str, argv: Sequence[str], output: str, returncode: int) -> None:
        super().__init__(f"{message}: {' '.join(argv)!r} exited {returncode}: {output.strip()}")
        self.argv = list(argv)
        self.output = output
        self.returncode = returncode


@dataclass(frozen=True)
class SavedState:
    """What a sync needs to know of the kernel: our chains per table and the jumps present."""

    chains: dict[str, set[str]]
    missing_jumps: tuple[JumpChain, ...]


@dataclass
class IPTables:
    """``iptables-restore``/``iptables-save`` through ``prefix`` (e.g. ``ip netns exec NS``)."""

    prefix: tuple[str, ...] = ()
    timeout: float = 60.0
    restore_cmd: str = "iptables-restore"
    save_cmd: str = "iptables-save"
    _env: dict[str, str] | None = field(default=None, repr=False)

    def restore(self, text: str, noflush: bool = True) -> None:
        """Apply a whole restore text in one call; with ``noflush`` other tools' chains survive.

        iptables-nft commits each ``*table`` section as one kernel transaction: a table is
        either fully replaced or left untouched, never half-written.
        """
        argv = [*self.prefix, self.restore_cmd, *(["--noflush"] if noflush else [])]
        self._run(argv, text, "failed to restore iptables rules")

    def save(self, table: str | None = None) -> str:
        """Return ``iptables-save`` output, for one table or all."""
        argv = [*self.prefix, self.save_cmd, *(["-t", table] if table else [])]
        return self._run(argv, None, f"failed to save iptables table {table or 'all'!r}")

    def list_rules(self, table: str, chain: str) -> list[str]:
        """One chain's rules as ``-A CHAIN ...`` lines (``iptables -S``): much cheaper than a whole save."""
        argv = [*self.prefix, self.save_cmd.replace("-save", ""), "-w", "-t", table, "-S", chain]
        out = self._run(argv, None, f"failed to list iptables chain {table!r} {chain!r}")
        return [line for line in out.splitlines() if line.startswith("-A ")]

    def _run(self, argv: list[str], stdin: str | None, what: str) -> str:
        try:
            proc = subprocess.run(
                argv, input=stdin, capture_output=True, text=True, timeout=self.timeout, env=self._env
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise IPTablesError(what, argv, str(err), -1) from err
        if proc.returncode != 0:
            raise IPTablesError(what, argv, proc.stderr or proc.stdout, proc.returncode)
        return proc.stdout


def parse_saved_state(save_text: str, jumps: Sequence[JumpChain] = JUMP_CHAINS) -> SavedState:
    """Read our chains and the present jumps out of ``iptables-save`` text.

    A jump counts as present when its built-in chain has a rule ending in ``-j <our chain>``
    with our comment; iptables-save normalises argument order, so the rule is not
    compared character by character.
    """
    chains: dict[str, set[str]] = {}
    rules: dict[str, list[str]] = {}
    table = ""
    for line in save_text.splitlines():
        if line.startswith("*"):
            table = line[1:]
            chains.setdefault(table, set())
            rules.setdefault(table, [])
        elif line.startswith(":"):
            name = line[1:].split(" ", 1)[0]
            if name.startswith("KUBE-"):
                chains[table].add(name)
        elif line.startswith("-A "):
            rules[table].append(line)
    missing = tuple(j for j in jumps if not _has_jump(rules.get(j.table, ()), j))
    return SavedState(chains, missing)


def _has_jump(rules: Sequence[str], jump: JumpChain) -> bool:
    head, tail = f"-A {jump.src_chain} ", f"-j {jump.dst_chain}"
    comment = f'"{jump.comment}"' if jump.comment else ""
    return any(r.startswith(head) and r.endswith(tail) and comment in r for r in rules)


def build_cleanup(save_text: str, jumps: Sequence[JumpChain] = JUMP_CHAINS) -> str:
    """Restore text removing every jump and chain of ours (kube-proxy's ``CleanupLeftovers``)."""
    state = parse_saved_state(save_text, jumps)
    present = [j for j in jumps if j not in state.missing_jumps]
    out: list[str] = []
    for table in ("filter", "nat", "mangle"):
        ours = sorted(state.chains.get(table, ()))
        table_jumps = [j for j in present if j.table == table]
        if not ours and not table_jumps:
            continue
        out.append(f"*{table}")
        out += [f":{name} - [0:0]" for name in ours]
        out += [f"-D {j.src_chain} {j.rule_args()}" for j in table_jumps]
        out += [f"-X {name}" for name in ours]
        out.append("COMMIT")
    return "\n".join(out) + "\n"
