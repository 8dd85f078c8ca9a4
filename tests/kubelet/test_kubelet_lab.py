"""The kubelet role in a real lab: issue 4's acceptance, with the real kubectl and Docker.

One lab for the whole module. The module fixture creates the four course pods, which the
tests only read, and the slow scenarios (crash loop back-off, a failing readiness probe, an
unpullable image), so their clocks run while other tests do their work; every check waits
for the state it reads. A test that kills, deletes or restarts something does it to pods of
its own, so the tests pass in any order.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess

import pytest

from labctl.client.waiting import wait_for as _wait_for

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

WORKERS = ("worker", "worker2")
WEB_PODS = [f"web-{i}" for i in range(1, 5)]


def course_pod(name: str, node: str) -> dict:
    """A bare pod from the course ReplicaSet's template (exercises/course/replicaset-example-1.yaml)."""
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "web", "env": "dev"}},
            "spec": {"nodeName": node, "containers": [{
                "name": "nginx", "image": "nginx:1.14.2", "ports": [{"containerPort": 80}],
                "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}}}]}}


def bare_pod(name: str, node: str, **container) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 2,
                     "containers": [{"name": "app", "image": "labctl/web:v1", **container}]}}


def apply(lab, *objs: dict) -> None:
    lab.kubectl.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def get_pod(lab, name: str) -> dict:
    return lab.kubectl.json("get", "pod", name)



def wait_for(check, timeout: float = 60, interval: float = 0.5, what: str = ""):
    return _wait_for(check, timeout, interval, what)


def is_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def ready_pods(lab, *names: str, timeout: float = 90) -> dict[str, dict]:
    """Wait until every pod in ``names`` is Ready; name -> pod."""
    def all_ready() -> dict[str, dict] | None:
        pods = {n: get_pod(lab, n) for n in names}
        return pods if all(is_ready(p) for p in pods.values()) else None
    return wait_for(all_ready, timeout=timeout, what=f"{', '.join(names)} Ready")


def docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)


def app_container(lab, pod: str, container: str = "nginx") -> str:
    out = docker("ps", "-q", "--filter", f"label=io.labctl.cluster={lab.name}",
                 "--filter", f"label=io.kubernetes.pod.name={pod}",
                 "--filter", f"label=io.kubernetes.container.name={container}").stdout.split()
    assert out, f"no running container {container!r} of pod {pod!r}"
    return out[0]


@pytest.fixture(scope="module")
def kl(lab):
    """The lab (its node agents run the kubelet), the slow scenarios started, and the four course pods."""
    never = bare_pod("noexec-never", "worker", command=["no-such-binary"])
    never["spec"]["restartPolicy"] = "Never"
    apply(lab,
          bare_pod("crash", "worker", command=["sh", "-c", "echo bye; exit 3"]),
          bare_pod("unready", "worker2", readinessProbe={"tcpSocket": {"port": 81}, "periodSeconds": 1}),
          bare_pod("noimage", "worker2", image="example.invalid/nothing:1.0"),
          bare_pod("noexec", "worker2", command=["no-such-binary"]),
          never,
          *[course_pod(name, WORKERS[i % 2]) for i, name in enumerate(WEB_PODS)])
    try:
        yield lab
    finally:
        # stop the nodes (and so the kubelets) first: a live kubelet re-creates the pod
        # containers `labctl down` removes, and they would outlive the lab
        subprocess.run(["docker", "kill", *(f"{lab.name}-{n}" for n in ("control-plane", *WORKERS))],
                       capture_output=True, timeout=60)


def test_course_pods_run_ready_with_distinct_ips_in_their_nodes_pod_cidr(kl):
    pods = list(ready_pods(kl, *WEB_PODS).values())
    cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in kl.kubectl.json("get", "nodes")["items"]}
    ips = set()
    for pod in pods:
        status = pod["status"]
        assert status["phase"] == "Running"
        assert ipaddress.ip_address(status["podIP"]) in ipaddress.ip_network(cidrs[pod["spec"]["nodeName"]])
        assert status["podIPs"] == [{"ip": status["podIP"]}] and status["hostIP"] and status["startTime"]
        cs = status["containerStatuses"][0]
        assert cs["ready"] and cs["restartCount"] == 0 and cs["containerID"].startswith("docker://")
        assert cs["imageID"] and "running" in cs["state"]
        ips.add(status["podIP"])
    assert len(ips) == 4
    assert {p["spec"]["nodeName"] for p in pods} == set(WORKERS)


