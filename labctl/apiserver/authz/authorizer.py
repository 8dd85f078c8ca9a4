"""The API server's authorizer: ``system:masters``, then the Node authorizer, then RBAC.

kube-apiserver's union authorizer with ``--authorization-mode=Node,RBAC``: the privileged
group is allowed everything, the Node authorizer answers for node identities, RBAC for
everyone; the first "allow" wins and the reasons of the others are joined into the 403.

It also keeps RBAC's caches honest. It subscribes to the store's change streams of Roles,
ClusterRoles and both bindings; before deciding on a request it takes what arrived
(synchronously: a binding deleted by the previous request is gone for this one), drops the
RBAC caches, and re-aggregates the ClusterRoles when one of them changed. A background task
does the same between requests, so aggregated roles follow a change even when no request
comes after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from labctl.apiserver.storage import Watcher
from labctl.apiserver.users import SYSTEM_PRIVILEGED_GROUP, User, node_name

from . import aggregation, bootstrap
from .attributes import Attributes
from .node import NodeAuthorizer, NodeRestriction
from .rbac import CLUSTER_ROLES, RBAC_KEYS, RBACAuthorizer

if TYPE_CHECKING:
    from labctl.apiserver.rest import RestAPI

log = logging.getLogger("labctl.apiserver.rbac")


class Authorizer:
    """Decisions, rules and the RBAC objects' lifecycle (bootstrap, aggregation, cache invalidation)."""

    def __init__(self, api: RestAPI) -> None:
        self.api = api
        self.rbac = RBACAuthorizer(api.store)
        self.node = NodeAuthorizer(api.store)
        self.restriction = NodeRestriction(api.store)
        self._watchers: dict[str, Watcher] = {}
        self._tasks: list[asyncio.Task[None]] = []

    # -- decisions --------------------------------------------------------------------------
    def decide(self, attrs: Attributes) -> tuple[bool, str]:
        """(allowed, reason), as the union authorizer answers."""
        if SYSTEM_PRIVILEGED_GROUP in attrs.user.groups:
            return True, ""
        self.sync()
        reasons = []
        node_allowed, reason = self.node.authorize(attrs)
        if node_allowed:
            return True, reason
        if reason:
            reasons.append(reason)
        allowed, reason = self.rbac.authorize(attrs)
        if allowed:
            return True, reason
        if reason:
            reasons.append(reason)
        return False, "\n".join(reasons)

    def allowed(self, attrs: Attributes) -> bool:
        return self.decide(attrs)[0]

    def rules(self, user: User, namespace: str) -> tuple[list[dict[str, Any]], list[str], bool]:
        """``RulesFor`` of the union: RBAC's rules; a node's rules are not enumerable (incomplete)."""
        self.sync()
        rules, problems = self.rbac.rules_for(user, namespace)
        if node_name(user) is not None:
            return rules, ["node authorizer does not support user rule resolution", *problems], True
        return rules, problems, False

    def rules_for(self, user: User, namespace: str) -> tuple[list[dict[str, Any]], list[str]]:
        self.sync()
        return self.rbac.rules_for(user, namespace)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self, _app: Any = None) -> None:
        """Reconcile the default policy, aggregate, then follow RBAC changes (an aiohttp on_startup hook)."""
        bootstrap.reconcile(self.api)
        aggregation.aggregate(self.api)
        for key in RBAC_KEYS:
            self._watchers[key] = self.api.store.watch(key, None)[0]
        self._tasks = [asyncio.create_task(self._follow(key), name=f"rbac-follow-{key}") for key in RBAC_KEYS]

    async def stop(self, _app: Any = None) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        for watcher in self._watchers.values():
            watcher.close()
        self._watchers.clear()

    async def _follow(self, key: str) -> None:
        """Between requests: wake on a change of one RBAC kind and apply it."""
        while True:
            await self._watchers[key].queue.get()
            self._apply({key})
            self.sync()

    def sync(self) -> None:
        """Take the RBAC changes that arrived: drop the caches, re-aggregate the ClusterRoles."""
        changed = set()
        for key, watcher in self._watchers.items():
            while not watcher.queue.empty():
                watcher.queue.get_nowait()
                changed.add(key)
        if changed:
            self._apply(changed)

    def _apply(self, changed: set[str]) -> None:
        if not changed:
            return
        for key in changed:
            if self._watchers[key].closed:  # too slow or the store closed: subscribe again
                self._watchers[key] = self.api.store.watch(key, None)[0]
        self.rbac.invalidate()
        if CLUSTER_ROLES in changed and aggregation.aggregate(self.api):
            self.rbac.invalidate()
