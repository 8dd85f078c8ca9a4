"""The service proxy role of the node agent: Services + EndpointSlices informers → :class:`Proxier`.

kube-proxy's ``ProxyServer.Run`` in a few lines: two informers (Services and
``discovery.k8s.io/v1`` EndpointSlices, what kube-proxy reads) feed the proxier's
``on_*`` handlers (they only record the change), the proxier's runner thread writes the
node's iptables with one ``iptables-restore`` per burst, and nothing is written before
both initial lists are in (a restarting agent must not wipe the rules of Services it has
not listed yet). The rules library is :mod:`labctl.proxy`; ``docs/service-proxy.md``
explains the rules, ``docs/services.md`` the whole path.

``python -m labctl.agent.serviceproxy`` runs this role alone (debugging, tests).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from ..client.informer import FuncHandler, Informer
from ..client.rest import APIClient, Credentials
from ..clusterconfig import NODE_CONFIG_PATH as CONFIG_PATH
from ..clusterconfig import NodeConfig
from ..kube.objects import HEADLESS_LABEL, SERVICE_PROXY_NAME_LABEL
from ..proxy import Proxier
from .lbannounce import LBAnnouncer

log = logging.getLogger("labctl.proxy")

#: kube-proxy's informers' selector: not the slices of headless Services (nothing to proxy),
#: nor Services (and their slices) that name another proxy
PROXIED_SELECTOR = f"!{HEADLESS_LABEL},!{SERVICE_PROXY_NAME_LABEL}"


def build_proxier(cfg: NodeConfig) -> Proxier:
    """The node's proxier: NodePorts on every local address (InternalIP, 127.0.0.1, LB IPs).

    ``nodeport_addresses=None`` is kube-proxy's default (``-m addrtype --dst-type LOCAL``):
    traffic Docker DNATs from the host's published port to the node's InternalIP matches,
    and so does 127.0.0.1 (``route_localnet=1`` on every node).
    """
    return Proxier(cfg.node_name, node_ips=[cfg.internal_ip], cluster_cidr=cfg.cluster.pod_subnet,
                   watch_canaries=True)


async def run_service_proxy(client: APIClient, cfg: NodeConfig, proxier: Proxier | None = None) -> None:
    """Run the proxy and the load balancer IP announcer until cancelled.

    Both roles share one watch per resource. On the way out the runner thread stops;
    the rules stay, so an agent restart does not interrupt Services.
    """
    proxier = proxier or build_proxier(cfg)
    announcer = LBAnnouncer(cfg)
    services = Informer(client, "services", [FuncHandler(
        proxier.on_service_add, proxier.on_service_update, proxier.on_service_delete), announcer.handler],
        label_selector=PROXIED_SELECTOR)
    slices = Informer(client, "endpointslices", [FuncHandler(
        proxier.on_endpoint_slice_add, proxier.on_endpoint_slice_update, proxier.on_endpoint_slice_delete),
        announcer.handler], label_selector=PROXIED_SELECTOR)
    nodes = Informer(client, "nodes", [announcer.handler])
    tasks = [asyncio.create_task(i.run(), name=f"proxy-{i.plural}") for i in (services, slices, nodes)]
    tasks.append(asyncio.create_task(announcer.run(services, nodes, slices), name="lbannounce"))
    try:
        await asyncio.gather(services.synced.wait(), slices.synced.wait())
        proxier.start()
        proxier.on_synced()
        log.info("service proxy on %s synced: %d services, %d endpoint slices", cfg.node_name,
                 len(services.cache), len(slices.cache))
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        proxier.stop()


async def _main(cfg: NodeConfig) -> None:
    client = APIClient(Credentials.from_kubeconfig(Path(cfg.kubeconfig)))
    try:
        while not await client.healthy():
            await asyncio.sleep(0.2)
        await run_service_proxy(client, cfg)
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m labctl.agent.serviceproxy",
                                description="labctl service proxy + load balancer IP announcer alone")
    p.add_argument("--config", type=Path, default=CONFIG_PATH)
    p.add_argument("-v", "--verbose", action="count", default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        asyncio.run(_main(NodeConfig.load(args.config)))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
