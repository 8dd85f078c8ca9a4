"""Pod admission in a real lab, with the real kubectl: what labctl would ignore, or what would give a
pod the host, is a 422 naming the field and nothing is stored; everyday pods still run.

The table is labctl/apiserver/podfields.py (unit-tested field by field in tests/unit/test_podfields.py).
"""

from __future__ import annotations

import json

import pytest

from labctl.client.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

HOST = "Forbidden: a pod runs on the host's Docker engine: this would give it the host"
IGNORED = "Forbidden: labctl does not support this field (it would be ignored)"


def pod(name: str, spec: dict | None = None, **container) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {**(spec or {}), "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"],
                                                     **container}]}}


REFUSED = [
    (pod("privileged", securityContext={"privileged": True}),
     f"spec.containers[0].securityContext.privileged: {HOST} (every device and capability)"),
    (pod("host-pid", {"hostPID": True}), f"spec.hostPID: {HOST} (its processes)"),
    (pod("sys-admin", securityContext={"capabilities": {"add": ["SYS_ADMIN"]}}),
     f"spec.containers[0].securityContext.capabilities.add[0]: {HOST} (a capability beyond Docker's defaults)"),
    (pod("docker-sock", {"volumes": [{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}]},
         volumeMounts=[{"name": "sock", "mountPath": "/var/run/docker.sock"}]),
     f"spec.volumes[0].hostPath.path: {HOST} (its filesystem, through the node's system paths"),
    (pod("grpc-probe", livenessProbe={"grpc": {"port": 9000}}), f"spec.containers[0].livenessProbe.grpc: {IGNORED}"),
]


def apply(lab, doc: dict, check: bool = False):
    return lab.kubectl.run("apply", "-f", "-", input=json.dumps(doc), check=check)


@pytest.mark.parametrize("doc,error", REFUSED, ids=[doc["metadata"]["name"] for doc, _ in REFUSED])
def test_a_refused_pod_is_a_422_naming_the_field_and_is_not_stored(lab, doc: dict, error: str):
    name = doc["metadata"]["name"]
    proc = apply(lab, doc)
    assert proc.returncode != 0
    assert f'The Pod "{name}" is invalid: ' in proc.stderr and error in proc.stderr
    assert "NotFound" in lab.kubectl.run("get", "pod", name, check=False).stderr


def test_a_refused_template_fails_the_deployment_at_apply_time(lab):
    template = pod("x", {"hostPID": True})
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "host-pid"},
              "spec": {"selector": {"matchLabels": {"app": "host-pid"}},
                       "template": {"metadata": {"labels": {"app": "host-pid"}}, "spec": template["spec"]}}}
    proc = apply(lab, deploy)
    assert proc.returncode != 0
    assert f'The Deployment "host-pid" is invalid: spec.template.spec.hostPID: {HOST}' in proc.stderr
    assert lab.kubectl.json("get", "deployments,replicasets,pods", "-l", "app=host-pid")["items"] == []


def test_kubectl_run_and_create_deployment_still_run(lab):
    try:
        lab.kubectl.run("run", "admitted", "--image=nginx", "--port=80", "--env=GREETING=hi")
        lab.kubectl.run("create", "deployment", "admitted", "--image=nginx", "--replicas=2")

        def running() -> bool:
            pods = lab.kubectl.json("get", "pods", "-l", "app=admitted")["items"]
            pods.append(lab.kubectl.json("get", "pod", "admitted"))
            return len(pods) == 3 and all(p.get("status", {}).get("phase") == "Running" for p in pods)
        wait_for(running, timeout=120, what="the run pod and both Deployment pods Running")
    finally:
        lab.kubectl.run("delete", "pod/admitted", "deployment/admitted", "--wait=true", check=False)


def test_a_student_pod_reaches_neither_the_docker_socket_nor_the_hosts_files(lab, tmp_path):
    """Pods are containers of the host's Docker engine: the worst a student's admitted pod can ask for."""
    marker = tmp_path / f"host-only-{lab.name}"
    marker.write_text("the host's file\n")
    nosy = pod("nosy", {"volumes": [{"name": "data", "hostPath": {"path": "/data"}}]},
               volumeMounts=[{"name": "data", "mountPath": "/data"}],
               securityContext={"capabilities": {"add": ["NET_RAW"]}})
    apply(lab, nosy, check=True)
    try:
        wait_for(lambda: lab.kubectl.json("get", "pod", "nosy").get("status", {}).get("phase") == "Running",
                 timeout=120, what="pod nosy Running")
        probe = ("for s in /var/run/docker.sock /run/docker.sock /data/docker.sock; do test -e $s && echo found $s; done; "
                 f"find / -xdev -name {marker.name} 2>/dev/null; find /data -name {marker.name} 2>/dev/null; "
                 "ps -e -o comm= | grep -x -e dockerd -e containerd -e labctl-agent; true")
        seen = lab.kubectl.run("exec", "nosy", "--", "sh", "-c", probe).stdout
        assert seen == "", seen
        # the same tools do see what the pod has: its own process and its own files
        own = lab.kubectl.run("exec", "nosy", "--", "sh", "-c", "echo x > /data/mine; ps -e -o comm= | grep -x sleep; "
                              "find / -xdev -name mine 2>/dev/null; find /data -name mine").stdout
        assert own.split() == ["sleep", "/data/mine"], own
    finally:
        lab.kubectl.run("delete", "pod", "nosy", "--wait=false", check=False)
