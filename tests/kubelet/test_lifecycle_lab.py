"""Init containers, sidecars, lifecycle hooks and startup probes in a real lab, seen through the real kubectl.

What a student sees: ``kubectl get pod`` walking ``Init:0/2`` → ``Init:1/2`` → ``PodInitializing``
→ ``Running`` (the init-containers tutorial: wait for a Service's DNS name), ``Init:Error`` and
``Init:CrashLoopBackOff``, a postStart marker read with ``kubectl exec``, a preStop that holds the
deletion and is in the container's log, ``FailedPostStartHook`` / ``FailedPreStopHook`` events,
and a startup probe that keeps a pod unready and restarts it. One lab for the module; every
test makes pods of its own, so they pass in any order.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest

from labctl.client.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

IMAGE = "labctl/web:v1"  # busybox: sh, nslookup; a writable / (but no /tmp)


def pod(name: str, containers: list[dict], init: list[dict] | None = None, **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 5, "containers": containers,
                     **({"initContainers": init} if init else {}), **spec}}


def container(name: str, script: str = "", **fields) -> dict:
    out = {"name": name, "image": IMAGE, **fields}
    if script:
        out["command"] = ["sh", "-c", script]
    return out


def apply(lab, *objs: dict) -> None:
    lab.kubectl.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def status_cell(lab, name: str) -> str:
    """The STATUS column of ``kubectl get pod NAME`` (the server-side table)."""
    return lab.kubectl.run("get", "pod", name, "--no-headers").stdout.split()[2]


def get_pod(lab, name: str) -> dict:
    return lab.kubectl.json("get", "pod", name)


def events(lab, name: str) -> list[dict]:
    return lab.kubectl.json("get", "events", "--field-selector", f"involvedObject.name={name}")["items"]


def condition(pod_obj: dict, typ: str) -> dict:
    return next(c for c in pod_obj["status"].get("conditions", []) if c["type"] == typ)


class Watch:
    """``kubectl get pod NAME -w``: every STATUS a student's terminal shows, in order."""

    def __init__(self, lab, name: str) -> None:
        self.proc = subprocess.Popen([lab.kubectl_binary, "--kubeconfig", str(lab.kubeconfig), "get", "pod", name,
                                      "-w", "--no-headers"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        self.seen: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            cell = line.split()[2]
            if not self.seen or self.seen[-1] != cell:
                self.seen.append(cell)

    def until(self, last: str) -> list[str]:
        """The STATUS values shown, once ``last`` has been shown; the watch then ends."""
        try:
            wait_for(lambda: self.seen and self.seen[-1] == last, timeout=30, what=f"the watch to show {last}")
        finally:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        return self.seen


@pytest.fixture(scope="module")
def lc(lab):
    """The lab, with the slow scenarios started at once (their clocks run while other tests work)."""
    apply(lab,
          pod("init-crash", [container("app")], [container("fail", "echo no; exit 1")]),
          pod("init-never", [container("app")], [container("fail", "exit 2")], restartPolicy="Never"),
          pod("startup-fails", [container("app", readinessProbe={"exec": {"command": ["true"]}, "periodSeconds": 1},
                                          startupProbe={"exec": {"command": ["sh", "-c", "echo not yet; exit 1"]},
                                                        "periodSeconds": 1, "failureThreshold": 3})]),
          pod("poststart-fails", [container("app", lifecycle={"postStart": {"exec": {"command": ["sh", "-c",
                                                                                                  "exit 7"]}}})]))
    yield lab


def test_init_containers_run_in_order_and_kubectl_shows_each_step(lc):
    apply(lc, pod("myapp", [container("app", "echo The app is running! && sleep 3600")], [
        container("init-myservice", "until nslookup myservice.default.svc.cluster.local; do echo waiting; sleep 1; "
                                    "done"),
        container("init-mydb", "sleep 2; echo db ready")]))
    waiting = wait_for(lambda: "running" in (p := get_pod(lc, "myapp"))["status"].get(
        "initContainerStatuses", [{}])[0].get("state", {}) and p, timeout=60, what="init-myservice running")
    assert status_cell(lc, "myapp") == "Init:0/2"
    watch = Watch(lc, "myapp")
    init = waiting["status"]["initContainerStatuses"]
    assert [s["name"] for s in init] == ["init-myservice", "init-mydb"]
    assert "running" in init[0]["state"] and init[1]["state"]["waiting"]["reason"] == "PodInitializing"
    assert waiting["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    assert waiting["status"]["phase"] == "Pending"
    initialized = condition(waiting, "Initialized")
    assert initialized["status"] == "False" and initialized["reason"] == "ContainersNotInitialized"
    assert initialized["message"] == "containers with incomplete status: [init-myservice init-mydb]"

    apply(lc, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "myservice"},
               "spec": {"ports": [{"port": 80, "targetPort": 9376}]}})
    wait_for(lambda: status_cell(lc, "myapp") == "Running", timeout=90, what="myapp Running")
    done = get_pod(lc, "myapp")
    assert condition(done, "Initialized")["status"] == "True" and condition(done, "Ready")["status"] == "True"
    for status in done["status"]["initContainerStatuses"]:
        assert status["state"]["terminated"]["reason"] == "Completed" and status["ready"]
    first_app_start = done["status"]["containerStatuses"][0]["state"]["running"]["startedAt"]
    assert done["status"]["initContainerStatuses"][1]["state"]["terminated"]["finishedAt"] <= first_app_start
    assert "db ready" in lc.kubectl.run("logs", "myapp", "-c", "init-mydb").stdout
    assert "The app is running!" in lc.kubectl.run("logs", "myapp").stdout
    assert watch.until("Running") == ["Init:0/2", "Init:1/2", "PodInitializing", "Running"]


def test_failing_init_container_is_retried_with_back_off_and_the_app_never_starts(lc):
    pod_obj = wait_for(lambda: (p := get_pod(lc, "init-crash"))["status"].get("initContainerStatuses", [{}])[0]
                       .get("restartCount", 0) >= 2 and p, timeout=90, what="init-crash restarted twice")
    assert wait_for(lambda: status_cell(lc, "init-crash") in ("Init:CrashLoopBackOff", "Init:Error")
                    and status_cell(lc, "init-crash"), timeout=60)
    wait_for(lambda: status_cell(lc, "init-crash") == "Init:CrashLoopBackOff", timeout=60,
             what="Init:CrashLoopBackOff")
    assert pod_obj["status"]["phase"] == "Pending"
    assert pod_obj["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "PodInitializing"
    assert pod_obj["status"]["initContainerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 1
    assert any(e["reason"] == "BackOff" and "fail" in e["message"] for e in events(lc, "init-crash"))


def test_failed_init_container_fails_a_never_restarting_pod(lc):
    wait_for(lambda: get_pod(lc, "init-never")["status"]["phase"] == "Failed", timeout=60, what="init-never Failed")
    assert status_cell(lc, "init-never") == "Init:Error"
    statuses = get_pod(lc, "init-never")["status"]
    assert statuses["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 2
    assert statuses["initContainerStatuses"][0]["restartCount"] == 0


def test_sidecar_starts_before_the_app_keeps_running_and_counts_in_ready(lc):
    apply(lc, pod("with-sidecar", [container("app", "sleep 3600")], [
        container("logshipper", "echo shipping; sleep 3600", restartPolicy="Always",
                  startupProbe={"exec": {"command": ["true"]}, "periodSeconds": 1})]))
    wait_for(lambda: status_cell(lc, "with-sidecar") == "Running", timeout=90, what="with-sidecar Running")
    row = lc.kubectl.run("get", "pod", "with-sidecar", "--no-headers").stdout.split()
    assert row[1] == "2/2", row
    status = get_pod(lc, "with-sidecar")["status"]
    sidecar = status["initContainerStatuses"][0]
    assert "running" in sidecar["state"] and sidecar["started"] and sidecar["ready"]
    assert sidecar["state"]["running"]["startedAt"] <= status["containerStatuses"][0]["state"]["running"]["startedAt"]


def test_post_start_runs_before_the_container_counts_as_running(lc):
    apply(lc, pod("hooked", [container("app", "sleep 3600", lifecycle={"postStart": {"exec": {"command": [
        "sh", "-c", "sleep 2; echo Hello from the postStart handler > /message"]}}})]))
    wait_for(lambda: status_cell(lc, "hooked") == "Running", timeout=60, what="hooked Running")
    assert lc.kubectl.run("exec", "hooked", "--", "cat", "/message").stdout == \
        "Hello from the postStart handler\n"


def test_a_post_start_that_never_returns_keeps_the_pod_creating_and_does_not_block_its_deletion(lc):
    apply(lc, pod("hung-hook", [container("app", "sleep 3600", lifecycle={"postStart": {"exec": {"command": [
        "sleep", "3600"]}}})]))
    wait_for(lambda: any(e["reason"] == "Started" for e in events(lc, "hung-hook")), timeout=60,
             what="the container started")
    assert status_cell(lc, "hung-hook") == "ContainerCreating"
    assert get_pod(lc, "hung-hook")["status"]["phase"] == "Pending"
    lc.kubectl.run("delete", "pod", "hung-hook", "--wait=true", "--timeout=45s")


def test_failing_post_start_kills_and_restarts_the_container(lc):
    wait_for(lambda: get_pod(lc, "poststart-fails")["status"].get("containerStatuses", [{}])[0]
             .get("restartCount", 0) >= 1,
             timeout=60, what="poststart-fails restarted")
    found = wait_for(lambda: [e for e in events(lc, "poststart-fails") if e["reason"] == "FailedPostStartHook"],
                     timeout=30, what="FailedPostStartHook event")
    assert found[0]["type"] == "Warning"
    assert "Exec lifecycle hook ([sh -c exit 7]) for Container \"app\"" in found[0]["message"]
    assert "exited with 7" in found[0]["message"]
    assert not condition(get_pod(lc, "poststart-fails"), "Ready")["status"] == "True"


def test_pre_stop_runs_before_the_stop_signal_and_holds_the_deletion(lc):
    apply(lc, pod("graceful", [container("app", "sleep 3600", lifecycle={"preStop": {"exec": {"command": [
        "sh", "-c", "echo pre-stop hook ran > /proc/1/fd/1; sleep 3"]}}})], terminationGracePeriodSeconds=20))
    wait_for(lambda: status_cell(lc, "graceful") == "Running", timeout=60, what="graceful Running")
    follow = subprocess.Popen([lc.kubectl_binary, "--kubeconfig", str(lc.kubeconfig), "logs", "-f", "graceful"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    started = time.monotonic()
    lc.kubectl.run("delete", "pod", "graceful", "--wait=true")
    took = time.monotonic() - started
    out, _ = follow.communicate(timeout=30)
    assert "pre-stop hook ran" in out
    assert took >= 3, f"the deletion took {took:.1f}s: the preStop sleep of 3s did not hold it"


def test_failing_pre_stop_is_an_event(lc):
    apply(lc, pod("bad-prestop", [container("app", "sleep 3600", lifecycle={"preStop": {"httpGet": {
        "path": "/shutdown", "port": 8089}}})]))
    wait_for(lambda: status_cell(lc, "bad-prestop") == "Running", timeout=60, what="bad-prestop Running")
    lc.kubectl.run("delete", "pod", "bad-prestop", "--wait=true")
    found = wait_for(lambda: [e for e in events(lc, "bad-prestop") if e["reason"] == "FailedPreStopHook"],
                     timeout=30, what="FailedPreStopHook event")
    assert found[0]["message"].startswith('HTTP lifecycle hook (/shutdown) for Container "app" in Pod "bad-prestop_')


def test_startup_probe_that_keeps_failing_keeps_the_pod_unready_and_restarts_it(lc):
    pod_obj = wait_for(lambda: (p := get_pod(lc, "startup-fails"))["status"].get("containerStatuses", [{}])[0]
                       .get("restartCount", 0) >= 1 and p, timeout=90, what="startup-fails restarted")
    cs = pod_obj["status"]["containerStatuses"][0]
    assert not cs["ready"] and condition(pod_obj, "Ready")["status"] == "False"
    if "running" in cs["state"]:
        assert cs["started"] is False
    msgs = [(e["reason"], e["message"]) for e in events(lc, "startup-fails")]
    assert ("Unhealthy", "Startup probe failed: not yet") in msgs, msgs
    assert ("Killing", "Container app failed startup probe, will be restarted") in msgs, msgs
    # the readiness probe (it would pass) never ran: nothing ever made the pod Ready
    assert condition(pod_obj, "Ready")["lastTransitionTime"] <= cs["lastState"]["terminated"]["startedAt"]


def test_startup_probe_gates_readiness_until_it_passes(lc):
    apply(lc, pod("slow-start", [container("app", "sleep 4; touch /up; sleep 3600",
                                           startupProbe={"exec": {"command": ["cat", "/up"]}, "periodSeconds": 1,
                                                         "failureThreshold": 30})]))
    wait_for(lambda: get_pod(lc, "slow-start")["status"].get("containerStatuses", [{}])[0].get("state", {})
             .get("running"), timeout=60, what="slow-start running")
    early = get_pod(lc, "slow-start")["status"]["containerStatuses"][0]
    if not early["started"]:
        assert not early["ready"]
    ready = wait_for(lambda: (cs := get_pod(lc, "slow-start")["status"]["containerStatuses"][0])["ready"] and cs,
                     timeout=60, what="slow-start Ready")
    assert ready["started"] and ready["restartCount"] == 0
