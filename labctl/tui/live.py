"""The live state source: a lab on this machine, watched, inspected and graded on a thread of its own.

Everything slow or blocking happens on that thread's asyncio loop, never on the UI's:

- **watches, not polling**: one :class:`~labctl.client.informer.Informer` per kind (list, then
  watch; relist on 410); their events are batched every :data:`FLUSH` seconds into one
  ``ObjectsChanged``, so a burst of a rollout costs the UI one redraw per batch;
- **polled only while visible**: the nodes' network (:func:`labctl.inspect.snapshot`, one
  ``docker exec`` per node), node containers' CPU and memory (Docker's one-shot stats) and the
  exercise's grade (:func:`labctl.exercises.grader.grade`) are read only while a visible view
  shows them (:meth:`LiveSource.watch`), every few seconds;
- **requests** from the UI (actions, traces, hints, traffic, logs) are coroutines submitted
  to this loop; the UI awaits them without blocking (``asyncio.wrap_future``).

A plain thread rather than a Textual worker: the loop lives as long as the app and serves
requests from every screen; Textual's workers are for one task each.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

from ..client.informer import FuncHandler, Informer
from ..client.rest import APIClient, APIStatusError
from ..client.streams import read_log
from ..cluster import Lab
from ..engine.streams import DockerEngine, FrameDemuxer
from ..errors import LabctlError
from ..exercises import traffic as requests
from ..kube import containers as labels
from . import pump as pump_module
from .actions import Action, Ref, perform
from .messages import ConnectionChanged, ExerciseRead, HealthRead, LogRead, NetworkRead, ObjectsChanged, TrafficRead
from .source import Sink
from .state import KINDS, ExerciseReport, NodeHealth
from .traffic import Sample, TrafficPlan

__all__ = ["LiveSource", "node_health"]

T = TypeVar("T")

#: seconds between batches of watch events (and of traffic answers)
FLUSH = 0.1
#: seconds between reads of a polled topic while it is visible
EVERY = {"network": 3.0, "health": 5.0, "exercise": 5.0}
#: a watch failing this long is shown as a connection problem
FAILING_AFTER = 3.0


class LiveSource:
    """A running lab: ``LiveSource(Lab.open(name))``; the source closes the lab when stopped."""

    live = True

    def __init__(self, lab: Lab) -> None:
        self.lab = lab.name
        self.clock: Callable[[], float] = time.time
        self._lab = lab
        self._sink: Sink = lambda message: None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._interest: frozenset[str] = frozenset()
        self._pokes: dict[str, asyncio.Event] = {}
        self._stopping: asyncio.Event | None = None
        self._api: APIClient | None = None
        self._informers: dict[str, Informer] = {}
        self._traffic: asyncio.Task[None] | None = None
        self._traffic_stop: asyncio.Event | None = None
        self._rate = 10
        self._rate_changed: asyncio.Event | None = None
        self._cpu: dict[str, tuple[int, int]] = {}

    # -- the protocol, called from the UI thread ------------------------------------------

    def start(self, sink: Sink) -> None:
        self._sink = sink
        self._thread = threading.Thread(target=self._main, name="labctl-tui-source", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._lab.close()

    def watch(self, topics: frozenset[str]) -> None:
        self._interest = topics
        if self._loop is not None:
            for event in self._pokes.values():
                self._loop.call_soon_threadsafe(event.set)

    async def run(self, action: Action) -> str:
        return await self._call(self._run_action(action))

    async def trace(self, source: str, destination: str, *, port: str | None = None, live: bool = False) -> Any:
        from ..inspect import trace

        return await self._call(trace(self._lab, source, destination, port=port, explain_only=not live))

    async def check(self) -> ExerciseReport:
        return await self._call(self._read_exercise())

    async def hint(self, check_id: str) -> ExerciseReport:
        from ..exercises import session

        async def release() -> ExerciseReport:
            await session.hint(self._lab, check_id)
            return await self._read_exercise()

        return await self._call(release())

    def start_traffic(self, plan: TrafficPlan) -> None:
        self._rate = plan.rate
        self._submit(self._start_traffic(plan))

    def set_traffic_rate(self, rate: int) -> None:
        self._rate = rate
        if self._loop is not None and self._rate_changed is not None:
            self._loop.call_soon_threadsafe(self._rate_changed.set)

    def stop_traffic(self) -> None:
        if self._loop is not None and self._traffic_stop is not None:
            self._loop.call_soon_threadsafe(self._traffic_stop.set)

    def follow_logs(self, ref: Ref, sink: Sink) -> Callable[[], None]:
        future = self._submit(self._follow(ref, sink))
        return lambda: future.cancel() and None

    def shell(self, ref: Ref) -> list[str] | None:
        if ref.kind == "Node":
            return [sys.executable, "-m", "labctl", "shell", ref.name, "--name", self.lab]
        if ref.kind == "Pod":
            kubectl = self._lab.kubectl()
            context = ["--context", kubectl.context] if kubectl.context else []
            return [kubectl.binary, "--kubeconfig", str(kubectl.kubeconfig), *context, "exec", "-it", "-n",
                    ref.namespace, ref.name, "--", "sh"]
        return None

    # -- plumbing between the threads -----------------------------------------------------

    def _submit(self, coro: Coroutine[Any, Any, T]) -> Any:
        if not self._ready.wait(30) or self._loop is None:
            coro.close()
            raise LabctlError("the lab's state source did not start")
        return asyncio.run_coroutine_threadsafe(coro, self._loop)

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if not self._ready.is_set():
            await asyncio.to_thread(self._ready.wait, 30)
        return await asyncio.wrap_future(self._submit(coro))

    def _post(self, message: Any) -> None:
        self._sink(message)

    # -- the source's own loop ------------------------------------------------------------

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except Exception as err:  # the UI says so instead of freezing on stale data
            self._post(ConnectionChanged(f"the lab's state source failed: {type(err).__name__}: {err}"))

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._pokes = {topic: asyncio.Event() for topic in EVERY}
        self._rate_changed = asyncio.Event()
        self._ready.set()
        tasks = [asyncio.create_task(self._watch_api()),
                 asyncio.create_task(self._poll("network", self._read_network)),
                 asyncio.create_task(self._poll("health", self._read_health)),
                 asyncio.create_task(self._poll("exercise", self._post_exercise))]
        try:
            await self._stopping.wait()
        finally:
            if self._traffic_stop is not None:
                self._traffic_stop.set()
            for task in [*tasks, *([self._traffic] if self._traffic else [])]:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._api is not None:
                await self._api.close()

    async def _watch_api(self) -> None:
        """Informers for every kind the views show; their events in batches, and whether they work."""
        while True:
            try:
                credentials = await asyncio.to_thread(lambda: self._lab.credentials)
                break
            except LabctlError as err:
                self._post(ConnectionChanged(f"{err}" + (f" — {err.hint}" if err.hint else "")))
                await asyncio.sleep(3)
        self._api = APIClient(credentials)
        pending: list[tuple[str, str, dict[str, Any]]] = []

        def handler(kind: str) -> FuncHandler:
            return FuncHandler(on_add=lambda o: pending.append((kind, "ADDED", o)),
                               on_update=lambda old, new: pending.append((kind, "MODIFIED", new)),
                               on_delete=lambda o: pending.append((kind, "DELETED", o)))

        self._informers = {kind: Informer(self._api, kind, [handler(kind)]) for kind in KINDS}
        runs = [asyncio.create_task(i.run()) for i in self._informers.values()]
        announced, problem = False, "connecting…"
        try:
            while True:
                await asyncio.sleep(FLUSH)
                synced = all(i.synced.is_set() for i in self._informers.values())
                if pending or (synced and not announced):
                    batch, pending[:] = list(pending), []
                    self._post(ObjectsChanged(batch, synced))
                    announced = announced or synced
                now = _connection_problem(self._informers.values(), synced)
                if now != problem:
                    problem = now
                    self._post(ConnectionChanged(now))
        finally:
            for run in runs:
                run.cancel()

    async def _poll(self, topic: str, read: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Read ``topic`` every :data:`EVERY` seconds while it is visible, at once when it becomes visible."""
        poke, last = self._pokes[topic], 0.0
        while True:
            wait: float | None = None
            if topic in self._interest:
                if time.monotonic() - last >= 1.0:
                    last = time.monotonic()
                    await read()
                wait = EVERY[topic]
            poke.clear()
            try:
                await asyncio.wait_for(poke.wait(), wait)
            except TimeoutError:
                pass

    async def _read_network(self) -> None:
        from ..inspect import snapshot

        try:
            network = await asyncio.wait_for(snapshot(self._lab), 20)
        except (LabctlError, OSError, TimeoutError, ValueError) as err:
            self._post(NetworkRead(None, str(err) or type(err).__name__))
            return
        self._post(NetworkRead(network))

    async def _read_health(self) -> None:
        try:
            health = await asyncio.to_thread(node_health, self._lab, self._cpu)
        except (LabctlError, OSError) as err:
            self._post(ConnectionChanged(f"Docker: {err}"))
            return
        self._post(HealthRead(health))

    async def _read_exercise(self) -> ExerciseReport:
        from ..exercises import session
        from ..exercises.grader import grade

        try:
            store, current = await asyncio.to_thread(session.active, self._lab)
        except LabctlError as err:
            report = ExerciseReport(None, error=f"{err}" + (f" — {err.hint}" if err.hint else ""))
        else:
            graded = await grade(self._lab, store, current.exercise, current.state)
            hints = {c.id: list(c.hints[:current.state.hints.get(c.id, 0)]) for c in current.exercise.checks}
            report = ExerciseReport(current.exercise, graded, hints)
        self._post(ExerciseRead(report))
        return report

    async def _post_exercise(self) -> None:
        await self._read_exercise()

    async def _run_action(self, action: Action) -> str:
        if self._api is None:
            raise LabctlError("not connected to the lab's API server yet")
        replicasets = self._informers["replicasets"].list() if "replicasets" in self._informers else []
        return await perform(action, self._api, self._lab, replicasets)

    # -- traffic ---------------------------------------------------------------------------

    async def _start_traffic(self, plan: TrafficPlan) -> None:
        if self._traffic is not None and self._traffic_stop is not None:
            self._traffic_stop.set()
            await asyncio.gather(self._traffic, return_exceptions=True)
        self._traffic_stop = asyncio.Event()
        self._traffic = asyncio.create_task(self._send(plan, self._traffic_stop))

    async def _send(self, plan: TrafficPlan, stopping: asyncio.Event) -> None:
        """Run the pump (here, or in the source pod's network namespace) and post its answers in batches."""
        answers: list[Sample] = []

        def emit(sample: dict[str, Any]) -> None:
            answers.append(Sample(**sample))

        async def flush() -> None:
            while True:
                await asyncio.sleep(FLUSH * 2.5)
                if answers:
                    batch, answers[:] = list(answers), []
                    self._post(TrafficRead(batch))

        flusher = asyncio.create_task(flush())
        targets = [(t.host, t.port) for t in plan.targets]
        try:
            if plan.source == "host":
                await pump_module.pump(requests.get, targets, lambda: self._rate, emit, stopping, plan.path)
            else:
                await self._pump_in_pod(plan, targets, emit, stopping)
        except (LabctlError, APIStatusError, OSError) as err:
            answers.append(Sample(self.clock(), 0.0, plan.source, False, error=f"the traffic stopped: {err}"))
        finally:
            flusher.cancel()
            self._post(TrafficRead(list(answers), running=False))

    async def _pump_in_pod(self, plan: TrafficPlan, targets: list[tuple[str, int]],
                           emit: Callable[[dict[str, Any]], None], stopping: asyncio.Event) -> None:
        """The pump inside the source pod's network namespace: ``nsenter`` in its node, as ``labctl trace`` does."""
        namespace, _, name = plan.source.rpartition("/")
        sandbox_key, node_container = await asyncio.to_thread(self._sandbox_of, namespace or "default", name)
        argv = ["nsenter", f"--net={sandbox_key}", "python3", "-S", "-c", pump_module.BOOTSTRAP,
                Path(requests.__file__).read_text(), Path(pump_module.__file__).read_text(), str(self._rate),
                plan.path, *(f"{h}:{p}" for h, p in targets)]
        async with DockerEngine.from_env() as engine:
            exec_id = await engine.exec_create(node_container, argv, stdin=True, stdout=True, stderr=True,
                                               tty=False)
            reader, writer = await engine.exec_start(exec_id, False)
            assert self._rate_changed is not None
            rate_changed = self._rate_changed

            async def control() -> None:
                while not stopping.is_set():
                    rate_changed.clear()
                    _, waiting = await asyncio.wait([asyncio.create_task(rate_changed.wait()),
                                                     asyncio.create_task(stopping.wait())],
                                                    return_when=asyncio.FIRST_COMPLETED)
                    for task in waiting:
                        task.cancel()
                    writer.write(b"stop\n" if stopping.is_set() else f"{self._rate}\n".encode())
                    await writer.drain()

            controller = asyncio.create_task(control())
            demuxer, line, errors = FrameDemuxer(), b"", b""
            try:
                while chunk := await reader.read(64 * 1024):
                    for stream, data in demuxer.feed(chunk):
                        if stream == 2:
                            errors += data
                            continue
                        line += data
                        *complete, line = line.split(b"\n")
                        for text in complete:
                            emit(json.loads(text))
            finally:
                controller.cancel()
                writer.close()
            if errors.strip() and not stopping.is_set():
                raise LabctlError(f"the pump in pod {plan.source} failed: {errors.decode(errors='replace')[-300:]}")

    def _sandbox_of(self, namespace: str, pod: str) -> tuple[str, str]:
        """A running pod's network namespace path (its sandbox's ``SandboxKey``) and its node's container."""
        info = self._lab.pod_sandbox(namespace, pod)
        if info is None:
            raise LabctlError(f"pod {namespace}/{pod} has no running sandbox")
        node = (info.get("Config", {}).get("Labels") or {}).get(labels.POD_NODE_LABEL, "")
        return self._lab.pod_netns(info), node

    # -- logs --------------------------------------------------------------------------------

    async def _follow(self, ref: Ref, sink: Sink) -> None:
        if self._api is None:
            sink(LogRead("", ended=True, error="not connected to the lab's API server yet"))
            return
        try:
            async for chunk in read_log(self._api, ref.namespace, ref.name, follow=True, tail_lines=500):
                sink(LogRead(chunk.decode(errors="replace")))
        except APIStatusError as err:
            sink(LogRead("", ended=True, error=str(err)))
            return
        sink(LogRead("", ended=True))


