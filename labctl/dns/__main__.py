"""``python -m labctl.dns``: the cluster DNS server that backs the kube-dns Service.

In a pod (the kube-dns Deployment) it authenticates with its service account, like
CoreDNS does; outside one, ``--kubeconfig`` points it at any API server. Names outside
the cluster zone go to ``--upstream`` (repeatable, or ``LABCTL_DNS_UPSTREAM=a,b``), else
to the nameservers of ``--resolv-conf`` — the node's, because the Deployment runs with
``dnsPolicy: Default``.

It prints ``labctl-dns ready on <host>:<port>`` once the Service, Endpoints and
Namespace caches are filled; ``/health`` and ``/ready`` on ``--health-listen`` say the
same to the kubelet. ``/ready`` turns 503 again (and the server logs why) while the API
server refuses its watches — an expired or revoked token — so the pod leaves the kube-dns
endpoints instead of answering from a cache that no longer follows the cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from ..client.incluster import InClusterConfigError, in_cluster_credentials
from ..client.informer import FuncHandler, Informer
from ..client.rest import APIClient, Credentials
from .records import DEFAULT_TTL, DEFAULT_ZONE, ClusterZone
from .server import DNSServer, Forwarder, Upstream, parse_hostport, upstreams_from_resolv_conf

log = logging.getLogger("labctl.dns")
READY_PREFIX = "labctl-dns ready on "


@dataclass
class DNSOptions:
    listen: tuple[str, int] = ("0.0.0.0", 53)
    kubeconfig: Path | None = None
    upstreams: list[Upstream] = field(default_factory=list)
    resolv_conf: Path = Path("/etc/resolv.conf")
    zone: str = DEFAULT_ZONE
    ttl: int = DEFAULT_TTL
    dns_ip: str | None = None
    health_listen: tuple[str, int] | None = ("0.0.0.0", 8080)


def parse_options(argv: list[str] | None, env: dict[str, str]) -> DNSOptions:
    p = argparse.ArgumentParser(prog="python -m labctl.dns", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen", default="0.0.0.0:53", help="UDP and TCP address (port 0: any free port)")
    p.add_argument("--kubeconfig", type=Path, help="use this kubeconfig instead of the in-cluster service account")
    p.add_argument("--upstream", action="append", default=[], help="resolver for other names, HOST[:PORT]")
    p.add_argument("--resolv-conf", type=Path, default=Path("/etc/resolv.conf"))
    p.add_argument("--zone", default=DEFAULT_ZONE)
    p.add_argument("--ttl", type=int, default=DEFAULT_TTL, help="TTL of cluster records (seconds, 5..3600)")
    p.add_argument("--dns-ip", default=env.get("LABCTL_DNS_IP"),
                   help="the kube-dns Service IP, served as ns.dns.<zone> (default: KUBE_DNS_SERVICE_HOST)")
    p.add_argument("--health-listen", default="0.0.0.0:8080", help="HTTP /health and /ready; '' disables")
    p.add_argument("-v", "--verbose", action="count", default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    upstream_texts = args.upstream or [u for u in env.get("LABCTL_DNS_UPSTREAM", "").split(",") if u.strip()]
    return DNSOptions(
        listen=parse_hostport(args.listen, 53), kubeconfig=args.kubeconfig,
        upstreams=[Upstream(*parse_hostport(u, 53)) for u in upstream_texts], resolv_conf=args.resolv_conf,
        zone=args.zone, ttl=min(max(args.ttl, 0), 3600),
        dns_ip=args.dns_ip or env.get("KUBE_DNS_SERVICE_HOST"),  # the kubelet's service env for kube-dns
        health_listen=parse_hostport(args.health_listen, 8080) if args.health_listen else None)


def load_credentials(opts: DNSOptions) -> Credentials:
    if opts.kubeconfig is not None:
        return Credentials.from_kubeconfig(opts.kubeconfig)
    return in_cluster_credentials()


class Readiness:
    """Ready = every cache listed and none of their watches refused by the API server.

    CoreDNS's ``ready`` only waits for the first list; a kube-dns whose token expired
    would then stay Ready while every Service created later is unknown to it. Each change
    of the verdict is logged once.
    """

    def __init__(self, informers: list[Informer]) -> None:
        self.informers = informers
        self._last = "caches not synced"

    def why_not(self) -> str:
        """'' when ready, else the reason (the /ready answer's body)."""
        if not all(i.synced.is_set() for i in self.informers):
            reason = "caches not synced"
        else:
            refused = [i for i in self.informers if i.refused]
            reason = "; ".join(f"watch of {i.plural} failed: {i.last_error}" for i in refused)
        if reason != self._last:
            if reason:
                log.warning("not ready: %s", reason)
            else:
                log.info("ready: the caches follow the API server")
            self._last = reason
        return reason


async def start_health(listen: tuple[str, int], readiness: Readiness) -> web.AppRunner:
    """CoreDNS's ``health`` (alive) and ``ready`` endpoints, on one port."""
    async def health(_: web.Request) -> web.Response:
        return web.Response(text="OK")

    async def ready(_: web.Request) -> web.Response:
        why_not = readiness.why_not()
        return web.Response(status=503, text=why_not) if why_not else web.Response(text="OK")

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/ready", ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, *listen).start()
    return runner


async def serve(opts: DNSOptions, stop: asyncio.Event) -> None:
    upstreams = opts.upstreams or (upstreams_from_resolv_conf(opts.resolv_conf) if opts.resolv_conf.exists() else [])
    if not upstreams:
        log.warning("no upstream resolver: names outside %s will get SERVFAIL", opts.zone)
    client = APIClient(load_credentials(opts))
    services, endpoints, namespaces = (Informer(client, plural) for plural in ("services", "endpoints", "namespaces"))
    zone = ClusterZone(services.cache, endpoints.cache, namespaces.cache, zone=opts.zone, ttl=opts.ttl,
                       dns_ip=opts.dns_ip)
    changed = FuncHandler(on_add=lambda _: zone.invalidate(), on_update=lambda _o, _n: zone.invalidate(),
                          on_delete=lambda _: zone.invalidate())
    for informer in (services, endpoints, namespaces):
        informer.add_handler(changed)
    synced = asyncio.Event()
    server = DNSServer(zone, Forwarder(upstreams), ready=synced.is_set)
    readiness = Readiness([services, endpoints, namespaces])
    # the lists go out first: their round trips to the API server overlap the health server's set-up
    tasks = [asyncio.create_task(i.run()) for i in (services, endpoints, namespaces)]
    health = None
    try:
        health = await start_health(opts.health_listen, readiness) if opts.health_listen else None
        port = await server.listen(*opts.listen)
        log.info("listening on %s:%d (udp+tcp), zone %s, upstreams %s", opts.listen[0], port, opts.zone,
                 ", ".join(map(str, upstreams)) or "none")
        await asyncio.gather(services.synced.wait(), endpoints.synced.wait(), namespaces.synced.wait())
        synced.set()
        print(f"{READY_PREFIX}{opts.listen[0]}:{port}", flush=True)
        await stop.wait()
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if health:
            await health.cleanup()
        await client.close()


async def run(opts: DNSOptions) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # as PID 1 in a container, SIGTERM has no default action
        loop.add_signal_handler(sig, stop.set)
    await serve(opts, stop)


def main(argv: list[str] | None = None) -> int:
    opts = parse_options(argv, dict(os.environ))
    try:
        asyncio.run(run(opts))
    except (InClusterConfigError, OSError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