def test_alias_is_used_and_said_in_events_and_limits_are_applied(kl):
    ready_pods(kl, "web-1")
    events = kl.kubectl.json("get", "events", "--field-selector", "involvedObject.name=web-1")["items"]
    assert any(e["reason"] == "Pulled" and 'using the lab\'s image alias "labctl/nginx:v1"' in e["message"]
               for e in events), [e["message"] for e in events]
    info = json.loads(docker("inspect", app_container(kl, "web-1")).stdout)[0]
    assert info["Config"]["Image"] == "labctl/nginx:v1"
    assert info["HostConfig"]["Memory"] == 128 * 2**20
    assert info["HostConfig"]["CpuQuota"] == 50000 and info["HostConfig"]["CpuPeriod"] == 100000
    assert info["HostConfig"]["NetworkMode"].startswith("container:")


def test_pods_reach_each_other_across_nodes_without_nat(kl):
    pods = ready_pods(kl, *WEB_PODS)
    a, b = pods["web-1"], pods["web-2"]  # web-1 on worker, web-2 on worker2
    assert a["spec"]["nodeName"] != b["spec"]["nodeName"]
    a_id, b_id = app_container(kl, "web-1"), app_container(kl, "web-2")
    for target in pods.values():
        ping = docker("exec", a_id, "ping", "-c", "1", "-W", "2", target["status"]["podIP"])
        assert ping.returncode == 0, ping.stdout + ping.stderr
    got = docker("exec", a_id, "sh", "-c", f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {b['status']['podIP']} 80")
    assert f"ip={b['status']['podIP']}" in got.stdout
    # hold a TCP connection open from A and look at it from B: the peer is A's own pod IP
    subprocess.run(["docker", "exec", "-d", a_id, "sh", "-c", f"sleep 6 | nc {b['status']['podIP']} 80"], check=True)
    peers = wait_for(lambda: established_peers(docker("exec", b_id, "cat", "/proc/net/tcp").stdout, 80), timeout=10,
                     what="the TCP connection on B")
    assert a["status"]["podIP"] in peers


def established_peers(proc_net_tcp: str, port: int) -> list[str]:
    """The remote IPv4 addresses of ESTABLISHED connections to local ``port`` (``/proc/net/tcp``: the
    image may have no netstat)."""
    peers = []
    for line in proc_net_tcp.splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if state == "01" and int(local.split(":")[1], 16) == port:
            peers.append(str(ipaddress.IPv4Address(bytes.fromhex(remote.split(":")[0])[::-1])))
    return peers


def test_node_shows_bridge_veths_and_host_gw_routes(kl):
    ready_pods(kl, "web-1")  # a pod on worker: its veth is on the bridge
    nodes = {n["metadata"]["name"]: n for n in kl.kubectl.json("get", "nodes")["items"]}
    routes = kl.exec("worker", "ip", "route").stdout
    other = nodes["worker2"]
    internal = next(a["address"] for a in other["status"]["addresses"] if a["type"] == "InternalIP")
    assert f"{other['spec']['podCIDR']} via {internal}" in routes
    assert f"{nodes['worker']['spec']['podCIDR']} dev cni0" in routes
    assert "master cni0" in kl.exec("worker", "bridge", "link").stdout
    assert "bridge" in kl.exec("worker", "ip", "-d", "link", "show", "cni0").stdout


def test_killed_app_container_is_restarted(kl):
    apply(kl, course_pod("killed", "worker2"))
    ready_pods(kl, "killed")
    docker("kill", app_container(kl, "killed"))
    pod = wait_for(lambda: (p := get_pod(kl, "killed"))["status"]["containerStatuses"][0]["restartCount"] == 1
                   and is_ready(p) and p, timeout=30, what="restartCount 1")
    assert pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 137


def test_set_image_on_a_pod_restarts_its_container_with_the_new_image(kl):
    """``kubectl set image pod/...``: the kubelet sees the definition changed and restarts the container."""
    apply(kl, bare_pod("reimaged", "worker"))
    ready_pods(kl, "reimaged")
    assert kl.kubectl.run("set", "image", "pod/reimaged", "app=labctl/web:v2").stdout.strip() == \
        "pod/reimaged image updated"
    pod = wait_for(lambda: (p := get_pod(kl, "reimaged"))["status"]["containerStatuses"][0]["restartCount"] == 1
                   and is_ready(p) and p, timeout=60, what="restartCount 1 with the new image")
    assert pod["status"]["containerStatuses"][0]["image"] == "labctl/web:v2"
    assert "web v2" in kl.kubectl.run("exec", "reimaged", "--", "wget", "-qO-", "127.0.0.1").stdout
    events = kl.kubectl.json("get", "events", "--field-selector", "involvedObject.name=reimaged")["items"]
    assert any(e["reason"] == "Killing" and e["message"] == "Container app definition changed, will be restarted"
               for e in events), [e["message"] for e in events]


def test_termination_message_is_the_last_states_message(kl):
    """kubernetes.io's "Determine the Reason for Pod Failure": its manifest (busybox for its debian) and go-template."""
    apply(kl, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "termination-demo"},
               "spec": {"containers": [{"name": "termination-demo-container", "image": "busybox:1.36",
                                        "command": ["/bin/sh"],
                                        "args": ["-c", "sleep 2 && echo Sleep expired > /dev/termination-log"]}]}})
    template = "{{range .status.containerStatuses}}{{.lastState.terminated.message}}{{end}}"
    wait_for(lambda: kl.kubectl.run("get", "pod", "termination-demo", "-o", f"go-template={template}").stdout
             == "Sleep expired\n", timeout=60, what="the termination message in lastState")


