"""ClusterRole aggregation: ``view`` gains the rules of every ClusterRole labelled ``aggregate-to-view``.

A port of kube-controller-manager's ``clusterrole-aggregation`` controller
(``pkg/controller/clusterroleaggregation``): a ClusterRole with an ``aggregationRule`` gets as
its ``rules`` the rules of every *other* ClusterRole matching one of its
``clusterRoleSelectors``, taken in name order, without duplicates, written back through the
API (so the role's ``resourceVersion`` moves and watchers see it).

Why in the API server rather than in labctl's controller manager: the default roles
``admin``, ``edit`` and ``view`` are empty until aggregated, and a lab's API server runs
alone at first (during ``labctl up`` before the controllers start, and in every test that
starts only an API server); aggregating where the roles are stored makes them complete from
the first request and keeps "I labelled a role, can the student use it now?" free of a
controller's delay. It is the same kind of simplification as the namespace and
ServiceAccount controllers' small jobs this server already does (docs/architecture.md).
The authorizer runs it whenever a ClusterRole changes (:mod:`.authorizer`).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from labctl.apiserver import errors
from labctl.apiserver.scope import RequestScope
from labctl.kube.labels import SelectorError, selector_from_label_selector
from labctl.kube.resources import RBAC_GROUP

from .rbac import CLUSTER_ROLES

if TYPE_CHECKING:
    from labctl.apiserver.rest import RestAPI

log = logging.getLogger("labctl.apiserver.rbac")


def aggregated_rules(role: dict[str, Any], roles: list[dict[str, Any]]) -> list[Any] | None:
    """The rules ``role`` aggregates from ``roles``, or None when it has no (usable) aggregationRule."""
    rule = role.get("aggregationRule")
    selectors = rule.get("clusterRoleSelectors") if isinstance(rule, dict) else None
    if not isinstance(selectors, list):
        return None
    name = role["metadata"]["name"]
    out: list[Any] = []
    for selector_obj in selectors:
        try:
            selector = selector_from_label_selector(selector_obj if isinstance(selector_obj, dict) else None)
        except SelectorError as err:
            log.warning("clusterrole %s: invalid aggregation selector %s: %s", name, selector_obj, err)
            continue
        for other in roles:  # the store lists them in name order
            if other["metadata"]["name"] == name or not selector.matches(other["metadata"].get("labels") or {}):
                continue
            for r in other.get("rules") or []:
                if r not in out:
                    out.append(r)
    return out


def aggregate(api: RestAPI) -> int:
    """Bring every aggregated ClusterRole up to date; returns how many were rewritten.

    Aggregated roles may themselves be aggregated (``view`` → ``edit`` → ``admin``), so the
    pass repeats until nothing changes (bounded by the number of aggregated roles).
    """
    rt = api.registry.lookup(RBAC_GROUP, "v1", "clusterroles")
    assert rt is not None
    written = 0
    for _ in range(len(api.store.list(CLUSTER_ROLES)) + 1):
        changed = 0
        roles = api.store.list(CLUSTER_ROLES)
        for role in roles:
            rules = aggregated_rules(role, roles)
            if rules is None or rules == (role.get("rules") or []):
                continue
            try:
                api.update(RequestScope(rt, None, role["metadata"]["name"]), {**role, "rules": rules})
            except errors.APIError as err:
                log.warning("failed to aggregate clusterrole %s: %s", role["metadata"]["name"], err)
                continue
            changed += 1
            roles = api.store.list(CLUSTER_ROLES)
        written += changed
        if not changed:
            break
    return written
