"""Node registration, the Lease and the Node's conditions: the kubelet's side of node health.

Like the kubelet, the agent registers its Node (or updates it after a restart), renews a
Lease in ``kube-node-lease`` every ``lease_renew_seconds`` — the cheap liveness signal the
node lifecycle controller watches — and owns the Node's conditions (Ready, MemoryPressure,
DiskPressure, PIDPressure): :class:`NodeStatusReporter` posts them every
``node_status_seconds`` and *at once* when its watch on its own Node shows something else
there. The node lifecycle controller only ever writes ``Unknown`` (the kubelet stopped
posting); a kubelet that comes back from a pause or a partition answers with its own view
within a watch round-trip, not a report period later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from ..client.events import EventRecorder
from ..client.informer import FuncHandler, Informer
from ..client.rest import APIClient, APIStatusError, resource_path
from ..clusterconfig import NodeConfig
from ..kube.meta import micro_timestamp, timestamp
from ..kube.objects import get_condition, node_is_ready
from .node_status import build_lease, build_node, conditions_drifted, node_conditions

log = logging.getLogger("labctl.agent")

#: First retry of a failed status report (doubling up to the report period).
REPORT_RETRY_SECONDS = 0.5


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
    conditions = node_conditions((existing.get("status") or {}).get("conditions"), timestamp())
    existing["metadata"]["labels"] = {**existing["metadata"].get("labels", {}), **node["metadata"]["labels"]}
    existing["spec"] = {**existing.get("spec", {}), **node["spec"]}
    updated = await client.replace(resource_path("nodes", name=cfg.node_name), existing)
    updated = await client.replace(resource_path("nodes", name=cfg.node_name, subresource="status"),
                                   {**updated, "status": {**node["status"], "conditions": conditions}})
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
    lease = build_lease(cfg, micro_timestamp())
    try:
        await client.patch(f"{path}/{cfg.node_name}", {"spec": lease["spec"]})
    except APIStatusError as err:
        if err.code != 404:
            raise
        await client.create(path, lease)


class NodeStatusReporter:
    """Posts the Node's conditions, as the kubelet's node status loop does.

    Every ``node_status_seconds`` (the kubelet's report frequency), and at once when the
    watch on its own Node (``fieldSelector=metadata.name=<node>``) shows a condition it owns
    saying something else — the node lifecycle controller's ``Unknown`` after this node was
    cut off (``docker pause``, a partition) — or the Node gone (``kubectl delete node``: it
    is registered again, as the kubelet does).
    """

    def __init__(self, client: APIClient, cfg: NodeConfig) -> None:
        self.client = client
        self.cfg = cfg
        self.recorder = EventRecorder(client, "kubelet", cfg.node_name)
        self.node = Informer(client, "nodes", [FuncHandler(self._seen, lambda _, new: self._seen(new), self._gone)],
                             field_selector=f"metadata.name={cfg.node_name}")
        self._due = asyncio.Event()

    def _seen(self, node: dict) -> None:
        if conditions_drifted(node):
            self._due.set()

    def _gone(self, node: dict) -> None:
        self._due.set()

    async def run(self) -> None:
        await asyncio.gather(self.node.run(), self._report_forever())

    async def _report_forever(self) -> None:
        period = self.cfg.cluster.lifecycle.node_status_seconds
        wait, retry = period, REPORT_RETRY_SECONDS
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._due.wait(), wait)
            self._due.clear()
            try:
                await self.report()
                wait, retry = period, REPORT_RETRY_SECONDS
            except Exception as err:  # keep reporting through API server restarts
                log.warning("failed to update status of node %s: %s", self.cfg.node_name, err)
                wait, retry = retry, min(retry * 2, period)

    async def report(self) -> dict:
        """Post fresh conditions (registering the Node again if it is gone); returns the Node."""
        name = self.cfg.node_name
        before = self.node.get("", name)
        conditions = node_conditions(((before or {}).get("status") or {}).get("conditions"), timestamp())
        try:
            node = await self.client.patch(resource_path("nodes", name=name, subresource="status"),
                                           {"status": {"conditions": conditions}}, "strategic")
        except APIStatusError as err:
            if err.code != 404:
                raise
            log.warning("node %s was deleted: registering it again", name)
            node, before = await register_node(self.client, self.cfg), {}
        if before is not None and not node_is_ready(before):
            was = get_condition(before, "Ready") or {}
            log.info("node %s: posted Ready=True over Ready=%s (%s)", name, was.get("status"), was.get("reason"))
            await self.recorder.record(node, "Normal", "NodeReady", f"Node {name} status is now: NodeReady")
        return node

