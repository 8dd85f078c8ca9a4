"""Pure parts of the kubelet role: status rules, back-off, image aliases, Docker create args."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import docker.errors
import pytest

from labctl.agent.kubelet.backoff import Backoff
from labctl.agent.kubelet.images import alias_for, offline_message, split_tag, with_default_tag
from labctl.agent.kubelet.mounter import TERMINATION_LOG_BYTES, falls_back_to_logs, last_log_chunk
from labctl.agent.kubelet.network import build_netconf, port_mappings, result_ip, wanted_routes
from labctl.agent.kubelet.podworker import definition_changed
from labctl.agent.kubelet.runtime import (
    ContainerRecord,
    PodRef,
    Runtime,
    build_container,
    build_sandbox,
    docker_epoch,
    docker_time,
    expand,
    record_from_inspect,
    resource_limits,
)
from labctl.agent.kubelet.status import ContainerView, build_pod_status, container_status, pod_phase, qos_class
from labctl.clusterconfig import ClusterConfig
from labctl.kube import containers as c

NOW = "2026-11-30T10:00:00Z"


def pod(containers: list[dict] | None = None, restart_policy: str = "Always", **status) -> dict:
    return {"metadata": {"name": "web-1", "namespace": "default", "uid": "u-1"},
            "spec": {"nodeName": "worker", "restartPolicy": restart_policy,
                     "containers": containers or [{"name": "nginx", "image": "nginx:1.14.2"}]},
            "status": status}


def rec(running: bool = True, exit_code: int = 0, attempt: int = 0, cid: str = "abc") -> ContainerRecord:
    return ContainerRecord(cid, "nginx", attempt, running, exit_code, started_at="2026-11-30T09:59:00Z",
                           finished_at="" if running else "2026-11-30T09:59:30Z", image_id="sha256:1")


# -- status --------------------------------------------------------------------------------
def test_running_ready_container_makes_a_ready_running_pod():
    status = build_pod_status(pod(), [ContainerView("nginx", "nginx:1.14.2", rec(), ready=True)],
                              pod_ip="10.244.1.2", host_ip="172.30.0.3", start_time=NOW, sandbox_ready=True, now=NOW)
    assert status["phase"] == "Running"
    assert status["podIP"] == "10.244.1.2" and status["podIPs"] == [{"ip": "10.244.1.2"}]
    assert status["hostIP"] == "172.30.0.3"
    conds = {c["type"]: c["status"] for c in status["conditions"]}
    assert conds == {"PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True",
                     "ContainersReady": "True", "PodScheduled": "True"}
    cs = status["containerStatuses"][0]
    assert cs["state"] == {"running": {"startedAt": "2026-11-30T09:59:00Z"}}
    assert cs["containerID"] == "docker://abc" and cs["imageID"] == "docker://sha256:1"
    assert cs["ready"] and cs["started"] and cs["restartCount"] == 0


def test_failing_readiness_makes_pod_not_ready_with_reason():
    status = build_pod_status(pod(), [ContainerView("nginx", "nginx", rec(), ready=False)], pod_ip="10.244.1.2",
                              host_ip="h", start_time=NOW, sandbox_ready=True, now=NOW)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "ContainersNotReady"
    assert ready["message"] == "containers with unready status: [nginx]"


def test_transition_time_is_kept_while_status_is_unchanged():
    old = [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]
    status = build_pod_status(pod(conditions=old), [ContainerView("nginx", "nginx", rec(), ready=True)],
                              pod_ip="ip", host_ip="h", start_time=NOW, sandbox_ready=True, now=NOW)
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["lastTransitionTime"] == "2026-01-01T00:00:00Z"


def test_crash_loop_shows_waiting_with_last_state_and_restart_count():
    view = ContainerView("nginx", "nginx", rec(False, 3, attempt=2), rec(False, 3, attempt=1, cid="old"),
                         "CrashLoopBackOff", "back-off 20s restarting failed container=nginx")
    cs = container_status(view)
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["exitCode"] == 3 and cs["lastState"]["terminated"]["reason"] == "Error"
    assert cs["restartCount"] == 2 and not cs["ready"]
    assert pod_phase({"restartPolicy": "Always"}, [cs]) == "Running"


def test_not_yet_created_container_is_container_creating_and_pod_pending():
    cs = container_status(ContainerView("nginx", "nginx"))
    assert cs["state"] == {"waiting": {"reason": "ContainerCreating"}}
    assert pod_phase({"restartPolicy": "Always"}, [cs]) == "Pending"


@pytest.mark.parametrize("policy,exit_code,phase", [
    ("Never", 0, "Succeeded"), ("Never", 1, "Failed"), ("OnFailure", 0, "Succeeded"), ("Always", 0, "Running"),
])
def test_phase_of_exited_containers_follows_restart_policy(policy, exit_code, phase):
    cs = container_status(ContainerView("nginx", "nginx", rec(False, exit_code)))
    assert cs["state"]["terminated"]["reason"] == ("Completed" if exit_code == 0 else "Error")
    assert pod_phase({"restartPolicy": policy}, [cs]) == phase


def test_terminal_pod_is_not_ready_with_pod_completed():
    status = build_pod_status(pod(restart_policy="Never"), [ContainerView("nginx", "nginx", rec(False, 0))],
                              pod_ip="ip", host_ip="h", start_time=NOW, sandbox_ready=False, now=NOW)
    assert status["phase"] == "Succeeded"
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["reason"] == "PodCompleted"


def test_qos_classes():
    limited = {"name": "a", "image": "i", "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}}}
    burst = {"name": "a", "image": "i", "resources": {"requests": {"cpu": "100m"}}}
    assert qos_class(pod([limited])) == "Guaranteed"
    assert qos_class(pod([burst])) == "Burstable"
    assert qos_class(pod()) == "BestEffort"


# -- back-off ------------------------------------------------------------------------------
def test_backoff_restarts_first_at_once_then_doubles_to_the_cap():
    b = Backoff(10, 40)
    assert b.remaining("k", since=100, now=101) == 0  # first crash: restart at once
    assert [b.next("k", t) for t in (101, 112, 135, 180)] == [10, 20, 40, 40]
    assert b.remaining("k", since=180, now=185) == 35
    assert b.next("k", 1000) == 10  # quiet for > 2 × max: start over


# -- images --------------------------------------------------------------------------------
ALIASES = {"nginx:latest": "labctl/web:v1", "nginx:1.14.2": "labctl/web:v1", "nginx:1.16.1": "labctl/web:v2"}


@pytest.mark.parametrize("image,alias", [
    ("nginx:1.16.1", "labctl/web:v2"), ("nginx:1.14.2", "labctl/web:v1"), ("nginx", "labctl/web:v1"),
    ("docker.io/library/nginx:1.16.1", "labctl/web:v2"), ("redis:7", None),
])
def test_alias_tries_name_and_tag_then_name(image, alias):
    assert alias_for(image, ALIASES) == alias


def test_split_tag_ignores_registry_port_and_digest():
    assert split_tag("localhost:5000/web") == ("localhost:5000/web", "")
    assert split_tag("localhost:5000/web:v1") == ("localhost:5000/web", "v1")
    assert split_tag("web@sha256:ab") == ("web", "")
    assert with_default_tag("busybox") == "busybox:latest"


def test_offline_message_names_image_and_alternatives():
    msg = offline_message("redis:7", ALIASES, "no such host")
    assert '"redis:7"' in msg and "labctl images list" in msg and "nginx:1.16.1 → labctl/web:v2" in msg


# -- Docker create arguments ---------------------------------------------------------------
def test_limits_become_memory_and_cfs_quota():
    limits = resource_limits({"resources": {"limits": {"memory": "128Mi", "cpu": "500m"}}}, ClusterConfig())
    assert limits == {"mem_limit": 128 * 2**20, "cpu_period": 100000, "cpu_quota": 50000, "cpu_shares": 512,
                      "pids_limit": ClusterConfig().pod_pids_limit}


def test_sandbox_has_dockershim_name_labels_hostname_and_no_network():
    spec = build_sandbox(pod(), ClusterConfig(name="lab"), "lab-worker")
    assert spec.name == "k8s_POD_web-1_default_u-1_0" and spec.image == "labctl/pause:latest"
    assert spec.host_config["network_mode"] == "none"
    assert "dns" not in spec.host_config  # the kubelet writes the pod's resolv.conf itself
    assert spec.labels[c.CONTAINER_NAME_LABEL] == "POD" and spec.labels[c.CONTAINER_TYPE_LABEL] == "podsandbox"
    assert spec.labels[c.POD_NODE_LABEL] == "lab-worker" and spec.labels[c.CLUSTER_LABEL] == "lab"
    assert spec.kwargs["hostname"] == "web-1"


def test_app_container_joins_sandbox_and_honours_command_args_env_workdir():
    container = {"name": "app", "image": "i", "command": ["sh", "-c"], "args": ["echo $(GREETING) $$(x)"],
                 "workingDir": "/tmp"}
    env = {"GREETING": "hi", "POD": "web-1", "IP": "10.0.0.5"}
    spec = build_container(pod([container]), container, "labctl/web:v1", "sb1", 2, ClusterConfig(name="lab"),
                           "lab-worker", env)
    assert spec.name == "k8s_app_web-1_default_u-1_2" and spec.image == "labctl/web:v1"
    assert spec.host_config["network_mode"] == "container:sb1" and spec.host_config["ipc_mode"] == "container:sb1"
    assert spec.kwargs["entrypoint"] == ["sh", "-c"] and spec.kwargs["command"] == ["echo hi $(x)"]
    assert spec.kwargs["environment"] == {"GREETING": "hi", "POD": "web-1", "IP": "10.0.0.5"}
    assert spec.kwargs["working_dir"] == "/tmp"
    assert spec.labels[c.CONTAINER_ATTEMPT_LABEL] == "2"


def test_share_process_namespace_puts_every_container_in_the_sandboxs_pid_namespace():
    container = {"name": "app", "image": "i"}
    p = pod([container])
    assert "pid_mode" not in build_container(p, container, "i", "sb1", 0, ClusterConfig(name="lab"), "lab-worker",
                                             {}).host_config  # its own, by default
    p["spec"]["shareProcessNamespace"] = True
    spec = build_container(p, container, "i", "sb1", 0, ClusterConfig(name="lab"), "lab-worker", {})
    assert spec.host_config["pid_mode"] == "container:sb1"


def test_a_container_remembers_its_spec_image_so_set_image_restarts_it():
    """The image as the spec names it (not the alias run) is a label; a later spec image differs."""
    container = {"name": "app", "image": "nginx:1.14.2"}
    spec = build_container(pod([container]), container, "labctl/nginx:v1", "sb1", 0, ClusterConfig(name="lab"),
                           "lab-worker", {})
    record = record_from_inspect({"Id": "c1", "Config": {"Labels": spec.labels}, "State": {"Running": True}})
    assert record.spec_image == "nginx:1.14.2"
    assert not definition_changed(container, record)
    assert definition_changed({**container, "image": "nginx:1.16.1"}, record)
    assert not definition_changed({**container, "image": "nginx:1.16.1"}, rec())  # made before the label: kept


def test_host_network_pod_joins_the_node_container_not_the_host():
    """The node's namespace (never ``host``); its IPC namespace stays the sandbox's."""
    container = {"name": "app", "image": "i"}
    p = pod([container])
    p["spec"]["hostNetwork"] = True
    sandbox = build_sandbox(p, ClusterConfig(name="lab"), "lab-worker")
    assert sandbox.labels[c.HOST_NETWORK_LABEL] == "true"
    spec = build_container(p, container, "i", "sb1", 0, ClusterConfig(name="lab"), "lab-worker", {})
    assert spec.host_config["network_mode"] == "container:lab-worker"
    assert spec.host_config["ipc_mode"] == "container:sb1"
    assert "binds" not in spec.host_config
    info = {"Id": "sb1", "Config": {"Labels": sandbox.labels}, "State": {"Running": True}}
    assert record_from_inspect(info).host_network
    assert not record_from_inspect({**info, "Config": {"Labels": {}}}).host_network


def test_a_container_docker_could_not_start_is_terminated_with_containerds_start_error():
    """Docker leaves it "created" forever; containerd (and so kubectl) shows it exited: StartError, 128,
    started at the epoch (``kubectl describe``: "Started: Thu, 01 Jan 1970 00:00:00 +0000")."""
    error = 'failed to create shim task: OCI runtime create failed: exec: "nope": executable file not found in $PATH'
    info = {"Id": "c1", "Created": "2026-12-07T17:43:14.465608823Z", "Config": {"Labels": {c.CONTAINER_NAME_LABEL: "app"}},
            "State": {"Status": "created", "Running": False, "ExitCode": 127, "Error": error,
                      "StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"}}
    record = record_from_inspect(info)
    assert record.exited and record.start_error and record.finished_epoch == docker_epoch(info["Created"])
    status = container_status(ContainerView("app", "i", latest=record))
    assert status["state"]["terminated"] == {
        "exitCode": 128, "reason": "StartError", "message": error, "startedAt": "1970-01-01T00:00:00Z",
        "finishedAt": "2026-12-07T17:43:14Z", "containerID": "docker://c1"}
    waiting = container_status(ContainerView("app", "i", latest=record, waiting_reason="CrashLoopBackOff"))
    assert waiting["lastState"]["terminated"]["reason"] == "StartError"
    created = record_from_inspect({**info, "State": {**info["State"], "Error": ""}})  # an agent restart between the two
    assert not created.exited and not created.start_error


def test_expand_leaves_unknown_references():
    assert expand("$(A)-$(B)", {"A": "1"}) == "1-$(B)"


def test_docker_times():
    assert docker_time("2026-11-30T10:00:00.123456789Z") == "2026-11-30T10:00:00Z"
    assert docker_time("0001-01-01T00:00:00Z") == ""
    assert docker_epoch("2026-11-30T10:00:00.5Z") - docker_epoch("2026-11-30T10:00:00Z") == pytest.approx(0.5)


def test_pod_ref_describe():
    assert PodRef.of(pod()).describe() == "web-1_default(u-1)"


# -- network -------------------------------------------------------------------------------
def test_netconf_uses_first_ip_as_gateway():
    bridge, portmap = build_netconf("10.244.1.0/24")["plugins"]
    assert bridge["type"] == "labctl-bridge" and bridge["bridge"] == "cni0" and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.1.0/24", "gateway": "10.244.1.1"}]]
    assert portmap == {"type": "labctl-portmap", "capabilities": {"portMappings": True}, "snat": True}


def test_port_mappings_are_the_host_ports_as_cri_spells_them():
    p = pod(containers=[
        {"name": "a", "image": "x", "ports": [{"containerPort": 80, "hostPort": 8081},
                                               {"containerPort": 53, "hostPort": 5353, "protocol": "UDP",
                                                "hostIP": "172.30.0.3"},
                                               {"containerPort": 9090}]},
        {"name": "b", "image": "x"}])
    assert port_mappings(p) == [{"hostPort": 8081, "containerPort": 80, "protocol": "tcp"},
                                {"hostPort": 5353, "containerPort": 53, "protocol": "udp", "hostIP": "172.30.0.3"}]
    p["spec"]["initContainers"] = [{"name": "proxy", "image": "x", "restartPolicy": "Always",
                                    "ports": [{"containerPort": 15000, "hostPort": 15000}]}]
    assert port_mappings(p)[0] == {"hostPort": 15000, "containerPort": 15000, "protocol": "tcp"}
    assert port_mappings(pod()) == []


def test_result_ip_and_wanted_routes():
    assert result_ip({"ips": [{"address": "10.244.1.7/24"}]}) == "10.244.1.7"
    nodes = [{"metadata": {"name": n}, "spec": {"podCIDR": cidr},
              "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}
             for n, cidr, ip in [("worker", "10.244.1.0/24", "172.30.0.3"), ("worker2", "10.244.2.0/24", "172.30.0.4")]]
    assert wanted_routes(nodes + [{"metadata": {"name": "new"}, "spec": {}}], "worker") == {"10.244.2.0/24": "172.30.0.4"}


class FakeEngine:
    """The two Engine API calls a pod listing makes (list, inspect), counted."""

    def __init__(self, containers: dict[str, str]) -> None:
        self.containers_by_id = containers  # id → Kubernetes container name
        self.inspected: list[str] = []

    def containers(self, all: bool, filters: dict) -> list[dict]:
        return [{"Id": cid, "Labels": {c.CONTAINER_NAME_LABEL: name}} for cid, name in self.containers_by_id.items()]

    def inspect_container(self, cid: str) -> dict:
        self.inspected.append(cid)
        if cid not in self.containers_by_id:
            raise docker.errors.NotFound("No such container")
        return {"Id": cid, "Config": {"Labels": {c.CONTAINER_NAME_LABEL: self.containers_by_id[cid]}},
                "State": {"Running": True}}


def fake_runtime(engine: FakeEngine) -> Runtime:
    return Runtime(SimpleNamespace(api=engine), "lab", "lab-worker")  # type: ignore[arg-type]


def test_a_status_listing_does_not_inspect_the_sandbox():
    """The pod's status is made of its containers: the sandbox is not read for it."""
    engine = FakeEngine({"s1": "POD", "a1": "nginx"})
    assert [r.name for r in fake_runtime(engine).list_pod("u-1", sandboxes=False)] == ["nginx"]
    assert engine.inspected == ["a1"]
    assert [r.name for r in fake_runtime(engine).list_pod("u-1")] == ["POD", "nginx"]


def test_inspect_all_leaves_out_containers_removed_meanwhile():
    engine = FakeEngine({"a1": "nginx"})
    assert [r.id for r in fake_runtime(engine).inspect_all(["gone", "a1"])] == ["a1"]


def test_fallback_to_logs_on_error_takes_the_logs_end_only_when_the_container_failed_silently():
    policy = {"name": "app", "terminationMessagePolicy": "FallbackToLogsOnError"}
    failed = rec(running=False, exit_code=1)
    assert falls_back_to_logs(policy, failed)
    assert not falls_back_to_logs({"name": "app"}, failed)  # the default policy: File
    assert not falls_back_to_logs(policy, rec(running=False, exit_code=0))  # it succeeded
    never_ran = replace(rec(running=False, exit_code=128), start_error=True)
    assert not falls_back_to_logs(policy, never_ran)  # it never ran: no log
    long = b"".join(b"line %03d\n" % i for i in range(300))
    assert last_log_chunk(long).encode() == long[-TERMINATION_LOG_BYTES:] and last_log_chunk(long).endswith("299\n")
