"""Record a running lab for :mod:`labctl.tui.recorded` to replay::

    python -m labctl.tui.recorder --name LAB [--traffic NAMESPACE/SERVICE --seconds 20] OUT.json

Lists the objects, then keeps the watch events (and a traffic run's answers) for the seconds
asked, then reads each node's network, node health, the exercise's grade and the pods' logs.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from ..client.rest import APIStatusError, resource_path
from ..client.streams import read_log
from ..cluster import Lab
from ..errors import LabctlError
from .recorded import RECORDING_VERSION
from .state import KINDS
from .traffic import TrafficPlan, service_targets

__all__ = ["record"]


async def record(lab: Lab, traffic: TrafficPlan | None = None, seconds: float = 0.0) -> dict[str, Any]:
    """Everything a recording holds, read from ``lab``: the objects, then ``seconds`` of watch events
    (and of ``traffic``'s answers, when given), then the network, node health, the exercise, logs."""
    from ..client.informer import FuncHandler, Informer
    from ..exercises import session
    from ..exercises.grader import grade
    from ..exercises.results import to_json
    from ..exercises.traffic import get
    from ..inspect import snapshot
    from ..inspect.gather import SNAPSHOT_SCRIPT, split_sections
    from .live import node_health
    from .pump import pump

    async with lab.api() as api:
        pending: list[list[Any]] = []

        def handler(kind: str) -> FuncHandler:
            return FuncHandler(on_add=lambda o: pending.append([kind, "ADDED", _slim(o)]),
                               on_update=lambda old, new: pending.append([kind, "MODIFIED", _slim(new)]),
                               on_delete=lambda o: pending.append([kind, "DELETED", _slim(o)]))

        informers = [Informer(api, kind, [handler(kind)]) for kind in KINDS]
        runs = [asyncio.create_task(i.run()) for i in informers]
        await asyncio.wait_for(asyncio.gather(*(i.synced.wait() for i in informers)), 60)
        objects = {kind: [_slim(o) for o in i.list()] for kind, i in zip(KINDS, informers, strict=True)}
        pending.clear()
        timeline: list[list[list[Any]]] = []
        samples: list[dict[str, Any]] = []
        stopping = asyncio.Event()
        asyncio.get_running_loop().call_later(seconds, stopping.set)
        sending = asyncio.create_task(pump(get, [(t.host, t.port) for t in traffic.targets], lambda: traffic.rate,
                                           samples.append, stopping, traffic.path)) if traffic else None
        while not stopping.is_set():
            await asyncio.sleep(0.1)
            if pending:
                timeline.append(list(pending))
                pending.clear()
        if sending is not None:
            await sending
        for run in runs:
            run.cancel()
        logs = {}
        for pod in informers[list(KINDS).index("pods")].list():  # the pods at the end
            meta = pod["metadata"]
            if (pod.get("status") or {}).get("phase") == "Running":
                try:
                    chunks = [c async for c in read_log(api, meta["namespace"], meta["name"], tail_lines=20)]
                except APIStatusError:
                    continue  # gone since
                logs[f"{meta['namespace']}/{meta['name']}"] = b"".join(chunks).decode(errors="replace")
    at = time.time()
    network = await snapshot(lab)
    nodes = []
    for info in lab.nodes():
        if info.state == "running":
            result = await lab.node(info.name).exec(["bash", "-c", SNAPSHOT_SCRIPT, "labctl-inspect"])
            nodes.append({"info": dataclasses.asdict(info), "sections": split_sections(result.stdout.decode())})
    cpu: dict[str, tuple[int, int]] = {}
    node_health(lab, cpu)  # a first sample, so the second has a CPU figure
    await asyncio.sleep(1)
    health = {name: {"state": h.state, "cpuPercent": h.cpu_percent, "memoryBytes": h.memory_bytes}
              for name, h in node_health(lab, cpu).items()}
    exercise = None
    try:
        store, current = session.active(lab)
    except LabctlError:
        pass
    else:
        graded = await grade(lab, store, current.exercise, current.state)
        exercise = {"id": current.exercise.id, "parameters": current.state.parameters,
                    "hints": current.state.hints, "grade": to_json(graded)}
    return {"apiVersion": RECORDING_VERSION, "lab": lab.name, "clock": at, "objects": objects,
            "timeline": timeline,
            "network": {"nodes": nodes, "gateway": network.gateway,
                        "portMappings": [dataclasses.asdict(m) for m in network.port_mappings],
                        "sandboxes": [{"containerId": p.sandbox, "namespace": p.namespace, "name": p.name,
                                       "uid": p.uid} for p in network.pods]},
            "health": health, "exercise": exercise,
            "traffic": {"plan": dataclasses.asdict(traffic), "samples": samples} if traffic else None,
            "logs": logs}


def _slim(obj: dict[str, Any]) -> dict[str, Any]:
    """An object without ``managedFields`` (nothing the views show, most of a recording's size)."""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "managedFields"}
    return {**obj, "metadata": meta}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m labctl.tui.recorder", description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--name", help="the lab (default: lab, or the only one)")
    parser.add_argument("--traffic", metavar="NAMESPACE/SERVICE", help="send requests to its NodePort first")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=10)
    args = parser.parse_args(argv)
    with Lab.open(args.name) as lab:
        plan = None
        if args.traffic:
            plan = asyncio.run(_nodeport_plan(lab, args.traffic, args.rate))
        data = asyncio.run(record(lab, plan, args.seconds))
    args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return 0


async def _nodeport_plan(lab: Lab, service: str, rate: int) -> TrafficPlan:
    namespace, _, name = service.rpartition("/")
    async with lab.api() as api:
        svc = await api.get(resource_path("services", namespace or "default", name))
        nodes = (await api.get(resource_path("nodes")))["items"]
    targets = tuple(t for t in service_targets(svc, nodes) if t.kind == "NodePort")
    if not targets:
        raise LabctlError(f"Service {service} has no NodePort")
    return TrafficPlan(targets, "host", rate)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
