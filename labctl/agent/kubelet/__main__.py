"""``python -m labctl.agent.kubelet``: the kubelet role alone (debugging, tests).

The node agent normally runs the kubelet itself; this entry point exits at once when
a kubelet already runs on the node (see :mod:`.lock`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from pathlib import Path

from ...client.rest import APIClient, Credentials
from ...clusterconfig import NODE_CONFIG_PATH as CONFIG_PATH
from ...clusterconfig import NodeConfig
from . import lock
from .kubelet import Kubelet


async def run(cfg: NodeConfig) -> None:
    client = APIClient(Credentials.from_kubeconfig(Path(cfg.kubeconfig)))
    try:
        while not await client.healthy():
            await asyncio.sleep(0.2)
        await Kubelet(client, cfg, node_lock=False).run()
    finally:
        await client.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m labctl.agent.kubelet", description="labctl kubelet role alone")
    p.add_argument("--config", type=Path, default=CONFIG_PATH)
    p.add_argument("-v", "--verbose", action="count", default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        fd = lock.acquire(wait=False)
    except lock.NodeLockHeld as err:
        print(f"kubelet: {err}; not starting a second one", file=sys.stderr)
        return 0
    try:
        asyncio.run(run(NodeConfig.load(args.config)))
    except KeyboardInterrupt:
        pass
    finally:
        os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