def node_health(lab: Lab, cpu: dict[str, tuple[int, int]]) -> dict[str, NodeHealth]:
    """``docker stats --no-stream`` for the node containers; ``cpu`` keeps each one's last CPU counters
    (one-shot stats carry no earlier sample, so a node's first reading has no CPU figure)."""
    out = {}
    for node in lab.nodes():
        if node.state != "running":
            out[node.name] = NodeHealth(node.state)
            cpu.pop(node.name, None)
            continue
        stats = lab.docker.api.stats(node.container, stream=False, one_shot=True)
        counters = stats.get("cpu_stats") or {}
        used = int((counters.get("cpu_usage") or {}).get("total_usage", 0))
        system = int(counters.get("system_cpu_usage", 0))
        percent = None
        if node.name in cpu and system > cpu[node.name][1]:
            before_used, before_system = cpu[node.name]
            percent = 100.0 * (used - before_used) / (system - before_system) * int(counters.get("online_cpus", 1))
        cpu[node.name] = (used, system)
        memory = stats.get("memory_stats") or {}
        page_cache = (memory.get("stats") or {})
        inactive = page_cache.get("inactive_file", page_cache.get("total_inactive_file", 0))
        out[node.name] = NodeHealth(node.state, percent, int(memory.get("usage", 0)) - int(inactive))
    return out


def _connection_problem(informers: Any, synced: bool) -> str:
    """What is wrong with the watches ("" when nothing is)."""
    for informer in informers:
        if informer.failing_for() > FAILING_AFTER:
            return f"the watch of {informer.plural} fails: {informer.last_error} (showing what was last seen)"
    return "" if synced else "listing…"
