"""Issue 5's acceptance in a real lab: ReplicaSet, Deployment, garbage collector, node lifecycle.

One lab (1 control plane + 2 workers, nodeMonitorGracePeriod 8 s, podEvictionTimeout 10 s)
for the module, the real kubectl, the course's manifests; the node agents run the kubelet.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

import pytest
import yaml
from labctl.client.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

COURSE = Path(__file__).resolve().parents[2] / "exercises" / "course"




def manifest(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((COURSE / name).read_text()) if d]


def course_deployment() -> dict:
    """example-2 from the course, unchanged (its ``image: nginx`` runs through the lab's alias)."""
    return manifest("rolling-update-example-2.yaml")[0]


def apply(lab, *objs: dict, namespace: str = "default") -> None:
    lab.kubectl.run("apply", "-n", namespace, "-f", "-",
                    input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def live(pods: list[dict]) -> list[dict]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def pods(lab, selector: str, namespace: str = "default") -> list[dict]:
    return lab.kubectl.json("get", "pods", "-n", namespace, "-l", selector)["items"]


@pytest.fixture(scope="module")
def kubelet(lab):
    """The lab, named for what these tests need from it: nodes whose agents run pods."""
    return lab


# -- ReplicaSet ----------------------------------------------------------------------------

def test_replicaset_example_1(kubelet):
    lab = kubelet
    rs = manifest("replicaset-example-1.yaml")[0]
    apply(lab, rs)

    def settled(count: int):
        status = lab.kubectl.json("get", "rs", "example-1").get("status", {})
        running = [p for p in live(pods(lab, "app=web")) if is_ready(p)]
        ok = (len(live(pods(lab, "app=web"))) == count and len(running) == count
              and status.get("availableReplicas") == count and status.get("readyReplicas") == count)
        return (status, running) if ok else None

    status, running = wait_for(lambda: settled(4), what="4 available pods of example-1")
    assert status["replicas"] == 4 and status["fullyLabeledReplicas"] == 4
    assert len({p["status"]["podIP"] for p in running}) == 4, "each pod has its own IP"
    assert all(p["metadata"]["name"].startswith("example-1-") for p in running)
    owner = running[0]["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "ReplicaSet" and owner["controller"] and owner["blockOwnerDeletion"]

    victim = running[0]
    lab.kubectl.run("delete", "pod", victim["metadata"]["name"], "--wait=false")
    _, after = wait_for(lambda: settled(4), what="a replacement pod")
    new = [p for p in after if p["metadata"]["name"] not in {q["metadata"]["name"] for q in running}]
    assert len(new) == 1 and new[0]["status"]["podIP"] != victim["status"]["podIP"]

    lab.kubectl.run("scale", "rs", "example-1", "--replicas=6")
    status, _ = wait_for(lambda: settled(6), what="6 pods")
    lab.kubectl.run("scale", "rs", "example-1", "--replicas=2")
    status, _ = wait_for(lambda: settled(2), what="2 pods")
    rs_now = lab.kubectl.json("get", "rs", "example-1")
    assert status["replicas"] == 2 and status["observedGeneration"] == rs_now["metadata"]["generation"]
    out = lab.kubectl.run("get", "rs", "example-1").stdout.split("\n")[1].split()
    assert out[1:4] == ["2", "2", "2"], out  # DESIRED CURRENT READY

    lab.kubectl.run("delete", "rs", "example-1")
    wait_for(lambda: not live(pods(lab, "app=web")), what="the ReplicaSet's pods to be collected")


# -- Deployment ----------------------------------------------------------------------------

class Recorder:
    """``kubectl get … --watch`` in the background; keeps every object version it printed."""

    def __init__(self, lab, *args: str) -> None:
        self.proc = lab.kubectl.popen("get", *args, "--watch", "--output-watch-events", "-o", "json")
        self.events: list[tuple[float, dict]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        decoder, buf = json.JSONDecoder(), ""
        for line in self.proc.stdout:
            buf += line
            while buf.strip():
                try:
                    obj, end = decoder.raw_decode(buf.lstrip())
                except json.JSONDecodeError:
                    break
                buf = buf.lstrip()[end:]
                self.events.append((time.monotonic(), obj))

    def stop(self) -> list[tuple[float, dict]]:
        self.proc.terminate()
        self.proc.wait(10)
        return self.events


def replay(events: list[tuple[float, dict]]):
    """Each moment's set of pods, after applying every watch event in order."""
    state: dict[str, dict] = {}
    for _, event in events:
        obj = event["object"]
        if event["type"] == "DELETED":
            state.pop(obj["metadata"]["name"], None)
        else:
            state[obj["metadata"]["name"]] = obj
        yield dict(state)


@pytest.fixture(scope="module")
def example_2(kubelet):
    lab = kubelet
    lab.kubectl.run("create", "namespace", "ex2")
    deploy = course_deployment()
    apply(lab, deploy, namespace="ex2")
    lab.kubectl.run("rollout", "status", "-n", "ex2", "deployment/example-2", "--timeout=120s", timeout=150)
    return lab


def rollout(lab, *change: str, timeout: int = 150) -> tuple[list, list]:
    """Run a change and ``rollout status`` while recording pods and the deployment."""
    pod_rec = Recorder(lab, "pods", "-n", "ex2", "-l", "app=web")
    dep_rec = Recorder(lab, "deployment", "example-2", "-n", "ex2")
    time.sleep(1.5)
    try:
        lab.kubectl.run(*change)
        done = lab.kubectl.run("rollout", "status", "-n", "ex2", "deployment/example-2", f"--timeout={timeout}s",
                               timeout=timeout + 30)
        assert "successfully rolled out" in done.stdout
        time.sleep(1)
    finally:
        pod_events, dep_events = pod_rec.stop(), dep_rec.stop()
    return pod_events, dep_events


def assert_rolling_bounds(pod_events: list, dep_events: list) -> None:
    assert pod_events and dep_events
    moments = list(replay(pod_events))
    # the watch starts with one ADDED per existing pod: judge from the first complete picture
    start = next(i for i, m in enumerate(moments) if sum(1 for p in live(list(m.values())) if is_ready(p)) >= 4)
    for moment in moments[start:]:
        running = live(list(moment.values()))
        assert len(running) <= 5, f"more than replicas+maxSurge pods: {sorted(moment)}"
        assert sum(1 for p in running if is_ready(p)) >= 3, f"fewer than 3 ready pods: {sorted(moment)}"
    for _, event in dep_events:
        status = event["object"].get("status", {})
        assert status.get("availableReplicas", 0) >= 3, status
        assert status.get("replicas", 0) <= 5, status


def test_set_image_rolls_out_within_surge_and_unavailable(example_2):
    lab = example_2
    pod_events, dep_events = rollout(lab, "set", "image", "-n", "ex2", "deployment/example-2", "web=nginx:1.16.1")
    assert_rolling_bounds(pod_events, dep_events)
    lab.kubectl.run("annotate", "-n", "ex2", "deployment/example-2", "kubernetes.io/change-cause=nginx:1.16.1", "--overwrite")
    images = {p["spec"]["containers"][0]["image"] for p in live(pods(lab, "app=web", "ex2"))}
    assert images == {"nginx:1.16.1"}
    d = lab.kubectl.json("get", "deployment", "example-2", "-n", "ex2")
    assert {k: d["status"][k] for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")} == {
        "replicas": 4, "updatedReplicas": 4, "readyReplicas": 4, "availableReplicas": 4}
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    rss = lab.kubectl.json("get", "rs", "-n", "ex2", "-l", "app=web")["items"]
    assert len(rss) == 2 and all(r["metadata"]["name"] == f"example-2-{r['metadata']['labels']['pod-template-hash']}"
                                 for r in rss)


def test_apply_of_changed_template_rolls_out_and_history_lists_change_causes(example_2):
    lab = example_2
    deploy = course_deployment()
    deploy["metadata"]["annotations"]["kubernetes.io/change-cause"] = "env=qa"
    deploy["spec"]["template"]["metadata"]["labels"]["env"] = "qa"
    deploy["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.16.1"
    pod_rec = Recorder(lab, "pods", "-n", "ex2", "-l", "app=web")
    dep_rec = Recorder(lab, "deployment", "example-2", "-n", "ex2")
    time.sleep(1.5)
    try:
        apply(lab, deploy, namespace="ex2")
        lab.kubectl.run("rollout", "status", "-n", "ex2", "deployment/example-2", "--timeout=150s", timeout=180)
        time.sleep(1)
    finally:
        pod_events, dep_events = pod_rec.stop(), dep_rec.stop()
    assert_rolling_bounds(pod_events, dep_events)
    assert {p["metadata"]["labels"]["env"] for p in live(pods(lab, "app=web", "ex2"))} == {"qa"}
    history = lab.kubectl.run("rollout", "history", "-n", "ex2", "deployment/example-2").stdout
    rows = [line.split(None, 1) for line in history.splitlines()[2:] if line.strip()]
    assert rows == [["1", "nginx"], ["2", "nginx:1.16.1"], ["3", "env=qa"]], history


def test_undo_restores_the_previous_template(example_2):
    lab = example_2
    lab.kubectl.run("rollout", "undo", "-n", "ex2", "deployment/example-2")
    lab.kubectl.run("rollout", "status", "-n", "ex2", "deployment/example-2", "--timeout=150s", timeout=180)
    running = live(pods(lab, "app=web", "ex2"))
    assert {p["metadata"]["labels"]["env"] for p in running} == {"dev"}
    assert {p["spec"]["containers"][0]["image"] for p in running} == {"nginx:1.16.1"}
    history = lab.kubectl.run("rollout", "history", "-n", "ex2", "deployment/example-2").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "3", "4"]
    lab.kubectl.run("rollout", "undo", "-n", "ex2", "deployment/example-2", "--to-revision=1")
    lab.kubectl.run("rollout", "status", "-n", "ex2", "deployment/example-2", "--timeout=150s", timeout=180)
    assert {p["spec"]["containers"][0]["image"] for p in live(pods(lab, "app=web", "ex2"))} == {"nginx"}


def test_pause_holds_and_resume_releases_a_rollout(example_2):
    lab = example_2
    before = {r["metadata"]["name"] for r in lab.kubectl.json("get", "rs", "-n", "ex2")["items"]}
    lab.kubectl.run("rollout", "pause", "-n", "ex2", "deployment/example-2")
    lab.kubectl.run("set", "image", "-n", "ex2", "deployment/example-2", "web=nginx:1.16.1")
    time.sleep(4)
    assert {r["metadata"]["name"] for r in lab.kubectl.json("get", "rs", "-n", "ex2")["items"]} == before
    cond = {c["type"]: c for c in lab.kubectl.json("get", "deployment", "example-2", "-n", "ex2")["status"]["conditions"]}
    assert cond["Progressing"]["reason"] == "DeploymentPaused"
    lab.kubectl.run("rollout", "resume", "-n", "ex2", "deployment/example-2")
    lab.kubectl.run("rollout", "status", "-n", "ex2", "deployment/example-2", "--timeout=150s", timeout=180)
    assert {p["spec"]["containers"][0]["image"] for p in live(pods(lab, "app=web", "ex2"))} == {"nginx:1.16.1"}


def test_broken_image_stops_at_max_unavailable_and_exceeds_deadline(example_2):
    lab = example_2
    lab.kubectl.run("patch", "-n", "ex2", "deployment/example-2", "-p", '{"spec":{"progressDeadlineSeconds":15}}')
    lab.kubectl.run("set", "image", "-n", "ex2", "deployment/example-2", "web=labctl/does-not-exist:v9")
    out = lab.kubectl.run("rollout", "status", "-n", "ex2", "deployment/example-2", "--timeout=90s",
                          check=False, timeout=120)
    assert out.returncode != 0 and "exceeded its progress deadline" in out.stderr, out.stderr
    d = lab.kubectl.json("get", "deployment", "example-2", "-n", "ex2")
    cond = {c["type"]: c for c in d["status"]["conditions"]}
    assert (cond["Progressing"]["status"], cond["Progressing"]["reason"]) == ("False", "ProgressDeadlineExceeded")
    assert d["status"]["availableReplicas"] == 3 and d["status"]["replicas"] <= 5
    lab.kubectl.run("rollout", "undo", "-n", "ex2", "deployment/example-2")
    lab.kubectl.run("rollout", "status", "-n", "ex2", "deployment/example-2", "--timeout=150s", timeout=180)


def test_restart_rolls_every_pod(example_2):
    lab = example_2
    before = {p["metadata"]["name"] for p in live(pods(lab, "app=web", "ex2"))}
    lab.kubectl.run("rollout", "restart", "-n", "ex2", "deployment/example-2")
    lab.kubectl.run("rollout", "status", "-n", "ex2", "deployment/example-2", "--timeout=150s", timeout=180)
    assert not before & {p["metadata"]["name"] for p in live(pods(lab, "app=web", "ex2"))}


# -- garbage collector ---------------------------------------------------------------------

def test_delete_deployment_cascades_and_orphan_keeps(lab):
    """Counts only: ReplicaSets and pods go (or stay) whether or not pods run."""
    lab.kubectl.run("create", "namespace", "gc")
    deploy = course_deployment()
    apply(lab, deploy, namespace="gc")
    wait_for(lambda: len(pods(lab, "app=web", "gc")) == 4, what="4 pods")
    lab.kubectl.run("delete", "-n", "gc", "deployment", "example-2", "--cascade=orphan")
    time.sleep(3)
    rss = lab.kubectl.json("get", "rs", "-n", "gc")["items"]
    assert len(rss) == 1 and not rss[0]["metadata"].get("ownerReferences")
    assert len(live(pods(lab, "app=web", "gc"))) == 4
    # adopted again by a new Deployment with the same selector and template
    apply(lab, deploy, namespace="gc")
    wait_for(lambda: (lab.kubectl.json("get", "rs", "-n", "gc")["items"][0]["metadata"].get("ownerReferences")),
             what="the orphaned ReplicaSet to be adopted")
    assert len(lab.kubectl.json("get", "rs", "-n", "gc")["items"]) == 1
    lab.kubectl.run("delete", "-n", "gc", "deployment", "example-2")
    wait_for(lambda: not lab.kubectl.json("get", "rs", "-n", "gc")["items"] and not live(pods(lab, "app=web", "gc")),
             what="ReplicaSets and pods to be collected")


# -- node lifecycle ------------------------------------------------------------------------

def node_ready(lab, node: str) -> str:
    n = lab.kubectl.json("get", "node", node)
    return next((c["status"] for c in n["status"].get("conditions", []) if c["type"] == "Ready"), "")


def test_stopped_worker_goes_not_ready_and_its_pods_move(kubelet):
    lab = kubelet
    lab.kubectl.run("create", "namespace", "nl")
    deploy = course_deployment()
    deploy["spec"]["minReadySeconds"] = 0
    deploy["spec"]["replicas"] = 6
    apply(lab, deploy, namespace="nl")
    lab.kubectl.run("rollout", "status", "-n", "nl", "deployment/example-2", "--timeout=120s", timeout=150)
    on_worker2 = {p["metadata"]["name"] for p in pods(lab, "app=web", "nl") if p["spec"]["nodeName"] == "worker2"}
    assert on_worker2, "the scheduler spread no pod onto worker2"
    subprocess.run(["docker", "stop", "-t", "2", f"{lab.name}-worker2"], check=True, capture_output=True)
    try:
        stopped = time.monotonic()
        wait_for(lambda: node_ready(lab, "worker2") == "Unknown", timeout=40, what="worker2 Ready=Unknown")
        went_unknown = time.monotonic() - stopped
        taints = {(t["key"], t["effect"]) for t in lab.kubectl.json("get", "node", "worker2")["spec"].get("taints", [])}
        assert {("node.kubernetes.io/unreachable", "NoSchedule"), ("node.kubernetes.io/unreachable", "NoExecute")} <= taints

        def moved():
            now = live(pods(lab, "app=web", "nl"))
            ready_elsewhere = [p for p in now if p["spec"].get("nodeName") != "worker2" and is_ready(p)]
            return len(ready_elsewhere) == 6 and not on_worker2 & {p["metadata"]["name"] for p in now}

        wait_for(moved, timeout=90, what="worker2's pods to be recreated on the other nodes")
        moved_after = time.monotonic() - stopped
        print(f"worker2 NotReady after {went_unknown:.1f}s, pods replaced after {moved_after:.1f}s")
    finally:
        subprocess.run(["docker", "start", f"{lab.name}-worker2"], check=True, capture_output=True)
    wait_for(lambda: node_ready(lab, "worker2") == "True", timeout=90, what="worker2 Ready again")
    wait_for(lambda: not {t["key"] for t in lab.kubectl.json("get", "node", "worker2")["spec"].get("taints", [])}
             & {"node.kubernetes.io/unreachable"}, timeout=30, what="the unreachable taints to go")
    wait_for(lambda: not [p for p in pods(lab, "app=web", "nl") if p["metadata"]["name"] in on_worker2],
             timeout=90, what="the evicted pods to be finalized by worker2's returning kubelet")
