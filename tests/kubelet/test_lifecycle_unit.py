"""Pure parts of init containers, sidecars, hooks and startup probes: the order, the status, what kubectl prints."""

from __future__ import annotations

import asyncio
import socket
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import aiohttp
import pytest

from labctl.agent.kubelet import hooks, probes, teardown
from labctl.agent.kubelet.initcontainers import plan_init
from labctl.agent.kubelet.runtime import ContainerRecord
from labctl.agent.kubelet.status import ContainerView, build_pod_status, pod_phase
from labctl.apiserver._validate_pods import validate_pod
from labctl.kube.printers import Clock, pod_status

NOW = "2026-11-30T10:00:00Z"
SIDECAR = {"name": "proxy", "image": "i", "restartPolicy": "Always"}


def spec(init: list[dict], policy: str = "Always", app: tuple[str, ...] = ("app",)) -> dict:
    return {"restartPolicy": policy, "initContainers": init, "containers": [{"name": n, "image": "i"} for n in app]}


def inits(*names: str) -> list[dict]:
    return [{"name": n, "image": "i"} for n in names]


def rec(name: str, running: bool = False, exit_code: int = 0, attempt: int = 0) -> ContainerRecord:
    return ContainerRecord(f"id-{name}-{attempt}", name, attempt, running, exit_code,
                           started_at="2026-11-30T09:59:00Z", finished_at="" if running else "2026-11-30T09:59:30Z")


def names(plan) -> list[str]:
    return [c["name"] for c in plan.start]


def always_started(_record: ContainerRecord) -> bool:
    return True


# -- the order -----------------------------------------------------------------------------
def test_init_containers_start_one_at_a_time_and_the_app_waits():
    s = spec(inits("a", "b"))
    assert names(plan := plan_init(s, {}, always_started)) == ["a"] and not plan.done
    assert names(plan := plan_init(s, {"a": [rec("a", running=True)]}, always_started)) == [] and not plan.done
    assert names(plan_init(s, {"a": [rec("a")]}, always_started)) == ["b"]
    assert plan_init(s, {"a": [rec("a")], "b": [rec("b")]}, always_started).done


@pytest.mark.parametrize("policy,retried", [("Always", True), ("OnFailure", True), ("Never", False)])
def test_failed_init_container_is_retried_unless_the_pod_never_restarts(policy, retried):
    plan = plan_init(spec(inits("a", "b"), policy), {"a": [rec("a", exit_code=1)]}, always_started)
    assert names(plan) == (["a"] if retried else []) and not plan.done


def test_initialized_pod_does_not_run_regular_init_containers_again():
    plan = plan_init(spec(inits("a")), {"app": [rec("app", running=True)]}, always_started)
    assert plan.done and names(plan) == []


def test_sidecar_blocks_the_next_step_only_until_it_has_started():
    s = spec([SIDECAR, *inits("b")])
    assert names(plan_init(s, {}, always_started)) == ["proxy"]
    running = {"proxy": [rec("proxy", running=True)]}
    assert names(plan_init(s, running, lambda r: False)) == []
    assert names(plan_init(s, running, always_started)) == ["b"]


def test_exited_sidecar_is_restarted_without_holding_the_app():
    plan = plan_init(spec([SIDECAR]), {"proxy": [rec("proxy", exit_code=0)], "app": [rec("app", running=True)]},
                     always_started)
    assert names(plan) == ["proxy"] and plan.done


def test_sidecars_stop_in_reverse_order_once_the_app_has_finished_for_good():
    second = {"name": "second", "image": "i", "restartPolicy": "Always"}
    by_name = {"proxy": [rec("proxy", running=True)], "second": [rec("second", running=True)], "app": [rec("app")]}
    plan = plan_init(spec([SIDECAR, second], "Never"), by_name, always_started)
    assert [r.name for r in plan.stop] == ["second", "proxy"] and names(plan) == [] and plan.done


