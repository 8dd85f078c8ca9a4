"""Issue 5's acceptance in a real lab: ReplicaSet, Deployment, garbage collector, node lifecycle.

One lab (1 control plane + 2 workers, nodeMonitorGracePeriod 8 s, podEvictionTimeout 10 s)
for the module, the real kubectl, the course's manifests; the node agents run the kubelet.
Every test makes what it needs in a namespace of its own, so they pass in any order.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from labctl.client.waiting import wait_for
from labctl.cluster.scratch import unique_name
from labctl.clusterconfig import NODE_CONFIG_PATH, NodeConfig
from labctl.controllers.context import NODE_MONITOR_PERIOD_SECONDS as MONITOR

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

COURSE = Path(__file__).resolve().parents[2] / "exercises" / "course"
#: example-2: 4 replicas, maxSurge 25% (rounds up: 1), maxUnavailable 25% (rounds down: 1)
REPLICAS, MAX_SURGE, MAX_UNAVAILABLE = 4, 1, 1


def manifest(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((COURSE / name).read_text()) if d]


def course_deployment() -> dict:
    """example-2 from the course, unchanged (its ``image: nginx`` runs through the lab's alias)."""
    return manifest("rolling-update-example-2.yaml")[0]


def apply(lab, *objs: dict, namespace: str) -> None:
    lab.kubectl.run("apply", "-n", namespace, "-f", "-",
                    input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def live(pods: list[dict]) -> list[dict]:
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def pods(lab, selector: str, namespace: str) -> list[dict]:
    return lab.kubectl.json("get", "pods", "-n", namespace, "-l", selector)["items"]


@pytest.fixture(scope="module")
def kubelet(lab):
    """The lab, named for what these tests need from it: nodes whose agents run pods."""
    return lab


@pytest.fixture
def namespace(kubelet):
    """A namespace of the test's own; deleted afterwards with everything in it."""
    name = unique_name("ns")
    kubelet.kubectl.run("create", "namespace", name)
    yield name
    kubelet.kubectl.run("delete", "namespace", name, "--wait=false", check=False)


# -- ReplicaSet ----------------------------------------------------------------------------

def test_replicaset_example_1(kubelet, namespace):
    lab, ns = kubelet, namespace
    rs = manifest("replicaset-example-1.yaml")[0]
    apply(lab, rs, namespace=ns)

    def settled(count: int):
        status = lab.kubectl.json("get", "rs", "example-1", "-n", ns).get("status", {})
        running = [p for p in live(pods(lab, "app=web", ns)) if is_ready(p)]
        ok = (len(live(pods(lab, "app=web", ns))) == count and len(running) == count
              and status.get("availableReplicas") == count and status.get("readyReplicas") == count)
        return (status, running) if ok else None

    status, running = wait_for(lambda: settled(4), what="4 available pods of example-1")
    assert status["replicas"] == 4 and status["fullyLabeledReplicas"] == 4
    assert len({p["status"]["podIP"] for p in running}) == 4, "each pod has its own IP"
    assert all(p["metadata"]["name"].startswith("example-1-") for p in running)
    owner = running[0]["metadata"]["ownerReferences"][0]
    assert owner["kind"] == "ReplicaSet" and owner["controller"] and owner["blockOwnerDeletion"]

    victim = running[0]
    lab.kubectl.run("delete", "pod", "-n", ns, victim["metadata"]["name"], "--wait=false")
    _, after = wait_for(lambda: settled(4), what="a replacement pod")
    new = [p for p in after if p["metadata"]["name"] not in {q["metadata"]["name"] for q in running}]
    assert len(new) == 1 and new[0]["status"]["podIP"] != victim["status"]["podIP"]

    lab.kubectl.run("scale", "rs", "example-1", "-n", ns, "--replicas=6")
    status, _ = wait_for(lambda: settled(6), what="6 pods")
    lab.kubectl.run("scale", "rs", "example-1", "-n", ns, "--replicas=2")
    status, _ = wait_for(lambda: settled(2), what="2 pods")
    rs_now = lab.kubectl.json("get", "rs", "example-1", "-n", ns)
    assert status["replicas"] == 2 and status["observedGeneration"] == rs_now["metadata"]["generation"]
    out = lab.kubectl.run("get", "rs", "example-1", "-n", ns).stdout.split("\n")[1].split()
    assert out[1:4] == ["2", "2", "2"], out  # DESIRED CURRENT READY

    lab.kubectl.run("delete", "rs", "example-1", "-n", ns)
    wait_for(lambda: not live(pods(lab, "app=web", ns)), what="the ReplicaSet's pods to be collected")


# -- Deployment ----------------------------------------------------------------------------

class Recorder:
    """``kubectl get … --watch`` in the background; keeps every object version it printed."""

    def __init__(self, lab, *args: str) -> None:
        self.what = " ".join(args)
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

    def wait_listed(self) -> None:
        """kubectl lists before it watches (from the list's resourceVersion): once the first
        object is printed, every later change is on its way."""
        wait_for(lambda: self.events, timeout=30, interval=0.1, what=f"kubectl get {self.what} to list")

    def stop(self) -> list[tuple[float, dict]]:
        self.proc.terminate()
        self.proc.wait(10)
        return self.events


def replay(events: list[tuple[float, dict]]):
    """Each moment's set of objects by name, after applying every watch event in order."""
    state: dict[str, dict] = {}
    for _, event in events:
        obj = event["object"]
        if event["type"] == "DELETED":
            state.pop(obj["metadata"]["name"], None)
        else:
            state[obj["metadata"]["name"]] = obj
        yield dict(state)


def rollout_status(lab, ns: str, timeout: int = 150, check: bool = True) -> subprocess.CompletedProcess:
    return lab.kubectl.run("rollout", "status", "-n", ns, "deployment/example-2", f"--timeout={timeout}s",
                           timeout=timeout + 30, check=check)


def rollout_finished(deploy: dict) -> bool:
    """The Deployment's status says what ``rollout status`` waits for."""
    status = deploy.get("status") or {}
    return (status.get("observedGeneration") == deploy["metadata"]["generation"]
            and status.get("updatedReplicas") == status.get("replicas") == status.get("availableReplicas") == REPLICAS)


@pytest.fixture
def example_2(kubelet, namespace):
    """The course's example-2 at revision 1 (nginx, env=dev), 4 pods available, in the test's namespace."""
    apply(kubelet, course_deployment(), namespace=namespace)
    rollout_status(kubelet, namespace, timeout=120)
    return kubelet, namespace


def rollout(lab, ns: str, change: Callable[[], object]) -> dict[str, list]:
    """Make ``change`` and wait for ``rollout status`` while recording pods, ReplicaSets and the Deployment."""
    recorders = {"pods": Recorder(lab, "pods", "-n", ns, "-l", "app=web"),
                 "replicasets": Recorder(lab, "replicasets", "-n", ns, "-l", "app=web"),
                 "deployment": Recorder(lab, "deployment", "example-2", "-n", ns)}
    try:
        for rec in recorders.values():
            rec.wait_listed()
        change()
        done = rollout_status(lab, ns)
        assert "successfully rolled out" in done.stdout
        dep = recorders["deployment"]
        wait_for(lambda: rollout_finished(dep.events[-1][1]["object"]), timeout=30, interval=0.1,
                 what="the recorded Deployment to show the finished rollout")
    finally:
        events = {kind: rec.stop() for kind, rec in recorders.items()}
    return events


def assert_rolling_bounds(events: dict[str, list]) -> None:
    """What Kubernetes' deployment controller guarantees during a rolling update — and no more.

    * the ReplicaSets' ``spec.replicas`` never sum above replicas + maxSurge (``NewRSNewReplicas``
      counts spec.replicas) — and reach it: the new RS starts at maxSurge next to the full old one;
    * the Deployment's ``availableReplicas`` never drops below replicas - maxUnavailable (old RSs
      shrink only by the surplus of available pods), and neither do the Ready pods.

    Not guaranteed, so not asserted: ``status.replicas`` or the count of non-terminating pods
    ≤ replicas + maxSurge. Each ReplicaSet's status counts the pods it saw *before* its own
    creations and deletions, and the old and the new RS are synced independently, so for a
    moment the old RS may still report a pod its controller is deleting while the new RS
    already reports the one that replaces it (docs/controllers.md, "What the bounds bound").
    """
    assert events["pods"] and events["replicasets"] and events["deployment"]
    totals = [sum(r["spec"]["replicas"] for r in moment.values()) for moment in replay(events["replicasets"])]
    assert max(totals) == REPLICAS + MAX_SURGE, f"ReplicaSet spec.replicas sums over time: {totals}"
    moments = list(replay(events["pods"]))
    # the watch starts with one ADDED per existing pod: judge from the first complete picture
    start = next(i for i, m in enumerate(moments) if sum(1 for p in live(list(m.values())) if is_ready(p)) >= REPLICAS)
    for moment in moments[start:]:
        ready = sorted(p["metadata"]["name"] for p in live(list(moment.values())) if is_ready(p))
        assert len(ready) >= REPLICAS - MAX_UNAVAILABLE, f"fewer than replicas-maxUnavailable Ready pods: {ready}"
    for _, event in events["deployment"]:
        status = event["object"].get("status", {})
        assert status.get("availableReplicas", 0) >= REPLICAS - MAX_UNAVAILABLE, status


def set_image(lab, ns: str, image: str) -> None:
    """``kubectl set image`` to a new revision, recording its cause as the course does (annotate after)."""
    lab.kubectl.run("set", "image", "-n", ns, "deployment/example-2", f"web={image}")
    rollout_status(lab, ns)
    lab.kubectl.run("annotate", "-n", ns, "deployment/example-2", f"kubernetes.io/change-cause={image}", "--overwrite")
    wait_for(lambda: [r for r in history(lab, ns) if r[1:] == [image]],
             what=f"the change-cause {image} on its ReplicaSet")


def history(lab, ns: str) -> list[list[str]]:
    """``kubectl rollout history`` as [revision, change-cause] rows."""
    out = lab.kubectl.run("rollout", "history", "-n", ns, "deployment/example-2").stdout
    return [line.split(None, 1) for line in out.splitlines()[2:] if line.strip()]


def env_qa_deployment() -> dict:
    """example-2 with a changed template (label env=qa, nginx:1.16.1) and its change-cause in the manifest."""
    deploy = course_deployment()
    deploy["metadata"]["annotations"]["kubernetes.io/change-cause"] = "env=qa"
    deploy["spec"]["template"]["metadata"]["labels"]["env"] = "qa"
    deploy["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.16.1"
    return deploy


def test_set_image_rolls_out_within_surge_and_unavailable(example_2):
    lab, ns = example_2
    events = rollout(lab, ns, lambda: lab.kubectl.run("set", "image", "-n", ns, "deployment/example-2",
                                                      "web=nginx:1.16.1"))
    assert_rolling_bounds(events)
    images = {p["spec"]["containers"][0]["image"] for p in live(pods(lab, "app=web", ns))}
    assert images == {"nginx:1.16.1"}
    d = lab.kubectl.json("get", "deployment", "example-2", "-n", ns)
    assert {k: d["status"][k] for k in ("replicas", "updatedReplicas", "readyReplicas", "availableReplicas")} == {
        "replicas": 4, "updatedReplicas": 4, "readyReplicas": 4, "availableReplicas": 4}
    assert d["status"]["observedGeneration"] == d["metadata"]["generation"]
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    rss = lab.kubectl.json("get", "rs", "-n", ns, "-l", "app=web")["items"]
    assert len(rss) == 2 and all(r["metadata"]["name"] == f"example-2-{r['metadata']['labels']['pod-template-hash']}"
                                 for r in rss)


def test_apply_of_changed_template_rolls_out_and_history_lists_change_causes(example_2):
    lab, ns = example_2
    set_image(lab, ns, "nginx:1.16.1")  # revision 2
    events = rollout(lab, ns, lambda: apply(lab, env_qa_deployment(), namespace=ns))
    assert_rolling_bounds(events)
    assert {p["metadata"]["labels"]["env"] for p in live(pods(lab, "app=web", ns))} == {"qa"}
    assert history(lab, ns) == [["1", "nginx"], ["2", "nginx:1.16.1"], ["3", "env=qa"]]


def test_undo_restores_the_previous_template(example_2):
    lab, ns = example_2
    set_image(lab, ns, "nginx:1.16.1")  # revision 2
    apply(lab, env_qa_deployment(), namespace=ns)  # revision 3
    rollout_status(lab, ns)
    lab.kubectl.run("rollout", "undo", "-n", ns, "deployment/example-2")
    rollout_status(lab, ns)
    running = live(pods(lab, "app=web", ns))
    assert {p["metadata"]["labels"]["env"] for p in running} == {"dev"}
    assert {p["spec"]["containers"][0]["image"] for p in running} == {"nginx:1.16.1"}
    assert [row[0] for row in history(lab, ns)] == ["1", "3", "4"]  # revision 2's RS is revision 4 now
    lab.kubectl.run("rollout", "undo", "-n", ns, "deployment/example-2", "--to-revision=1")
    rollout_status(lab, ns)
    assert {p["spec"]["containers"][0]["image"] for p in live(pods(lab, "app=web", ns))} == {"nginx"}


def test_pause_holds_and_resume_releases_a_rollout(example_2):
    lab, ns = example_2
    before = {r["metadata"]["name"] for r in lab.kubectl.json("get", "rs", "-n", ns)["items"]}
    lab.kubectl.run("rollout", "pause", "-n", ns, "deployment/example-2")
    lab.kubectl.run("set", "image", "-n", ns, "deployment/example-2", "web=nginx:1.16.1")

    def seen_while_paused():
        d = lab.kubectl.json("get", "deployment", "example-2", "-n", ns)
        cond = {c["type"]: c for c in d["status"].get("conditions", [])}.get("Progressing", {})
        observed = d["status"].get("observedGeneration") == d["metadata"]["generation"]
        return observed and cond.get("reason") == "DeploymentPaused"

    wait_for(seen_while_paused, what="the controller to observe the new template while paused")
    assert {r["metadata"]["name"] for r in lab.kubectl.json("get", "rs", "-n", ns)["items"]} == before
    lab.kubectl.run("rollout", "resume", "-n", ns, "deployment/example-2")
    rollout_status(lab, ns)
    assert {p["spec"]["containers"][0]["image"] for p in live(pods(lab, "app=web", ns))} == {"nginx:1.16.1"}


def test_broken_image_stops_at_max_unavailable_and_exceeds_deadline(example_2):
    lab, ns = example_2
    lab.kubectl.run("patch", "-n", ns, "deployment/example-2", "-p", '{"spec":{"progressDeadlineSeconds":15}}')
    lab.kubectl.run("set", "image", "-n", ns, "deployment/example-2", "web=labctl/does-not-exist:v9")
    out = rollout_status(lab, ns, timeout=90, check=False)
    assert out.returncode != 0 and "exceeded its progress deadline" in out.stderr, out.stderr
    d = lab.kubectl.json("get", "deployment", "example-2", "-n", ns)
    cond = {c["type"]: c for c in d["status"]["conditions"]}
    assert (cond["Progressing"]["status"], cond["Progressing"]["reason"]) == ("False", "ProgressDeadlineExceeded")
    # stuck where Kubernetes stops: old 3 (replicas - maxUnavailable) + new 2 (up to replicas + maxSurge)
    sizes = sorted(r["spec"]["replicas"] for r in lab.kubectl.json("get", "rs", "-n", ns, "-l", "app=web")["items"])
    assert sizes == [2, 3] and d["status"]["availableReplicas"] == 3, (sizes, d["status"])
    lab.kubectl.run("rollout", "undo", "-n", ns, "deployment/example-2")
    rollout_status(lab, ns)


def test_restart_rolls_every_pod(example_2):
    lab, ns = example_2
    before = {p["metadata"]["name"] for p in live(pods(lab, "app=web", ns))}
    lab.kubectl.run("rollout", "restart", "-n", ns, "deployment/example-2")
    rollout_status(lab, ns)
    assert not before & {p["metadata"]["name"] for p in live(pods(lab, "app=web", ns))}


# -- garbage collector ---------------------------------------------------------------------

def test_delete_deployment_cascades_and_orphan_keeps(lab, namespace):
    """Counts only: ReplicaSets and pods go (or stay) whether or not pods run."""
    ns = namespace
    deploy = course_deployment()
    apply(lab, deploy, namespace=ns)
    wait_for(lambda: len(pods(lab, "app=web", ns)) == 4, what="4 pods")
    lab.kubectl.run("delete", "-n", ns, "deployment", "example-2", "--cascade=orphan")

    def orphaned():
        rss = lab.kubectl.json("get", "rs", "-n", ns)["items"]
        gone = not lab.kubectl.json("get", "deployments", "-n", ns)["items"]
        return gone and len(rss) == 1 and not rss[0]["metadata"].get("ownerReferences")

    wait_for(orphaned, what="the Deployment gone and its ReplicaSet orphaned")
    assert len(live(pods(lab, "app=web", ns))) == 4
    # adopted again by a new Deployment with the same selector and template
    apply(lab, deploy, namespace=ns)
    wait_for(lambda: (lab.kubectl.json("get", "rs", "-n", ns)["items"][0]["metadata"].get("ownerReferences")),
             what="the orphaned ReplicaSet to be adopted")
    assert len(lab.kubectl.json("get", "rs", "-n", ns)["items"]) == 1
    lab.kubectl.run("delete", "-n", ns, "deployment", "example-2")
    wait_for(lambda: not lab.kubectl.json("get", "rs", "-n", ns)["items"] and not live(pods(lab, "app=web", ns)),
             what="ReplicaSets and pods to be collected")


# -- node lifecycle ------------------------------------------------------------------------

def node_conditions(lab, node: str) -> dict[str, dict]:
    n = lab.kubectl.json("get", "node", node)
    return {c["type"]: c for c in n["status"].get("conditions", [])}


def node_ready(lab, node: str) -> str:
    return node_conditions(lab, node).get("Ready", {}).get("status", "")


def slice_conditions(lab, ns: str, service: str) -> dict[str, dict]:
    """Endpoint IP → its conditions, over every EndpointSlice of ``service`` (what kube-proxy reads)."""
    slices = lab.kubectl.json("get", "endpointslices", "-n", ns, "-l", f"kubernetes.io/service-name={service}")
    return {e["addresses"][0]: e.get("conditions") or {} for s in slices["items"] for e in s.get("endpoints") or []}


def proxied_backends(lab, node: str, ns: str, service: str) -> set[str]:
    """The backend IPs ``node``'s proxy sends ``service``'s new connections to (its KUBE-SVC rules)."""
    nat = lab.exec(node, "iptables-save", "-t", "nat").stdout
    prefix = f'--comment "{ns}/{service}'
    return {line.split(" -> ")[1].split(":")[0] for line in nat.splitlines()
            if line.startswith("-A KUBE-SVC-") and prefix in line and " -> " in line}


def test_stopped_worker_goes_not_ready_and_its_pods_move(kubelet, namespace):
    lab, ns = kubelet, namespace
    lifecycle = NodeConfig.loads(lab.exec("control-plane", "cat", str(NODE_CONFIG_PATH)).stdout).cluster.lifecycle
    deploy = course_deployment()
    deploy["spec"]["minReadySeconds"] = 0
    deploy["spec"]["replicas"] = 6
    apply(lab, deploy, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80}]}}, namespace=ns)
    rollout_status(lab, ns, timeout=120)
    running = pods(lab, "app=web", ns)
    on_worker2 = {p["metadata"]["name"] for p in running if p["spec"]["nodeName"] == "worker2"}
    ips_on_worker2 = {p["status"]["podIP"] for p in running if p["spec"]["nodeName"] == "worker2"}
    assert on_worker2, "the scheduler spread no pod onto worker2"
    wait_for(lambda: ips_on_worker2 <= proxied_backends(lab, "worker", ns, "web"), timeout=30,
             what="worker's proxy to send to worker2's pods")
    subprocess.run(["docker", "stop", "-t", "2", f"{lab.name}-worker2"], check=True, capture_output=True)
    try:
        stopped = time.monotonic()
        wait_for(lambda: node_ready(lab, "worker2") == "Unknown", timeout=40, what="worker2 Ready=Unknown")
        went_unknown = time.monotonic() - stopped

        # MarkPodsNotReady: worker2's pods leave the endpoints with the node, not at eviction
        def not_ready_in_slices() -> bool:
            conditions = slice_conditions(lab, ns, "web")
            return all(conditions.get(ip, {}).get("ready") is False for ip in ips_on_worker2)

        wait_for(not_ready_in_slices, timeout=20, interval=0.2, what="worker2's endpoints ready=false")
        left_after = time.monotonic() - stopped
        assert all(conditions.get("terminating") is not True for ip, conditions in
                   slice_conditions(lab, ns, "web").items() if ip in ips_on_worker2), "not evicted yet, only not Ready"
        assert left_after < lifecycle.node_monitor_grace_seconds + 2 * MONITOR + 3, \
            f"worker2's endpoints not Ready only {left_after:.1f}s after the stop"
        assert left_after < lifecycle.node_monitor_grace_seconds + lifecycle.pod_eviction_timeout_seconds
        wait_for(lambda: not ips_on_worker2 & proxied_backends(lab, "worker", ns, "web"), timeout=5, interval=0.2,
                 what="worker's proxy to stop sending to worker2's pods")
        # node lifecycle's Unknown on every condition the kubelet owns, and nothing else
        assert {(c["status"], c["reason"]) for c in node_conditions(lab, "worker2").values()} == {
            ("Unknown", "NodeStatusUnknown")}
        taints = {(t["key"], t["effect"]) for t in lab.kubectl.json("get", "node", "worker2")["spec"].get("taints", [])}
        unreachable = "node.kubernetes.io/unreachable"
        assert {(unreachable, "NoSchedule"), (unreachable, "NoExecute")} <= taints

        def moved():
            now = live(pods(lab, "app=web", ns))
            ready_elsewhere = [p for p in now if p["spec"].get("nodeName") != "worker2" and is_ready(p)]
            return len(ready_elsewhere) == 6 and not on_worker2 & {p["metadata"]["name"] for p in now}

        wait_for(moved, timeout=90, what="worker2's pods to be recreated on the other nodes")
        moved_after = time.monotonic() - stopped
        print(f"worker2 NotReady after {went_unknown:.1f}s, its endpoints not ready after {left_after:.1f}s, "
              f"pods replaced after {moved_after:.1f}s")
    finally:
        subprocess.run(["docker", "start", f"{lab.name}-worker2"], check=True, capture_output=True)
    wait_for(lambda: node_ready(lab, "worker2") == "True", timeout=90, what="worker2 Ready again")
    assert node_conditions(lab, "worker2")["Ready"]["reason"] == "KubeletReady", "Ready is the kubelet's to post"
    wait_for(lambda: not {t["key"] for t in lab.kubectl.json("get", "node", "worker2")["spec"].get("taints", [])}
             & {"node.kubernetes.io/unreachable"}, timeout=30, what="the unreachable taints to go")
    wait_for(lambda: not [p for p in pods(lab, "app=web", ns) if p["metadata"]["name"] in on_worker2],
             timeout=90, what="the evicted pods to be finalized by worker2's returning kubelet")
