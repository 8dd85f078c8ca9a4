"""Volumes and securityContext in a real lab: what a student sees inside the container.

One lab for the module; the module fixture creates every pod at once (their start-ups overlap)
and each test waits for the state it reads, so the tests pass in any order. Everything is looked
at the way a learner would: ``kubectl exec … cat``, ``id``, ``mount``, ``grep Cap /proc/1/status``,
``kubectl get events``, and ``docker exec <node> ls`` for the node's side.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
from pathlib import Path

import docker as docker_sdk
import pytest

from labctl.agent.kubelet.runtime import PodRef, Runtime
from labctl.client.waiting import wait_for
from labctl.cluster.docker import leftovers, remove_cluster
from labctl.cluster.scratch import unique_name

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

TOOLBOX = "labctl/toolbox:latest"
SLEEP = ["sh", "-c", "sleep 3600"]


def pod(name: str, containers: list[dict], volumes: list[dict] | None = None, node: str = "worker",
        **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name, "tier": "lab"}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": containers,
                     **({"volumes": volumes} if volumes else {}), **spec}}


def box(name: str = "app", command: list[str] = SLEEP, **extra) -> dict:
    return {"name": name, "image": TOOLBOX, "command": command, **extra}


def config_map(name: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def apply(lab, *objs: dict) -> None:
    lab.kubectl.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def running(lab, name: str, timeout: float = 120) -> dict:
    def check() -> dict | None:
        got = lab.kubectl.json("get", "pod", name)
        statuses = got.get("status", {}).get("containerStatuses") or []
        return got if statuses and all("running" in s["state"] for s in statuses) else None
    return wait_for(check, timeout=timeout, what=f"pod {name} running")


def sh(lab, name: str, script: str, container: str = "app", check: bool = True) -> subprocess.CompletedProcess:
    running(lab, name)
    return lab.kubectl.run("exec", name, "-c", container, "--", "sh", "-c", script, check=check)


def events(lab, name: str, reason: str) -> list[str]:
    items = lab.kubectl.json("get", "events", "--field-selector", f"involvedObject.name={name}")["items"]
    return [e["message"] for e in items if e["reason"] == reason]


@pytest.fixture(scope="module")
def vl(lab):
    """The lab with every pod of the module applied."""
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
              "data": {"password": base64.b64encode(b"s3cret").decode(), "user": base64.b64encode(b"admin").decode()}}
    apply(lab, config_map("app-config", {"app.conf": "color=blue\n", "mode": "dev"}), secret,
          pod("files", [box(volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"},
                                          {"name": "sec", "mountPath": "/etc/sec"},
                                          {"name": "info", "mountPath": "/etc/podinfo"},
                                          {"name": "cfg", "mountPath": "/etc/app.conf", "subPath": "app.conf"}])],
              [{"name": "cfg", "configMap": {"name": "app-config"}},
               {"name": "sec", "secret": {"secretName": "db", "defaultMode": 0o400,
                                          "items": [{"key": "password", "path": "db/password"}]}},
               {"name": "info", "downwardAPI": {"items": [
                   {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                   {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
                   {"path": "mem", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory",
                                                        "divisor": "1Mi"}}]}}],
              node="worker2"),
          pod("shared", [box("writer", ["sh", "-c", "echo hello from writer > /cache/note; sleep 3600"],
                             volumeMounts=[{"name": "cache", "mountPath": "/cache"}]),
                         box("reader", volumeMounts=[{"name": "cache", "mountPath": "/cache", "readOnly": True},
                                                     {"name": "ram", "mountPath": "/scratch"}])],
              [{"name": "cache", "emptyDir": {}}, {"name": "ram", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}]),
          # kubernetes.io's "Configure Pod Initialization", with its images (and no download)
          pod("workdir", [{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}],
                           "volumeMounts": [{"name": "workdir", "mountPath": "/usr/share/nginx/html"}]}],
              [{"name": "workdir", "emptyDir": {}}],
              initContainers=[box("install", ["sh", "-c", "echo made by init > /work-dir/index.html"],
                                  image="busybox:1.28",
                                  volumeMounts=[{"name": "workdir", "mountPath": "/work-dir"}])]),
          pod("hostpath", [box(command=["sh", "-c", f"echo written-by-pod > /node-data/{lab.name}; sleep 3600"],
                               volumeMounts=[{"name": "data", "mountPath": "/node-data"}])],
              [{"name": "data", "hostPath": {"path": "/data/labctl-hostpath", "type": "DirectoryOrCreate"}}]),
          pod("secure", [box(securityContext={"runAsUser": 1000, "runAsGroup": 3000, "readOnlyRootFilesystem": True,
                                              "allowPrivilegeEscalation": False,
                                              "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
                             volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}])],
              [{"name": "tmp", "emptyDir": {}}],
              securityContext={"fsGroup": 2000, "supplementalGroups": [4000]}),
          config_map("live", {"app.conf": "color=blue\n"}),
          pod("updates", [box(volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"}])],
              [{"name": "cfg", "configMap": {"name": "live"}}], node="worker2"),
          pod("nonroot", [box()], securityContext={"runAsNonRoot": True}, node="worker2"),
          pod("hog", [box(command=["sh", "-c", "dd if=/dev/zero of=/cache/fill bs=1M count=4; sleep 3600"],
                          volumeMounts=[{"name": "cache", "mountPath": "/cache"}])],
              [{"name": "cache", "emptyDir": {"sizeLimit": "1Mi"}}], node="worker2"),
          pod("waits", [box(volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg"}])],
              [{"name": "cfg", "configMap": {"name": "later"}}], node="worker2"))
    return lab


def test_config_map_and_secret_files_with_their_modes_and_the_atomic_layout(vl):
    assert sh(vl, "files", "cat /etc/cfg/app.conf").stdout == "color=blue\n"
    assert sh(vl, "files", "cat /etc/cfg/mode").stdout == "dev"
    assert sh(vl, "files", "cat /etc/app.conf").stdout == "color=blue\n"  # subPath: one file
    assert sh(vl, "files", "cat /etc/sec/db/password").stdout == "s3cret"  # base64-decoded
    assert sh(vl, "files", "stat -L -c %a /etc/sec/db/password /etc/cfg/mode").stdout.split() == ["400", "644"]
    listing = sh(vl, "files", "ls -a /etc/cfg").stdout.split()
    assert {"..data", "app.conf", "mode"} <= set(listing)
    assert sh(vl, "files", "readlink /etc/cfg/mode").stdout.strip() == "..data/mode"
    failed = sh(vl, "files", "echo x > /etc/cfg/mode", check=False)
    assert failed.returncode != 0 and "Read-only file system" in failed.stderr


def test_downward_api_files(vl):
    assert sh(vl, "files", "cat /etc/podinfo/labels").stdout == 'app="files"\ntier="lab"'
    assert sh(vl, "files", "cat /etc/podinfo/name").stdout == "files"
    assert int(sh(vl, "files", "cat /etc/podinfo/mem").stdout) > 0


def test_a_config_map_update_reaches_the_mounted_file(vl):
    assert sh(vl, "updates", "cat /etc/cfg/app.conf").stdout == "color=blue\n"
    apply(vl, config_map("live", {"app.conf": "color=green\n"}))
    wait_for(lambda: sh(vl, "updates", "cat /etc/cfg/app.conf").stdout == "color=green\n", timeout=60,
             what="the updated app.conf in the pod")


def test_empty_dir_is_shared_and_memory_medium_is_a_sized_tmpfs(vl):
    assert sh(vl, "shared", "cat /cache/note", container="reader").stdout == "hello from writer\n"
    mounts = sh(vl, "shared", "mount", container="reader").stdout
    line = next(m for m in mounts.splitlines() if " /scratch " in m)
    assert line.startswith("tmpfs ") and "size=16384k" in line, line
    assert sh(vl, "shared", "echo x > /cache/y", container="reader", check=False).returncode != 0  # readOnly


def test_an_init_container_prepares_the_page_nginx_serves(vl):
    """kubernetes.io's "Configure Pod Initialization": the init container fills a shared emptyDir
    that nginx serves; a path with no file still gets the lab's page."""
    assert sh(vl, "workdir", "curl -s localhost", container="nginx").stdout == "made by init\n"
    assert sh(vl, "workdir", "curl -s localhost/other", container="nginx").stdout.startswith("nginx v1 pod=workdir ")


