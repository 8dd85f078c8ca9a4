"""The network policy role of the node agent: NetworkPolicy, Pod and Namespace informers → :class:`PolicyEnforcer`.

Like the service proxy role (``serviceproxy.py``): informers feed the enforcer's handlers,
which only record the change; its runner thread writes this node's policy chains with one
``iptables-restore`` per burst, and nothing is written before all three initial lists are
in. Pods are listed cluster-wide: a policy's peers may run on any node. The rules library
is :mod:`labctl.netpol`; ``docs/networkpolicy.md`` explains the chains.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from ..client.informer import FuncHandler, Informer
from ..client.rest import APIClient
from ..clusterconfig import NodeConfig
from ..netpol import PolicyEnforcer

log = logging.getLogger("labctl.netpol")


def _handler(record: Callable[[dict | None, dict | None], None]) -> FuncHandler:
    """Informer events as ``record(old, new)``: an add has no old object, a delete no new one."""
    return FuncHandler(lambda obj: record(None, obj), record, lambda obj: record(obj, None))


async def run_policy_enforcer(client: APIClient, cfg: NodeConfig, enforcer: PolicyEnforcer | None = None) -> None:
    """Enforce NetworkPolicies for this node's pods until cancelled; the rules stay on the way out."""
    enforcer = enforcer or PolicyEnforcer(cfg.node_name)
    informers = [Informer(client, "networkpolicies", [_handler(enforcer.on_policy)]),
                 Informer(client, "pods", [_handler(enforcer.on_pod)]),
                 Informer(client, "namespaces", [_handler(enforcer.on_namespace)])]
    tasks = [asyncio.create_task(i.run(), name=f"netpol-{i.plural}") for i in informers]
    try:
        await asyncio.gather(*(i.synced.wait() for i in informers))
        enforcer.start()
        enforcer.on_synced()
        log.info("network policies on %s synced: %d policies", cfg.node_name, len(informers[0].cache))
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        enforcer.stop()
