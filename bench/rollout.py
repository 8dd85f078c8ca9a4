#!/usr/bin/env python3
"""Workload controller benchmark: rollout time vs the theoretical minimum, and reaction time.

* **reaction**: a real API server process, labctl's ReplicaSet controller in-process (its
  own informers, as in the controller manager), a 10-replica ReplicaSet; a pod is deleted
  ``--deletes`` times and the time until the replacement's ADDED event is taken from a
  watch. Prints p50/p99. Then the ReplicaSet is scaled 10 → 35: the time to the 25th new pod's
  ADDED is a rollout wave's creations (``slowStartBatch`` and their Events). No Docker needed.
* **rollout** (``--lab``): ``labctl up`` a 1+2 lab (or use ``--cluster``'s); for 4, 20 and 50
  replicas (25%/25%, ``--min-ready`` seconds) time one pod's create → Ready (the median of
  three, just before the rollout: the load moves), then ``kubectl set image`` → ``kubectl
  rollout status`` done, next to the theoretical minimum (:func:`theoretical_minimum`: the
  rolling algorithm with instant controllers, each new pod Ready the single-pod start after its
  creation). A watch records the old and new Ready pods over time and each new pod's create →
  Ready; the minimum replayed with *those* starts separates the controllers' share of the
  time from the kubelet's (pods started in a wave of 10 or 25 take longer than one alone).
  Then each wave's pods straight through Docker (:func:`docker_floor_minimum`): the rollout's
  floor on this machine, against which the theoretical minimum's single-pod start is measured.

    python bench/rollout.py --lab --out bench/results/rollout.json

``--out FILE`` writes JSON::

    {"machine": str, "date": "YYYY-MM-DD",
     "theory": [{"replicas": N, "seconds": minimum with pods Ready at creation}],
     "reaction": {"samples", "p50_ms", "p99_ms", "wave_of_25_ms"},
     "rollouts": [{"replicas": N, "seconds": measured, "theoretical_min_s": minimum with the measured
                   pod start, "ratio": seconds / theoretical_min_s, "waves": int, "pod_start_s": float,
                   "rollout_pod_start_p50_s", "rollout_pod_start_max_s": the new pods' create → Ready,
                   "replayed_min_s": the minimum with those starts, "controller_ratio": seconds / replayed_min_s,
                   "docker_floor": {"seconds": the minimum with each wave's pods started straight through
                                    Docker, "waves": [pods], "concurrency", "pod_start_p50_s", "pod_start_max_s"},
                   "floor_ratio": seconds / docker_floor.seconds,
                   "first_pod_created_s": set image → the first new pod's ADDED,
                   "load": [1m, 5m, 15m],
                   "timeline": [[seconds since set image, old pods Ready, new pods Ready], …]}]}
                   (only with --lab; a timeline point per change, for a plot against the minimum)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from labctl.client.rest import APIClient, Credentials, resource_path  # noqa: E402
from labctl.cluster.kubectl import Kubectl, find_kubectl  # noqa: E402
from labctl.cluster.scratch import write_topology  # noqa: E402
from labctl.controllers import _rollout as ro  # noqa: E402
from labctl.controllers.context import ControllerContext  # noqa: E402
from labctl.controllers.replicaset import ReplicaSetController  # noqa: E402
from labctl.kube.objects import pod_is_ready  # noqa: E402
from labctl.topology import default_topology_path, load_topology  # noqa: E402
from support.apiserver import APIServerProcess  # noqa: E402
from support.lab import labctl  # noqa: E402

KUBELET = "/opt/labctl/bin/python3 -m labctl.agent.kubelet > /var/log/labctl-kubelet.log 2>&1"
OLD_IMAGE, NEW_IMAGE = "nginx:1.14.2", "nginx:1.16.1"


def theoretical_minimum(replicas: int, surge, unavailable, min_ready: float, pod_start: float | list[float] = 0.0,
                        wall_start: float | None = None, created: list[float] | None = None) -> tuple[float, int]:
    """(seconds, waves) of the fastest rollout upstream's rolling algorithm allows.

    The algorithm is :mod:`labctl.controllers._rollout` (``NewRSNewReplicas``, ``reconcileOldReplicaSets``)
    played with instant controllers, API and kubectl: at every instant the new ReplicaSet grows and
    the old one shrinks as far as they may; a new pod is Ready ``pod_start`` seconds after its
    creation (a list: the i-th pod created takes ``pod_start[i]``) and *available*
    ``min_ready`` seconds after the Ready condition's ``lastTransitionTime``; old pods go at once
    (a Terminating pod no longer counts, ``FilterActivePods``).

    ``lastTransitionTime`` is a ``metav1.Time``, RFC 3339 at second precision, so upstream
    (``IsPodAvailable``: ``lastTransitionTime + minReadySeconds`` before now) makes a pod Ready
    at wall time ``r`` available at ``floor(r) + minReadySeconds``: up to a second *early*. With
    ``wall_start`` (the ``time.time()`` of the ``kubectl set image``) the minimum plays that
    truncation at this run's own phase, so no run can honestly measure under it; without it, a
    pod is available exactly ``min_ready`` after Ready (a phase-free figure, up to a second a wave
    above what a lucky phase allows).

    The arithmetic for 25 %/25 % (maxSurge rounds up, maxUnavailable down — ``ResolveFenceposts``),
    ``s`` the pod start and ``m`` minReadySeconds:

    * 4 replicas: surge ⌈1⌉ = 1, unavailable ⌊1⌋ = 1, at most 5 pods, at least 3 available. t=0:
      new 0→1 (5 pods); old 4→3 (5 − 3 − 1 new unavailable = 1); new 1→2 (5 pods). t=s+m: the 2
      new are available: old 3→1 (5 − 3 − 0), new 2→4; old 1→0 must wait (5 − 3 − 2 = 0).
      t=2(s+m): done. **2 waves.**
    * 20 replicas: surge ⌈5⌉ = 5, unavailable ⌊5⌋ = 5, at most 25, at least 15. t=0: new 0→5,
      old 20→15, new 5→10. t=s+m: old 15→5, new 10→20. t=2(s+m): old 5→0. **2 waves.**
    * 50 replicas: surge ⌈12.5⌉ = 13, unavailable ⌊12.5⌋ = 12, at most 63, at least 38. t=0:
      new 0→13, old 50→38, new 13→25. t=s+m: old 38→13, new 25→50. t=2(s+m): old 13→0. **2 waves.**

    With surge + unavailable = 50 % every size takes two waves, so the minimum is the same
    2(s+m) for 4, 20 and 50 replicas: what grows with the size is the wave (2, 10, 25 new pods
    started at once), which the single-pod start does not price: given the starts the rollout's own
    pods took (a list), the same play is the minimum for *that* kubelet, and what the measured
    time exceeds it by is the controllers' (and kubectl's) share. ``created``, when given, gets
    each new pod's creation instant (the waves' sizes, for :func:`docker_floor_minimum`).
    """
    starts, single = (pod_start, 0.0) if isinstance(pod_start, list) else ([], float(pod_start))
    d = {"metadata": {"name": "d", "generation": 1}, "spec": {
        "replicas": replicas, "strategy": {"type": "RollingUpdate",
                                           "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}}}

    def available_at(created: float) -> float:
        ready = created + (starts[min(len(new_ready), len(starts) - 1)] if starts else single)
        if wall_start is not None:
            ready = math.floor(wall_start + ready) - wall_start
        return max(ready + min_ready, created)

    now, waves = 0.0, 0
    old_ready = [0.0] * replicas   # available-since times of the old pods
    new_ready: list[float] = []
    while True:
        def rs(name, times):
            return {"metadata": {"name": name, "creationTimestamp": "2026-01-01T00:00:0%dZ" % (name == "new")},
                    "spec": {"replicas": len(times)},
                    "status": {"replicas": len(times), "availableReplicas": sum(1 for t in times if t <= now)}}
        changed = True
        while changed:  # everything the controller can do at this instant
            changed = False
            old, new = rs("old", old_ready), rs("new", new_ready)
            target = ro.new_rs_new_replicas(d, [old, new], new)
            if target > len(new_ready):
                for _ in range(target - len(new_ready)):
                    new_ready.append(available_at(now))
                    if created is not None:
                        created.append(now)
                changed = True
                continue
            sizes = ro.old_rs_scale_down(d, rs("new", new_ready), [rs("old", old_ready)])
            if sizes:
                old_ready = sorted(old_ready)[: sizes["old"]]
                changed = True
        if not old_ready and len(new_ready) == replicas and all(t <= now for t in new_ready):
            return now, waves
        pending = [t for t in new_ready if t > now]
        now = min(pending) if pending else now
        waves += 1


def docker_floor_minimum(replicas: int, min_ready: float, wall_start: float | None, concurrency: int) -> dict:
    """The minimum with each wave's pods started straight through Docker: the floor of the rollout.

    The single-pod start prices a wave of 10 or 25 new pods as if each were alone on the machine.
    Here each wave's pods (a pause container and the new image's, as the kubelet makes them) are
    created at once through the Docker API, ``concurrency`` at a time as in ``pod_startup.py``'s
    floor, and the rolling algorithm is played with *those* starts: no kubelet, controller or API
    server can start a wave's pods faster than Docker alone on the same cores, so a goal below
    this figure is below the machine's floor (the old pods' stops are not even counted).
    """
    from pod_startup import floor_batch  # bench/ is on sys.path when this runs as a script
    created: list[float] = []
    theoretical_minimum(replicas, "25%", "25%", min_ready, 1.0, created=created)
    waves = [created.count(t) for t in sorted(set(created))]
    starts = [s for size in waves for s in floor_batch(size, concurrency, docker_image(NEW_IMAGE))["start_times_s"]]
    seconds, _ = theoretical_minimum(replicas, "25%", "25%", min_ready, starts, wall_start)
    return {"seconds": round(seconds, 2), "waves": waves, "concurrency": concurrency,
            "pod_start_p50_s": round(statistics.median(starts), 2), "pod_start_max_s": round(max(starts), 2)}


def docker_image(name: str) -> str:
    """The lab image a tutorial image name runs as (the default topology's alias)."""
    return load_topology(default_topology_path()).images.resolve(name)


class ControllerThread:
    """The ReplicaSet controller on its own loop in a thread, against a kubeconfig."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.ready = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Future | None = None

    async def _main(self) -> None:
        client = APIClient(Credentials.from_kubeconfig(self.kubeconfig))
        ctx = ControllerContext(client)
        ctrl = ReplicaSetController(ctx)
        self._loop = asyncio.get_running_loop()
        informers = asyncio.create_task(ctx.run_informers())
        await ctx.wait_for_sync()
        self.ready.set()
        self._task = asyncio.gather(informers, ctrl.run())
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        finally:
            await client.close()

    def start(self) -> None:
        self.thread.start()
        self.ready.wait(30)

    def stop(self) -> None:
        """Stop the controller before its API server goes (it would log a failed sync a second)."""
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)
            self.thread.join(10)


async def measure_reaction(kubeconfig: Path, deletes: int) -> tuple[list[float], float]:
    client = APIClient(Credentials.from_kubeconfig(kubeconfig))
    try:
        rs = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "bench"},
              "spec": {"replicas": 10, "selector": {"matchLabels": {"app": "bench"}},
                       "template": {"metadata": {"labels": {"app": "bench"}},
                                    "spec": {"containers": [{"name": "web", "image": "labctl/web:v1"}]}}}}
        await client.create(resource_path("replicasets", "default"), rs)
        path = resource_path("pods", "default")
        while len((await client.get(path, labelSelector="app=bench"))["items"]) < 10:
            await asyncio.sleep(0.1)
        samples = []
        for _ in range(deletes):
            listed = await client.get(path, labelSelector="app=bench")
            victim = listed["items"][0]["metadata"]["name"]
            seen = asyncio.get_running_loop().create_future()

            async def watch(rv: str) -> None:
                async for event in client.watch(path, rv, labelSelector="app=bench"):
                    if event["type"] == "ADDED" and not seen.done():
                        seen.set_result(time.perf_counter())
                        return

            watcher = asyncio.create_task(watch(listed["metadata"]["resourceVersion"]))
            await asyncio.sleep(0.05)
            start = time.perf_counter()
            await client.delete(resource_path("pods", "default", victim))
            samples.append(await asyncio.wait_for(seen, 10) - start)
            watcher.cancel()
        listed = await client.get(path, labelSelector="app=bench")
        start = time.perf_counter()   # a wave: the ReplicaSet scaled 10 → 35, time to the 25th pod's ADDED
        await client.patch(resource_path("replicasets", "default", "bench"), {"spec": {"replicas": 35}})
        async for event in client.watch(path, listed["metadata"]["resourceVersion"], labelSelector="app=bench"):
            if event["type"] == "ADDED" and len(listed["items"]) + 1 >= 35:
                break
            if event["type"] == "ADDED":
                listed["items"].append(event["object"])
        return samples, time.perf_counter() - start
    finally:
        await client.close()


def reaction_bench(deletes: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        server = APIServerProcess(Path(tmp))
        server.start()
        controller = ControllerThread(server.kubeconfig)
        try:
            controller.start()
            samples, wave = asyncio.run(measure_reaction(server.kubeconfig, deletes))
        finally:
            controller.stop()
            server.stop()
    samples.sort()
    return {"samples": len(samples), "p50_ms": 1000 * statistics.median(samples),
            "p99_ms": 1000 * samples[min(len(samples) - 1, int(len(samples) * 0.99))], "wave_of_25_ms": 1000 * wave}


def single_pod_start(kubeconfig: Path, samples: int = 3) -> float:
    """Seconds from create to Ready of one pod of the rollout's new image (the minimum's pod start):
    the median of ``samples`` pods created one after the other (one sample moves with the load)."""
    return statistics.median(one_pod_start(kubeconfig) for _ in range(samples))


def one_pod_start(kubeconfig: Path) -> float:
    async def go() -> float:
        client = APIClient(Credentials.from_kubeconfig(kubeconfig))
        name = f"single-{uuid.uuid4().hex[:5]}"
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": name}},
               "spec": {"terminationGracePeriodSeconds": 1,
                        "containers": [{"name": "nginx", "image": NEW_IMAGE}]}}
        path = resource_path("pods", "default")
        listed = await client.get(path)
        start = time.monotonic()
        await client.create(path, pod)
        async for event in client.watch(path, listed["metadata"]["resourceVersion"], labelSelector=f"bench={name}"):
            if event["type"] != "BOOKMARK" and pod_is_ready(event["object"]):
                took = time.monotonic() - start
                break
        await client.delete(resource_path("pods", "default", name))
        await client.close()
        return took
    return asyncio.run(go())


class Timeline(threading.Thread):
    """Old and new Ready pods of a Deployment over time (a watch in its own loop), for the plot."""

    def __init__(self, kubeconfig: Path, app: str) -> None:
        super().__init__(daemon=True)
        self.kubeconfig, self.app = kubeconfig, app
        self.points: list[tuple[float, int, int]] = []   # (seconds since start, old ready, new ready)
        self.added: dict[str, float] = {}   # new pod → seconds since start when its ADDED event came
        self.ready: dict[str, float] = {}   # new pod → seconds since start when it was first seen Ready
        self.start_time = 0.0
        self.listening = threading.Event()
        self._stop_flag = False

    def run(self) -> None:
        asyncio.run(self._watch())

    async def _watch(self) -> None:
        client = APIClient(Credentials.from_kubeconfig(self.kubeconfig))
        pods: dict[str, dict] = {}
        try:
            path = resource_path("pods", "default")
            listed = await client.get(path, labelSelector=f"app={self.app}")
            pods = {p["metadata"]["name"]: p for p in listed["items"]}
            self.listening.set()
            async for event in client.watch(path, listed["metadata"]["resourceVersion"], labelSelector=f"app={self.app}",
                                            timeout_seconds=900):
                obj = event["object"]
                if event["type"] == "BOOKMARK":
                    continue
                if event["type"] == "DELETED":
                    pods.pop(obj["metadata"]["name"], None)
                else:
                    pods[obj["metadata"]["name"]] = obj
                if self.start_time:
                    self._record(pods)
                    self._record_new_pod(event["type"], obj)
                if self._stop_flag:
                    return
        finally:
            await client.close()

    def _record(self, pods: dict[str, dict]) -> None:
        ready = [p for p in pods.values() if pod_is_ready(p) and not p["metadata"].get("deletionTimestamp")]
        new = sum(1 for p in ready if p["spec"]["containers"][0]["image"] == NEW_IMAGE)
        point = (round(time.monotonic() - self.start_time, 3), len(ready) - new, new)
        if not self.points or self.points[-1][1:] != point[1:]:
            self.points.append(point)

    def _record_new_pod(self, kind: str, pod: dict) -> None:
        if pod["spec"]["containers"][0]["image"] != NEW_IMAGE:
            return
        name, now = pod["metadata"]["name"], round(time.monotonic() - self.start_time, 3)
        if kind == "ADDED":
            self.added.setdefault(name, now)
        if pod_is_ready(pod) and name in self.added:
            self.ready.setdefault(name, now)

    def first_created(self) -> float | None:
        """Seconds from ``kubectl set image`` to the first new pod's ADDED: kubectl, the API and the
        Deployment and ReplicaSet controllers' first steps, in series."""
        return min(self.added.values(), default=None)

    def pod_starts(self) -> list[float]:
        """Create → Ready of each new pod (as this watch saw them), in the order they were created."""
        return [round(self.ready[n] - t, 3) for n, t in sorted(self.added.items(), key=lambda kv: kv[1])
                if n in self.ready]

    def stop(self) -> None:
        self._stop_flag = True