def test_kubectl_debug_copy_to_sees_the_copys_processes(kl):
    """``kubectl debug POD --copy-to``: a copy of the pod with a debugger container and a shared PID namespace
    (its default profile's SYS_PTRACE is refused, so the baseline profile)."""
    ready_pods(kl, "web-1")
    kl.kubectl.run("debug", "web-1", "--copy-to=web-1-copy", "--image=busybox", "--profile=baseline",
                   "--container=debugger", "--", "sleep", "3600")
    copy = ready_pods(kl, "web-1-copy")["web-1-copy"]
    assert copy["spec"]["shareProcessNamespace"] is True
    ps = kl.kubectl.run("exec", "web-1-copy", "-c", "debugger", "--", "ps", "ax").stdout
    assert "nginx: master process" in ps and "pause" in ps


def test_fallback_to_logs_on_error_puts_the_end_of_the_log_in_the_termination_message(kl):
    """kubernetes.io's "Customizing the termination message": a failing container that wrote no message
    file gets the end of its log; one that succeeds does not."""
    def pod(name: str, code: int) -> dict:  # one stream: a log keeps the order within stderr, not across both
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"nodeName": "worker2", "restartPolicy": "Never", "containers": [{
                    "name": "app", "image": "busybox", "terminationMessagePolicy": "FallbackToLogsOnError",
                    "command": ["sh", "-c", f"echo starting >&2; echo cannot open /data/db >&2; exit {code}"]}]}}
    apply(kl, pod("logs-on-error", 3), pod("logs-on-success", 0))

    def terminated(name: str) -> dict | None:
        state = (get_pod(kl, name)["status"].get("containerStatuses") or [{}])[0].get("state", {})
        return state.get("terminated")
    failed = wait_for(lambda: terminated("logs-on-error"), what="logs-on-error terminated")
    assert (failed["exitCode"], failed["message"]) == (3, "starting\ncannot open /data/db\n")
    assert "message" not in wait_for(lambda: terminated("logs-on-success"), what="logs-on-success terminated")


