"""Noticing that someone flushed the node's tables: kube-proxy's canary chains, plus events.

kube-proxy creates a chain ``KUBE-PROXY-CANARY`` in the mangle, nat and filter tables and
nothing else ever touches it; when it is gone, a firewall reload (or a student's
``iptables -t nat -F``) took the proxy's rules with it, and a full resync writes them back.
An empty chain survives ``iptables -F`` (which flushes rules, not chains), so labctl's
canary holds one rule, and either missing counts.

kube-proxy polls the canary every sync period (30 s), and meanwhile every Service of the
node is down. Here a :class:`CanaryWatch` thread follows the ruleset's change events
(``xtables-monitor -e``, the nf_tables backend's event stream: a flush shows as one ``-D``
per rule, the canary's included) and checks at once; it also checks every
:data:`CHECK_PERIOD_S` without events and every :data:`BACKSTOP_PERIOD_S` with them. On a
loss it writes back the canaries and Docker's embedded-DNS rules (:mod:`.dockerdns`, which
no one else would restore) and asks the proxier for a full resync: a flushed nat table is
whole again within a few hundred milliseconds.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable

from labctl.proxy.chains import KUBE_PROXY_CANARY
from labctl.proxy.dockerdns import DockerDNSRules, missing_docker_dns, parse_docker_dns
from labctl.proxy.iptables import IPTables

log = logging.getLogger("labctl.proxy")

CANARY_TABLES = ("mangle", "nat", "filter")
CANARY_RULE = f'-A {KUBE_PROXY_CANARY} -m comment --comment "kube-proxy canary: gone means flushed" -j RETURN'
#: how often the canaries are checked when no event stream is available
CHECK_PERIOD_S = 1.0
#: how often they are checked anyway while events arrive (a stream can miss a table's deletion)
BACKSTOP_PERIOD_S = 10.0
#: after a loss, check every CHECK_PERIOD_S for this long: ``-F`` is often followed by ``-X``
WATCHFUL_AFTER_LOSS_S = 10.0


def missing_canaries(save_text: str) -> dict[str, list[str]]:
    """Table → the restore lines that re-create its canary (absent: the canary is whole).

    A whole canary is never declared again (that would flush its rule and raise the very
    event that means "flushed"); one without its rule is declared, so the restore works
    even if someone's ``-X`` removes the chain between our save and our restore.
    """
    whole: set[str] = set()
    table = ""
    for line in save_text.splitlines():
        if line.startswith("*"):
            table = line[1:]
        elif line == CANARY_RULE:
            whole.add(table)
    return {t: [f":{KUBE_PROXY_CANARY} - [0:0]", CANARY_RULE] for t in CANARY_TABLES if t not in whole}


def repair_text(save_text: str, docker_dns: DockerDNSRules | None) -> str:
    """``iptables-restore --noflush`` text re-creating the canaries and Docker's DNS rules ('' if whole)."""
    per_table = missing_canaries(save_text)
    if docker_dns is not None:
        lines = missing_docker_dns(docker_dns, save_text)
        if lines:
            per_table.setdefault("nat", []).extend(lines)
    out: list[str] = []
    for table in CANARY_TABLES:
        lines = per_table.get(table, [])
        if lines:  # chain declarations first, then the rules
            out += [f"*{table}", *[x for x in lines if x.startswith(":")],
                    *[x for x in lines if not x.startswith(":")], "COMMIT"]
    return "\n".join(out) + "\n" if out else ""


def is_canary_loss(event_line: str) -> bool:
    """An ``xtables-monitor -e`` line deleting the canary's rule or chain (our own writes never do)."""
    return KUBE_PROXY_CANARY in event_line and (" -D " in event_line or " -X " in event_line)


class CanaryWatch:
    """Keeps the canaries in place and calls ``on_loss`` (after repairing the baseline) when they go."""

    def __init__(self, iptables: IPTables, on_loss: Callable[[], None], events: bool = True) -> None:
        self.iptables = iptables
        self.on_loss = on_loss
        self.events = events
        self.docker_dns: DockerDNSRules | None = None
        self.losses = 0
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._monitor: subprocess.Popen[str] | None = None
        self._threads: list[threading.Thread] = []
        self._watchful_until = 0.0

    def start(self) -> None:
        """Create the canaries and watch them, in the background."""
        self._threads = [threading.Thread(target=self._loop, name="proxy-canary", daemon=True)]
        if self.events:
            self._threads.append(threading.Thread(target=self._follow_events, name="proxy-canary-events", daemon=True))
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._monitor is not None and self._monitor.poll() is None:
            self._monitor.terminate()
        for thread in self._threads:
            thread.join(5)

    def check(self, initial: bool = False) -> bool:
        """Repair what is missing; True when the canaries were whole (a loss calls ``on_loss``)."""
        save = self.iptables.save()
        seen = parse_docker_dns(save)
        if seen is not None:
            self.docker_dns = seen  # the newest copy: Docker picks new ports when the node restarts
        missing = missing_canaries(save)
        repair = repair_text(save, self.docker_dns)
        if repair:
            self.iptables.restore(repair)
        if not missing or initial:
            return True
        self.losses += 1
        self._watchful_until = time.monotonic() + WATCHFUL_AFTER_LOSS_S
        log.warning("iptables canary gone from %s (flushed or deleted by someone): restoring the rules",
                    ", ".join(sorted(missing)))
        self.on_loss()
        return False

    def _loop(self) -> None:
        initial = True
        while not self._stopped.is_set():
            try:
                self.check(initial)
                initial = False
            except Exception as err:
                log.warning("failed to check the iptables canaries: %s", err)
            watchful = time.monotonic() < self._watchful_until or not self._events_flowing()
            period = CHECK_PERIOD_S if watchful else BACKSTOP_PERIOD_S
            self._wake.wait(period)
            self._wake.clear()

    def _events_flowing(self) -> bool:
        return self._monitor is not None and self._monitor.poll() is None

    def _follow_events(self) -> None:
        """Run ``xtables-monitor -e`` (line-buffered) and wake the check on a canary's deletion."""
        argv = [*self.iptables.prefix, "stdbuf", "-oL", "xtables-monitor", "-e", "-4"]
        while not self._stopped.is_set():
            try:
                self._monitor = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            except OSError as err:
                log.info("no iptables event stream (%s): checking the canaries every %.0fs", err, CHECK_PERIOD_S)
                return
            assert self._monitor.stdout is not None
            for line in self._monitor.stdout:
                if is_canary_loss(line):
                    self._wake.set()
            self._monitor.wait()
            if not self._stopped.wait(1.0):
                log.debug("xtables-monitor exited (%s): starting it again", self._monitor.returncode)