# -- status, and what `kubectl get pods` makes of it ------------------------------------------
def pod_with(init: list[dict], policy: str = "Always") -> dict:
    return {"metadata": {"name": "myapp", "namespace": "default", "uid": "u"},
            "spec": spec(init, policy)}


def printed(pod: dict, init_views: list[ContainerView], app: ContainerView) -> tuple[dict, tuple[str, str, str]]:
    status = build_pod_status(pod, [app], pod_ip="10.244.1.5", host_ip="h", start_time=NOW, sandbox_ready=True,
                              now=NOW, init_views=init_views)
    shown = {**pod, "status": status}
    return status, pod_status(shown, Clock(datetime(2026, 11, 30, 10, 0, tzinfo=UTC)))


def init_view(name: str, latest: ContainerRecord | None = None, previous: ContainerRecord | None = None,
              reason: str = "", sidecar: bool = False) -> ContainerView:
    done = latest is not None and latest.exited and latest.exit_code == 0 and not sidecar
    return ContainerView(name, "i", latest, previous, reason, "", ready=done or (sidecar and latest is not None),
                         default_reason="PodInitializing")


def app_view(latest: ContainerRecord | None = None) -> ContainerView:
    return ContainerView("app", "i", latest, ready=latest is not None and latest.running,
                         default_reason="PodInitializing")


