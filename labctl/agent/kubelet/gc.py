"""Garbage collection of pod containers (and volumes) whose pod is gone.

Docker labels are the kubelet's memory: every container it made carries the node and
the pod uid. A container whose uid is not among the pods bound to this node (deleted
while the agent was down, force-deleted, rescheduled, or left by a node restart) is
stopped, its network released (CNI DEL frees the IP even without a namespace) and
removed. Runs once the pod informer has synced, then periodically.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from ...kube.containers import POD_UID_LABEL
from .context import KubeletContext
from .mounter import remove_pod_volumes
from .teardown import kill_pod

log = logging.getLogger("labctl.kubelet")
#: Seconds between collections; pod deletions are handled at once, this catches leftovers.
GC_PERIOD_S = 30.0
ORPHAN_GRACE_S = 2


async def remove_orphans(ctx: KubeletContext, known_uids: Callable[[], set[str]]) -> int:
    """Remove the containers of every pod uid on this node that ``known_uids()`` does not list.

    ``known_uids`` is called *after* listing the containers: a pod's containers are only
    created once the pod is known, so a pod that arrives meanwhile is never collected.
    """
    summaries = await ctx.blocking(ctx.runtime.list_node_containers)
    uids = {(s.get("Labels") or {}).get(POD_UID_LABEL, "") for s in summaries}
    uids |= await ctx.blocking(ctx.runtime.volume_pod_uids) | await ctx.blocking(ctx.volumes.pod_uids)
    orphan_uids = uids - known_uids() - {""}
    for uid in sorted(orphan_uids):
        records = await ctx.blocking(ctx.runtime.list_pod, uid)
        log.info("removing %d container(s) and the volumes of pod %s, which is no longer bound to this node",
                 len(records), uid)
        try:
            await kill_pod(ctx, records, ORPHAN_GRACE_S)
            await remove_pod_volumes(ctx, uid)
        except Exception as err:
            log.warning("failed to remove the containers of pod %s: %s", uid, err)
    return len(orphan_uids)
