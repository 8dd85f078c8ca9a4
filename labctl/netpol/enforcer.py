"""The PolicyEnforcer: NetworkPolicy, Pod and Namespace events in, one ``iptables-restore`` per burst out.

The same shape as the service proxy's :class:`~labctl.proxy.Proxier`, with its parts
reused: handlers only record the change (as typed values, see :mod:`labctl.netpol.model`)
and poke a :class:`~labctl.proxy.runner.BoundedFrequencyRunner`; ``sync()`` builds the
whole ruleset with the pure :func:`~labctl.netpol.rules.build_ruleset` and applies it with
:class:`~labctl.proxy.iptables.IPTables`. A pod event that changes nothing policies read
(a status condition, a restart count) costs no sync, and while there is no NetworkPolicy at
all, no pod or namespace change does either: the rules then read neither (in a 50-pod burst
each node's enforcer otherwise synced ~60 times, two ``iptables`` processes each, to write
the same rules; docs/pod-startup.md). Nothing is written before the three
initial lists are in: a restarting agent must not drop traffic for pods whose policies it
has not listed yet.

Every sync lists FORWARD (``iptables -S FORWARD``, a few milliseconds) to check that our
jump is still its first rule, ahead of the jumps kube-proxy inserts, which may come later
(an agent restart, a flushed table). Our chains in the kernel are known from the last
restore, so a sync rewrites only the chains whose rules changed. Every chain is rewritten
(which repairs a chain changed by hand) on the first sync, after a failed one, and every
``sync_period``; only the first and the one after a failure read the whole filter table
(``iptables-save``, as long as a restore of every chain) to find what an earlier run left:
after a restore the kernel holds exactly the chains we wrote.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from labctl.proxy.iptables import IPTables
from labctl.proxy.runner import BoundedFrequencyRunner

from .model import PodInfo, Policy, pod_info, policy_info
from .rules import Ruleset, build_ruleset, parse_filter_state

log = logging.getLogger("labctl.netpol")
Obj = Mapping[str, Any]
T = TypeVar("T")


def _key(obj: Obj) -> str:
    meta = obj.get("metadata") or {}
    return f"{meta.get('namespace', '')}/{meta.get('name', '')}"


class PolicyEnforcer:
    """Network policy enforcement for the pods of one node."""

    def __init__(self, node_name: str, iptables: IPTables | None = None, command_prefix: tuple[str, ...] = (),
                 min_sync_interval: float = 0.1, sync_period: float = 10.0) -> None:
        self.node_name = node_name
        self.iptables = iptables or IPTables(prefix=command_prefix)
        self.policies: dict[str, Policy] = {}
        self.pods: dict[str, PodInfo] = {}
        self.namespaces: dict[str, Mapping[str, str]] = {}
        self._lock = threading.Lock()
        self._synced = False
        self._running = False
        self.sync_period = sync_period
        self.last_ruleset = Ruleset("")
        self.last_sync_seconds = 0.0
        self._applied: dict[str, list[str]] | None = None  # our chains in the kernel; None: read them first
        self._last_full_sync = float("-inf")
        self.runner = BoundedFrequencyRunner(self.sync, min_interval=min_sync_interval, max_interval=sync_period,
                                             name="netpol-sync")

    # ---- event handlers: record, then request a sync if anything enforcement reads changed ----
    def has_policies(self) -> bool:
        """Whether any NetworkPolicy exists in the cluster (the kubelet then announces a new pod's IP early)."""
        return bool(self.policies)

    def on_policy(self, old: Obj | None, new: Obj | None) -> None:
        self._record(self.policies, old, new, policy_info)

    def on_pod(self, old: Obj | None, new: Obj | None) -> None:
        self._record(self.pods, old, new, pod_info, read=bool(self.policies))

    def on_namespace(self, old: Obj | None, new: Obj | None) -> None:
        self._record(self.namespaces, old, new,
                     lambda ns: dict((ns.get("metadata") or {}).get("labels") or {}),
                     key=lambda ns: (ns.get("metadata") or {}).get("name", ""), read=bool(self.policies))

    def _record(self, table: dict[str, T], old: Obj | None, new: Obj | None, parse: Callable[[Obj], T | None],
                key: Callable[[Obj], str] = _key, read: bool = True) -> None:
        """Keep ``table`` current; sync when it changed and the rules read it now (``read``: pods and
        namespaces only matter once there is a policy, whose own event then syncs them all)."""
        with self._lock:
            changed = False
            if old is not None and (new is None or key(old) != key(new)):
                changed = table.pop(key(old), None) is not None
            if new is not None:
                value = parse(new)
                if value is None:
                    changed = table.pop(key(new), None) is not None or changed
                elif table.get(key(new)) != value:
                    table[key(new)] = value
                    changed = True
        if changed and read:
            self.request_sync()

    def on_synced(self) -> None:
        """The initial lists are in: the first sync may write rules."""
        self._synced = True
        self.request_sync()

    # ---- running ----
    def start(self) -> None:
        self._running = True
        self.runner.start()
        self.request_sync()

    def stop(self) -> None:
        self._running = False
        self.runner.stop()

    def request_sync(self) -> None:
        if self._running and self._synced:
            self.runner.run()

    def sync(self, full: bool = False) -> bool:
        """Write this node's policy rules once; False while the initial lists are incomplete.

        A sync rewrites the chains whose rules changed since the last restore; the first one,
        one after a failure, one every ``sync_period`` and ``full=True`` rewrite them all.

        Raises :class:`~labctl.proxy.iptables.IPTablesError` on a failed restore: the runner
        retries with back-off.
        """
        if not self._synced:
            return False
        start = time.perf_counter()
        with self._lock:
            policies, pods, namespaces = list(self.policies.values()), list(self.pods.values()), dict(self.namespaces)
        now = time.monotonic()
        applied = self._applied
        if applied is None:  # the first sync, or one after a failure: what is in the kernel is unknown
            existing, forward = parse_filter_state(self.iptables.save("filter"))
            self._last_full_sync = now
        else:
            existing, forward = set(applied), self.iptables.list_rules("filter", "FORWARD")
            if full or now - self._last_full_sync > self.sync_period:
                applied, self._last_full_sync = None, now  # every chain
        ruleset = build_ruleset(policies, pods, namespaces, self.node_name, existing, forward, applied)
        try:
            self.iptables.restore(ruleset.text)
        except Exception:
            self._applied = None
            raise
        self._applied = ruleset.rules
        self.last_ruleset = ruleset
        self.last_sync_seconds = time.perf_counter() - start
        log.debug("synced %d policies for %d isolated pods in %.3fs", len(policies), len(ruleset.isolated),
                  self.last_sync_seconds)
        return True