def test_a_missing_executable_is_a_start_error_restarted_in_the_crash_loop_back_off(kl):
    """As under containerd: the container that could not start is terminated (StartError, 128), then
    restarted at once, then after 10 s, 20 s … (``CrashLoopBackOff``), not retried every few seconds."""
    seen: set[str] = set()

    def backoffs() -> bool:
        statuses = get_pod(kl, "noexec")["status"].get("containerStatuses") or [{}]
        waiting = statuses[0].get("state", {}).get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff":
            seen.add(re.search(r"back-off (\d+)s restarting failed container=app pod=noexec_default\(",
                               waiting["message"]).group(1))
        return any(str(2 * int(d)) in seen for d in seen)

    wait_for(backoffs, timeout=90, interval=1, what="a back-off, then one twice as long (10s, 20s, 40s …)")
    status = get_pod(kl, "noexec")["status"]["containerStatuses"][0]
    assert status["restartCount"] >= 2
    last = status["lastState"]["terminated"]
    assert (last["reason"], last["exitCode"], last["startedAt"]) == ("StartError", 128, "1970-01-01T00:00:00Z")
    assert '"no-such-binary": executable file not found in $PATH' in last["message"]
    events = kl.kubectl.json("get", "events", "--field-selector", "involvedObject.name=noexec")["items"]
    failed = [e["message"] for e in events if e["reason"] == "Failed"]
    # the daemon's answer as dockershim worded it, not docker-py's URL
    assert any(m.startswith('Error: failed to start container "app": Error response from daemon: ') and
               '"no-such-binary": executable file not found in $PATH' in m and "http+docker" not in m
               for m in failed), failed
    assert any(e["reason"] == "BackOff" and e["message"].startswith("Back-off restarting failed container app in pod")
               for e in events), [e["message"] for e in events]


def test_a_start_error_with_restart_policy_never_fails_the_pod(kl):
    def failed() -> dict | None:
        pod = get_pod(kl, "noexec-never")
        return pod if pod["status"].get("phase") == "Failed" else None

    pod = wait_for(failed, timeout=60, what="noexec-never Failed")
    status = pod["status"]["containerStatuses"][0]
    assert status["restartCount"] == 0
    assert (status["state"]["terminated"]["reason"], status["state"]["terminated"]["exitCode"]) == ("StartError", 128)


def test_deleted_pod_loses_veth_ip_and_containers(kl):
    apply(kl, course_pod("deleted", "worker2"))
    pod = ready_pods(kl, "deleted")["deleted"]
    node, ip = pod["spec"]["nodeName"], pod["status"]["podIP"]
    veths_before = kl.exec(node, "bridge", "link").stdout.count("master cni0")
    assert ip in kl.exec(node, "ls", "/var/lib/cni/networks/labctl").stdout
    kl.kubectl.run("delete", "pod", "deleted", "--timeout=60s")
    assert kl.exec(node, "bridge", "link").stdout.count("master cni0") == veths_before - 1
    assert ip not in kl.exec(node, "ls", "/var/lib/cni/networks/labctl").stdout
    assert docker("ps", "-aq", "--filter", "label=io.kubernetes.pod.name=deleted",
                  "--filter", f"label=io.labctl.cluster={kl.name}").stdout.strip() == ""


def test_agent_restart_adopts_pods_and_collects_orphans(kl):
    node = "worker"
    apply(kl, course_pod("adopted", node), course_pod("orphaned", node))
    before = {n: p["status"]["podIP"] for n, p in ready_pods(kl, "adopted", "orphaned").items()}
    # kill the node agent (the kubelet runs in it); nodeinit starts a new one, as systemd would
    kl.exec(node, "sh", "-c", "kill $(cat /run/labctl/kubelet.lock)")
    # while no kubelet runs, the pod object of "orphaned" disappears at once (force delete)
    kl.kubectl.run("delete", "pod", "orphaned", "--grace-period=0", "--force")
    wait_for(lambda: docker("ps", "-aq", "--filter", "label=io.kubernetes.pod.name=orphaned", "--filter",
                            f"label=io.labctl.cluster={kl.name}").stdout.strip() == "", timeout=40,
             what="the orphan's containers collected")
    sandboxes = docker("ps", "-q", "--filter", "label=io.kubernetes.pod.name=adopted", "--filter",
                       "label=io.kubernetes.container.name=POD", "--filter",
                       f"label=io.labctl.cluster={kl.name}").stdout.split()
    assert len(sandboxes) == 1
    assert get_pod(kl, "adopted")["status"]["podIP"] == before["adopted"]
    assert before["orphaned"] not in kl.exec(node, "ls", "/var/lib/cni/networks/labctl").stdout


