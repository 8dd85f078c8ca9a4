"""Node registration and heartbeats: the Node object and its Lease in ``kube-node-lease``.

Like the kubelet, the agent registers its Node once (or updates it after a restart),
renews a Lease every ``lease_renew_seconds`` as the cheap liveness signal the node
lifecycle controller watches, and refreshes the Ready condition less often.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

from ..client.rest import APIClient, APIStatusError, resource_path
from ..clusterconfig import NodeConfig
from .node_status import build_lease, build_node, ready_conditions
from ..kube.meta import timestamp

log = logging.getLogger("labctl.agent")


def micro_now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def register_node(client: APIClient, cfg: NodeConfig) -> dict:
    """Create the Node, or bring an existing one (after a restart) up to date."""
    node = build_node(cfg)
    path = resource_path("nodes")
    try:
        created = await client.create(path, node)
        log.info("registered node %s (InternalIP %s, podCIDR %s)", cfg.node_name, cfg.internal_ip, cfg.pod_cidr)
        return created
    except APIStatusError as err:
        if err.code != 409:
            raise
    existing = await client.get(resource_path("nodes", name=cfg.node_name))
    existing["metadata"]["labels"] = {**existing["metadata"].get("labels", {}), **node["metadata"]["labels"]}
    existing["spec"] = {**existing.get("spec", {}), **node["spec"]}
    updated = await client.replace(resource_path("nodes", name=cfg.node_name), existing)
    await client.replace(resource_path("nodes", name=cfg.node_name, subresource="status"),
                         {**updated, "status": node["status"]})
    log.info("node %s already registered: updated it", cfg.node_name)
    return updated


async def renew_lease_forever(client: APIClient, cfg: NodeConfig) -> None:
    path = resource_path("leases", "kube-node-lease")
    while True:
        try:
            await renew_lease(client, cfg, path)
        except Exception as err:  # keep heartbeating through API server restarts
            log.warning("failed to renew lease for node %s: %s", cfg.node_name, err)
        await asyncio.sleep(cfg.cluster.lifecycle.lease_renew_seconds)


async def renew_lease(client: APIClient, cfg: NodeConfig, path: str) -> None:
    lease = build_lease(cfg, micro_now())
    try:
        await client.patch(f"{path}/{cfg.node_name}", {"spec": lease["spec"]})
    except APIStatusError as err:
        if err.code != 404:
            raise
        await client.create(path, lease)


async def post_ready_forever(client: APIClient, cfg: NodeConfig) -> None:
    """Refresh the Ready condition; also heals a node the lifecycle controller marked NotReady."""
    path = resource_path("nodes", name=cfg.node_name, subresource="status")
    while True:
        await asyncio.sleep(cfg.cluster.lifecycle.node_status_seconds)
        try:
            await client.patch(path, {"status": {"conditions": ready_conditions(timestamp())}}, "strategic")
        except Exception as err:
            log.warning("failed to update status of node %s: %s", cfg.node_name, err)
