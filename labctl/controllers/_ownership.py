"""Owner references, adoption/release and expectations, shared by the workload controllers.

* ``controller_ref`` / ``owner_reference``: the ``ownerReferences`` entry a controller puts
  on what it creates (``controller: true``, ``blockOwnerDeletion: true``), which the garbage
  collector follows and ``kubectl describe`` shows as "Controlled By".
* ``claim``: ``ControllerRefManager.ClaimObject`` — an orphan that matches the selector is
  adopted, an owned object that stopped matching is released.
* ``Expectations``: ``ControllerExpectations`` — after creating N pods a ReplicaSet must
  not count again until its informer has seen them, or it would create them twice.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from ..client.rest import APIClient, APIStatusError, resource_path
from ..kube.labels import LabelSelector
from ..kube.objects import controller_of


def controller_key(obj: dict, kind: str) -> str | None:
    """``namespace/name`` of the ``kind`` that controls ``obj`` (its work-queue key); None when none does."""
    ref = controller_of(obj)
    if ref is None or ref.get("kind") != kind:
        return None
    return f"{obj['metadata']['namespace']}/{ref['name']}"


def owner_reference(owner: dict) -> dict:
    meta = owner["metadata"]
    return {"apiVersion": owner.get("apiVersion"), "kind": owner.get("kind"), "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}


async def set_owner_references(client: APIClient, plural: str, obj: dict, refs: list[dict]) -> dict:
    """Replace ``ownerReferences`` guarded by resourceVersion (a lost race is retried by the caller)."""
    meta = obj["metadata"]
    patch = {"metadata": {"ownerReferences": refs or None, "resourceVersion": meta["resourceVersion"]}}
    return await client.patch(resource_path(plural, meta.get("namespace"), meta["name"]), patch)


async def claim(client: APIClient, plural: str, owner: dict, selector: LabelSelector,
                candidates: list[dict]) -> list[dict]:
    """The candidates ``owner`` controls after adopting matching orphans and releasing the rest."""
    owner_uid = owner["metadata"]["uid"]
    deleting = bool(owner["metadata"].get("deletionTimestamp"))
    claimed: list[dict] = []
    for obj in candidates:
        meta = obj["metadata"]
        ref = controller_of(obj)
        matches = selector.matches(meta.get("labels") or {})
        if ref is not None:
            if ref.get("uid") != owner_uid:
                continue
            if matches:
                claimed.append(obj)
            elif not deleting:
                others = [r for r in meta.get("ownerReferences") or [] if r.get("uid") != owner_uid]
                await _ignore_missing(set_owner_references(client, plural, obj, others))
            continue
        other_namespace = meta.get("namespace") != owner["metadata"].get("namespace")
        if deleting or not matches or meta.get("deletionTimestamp") or other_namespace:
            continue
        refs = list(meta.get("ownerReferences") or []) + [owner_reference(owner)]
        adopted = await _ignore_missing(set_owner_references(client, plural, obj, refs))
        if adopted is not None:
            claimed.append(adopted)
    return claimed


async def _ignore_missing(call: Awaitable[dict]) -> dict | None:
    try:
        return await call
    except APIStatusError as err:
        if err.code == 404:
            return None
        raise


@dataclass
class _Expectation:
    adds: int = 0
    deletes: set[str] = field(default_factory=set)
    timestamp: float = field(default_factory=time.monotonic)


class Expectations:
    """Creations and deletions a controller is waiting to see in its informer.

    Expire after ``ttl`` seconds (Kubernetes: 5 minutes) so a lost watch event cannot
    wedge a controller forever.
    """

    def __init__(self, ttl: float = 300.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._items: dict[str, _Expectation] = {}

    def expect_creations(self, key: str, count: int) -> None:
        self._items[key] = _Expectation(adds=count, timestamp=self.clock())

    def expect_deletions(self, key: str, pod_keys: list[str]) -> None:
        self._items[key] = _Expectation(deletes=set(pod_keys), timestamp=self.clock())

    def creation_observed(self, key: str) -> None:
        if key in self._items:
            self._items[key].adds -= 1

    def deletion_observed(self, key: str, pod_key: str) -> None:
        if key in self._items:
            self._items[key].deletes.discard(pod_key)

    def satisfied(self, key: str) -> bool:
        exp = self._items.get(key)
        if exp is None:
            return True
        return (exp.adds <= 0 and not exp.deletes) or self.clock() - exp.timestamp > self.ttl

    def delete(self, key: str) -> None:
        self._items.pop(key, None)