def test_host_path_is_the_nodes_directory_not_the_hosts(vl):
    running(vl, "hostpath")
    seen = wait_for(lambda: vl.exec("worker", "cat", f"/data/labctl-hostpath/{vl.name}", check=False).stdout,
                    timeout=30, what="the pod's file inside the node")
    assert seen == "written-by-pod\n"
    assert not Path(f"/data/labctl-hostpath/{vl.name}").exists()  # the real host is untouched


def test_a_symlink_in_the_nodes_data_cannot_lead_a_host_path_to_the_nodes_system_paths(vl):
    """Admission sees only the literal path; the kubelet resolves it inside the node and refuses."""
    apply(vl, pod("linker", [box(command=["sh", "-c", "ln -sfn /etc /links/etc; sleep 3600"],
                                 volumeMounts=[{"name": "links", "mountPath": "/links"}])],
                  [{"name": "links", "hostPath": {"path": "/data/labctl-links"}}]))
    running(vl, "linker")
    wait_for(lambda: vl.exec("worker", "test", "-L", "/data/labctl-links/etc", check=False).returncode == 0,
             timeout=30, what="the symlink in the node")
    apply(vl, pod("escape", [box(volumeMounts=[{"name": "etc", "mountPath": "/mnt"}])],
                  [{"name": "etc", "hostPath": {"path": "/data/labctl-links/etc"}}]))
    refused = wait_for(lambda: events(vl, "escape", "FailedMount"), timeout=60, what="the FailedMount event")
    assert refused[0].startswith('MountVolume.SetUp failed for volume "etc" : hostPath /data/labctl-links/etc: '
                                 "/etc is or holds the node's /etc"), refused
    assert vl.kubectl.json("get", "pod", "escape")["status"]["phase"] == "Pending"


