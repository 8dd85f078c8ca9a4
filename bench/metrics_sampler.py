#!/usr/bin/env python3
"""What one ``metrics.k8s.io`` answer costs: Docker one-shot stats of N containers, next to one container list.

The Metrics API reads every container it reports through the host's Docker engine
(``labctl/apiserver/resourcemetrics.py``). This times the sampler's steady state (each
container already has a window start, so no second reading and no wait) over N running
containers of this host, against the floor of one ``GET /containers/json``, and prints the
load average with the figures (the machine is shared). ``--out FILE`` writes JSON.

    python bench/metrics_sampler.py --containers 20 --rounds 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

from _common import write_json

from labctl.apiserver.resourcemetrics import UsageSampler
from labctl.engine.streams import DockerEngine


async def measure(n: int, rounds: int) -> dict:
    async with DockerEngine.from_env() as engine:
        running = [c.id for c in await engine.list_containers({}) if c.state == "running"][:n]
        if not running:
            raise SystemExit("ERROR: no running container on this host to read")
        sampler = UsageSampler(engine)
        await sampler.usage(running)  # first look: two readings 1 s apart
        floor, steady = [], []
        for _ in range(rounds):
            start = time.perf_counter()
            await engine.list_containers({})
            floor.append(time.perf_counter() - start)
            start = time.perf_counter()
            figures = await sampler.usage(running)
            steady.append(time.perf_counter() - start)
        return {"containers": len(running), "read": len(figures), "rounds": rounds,
                "floor_list_ms": statistics.median(floor) * 1000, "usage_ms": statistics.median(steady) * 1000,
                "ratio_to_floor": statistics.median(steady) / statistics.median(floor),
                "load_average": os.getloadavg()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--containers", type=int, default=20)
    p.add_argument("--rounds", type=int, default=10)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    result = asyncio.run(measure(args.containers, args.rounds))
    print(f"{result['containers']} containers ({result['read']} read): usage {result['usage_ms']:.1f} ms "
          f"(median of {args.rounds}), one container list {result['floor_list_ms']:.1f} ms, "
          f"ratio {result['ratio_to_floor']:.1f}x; load {' '.join(f'{x:.1f}' for x in result['load_average'])}")
    write_json(args.out, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
