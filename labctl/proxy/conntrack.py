"""Flushing stale UDP conntrack entries with the ``conntrack`` tool.

TCP notices a dead backend (the connection resets); UDP does not: conntrack keeps
translating a client's "flow" to the removed endpoint, or keeps the entry created while a
Service had no endpoints, until it times out. kube-proxy deletes those entries after every
sync that removed UDP endpoints; so does labctl, with the same ``conntrack -D`` filters.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass

log = logging.getLogger("labctl.proxy.conntrack")


@dataclass
class Conntrack:
    """``conntrack -D`` through an injectable prefix (``ip netns exec NS`` in tests)."""

    prefix: tuple[str, ...] = ()
    binary: str = "conntrack"

    def clear_entries_for_ip(self, ip: str, protocol: str = "udp") -> bool:
        """Delete entries whose original destination is ``ip`` (a Service IP)."""
        return self._delete("--orig-dst", ip, "-p", protocol)

    def clear_entries_for_port(self, port: int, protocol: str = "udp") -> bool:
        """Delete entries to a NodePort."""
        return self._delete("-p", protocol, "--dport", str(port))

    def clear_entries_for_nat(self, orig_ip: str, dest_ip: str, protocol: str = "udp") -> bool:
        """Delete entries from Service IP ``orig_ip`` DNATed to endpoint ``dest_ip``."""
        return self._delete("--orig-dst", orig_ip, "--dst-nat", dest_ip, "-p", protocol)

    def clear_entries_for_port_nat(self, dest_ip: str, port: int, protocol: str = "udp") -> bool:
        """Delete entries from NodePort ``port`` DNATed to endpoint ``dest_ip``."""
        return self._delete("-p", protocol, "--dport", str(port), "--dst-nat", dest_ip)

    def _delete(self, *args: str) -> bool:
        """Run one ``conntrack -D``; "0 flow entries" (exit 1) counts as success.

        Failures are logged, not raised: a leftover UDP flow must not block the rules.
        """
        argv = [*self.prefix, self.binary, "-D", *args]
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as err:
            log.warning("failed to run %r: %s", " ".join(argv), err)
            return False
        if proc.returncode == 0 or "0 flow entries" in proc.stderr:
            return True
        log.warning("failed to delete conntrack entries %r: %s", " ".join(argv), proc.stderr.strip())
        return False
