"""``python -m labctl.controllers``: the controller manager and scheduler of the control plane.

One process runs every controller over shared informers, like kube-controller-manager
(and kube-scheduler) do; each controller is its own module under ``labctl/controllers``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from ..client.rest import APIClient, Credentials
from ..clusterconfig import NODE_CONFIG_PATH as CONFIG_PATH
from ..clusterconfig import ClusterConfig, NodeConfig
from .base import Controller
from .context import ControllerContext
from .cronjob import CronJobController
from .daemonset import DaemonSetController
from .deployment import DeploymentController
from .disruption import DisruptionController
from .endpoints import EndpointsController
from .endpointslice import EndpointSliceController
from .garbagecollector import GarbageCollector
from .horizontal import HorizontalController
from .job import JobController
from .loadbalancer import LoadBalancerController
from .nodelifecycle import NodeLifecycleController
from .persistentvolume import PersistentVolumeController
from .replicaset import ReplicaSetController
from .rootcacert import RootCACertPublisher
from .scheduler import Scheduler
from .statefulset import StatefulSetController

log = logging.getLogger("labctl.controllers")


def build_controllers(ctx: ControllerContext) -> list[Controller]:
    """Every controller the lab runs, in start order."""
    return [
        Scheduler(ctx),                  # kube-scheduler: binds pending pods to nodes
        ReplicaSetController(ctx),       # keeps `replicas` pods per ReplicaSet
        DeploymentController(ctx),       # rollouts through ReplicaSets
        JobController(ctx),              # pods run to completion; TTL after finished
        CronJobController(ctx),          # a Job at each time of a schedule
        DaemonSetController(ctx),        # one pod per eligible node
        StatefulSetController(ctx),      # pods with stable names and claims, in order
        GarbageCollector(ctx),           # ownerReferences: cascading and orphaning deletes
        NodeLifecycleController(ctx),    # Leases → Ready/NotReady, unreachable taints, evictions
        EndpointsController(ctx),        # Services + Ready pods → Endpoints
        EndpointSliceController(ctx),    # the same as EndpointSlices (kubectl describe svc reads them)
        LoadBalancerController(ctx),     # LoadBalancer Services get an IP from the lab network
        DisruptionController(ctx),       # PodDisruptionBudgets' status, which pods/eviction reads
        PersistentVolumeController(ctx),  # claims bound to (local-path provisioned) volumes, reclaimed on delete
        HorizontalController(ctx),       # HPAs: targets' replicas follow their pods' usage (metrics.k8s.io)
        RootCACertPublisher(ctx),        # kube-root-ca.crt in every namespace
    ]


async def run(kubeconfig: Path, cluster: ClusterConfig) -> None:
    while not kubeconfig.exists():  # the API server writes it when it first starts
        await asyncio.sleep(0.2)
    client = APIClient(Credentials.from_kubeconfig(kubeconfig))
    try:
        while not await client.healthy():
            await asyncio.sleep(0.2)
        ctx = ControllerContext(client, cluster)
        controllers = build_controllers(ctx)
        informers = asyncio.create_task(ctx.run_informers())
        await ctx.wait_for_sync()
        log.info("caches synced; starting %s", ", ".join(c.name for c in controllers) or "no controllers")
        await asyncio.gather(informers, *(c.run() for c in controllers))
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m labctl.controllers", description=__doc__)
    p.add_argument("--kubeconfig", type=Path, required=True)
    p.add_argument("--config", type=Path, default=CONFIG_PATH, help="node.json with the cluster's timings")
    p.add_argument("-v", "--verbose", action="count", default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        asyncio.run(run(args.kubeconfig, NodeConfig.load(args.config).cluster))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
