"""``python -m labctl.apiserver``: run the API server as a process (what the control-plane node runs)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from aiohttp import web

from ..clusterconfig import ClusterConfig, NodeConfig
from ..kubeconfig import build_kubeconfig, write_kubeconfig
from ..pki import CertKey, ensure_cluster_pki
from .connections import ConnectionGuard, ConnectionLimits, GuardedSite
from .history import Retention
from .rest import RestAPI
from .server import APIServerApp, load_token_file, make_ssl_context
from .serviceaccounts import MIN_EXPIRATION_SECONDS, ServiceAccountTokens, ensure_signing_key
from .storage import SQLiteStore, compact_periodically

log = logging.getLogger("labctl.apiserver")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m labctl.apiserver",
                                description="labctl's Kubernetes API server (SQLite-backed, HTTPS).")
    p.add_argument("--data-dir", required=True, type=Path,
                   help="state directory: store.db, pki/ and admin.kubeconfig live here")
    p.add_argument("--listen", default="127.0.0.1:6443",
                   help="address:port to serve HTTPS on (port 0 picks a free port) [%(default)s]")
    p.add_argument("--advertise-address", default=None,
                   help="IP other nodes and the 'kubernetes' Service use to reach this server "
                        "(default: the listen address)")
    p.add_argument("--external-url", default=None,
                   help="server URL written into admin.kubeconfig (default: https://<listen address>)")
    p.add_argument("--config", type=Path, default=None,
                   help="the node's node.json, for the cluster's settings: name, service subnet, NodePort range "
                        "(default: labctl's defaults, for a standalone server)")
    p.add_argument("--tls-san", action="append", default=[], help="extra IP or DNS name for the serving certificate")
    p.add_argument("--token-auth-file", type=Path, default=None,
                   help="static bearer tokens: lines of token,user,uid,\"group1,group2\"")
    p.add_argument("--service-account-min-token-seconds", type=int, default=MIN_EXPIRATION_SECONDS, metavar="SECONDS",
                   help="for tests only: the shortest TokenRequest accepted (kube: 600) [%(default)s]")
    p.add_argument("--fsync", action="store_true",
                   help="fsync every commit (survives power loss, slower); default survives process restarts")
    history, limits = Retention(), ConnectionLimits()
    p.add_argument("--history-max-age", type=float, default=history.max_age, metavar="SECONDS",
                   help="watch history kept for resuming watches; older versions get 410 Expired [%(default)s]")
    p.add_argument("--history-max-events", type=int, default=history.max_events,
                   help="at most this many events in the watch history [%(default)s]")
    p.add_argument("--history-max-bytes", type=int, default=history.max_bytes,
                   help="at most this many bytes of events in the watch history [%(default)s]")
    p.add_argument("--compaction-interval", type=float, default=60.0, metavar="SECONDS",
                   help="how often old history is dropped and the database vacuumed [%(default)s]")
    p.add_argument("--tls-handshake-timeout", type=float, default=limits.handshake_timeout, metavar="SECONDS",
                   help="close a connection whose TLS handshake takes longer [%(default)s]")
    p.add_argument("--request-header-timeout", type=float, default=limits.header_timeout, metavar="SECONDS",
                   help="close a connection whose request headers take longer [%(default)s]")
    p.add_argument("--idle-timeout", type=float, default=limits.idle_timeout, metavar="SECONDS",
                   help="close a keep-alive connection idle this long [%(default)s]")
    p.add_argument("--max-unauthenticated-connections", type=int, default=limits.max_unauthenticated,
                   help="unauthenticated connections waiting at once; the oldest is closed for a new one [%(default)s]")
    p.add_argument("-v", "--verbose", action="count", default=0)
    return p.parse_args(argv)


async def serve(args: argparse.Namespace) -> None:
    host, _, port = args.listen.rpartition(":")
    data_dir: Path = args.data_dir
    pki_dir = data_dir / "pki"
    sans = [s for s in args.tls_san]
    ips = tuple(s for s in [*sans, host, args.advertise_address or ""] if s and s[0].isdigit() and s != "0.0.0.0")
    names = tuple(s for s in sans if s and not s[0].isdigit())
    cluster = NodeConfig.load(args.config).cluster if args.config else ClusterConfig()
    ensure_cluster_pki(pki_dir, cluster, ip_addresses=ips, dns_names=names)

    retention = Retention(args.history_max_age, args.history_max_events, args.history_max_bytes)
    store = SQLiteStore(data_dir / "store.db", retention, fsync=args.fsync)
    api = RestAPI(store, cluster=cluster)
    tokens = load_token_file(args.token_auth_file) if args.token_auth_file else {}
    service_accounts = ServiceAccountTokens(ensure_signing_key(pki_dir), store,
                                            min_expiration_seconds=args.service_account_min_token_seconds)
    app = APIServerApp(api, tokens, service_accounts=service_accounts).make_app()
    guard = ConnectionGuard(ConnectionLimits(args.tls_handshake_timeout, args.request_header_timeout,
                                             args.idle_timeout, args.max_unauthenticated_connections))
    guard.install(app)
    # the site builds each connection's handler itself (GuardedRequestHandler, no access log)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = GuardedSite(runner, guard, host or "0.0.0.0", int(port), make_ssl_context(pki_dir))
    await site.start()
    compaction = asyncio.create_task(compact_periodically(store, args.compaction_interval))
    bound_port = runner.addresses[0][1]
    advertise = args.advertise_address or (host if host not in ("", "0.0.0.0") else "127.0.0.1")
    api.bootstrap(advertise, bound_port)

    url = args.external_url or f"https://{host if host not in ('', '0.0.0.0') else '127.0.0.1'}:{bound_port}"
    admin = CertKey.read(pki_dir, "admin")
    ca = (pki_dir / "ca.crt").read_bytes()
    write_kubeconfig(data_dir / "admin.kubeconfig", build_kubeconfig(cluster.name, url, ca, admin.cert, admin.key))
    log.info("serving the Kubernetes API on %s (state in %s)", url, data_dir)
    print(f"labctl-apiserver ready on {url}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    compaction.cancel()
    store.close()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # large request bodies are decoded in worker threads: a short switch interval hands the
    # interpreter lock back to the event loop sooner, so other requests keep flowing meanwhile
    sys.setswitchinterval(0.0005)
    logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        asyncio.run(serve(args))
    except OSError as err:
        print(f"ERROR: failed to serve on {args.listen}: {err.strerror or err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
