"""``python -m labctl.agent``: the node agent process of a lab node."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from ..client.rest import APIClient, Credentials, resource_path
from ..clusterconfig import NODE_CONFIG_PATH as CONFIG_PATH
from ..clusterconfig import NodeConfig
from ..cni.pyroute2_lazy import defer_package_init
from .heartbeat import NodeStatusReporter, register_node, renew_lease, renew_lease_forever

log = logging.getLogger("labctl.agent")


async def run(cfg: NodeConfig) -> None:
    client = APIClient(Credentials.from_kubeconfig(Path(cfg.kubeconfig)))
    try:
        while not await client.healthy():
            log.info("waiting for the API server")
            await asyncio.sleep(0.2)
        while True:
            try:
                await register_node(client, cfg)
                break
            except Exception as err:
                log.warning("failed to register node %s: %s; retrying", cfg.node_name, err)
                await asyncio.sleep(1)
        # the first heartbeat right away: the node lifecycle controller watches Leases
        try:
            await renew_lease(client, cfg, resource_path("leases", "kube-node-lease"))
        except Exception as err:  # the renewal loop below keeps trying
            log.warning("failed to create the lease of node %s: %s", cfg.node_name, err)
        # imported only now: they pull in Docker's SDK, pyroute2 and the proxy (about a second
        # of CPU per node), which would otherwise delay every node's registration at `labctl up`
        from ..netpol import PolicyEnforcer
        from .kubelet import Kubelet
        from .netpolicy import run_policy_enforcer
        from .serviceproxy import run_service_proxy

        enforcer = PolicyEnforcer(cfg.node_name)
        await asyncio.gather(renew_lease_forever(client, cfg), NodeStatusReporter(client, cfg).run(),
                             Kubelet(client, cfg, policies_exist=enforcer.has_policies).run(),
                             run_service_proxy(client, cfg), run_policy_enforcer(client, cfg, enforcer))
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m labctl.agent", description="labctl node agent (kubelet, proxy, network policies)")
    p.add_argument("--config", type=Path, default=CONFIG_PATH)
    p.add_argument("-v", "--verbose", action="count", default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    cfg = NodeConfig.load(args.config)
    defer_package_init()  # before the kubelet's and the proxy's imports (in run) reach pyroute2
    try:
        asyncio.run(run(cfg))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