def test_crashing_container_goes_into_crash_loop_back_off_that_grows(kl):
    seen: set[str] = set()

    def backoffs() -> bool:
        statuses = get_pod(kl, "crash").get("status", {}).get("containerStatuses") or [{}]  # none before it starts
        waiting = statuses[0].get("state", {}).get("waiting") or {}
        if waiting.get("reason") == "CrashLoopBackOff":
            seen.add(re.search(r"back-off (\d+)s", waiting["message"]).group(1))
        # the pod crashes from the module's start: by the time this test looks it may be past 10 s
        return any(str(2 * int(d)) in seen for d in seen)

    wait_for(backoffs, timeout=90, interval=1, what="a back-off, then one twice as long (10s, 20s, 40s …)")
    pod = get_pod(kl, "crash")
    assert pod["status"]["containerStatuses"][0]["restartCount"] >= 2
    assert pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"] == 3
    reasons = {e["reason"] for e in kl.kubectl.json("get", "events", "--field-selector",
                                                    "involvedObject.name=crash")["items"]}
    assert {"Created", "Started", "BackOff"} <= reasons


def test_failing_readiness_probe_keeps_pod_not_ready(kl):
    def probe_failed() -> list[dict]:
        events = kl.kubectl.json("get", "events", "--field-selector", "involvedObject.name=unready")["items"]
        return [e for e in events if e["reason"] == "Unhealthy" and e["message"].startswith("Readiness probe failed")]

    wait_for(probe_failed, timeout=60, what="a failed readiness probe of 'unready'")
    pod = get_pod(kl, "unready")
    assert pod["status"]["phase"] == "Running" and not is_ready(pod)
    assert pod["status"]["containerStatuses"][0]["ready"] is False


def test_unknown_image_is_image_pull_back_off_naming_image_and_aliases(kl):
    def pull_waiting() -> dict | None:
        statuses = get_pod(kl, "noimage").get("status", {}).get("containerStatuses") or [{}]
        state = statuses[0].get("state", {}).get("waiting") or {}
        return state if state.get("reason") in ("ImagePullBackOff", "ErrImagePull") else None

    waiting = wait_for(pull_waiting, timeout=60, what="'noimage' waiting on its image")
    assert '"example.invalid/nothing:1.0"' in waiting["message"]
    assert "nginx:1.14.2 → labctl/nginx:v1" in waiting["message"] and "labctl images list" in waiting["message"]


def test_share_process_namespace_as_in_the_kubernetes_docs(kl):
    """kubernetes.io's "Share Process Namespace between Containers in a Pod" (its busybox shell without the
    SYS_PTRACE labctl refuses): the shell sees nginx's processes and the pod's pause process as PID 1, and
    signals nginx, which re-reads its configuration and keeps serving."""
    apply(kl, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nginx-shared"},
               "spec": {"nodeName": "worker", "shareProcessNamespace": True, "terminationGracePeriodSeconds": 0,
                        "containers": [{"name": "nginx", "image": "nginx"},
                                       {"name": "shell", "image": "busybox:1.28", "command": ["sleep", "3600"],
                                        "stdin": True, "tty": True}]}})
    ready_pods(kl, "nginx-shared")

    def processes() -> dict[int, str]:
        ps = kl.kubectl.run("exec", "nginx-shared", "-c", "shell", "--", "ps", "ax", "-o", "pid=,args=").stdout
        return {int(line.split(None, 1)[0]): line.split(None, 1)[1] for line in ps.splitlines() if line.strip()}

    before = processes()
    assert "pause" in before[1], before
    [master] = [pid for pid, args in before.items() if args.startswith("nginx: master process")]
    workers = {pid for pid, args in before.items() if args.startswith("nginx: worker process")}
    assert workers
    kl.kubectl.run("exec", "nginx-shared", "-c", "shell", "--", "kill", "-HUP", str(master))
    # a reload: the same master starts new workers and the old ones exit
    wait_for(lambda: (now := processes()).get(master, "").startswith("nginx: master process") and not workers & {
        pid for pid, args in now.items() if args.startswith("nginx: worker process")}, timeout=30,
        what="nginx's workers replaced after SIGHUP")
    # a pod without it: each container has its own PID namespace, its process is PID 1
    assert "nginx" in kl.kubectl.run("exec", "web-1", "--", "cat", "/proc/1/cmdline").stdout