def lab_rollouts(sizes: list[int], min_ready: int, cluster: str | None, floor_concurrency: int) -> list[dict]:
    work = Path(tempfile.mkdtemp())
    name = cluster or f"wlb{uuid.uuid4().hex[:5]}"
    kubeconfig = Path(os.environ["KUBECONFIG"]) if cluster else work / "kubeconfig"
    env = {"KUBECONFIG": str(kubeconfig)}
    kubectl = Kubectl(find_kubectl(), kubeconfig)
    results = []
    try:
        if not cluster:
            labctl("up", "-t", str(write_topology(work / "topo.yaml", name)), env=env, check=True, timeout=900)
        for node in ("control-plane", "worker", "worker2"):  # no-op when the agent already runs the kubelet
            subprocess.run(["docker", "exec", "-d", f"{name}-{node}", "sh", "-c", KUBELET], capture_output=True)
        for n in sizes:
            kubectl.run("create", "deployment", f"r{n}", f"--image={OLD_IMAGE}", f"--replicas={n}")
            kubectl.run("patch", f"deployment/r{n}", "-p", json.dumps({"spec": {"minReadySeconds": min_ready}}))
            kubectl.run("rollout", "status", f"deployment/r{n}", "--timeout=600s", timeout=650)
            pod_start = single_pod_start(kubeconfig)  # next to the rollout: the load moves
            timeline = Timeline(kubeconfig, f"r{n}")
            timeline.start()
            timeline.listening.wait(30)
            timeline.start_time = start = time.monotonic()
            wall_start = time.time()
            kubectl.run("set", "image", f"deployment/r{n}", f"nginx={NEW_IMAGE}")
            kubectl.run("rollout", "status", f"deployment/r{n}", "--timeout=900s", timeout=950)
            took = time.monotonic() - start
            load = [round(x, 2) for x in os.getloadavg()]
            time.sleep(0.5)  # the watch's last events
            timeline.stop()
            theory, waves = theoretical_minimum(n, "25%", "25%", min_ready, pod_start, wall_start)
            starts = timeline.pod_starts()
            replayed, _ = theoretical_minimum(n, "25%", "25%", min_ready, starts, wall_start) if starts else (0.0, 0)
            floor = docker_floor_minimum(n, min_ready, wall_start, floor_concurrency)
            results.append({"replicas": n, "seconds": round(took, 2), "theoretical_min_s": round(theory, 2),
                            "waves": waves, "ratio": round(took / theory, 2), "pod_start_s": round(pod_start, 2),
                            "rollout_pod_start_p50_s": round(statistics.median(starts), 2) if starts else None,
                            "rollout_pod_start_max_s": round(max(starts), 2) if starts else None,
                            "replayed_min_s": round(replayed, 2), "first_pod_created_s": timeline.first_created(),
                            "controller_ratio": round(took / replayed, 2) if replayed else None,
                            "docker_floor": floor, "floor_ratio": round(took / floor["seconds"], 2),
                            "load": load, "timeline": timeline.points})
            print(f"rollout of {n:>3} replicas: {took:6.1f} s   (theoretical minimum {theory:.1f} s with the single pod's "
                  f"{pod_start:.2f} s start, {waves} waves, ratio {took / theory:.2f}×; load {load})", flush=True)
            if starts:
                print(f"    its {len(starts)} new pods: create → Ready p50 {statistics.median(starts):.2f} s, "
                      f"max {max(starts):.2f} s; the minimum with those starts {replayed:.1f} s "
                      f"(ratio {took / replayed:.2f}×: the controllers' and kubectl's share); the first new pod "
                      f"created {timeline.first_created():.2f} s after set image", flush=True)
            print(f"    Docker alone, its waves of {floor['waves']} pods: p50 {floor['pod_start_p50_s']:.2f} s, max "
                  f"{floor['pod_start_max_s']:.2f} s; the minimum with those starts {floor['seconds']:.1f} s "
                  f"({floor['seconds'] / theory:.2f}× the theoretical minimum; the rollout {took / floor['seconds']:.2f}× it)",
                  flush=True)
            kubectl.run("delete", "deployment", f"r{n}", "--wait=false")
    finally:
        if not cluster:
            labctl("down", "--name", name, env=env)
    return results


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--deletes", type=int, default=50)
    p.add_argument("--lab", action="store_true", help="also time real rollouts in a lab (needs Docker)")
    p.add_argument("--sizes", default="4,20,50")
    p.add_argument("--min-ready", type=int, default=2)
    p.add_argument("--floor-concurrency", type=int, default=8, help="pods Docker starts at once in the floor")
    p.add_argument("--cluster", help="time the rollouts in this running lab (KUBECONFIG) instead of a scratch one")
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    result: dict = {"machine": f"{platform.node()} {os.cpu_count()} cpus", "date": time.strftime("%Y-%m-%d")}
    sizes = [int(s) for s in args.sizes.split(",")]
    result["theory"] = [{"replicas": n, "seconds": theoretical_minimum(n, "25%", "25%", args.min_ready)[0]}
                        for n in sizes]
    reaction = reaction_bench(args.deletes)
    result["reaction"] = reaction
    print(f"pod deleted -> replacement created: p50 {reaction['p50_ms']:.1f} ms, p99 {reaction['p99_ms']:.1f} ms "
          f"({reaction['samples']} deletes); 25 pods created (scale 10 → 35): {reaction['wave_of_25_ms']:.0f} ms")
    for t in result["theory"]:
        print(f"theoretical minimum rollout, {t['replicas']:>3} replicas, 25%/25%, minReadySeconds "
              f"{args.min_ready}, pods Ready the instant they are created: {t['seconds']:.1f} s")
    if args.lab:
        result["rollouts"] = lab_rollouts(sizes, args.min_ready, args.cluster, args.floor_concurrency)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
