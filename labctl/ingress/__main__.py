"""``python -m labctl.ingress``: nginx and the controller that configures it, in one container.

As in ingress-nginx, the controller is the container's main process and nginx its child: once
the caches are synced it writes the first ``nginx.conf`` and starts ``nginx -g 'daemon off;'``
(its access log is the container's stdout: ``kubectl logs`` shows every request), then reloads
it on every change. SIGTERM stops nginx gracefully (SIGQUIT: requests in flight finish). If
nginx dies, the controller exits and the kubelet restarts the container.

In a pod it authenticates with its service account; ``--kubeconfig`` runs it anywhere.
``POD_NAME``, ``POD_NAMESPACE`` and ``NODE_IP`` come from the downward API.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from labctl.client.incluster import InClusterConfigError, in_cluster_credentials
from labctl.client.rest import APIClient, Credentials

from .controller import ControllerOptions, IngressController

log = logging.getLogger("labctl.ingress")


def parse_options(argv: list[str] | None, env: dict[str, str]) -> tuple[ControllerOptions, Path | None]:
    p = argparse.ArgumentParser(prog="python -m labctl.ingress", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ingress-class", default="nginx", help="the IngressClass served (default: nginx)")
    p.add_argument("--conf", type=Path, default=ControllerOptions.conf, help="where nginx.conf is written")
    p.add_argument("--nginx", default="nginx", help="the nginx binary")
    p.add_argument("--publish-ip", default=env.get("NODE_IP", ""),
                   help="the address written to the Ingresses' status (default: $NODE_IP)")
    p.add_argument("--kubeconfig", type=Path, help="use this kubeconfig instead of the in-cluster service account")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    return ControllerOptions(class_name=args.ingress_class, conf=args.conf, nginx=args.nginx,
                             publish_ip=args.publish_ip), args.kubeconfig


async def run(opts: ControllerOptions, credentials: Credentials) -> int:
    stop, started = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):  # as PID 1 in a container, SIGTERM has no default action
        loop.add_signal_handler(sig, stop.set)
    async with APIClient(credentials) as client:
        controller = IngressController(client, opts)
        loop_task = asyncio.create_task(controller.run(started, stop))
        await asyncio.wait({loop_task, asyncio.create_task(started.wait())}, return_when=asyncio.FIRST_COMPLETED)
        if not started.is_set():
            await loop_task  # stopped before the caches synced, or raises what stopped it
            return 0
        nginx = await asyncio.create_subprocess_exec(opts.nginx, "-c", str(opts.conf), "-g", "daemon off;")
        log.info("nginx started (pid %d) with %s, class %s", nginx.pid, opts.conf, opts.class_name)
        exited = asyncio.create_task(nginx.wait())
        await asyncio.wait({exited, loop_task, asyncio.create_task(stop.wait())},
                           return_when=asyncio.FIRST_COMPLETED)
        failed = not stop.is_set()  # nginx or the controller ended on its own
        stop.set()
        if not exited.done():
            nginx.send_signal(signal.SIGQUIT)  # graceful: the workers finish the requests they hold
            await exited
        results = await asyncio.gather(loop_task, return_exceptions=True)
        if failed:
            log.error("stopping: nginx exited with %s, controller %s", nginx.returncode, results[0])
            return 1
        return 0


def main(argv: list[str] | None = None) -> int:
    opts, kubeconfig = parse_options(argv, dict(os.environ))
    try:
        credentials = Credentials.from_kubeconfig(kubeconfig) if kubeconfig else in_cluster_credentials()
        return asyncio.run(run(opts, credentials))
    except (InClusterConfigError, OSError) as err:
        print(f"ERROR: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