def test_security_context_user_groups_read_only_root_and_capabilities(vl):
    ids = sh(vl, "secure", "id -u; id -g; id -G").stdout.split("\n")
    assert ids[0] == "1000" and ids[1] == "3000" and {"2000", "4000"} <= set(ids[2].split())
    failed = sh(vl, "secure", "touch /rootfile", check=False)
    assert failed.returncode != 0 and "Read-only file system" in failed.stderr
    assert sh(vl, "secure", "touch /tmp/ok && echo ok").stdout == "ok\n"  # the emptyDir stays writable
    status = sh(vl, "secure", "grep -E 'Cap(Eff|Bnd)|NoNewPrivs' /proc/1/status").stdout
    fields = dict(line.split(":\t") for line in status.strip().splitlines())
    assert fields["CapBnd"] == "0000000000000400"  # only NET_BIND_SERVICE (bit 10) is left
    assert fields["NoNewPrivs"] == "1"


def test_run_as_non_root_refuses_a_root_image(vl):
    def config_error() -> str:
        statuses = vl.kubectl.json("get", "pod", "nonroot").get("status", {}).get("containerStatuses") or [{}]
        waiting = statuses[0].get("state", {}).get("waiting", {})
        return waiting.get("message", "") if waiting.get("reason") == "CreateContainerConfigError" else ""
    message = wait_for(config_error, timeout=90, what="CreateContainerConfigError")
    assert message.startswith("container has runAsNonRoot and image will run as root")


def test_an_empty_dir_over_its_size_limit_gets_the_pod_evicted(vl):
    got = wait_for(lambda: (p := vl.kubectl.json("get", "pod", "hog"))["status"].get("reason") == "Evicted" and p,
                   timeout=90, what="the pod evicted")
    message = 'Usage of EmptyDir volume "cache" exceeds the limit "1Mi".'
    assert got["status"]["phase"] == "Failed" and got["status"]["message"] == message
    assert message in events(vl, "hog", "Evicted")
    assert re.search(r"^Reason:\s+Evicted$", vl.kubectl.run("describe", "pod", "hog").stdout, re.M)


def test_missing_config_map_is_a_failed_mount_until_it_appears(vl):
    expected = 'MountVolume.SetUp failed for volume "cfg" : configmap "later" not found'
    wait_for(lambda: expected in events(vl, "waits", "FailedMount"), timeout=60, what="the FailedMount event")
    got = vl.kubectl.json("get", "pod", "waits")
    assert got["status"]["phase"] == "Pending"
    assert got["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
    apply(vl, config_map("later", {"greeting": "finally"}))
    assert sh(vl, "waits", "cat /etc/cfg/greeting").stdout == "finally"


def test_deleting_a_pod_removes_its_volumes_from_the_node(vl):
    apply(vl, pod("gone", [box(volumeMounts=[{"name": "a", "mountPath": "/a"}, {"name": "m", "mountPath": "/m"}])],
                  [{"name": "a", "emptyDir": {}}, {"name": "m", "emptyDir": {"medium": "Memory"}}]))
    uid = running(vl, "gone")["metadata"]["uid"]
    assert "volumes" in vl.exec("worker", "ls", f"/var/lib/kubelet/pods/{uid}").stdout
    vl.kubectl.run("delete", "pod", "gone", "--timeout=60s")
    wait_for(lambda: vl.exec("worker", "ls", f"/var/lib/kubelet/pods/{uid}", check=False).returncode != 0,
             timeout=30, what="the pod's volume directory removed")
    assert docker_sdk.from_env().api.volumes(filters={"label": f"io.kubernetes.pod.uid={uid}"})["Volumes"] in (None, [])


def test_labctl_down_removes_pod_volumes(docker_engine):
    """The cluster teardown removes a pod's Docker volume (a Memory emptyDir) with the rest of the lab."""
    name = unique_name()
    client = docker_sdk.from_env()
    runtime = Runtime(client, name, f"{name}-worker")
    runtime.ensure_volume(f"k8s_ram_{name}", runtime.volume_labels(PodRef("default", "p", "uid-1"), "ram"),
                          {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    try:
        assert leftovers(client, name) == [f"volume k8s_ram_{name}"]
        assert remove_cluster(client, name) == []
        assert leftovers(client, name) == []
    finally:
        client.close()