def test_first_init_container_running_prints_init_0_of_2_and_the_pod_is_pending():
    status, (ready, cell, _) = printed(pod_with(inits("a", "b")), [init_view("a", rec("a", True)), init_view("b")],
                                       app_view())
    assert cell == "Init:0/2" and ready == "0/1" and status["phase"] == "Pending"
    assert status["initContainerStatuses"][1]["state"] == {"waiting": {"reason": "PodInitializing"}}
    assert status["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}
    initialized = next(c for c in status["conditions"] if c["type"] == "Initialized")
    assert initialized["status"] == "False" and initialized["reason"] == "ContainersNotInitialized"
    assert initialized["message"] == "containers with incomplete status: [a b]"


def test_second_init_container_prints_init_1_of_2_then_pod_initializing_then_running():
    pod = pod_with(inits("a", "b"))
    _, (_, cell, _) = printed(pod, [init_view("a", rec("a")), init_view("b", rec("b", True))], app_view())
    assert cell == "Init:1/2"
    status, (_, cell, _) = printed(pod, [init_view("a", rec("a")), init_view("b", rec("b"))], app_view())
    assert cell == "PodInitializing" and status["phase"] == "Pending"
    assert next(c for c in status["conditions"] if c["type"] == "Initialized")["status"] == "True"
    status, (ready, cell, _) = printed(pod, [init_view("a", rec("a")), init_view("b", rec("b"))],
                                       app_view(rec("app", True)))
    assert (ready, cell, status["phase"]) == ("1/1", "Running", "Running")
    assert all(s["ready"] and s["state"]["terminated"]["reason"] == "Completed"
               for s in status["initContainerStatuses"])


def test_failing_init_container_prints_init_error_then_init_crash_loop_back_off():
    pod = pod_with(inits("a"))
    status, (_, cell, restarts) = printed(pod, [init_view("a", rec("a", exit_code=1))], app_view())
    assert cell == "Init:Error" and status["phase"] == "Pending" and restarts == "0"
    crashed = rec("a", exit_code=1, attempt=1)
    _, (_, cell, restarts) = printed(pod, [init_view("a", crashed, rec("a", exit_code=1), "CrashLoopBackOff")],
                                     app_view())
    assert cell == "Init:CrashLoopBackOff" and restarts.startswith("1 (")


def test_failed_init_container_fails_a_never_restarting_pod():
    status, (_, cell, _) = printed(pod_with(inits("a"), "Never"), [init_view("a", rec("a", exit_code=2))],
                                   app_view())
    assert status["phase"] == "Failed" and cell == "Init:Error"


def test_started_sidecar_counts_in_ready_and_keeps_the_pod_running():
    status, (ready, cell, _) = printed(pod_with([SIDECAR]), [init_view("proxy", rec("proxy", True), sidecar=True)],
                                       app_view(rec("app", True)))
    assert (ready, cell, status["phase"]) == ("2/2", "Running", "Running")
    assert status["initContainerStatuses"][0]["started"] is True


def test_sidecar_not_yet_started_keeps_the_pod_pending():
    view = ContainerView("proxy", "i", rec("proxy", True), startup_passed=False, default_reason="PodInitializing")
    status = build_pod_status(pod_with([SIDECAR]), [app_view()], pod_ip="", host_ip="h", start_time=NOW,
                              sandbox_ready=True, now=NOW, init_views=[view])
    assert status["phase"] == "Pending" and status["initContainerStatuses"][0]["started"] is False


def test_container_whose_startup_probe_has_not_passed_is_running_but_not_started_nor_ready():
    view = ContainerView("app", "i", rec("app", True), ready=True, startup_passed=False)
    status = build_pod_status({"metadata": {}, "spec": {"containers": [{"name": "app"}]}}, [view], pod_ip="ip",
                              host_ip="h", start_time=NOW, sandbox_ready=True, now=NOW)
    cs = status["containerStatuses"][0]
    assert "running" in cs["state"] and cs["started"] is False and cs["ready"] is False
    assert status["phase"] == "Running"
    assert next(c for c in status["conditions"] if c["type"] == "Ready")["status"] == "False"


def test_pod_phase_without_init_containers_is_unchanged():
    running = {"name": "app", "ready": True, "state": {"running": {}}}
    assert pod_phase({"restartPolicy": "Always"}, [running]) == "Running"


# -- probes ------------------------------------------------------------------------------------
def run_loop(kind: str, results: list[bool], failure_threshold: int = 2) -> list[tuple[bool, str]]:
    changes: list[tuple[bool, str]] = []
    answers = iter(results)

    async def exec_fn(_command: list[str]) -> tuple[int, str]:
        return (0, "") if next(answers) else (1, "not yet")

    async def main() -> None:
        probe = {"exec": {"command": ["x"]}, "periodSeconds": 0.001, "failureThreshold": failure_threshold}
        await asyncio.wait_for(probes.probe_loop(kind, probe, "ip", {}, None, exec_fn,  # type: ignore[arg-type]
                                                 lambda ok, m: changes.append((ok, m)), lambda ok, m: None,
                                                 time.monotonic()), 5)
    asyncio.run(main())
    return changes


def closed_port() -> int:
    """A local port nothing listens on (bound, then closed)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_refused_probe_reads_as_the_kubelets_go_dial_error():
    """The Unhealthy event says what Kubernetes says, never Python's or aiohttp's wording."""
    port = closed_port()
    container = {"ports": [{"name": "liveness-port", "containerPort": port}]}

    async def main() -> tuple[probes.ProbeResult, probes.ProbeResult]:
        async with aiohttp.ClientSession() as session:
            http = await probes.run_probe({"httpGet": {"path": "/healthz", "port": "liveness-port"}},
                                          "127.0.0.1", container, session, None)  # type: ignore[arg-type]
            tcp = await probes.run_probe({"tcpSocket": {"port": port}}, "127.0.0.1", container, session,
                                         None)  # type: ignore[arg-type]
        return http, tcp
    http, tcp = asyncio.run(main())
    dial = f"dial tcp 127.0.0.1:{port}: connect: connection refused"
    assert (http.ok, http.message) == (False, f'Get "http://127.0.0.1:{port}/healthz": {dial}')
    assert (tcp.ok, tcp.message) == (False, dial)


def test_startup_probe_ends_once_it_passed():
    assert run_loop("startup", [False, True]) == [(True, "")]


def test_startup_probe_ends_with_a_failure_after_failure_threshold():
    assert run_loop("startup", [False, False, False], failure_threshold=2) == [(False, "not yet")]


# -- hooks ------------------------------------------------------------------------------------
def fake_ctx(code: int, output: str) -> SimpleNamespace:
    async def blocking(fn, *args):
        return fn(*args)
    return SimpleNamespace(blocking=blocking, runtime=SimpleNamespace(exec=lambda cid, cmd: (code, output)))


POD = {"metadata": {"name": "web", "namespace": "default", "uid": "u-1"}}


def test_failed_exec_hook_has_the_kubelets_message():
    msg = asyncio.run(hooks.run_handler(fake_ctx(7, "boom"), {"exec": {"command": ["sh", "-c", "exit 7"]}}, POD,
                                        {"name": "app"}, rec("app", True), "10.0.0.1"))
    assert msg == ('Exec lifecycle hook ([sh -c exit 7]) for Container "app" in Pod "web_default(u-1)" failed - '
                   "error: command 'sh -c exit 7' exited with 7: boom, message: \"boom\"")


def test_successful_exec_hook_and_tcp_socket_hook_that_cannot_run():
    ctx = fake_ctx(0, "")
    assert asyncio.run(hooks.run_handler(ctx, {"exec": {"command": ["true"]}}, POD, {"name": "app"},
                                         rec("app", True), "ip")) == ""
    assert asyncio.run(hooks.run_handler(ctx, {"tcpSocket": {"port": 80}}, POD, {"name": "app"}, rec("app", True),
                                         "ip")).startswith("Cannot run handler: invalid handler")


# -- validation --------------------------------------------------------------------------------
def validate(init: list[dict], containers: list[dict] | None = None) -> list[str]:
    pod = {"metadata": {"name": "p", "namespace": "default"},
           "spec": {"restartPolicy": "Always", "initContainers": init,
                    "containers": containers or [{"name": "app", "image": "i"}]}}
    # the pod is not defaulted here: only the errors about what this module validates count
    return [f"{e.field}: {e.type}" for e in validate_pod(pod)
            if any(k in e.field for k in ("lifecycle", "restartPolicy", "Probe"))]


def test_regular_init_containers_may_not_have_probes_or_hooks():
    errs = validate([{"name": "a", "image": "i", "lifecycle": {"preStop": {"sleep": {"seconds": 1}}},
                      "startupProbe": {"exec": {"command": ["true"]}}}])
    assert "spec.initContainers[0].lifecycle: FieldValueForbidden" in errs
    assert "spec.initContainers[0].startupProbe: FieldValueForbidden" in errs


def test_container_restart_policy_only_always_and_only_on_init_containers():
    assert validate([{**SIDECAR, "startupProbe": {"exec": {"command": ["true"]}}}]) == []
    assert validate([{"name": "a", "image": "i", "restartPolicy": "Never"}]) == [
        "spec.initContainers[0].restartPolicy: FieldValueNotSupported"]
    assert validate([], [{"name": "app", "image": "i", "restartPolicy": "Always"}]) == [
        "spec.containers[0].restartPolicy: FieldValueForbidden"]


def test_sleep_hook_must_fit_the_grace_period():
    errs = validate([], [{"name": "app", "image": "i", "lifecycle": {"preStop": {"sleep": {"seconds": 31}}}}])
    assert errs == ["spec.containers[0].lifecycle.preStop.sleep.seconds: FieldValueInvalid"]


# -- stopping -----------------------------------------------------------------------------------
class StopRecorder(SimpleNamespace):
    """A kubelet context that records events and ``docker stop``s instead of doing them."""

    def __init__(self) -> None:
        super().__init__(drain_seconds=0, events=[], stops=[])
        self.runtime = SimpleNamespace(stop=lambda cid, grace: self.stops.append((cid, grace)),
                                       exec=lambda cid, cmd: (1, "refused"))

    async def blocking(self, fn, *args):
        return fn(*args)

    def event(self, _pod, typ, reason, message):
        self.events.append((typ, reason, message))


def test_app_containers_stop_before_sidecars_and_sidecars_in_reverse_order():
    ctx = StopRecorder()
    second = {"name": "second", "image": "i", "restartPolicy": "Always"}
    pod = {**POD, "spec": spec([SIDECAR, second])}
    records = [rec("proxy", True), rec("second", True), rec("app", True)]
    asyncio.run(teardown.stop_containers(ctx, records, 5, pod))  # type: ignore[arg-type]
    assert [cid for cid, _ in ctx.stops] == ["id-app-0", "id-second-0", "id-proxy-0"]
    assert [m for _, r, m in ctx.events if r == "Killing"] == [
        "Stopping container proxy", "Stopping container second", "Stopping container app"]


def test_pre_stop_time_is_taken_from_the_grace_period_and_a_failure_is_an_event():
    ctx = StopRecorder()
    app = {"name": "app", "image": "i", "lifecycle": {"preStop": {"exec": {"command": ["stop-it"]}}}}
    asyncio.run(hooks.stop_container(ctx, POD, app, rec("app", True), 30))  # type: ignore[arg-type]
    assert ctx.stops == [("id-app-0", 30)]
    assert ctx.events[0][:2] == ("Warning", "FailedPreStopHook")
    assert "command 'stop-it' exited with 1: refused" in ctx.events[0][2]
    slow = {"name": "app", "image": "i", "lifecycle": {"preStop": {"sleep": {"seconds": 1}}}}
    ctx = StopRecorder()
    asyncio.run(hooks.stop_container(ctx, POD, slow, rec("app", True), 2))  # type: ignore[arg-type]
    assert ctx.stops == [("id-app-0", hooks.MIN_GRACE_AFTER_PRE_STOP_S)] and ctx.events == []


def test_probe_ticks_follow_the_pods_first_sync_not_each_probe():
    # upstream's prober worker ticks every period from AddPod (the pod's first sync)
    assert probes.next_tick(100.0, 1.0, 100.4) == pytest.approx(101.0)
    assert probes.next_tick(100.0, 1.0, 101.0) == pytest.approx(102.0)   # a probe on a tick: the next one
    assert probes.next_tick(100.0, 10.0, 100.4) == pytest.approx(110.0)
    assert probes.next_tick(100.0, 1.0, 103.0, inclusive=True) == pytest.approx(103.0)
    assert probes.next_tick(100.0, 1.0, 103.2, inclusive=True) == pytest.approx(104.0)


def test_a_failed_first_readiness_probe_is_retried_at_the_next_tick_of_the_pods_grid(monkeypatch):
    """A server still starting when its container starts (0.4 s after the pod's first sync) is
    probed at once, then at 1.0 s, not a whole period after the first probe (1.4 s)."""
    waits: list[float] = []
    answers = iter([False, True])
    real_sleep = asyncio.sleep

    async def no_sleep(delay: float) -> None:
        waits.append(delay)
        await real_sleep(0)

    async def exec_fn(_command: list[str]) -> tuple[int, str]:
        return (0, "") if next(answers) else (1, "connection refused")

    async def main() -> None:
        anchor = time.monotonic() - 0.4
        probe = {"exec": {"command": ["x"]}, "periodSeconds": 1}
        ready = asyncio.Event()
        task = asyncio.create_task(probes.probe_loop("readiness", probe, "ip", {}, None, exec_fn,  # type: ignore[arg-type]
                                                     lambda ok, _m: ok and ready.set(), lambda ok, m: None, anchor))
        await asyncio.wait_for(ready.wait(), 5)
        task.cancel()

    monkeypatch.setattr(probes.asyncio, "sleep", no_sleep)
    asyncio.run(main())
    assert waits[0] == pytest.approx(0.6, abs=0.05)
