"""The enforcer's bookkeeping: nothing written before the lists are in, one write per change that matters."""

from __future__ import annotations

import pytest

from labctl.netpol import PolicyEnforcer
from labctl.netpol.rules import FORWARD_JUMP_ARGS


class FakeIPTables:
    """Records restores; its filter table holds our jump and the chains last restored."""

    def __init__(self) -> None:
        self.restored: list[str] = []

    def save(self, table: str | None = None) -> str:
        chains = [line for text in self.restored[-1:] for line in text.splitlines() if line.startswith(":")]
        return "\n".join(["*filter", *chains, f"-A FORWARD {FORWARD_JUMP_ARGS}", "COMMIT"])

    def list_rules(self, table: str, chain: str) -> list[str]:
        return [f"-A FORWARD {FORWARD_JUMP_ARGS}"]

    def restore(self, text: str, noflush: bool = True) -> None:
        self.restored.append(text)


def web(phase: str = "Running", ready: str = "True") -> dict:
    return {"metadata": {"namespace": "x", "name": "web", "labels": {"app": "web"}},
            "spec": {"nodeName": "worker"},
            "status": {"podIP": "10.244.1.2", "phase": phase, "conditions": [{"type": "Ready", "status": ready}]}}


DENY = {"metadata": {"namespace": "x", "name": "deny"}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}}


def test_sync_waits_for_the_lists_then_writes_what_changed():
    fake = FakeIPTables()
    enforcer = PolicyEnforcer("worker", iptables=fake)  # type: ignore[arg-type]
    enforcer.on_pod(None, web())
    enforcer.on_policy(None, DENY)
    assert enforcer.sync() is False and fake.restored == []

    enforcer.on_synced()
    assert enforcer.sync() is True
    assert "pod x/web is isolated for ingress by x/deny" in fake.restored[-1]
    assert f"-I FORWARD 1 {FORWARD_JUMP_ARGS}" not in fake.restored[-1]  # the jump is already first

    enforcer._running = True  # what start() sets; the runner thread itself is not needed here
    pending = []
    enforcer.runner.run = lambda: pending.append(1)  # type: ignore[method-assign]
    enforcer.on_pod(web(), web(ready="False"))  # a condition: nothing policies read
    assert pending == []
    enforcer.on_pod(web(), web(phase="Succeeded"))  # a finished pod leaves the rules
    assert pending == [1]
    enforcer.on_policy(DENY, None)
    assert pending == [1, 1]

    enforcer.sync()
    last = fake.restored[-1].splitlines()
    assert not [line for line in last if line.startswith("-A LABCTL-POD-")]
    assert [line for line in last if line.startswith("-X LABCTL-POD-INGRESS-")]  # the stale chain goes


def test_without_any_policy_pod_and_namespace_changes_write_nothing_until_a_policy_comes():
    """The rules read pods and namespaces only through policies: with none, a burst of pods costs no sync."""
    fake = FakeIPTables()
    enforcer = PolicyEnforcer("worker", iptables=fake)  # type: ignore[arg-type]
    enforcer.on_synced()
    enforcer._running = True
    pending = []
    enforcer.runner.run = lambda: pending.append(1)  # type: ignore[method-assign]
    enforcer.on_pod(None, web())
    enforcer.on_namespace(None, {"metadata": {"name": "x", "labels": {"team": "a"}}})
    assert pending == [] and "x/web" in enforcer.pods  # recorded all the same
    enforcer.on_policy(None, DENY)
    assert pending == [1]
    enforcer.sync()
    assert "pod x/web is isolated for ingress by x/deny" in fake.restored[-1]
    enforcer.on_pod(web(), web(phase="Succeeded"))  # now that a policy reads pods: a sync
    assert pending == [1, 1]


def test_namespaces_are_kept_by_name_with_their_labels():
    enforcer = PolicyEnforcer("worker", iptables=FakeIPTables())  # type: ignore[arg-type]
    ns = {"metadata": {"name": "x", "labels": {"team": "a"}}}
    enforcer.on_namespace(None, ns)
    enforcer.on_namespace(ns, {"metadata": {"name": "x", "labels": {"team": "b"}}})
    assert enforcer.namespaces == {"x": {"team": "b"}}
    enforcer.on_namespace(ns, None)
    assert enforcer.namespaces == {}


def test_only_a_sync_into_an_unknown_kernel_reads_the_whole_table():
    """The periodic full sync rewrites every chain but trusts its last restore for which chains
    exist; ``iptables-save`` (as long as restoring every chain) runs first and after a failure."""
    fake = FakeIPTables()
    saves: list[str | None] = []
    save = fake.save
    fake.save = lambda table=None: saves.append(table) or save(table)  # type: ignore[method-assign]
    enforcer = PolicyEnforcer("worker", iptables=fake)  # type: ignore[arg-type]
    enforcer.on_pod(None, web())
    enforcer.on_policy(None, DENY)
    enforcer.on_synced()
    enforcer.sync()
    first = fake.restored[-1]
    assert saves == ["filter"]

    enforcer.sync()  # nothing changed: no chain rewritten
    assert not [line for line in fake.restored[-1].splitlines() if line.startswith("-A ")]
    enforcer.sync(full=True)  # every chain again, exactly as the first time, without a save
    assert fake.restored[-1] == first and saves == ["filter"]

    def broken(text: str, noflush: bool = True) -> None:
        raise RuntimeError("iptables-restore failed")

    restore, fake.restore = fake.restore, broken  # type: ignore[method-assign]
    with pytest.raises(RuntimeError):
        enforcer.sync(full=True)
    fake.restore = restore  # type: ignore[method-assign]
    enforcer.sync()
    assert saves == ["filter", "filter"]  # after a failure the kernel is read again
