"""``kubectl debug node/NODE``'s pod: admitted with ``hostPath: /``, which the kubelet makes the node's root."""

from __future__ import annotations

import pytest

from labctl.agent.kubelet.noderoot import NodeRoot, node_root_mount_paths
from labctl.apiserver.errors import APIError
from labctl.apiserver.rest import RequestScope
from labctl.kube.resources import resource_for


def debugger_pod(name: str = "node-debugger-worker-x1z2q", labels: dict | None = None) -> dict:
    """What kubectl 1.37 sends for ``kubectl debug node/worker -it --image=busybox``."""
    return {"metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "kubectl-debug"}
                         if labels is None else labels},
            "spec": {"nodeName": "worker", "hostNetwork": True, "hostPID": True, "hostIPC": True,
                     "restartPolicy": "Never", "volumes": [{"name": "host-root", "hostPath": {"path": "/"}}],
                     "containers": [{"name": "debugger", "image": "busybox", "stdin": True, "tty": True,
                                     "volumeMounts": [{"name": "host-root", "mountPath": "/host"}]}]}}


def test_only_the_node_debugger_may_mount_the_nodes_root(api):
    pods = RequestScope(resource_for("pods"), "default", None)
    admitted = debugger_pod()
    del admitted["spec"]["hostNetwork"]  # the kubelet's hostNetwork support is admitted on its own
    created = api.create(pods, admitted)
    assert created["spec"]["volumes"][0]["hostPath"]["path"] == "/" and created["spec"]["hostPID"] is True
    for field in ("hostPID", "hostIPC"):  # the node's namespaces: for the node debugger only
        with pytest.raises(APIError, match=f"spec.{field}: Forbidden: a pod runs on the host's Docker engine"):
            api.create(pods, {"metadata": {"name": f"mine-{field.lower()}"},
                              "spec": {field: True, "containers": [{"name": "a", "image": "busybox"}]}})
    for own in (debugger_pod("mine", labels={"app.kubernetes.io/managed-by": "kubectl-debug"}),
                debugger_pod("node-debugger-worker-fake", labels={})):
        with pytest.raises(APIError) as refused:
            api.create(pods, {**own, "spec": {k: v for k, v in own["spec"].items() if k != "hostNetwork"}})
        assert refused.value.code == 422
        assert "spec.volumes[0].hostPath.path: Forbidden: the node's root is only mounted for " \
               "`kubectl debug node/NODE`" in refused.value.message
    template = debugger_pod()
    deployment = {"metadata": {"name": "root"},
                  "spec": {"selector": {"matchLabels": {"app": "r"}},
                           "template": {"metadata": {"labels": {"app": "r"}},
                                        "spec": {**template["spec"], "restartPolicy": "Always"}}}}
    with pytest.raises(APIError, match=r"spec\.template\.spec\.volumes\[0\]\.hostPath\.path: Forbidden"):
        api.create(RequestScope(resource_for("deployments"), "default", None), deployment)


def test_the_node_root_is_the_node_containers_filesystem_read_only():
    root = NodeRoot.from_inspect({
        "Name": "/lab-worker", "GraphDriver": {"Name": "overlay2", "Data": {"MergedDir": "/var/lib/docker/overlay2/ab/merged"}},
        "HostnamePath": "/var/lib/docker/containers/c1/hostname", "HostsPath": "/var/lib/docker/containers/c1/hosts",
        "ResolvConfPath": "/var/lib/docker/containers/c1/resolv.conf"})
    assert root.binds("/host/") == ["/var/lib/docker/overlay2/ab/merged:/host:ro",
                                    "/var/lib/docker/containers/c1/hostname:/host/etc/hostname:ro",
                                    "/var/lib/docker/containers/c1/hosts:/host/etc/hosts:ro",
                                    "/var/lib/docker/containers/c1/resolv.conf:/host/etc/resolv.conf:ro"]
    with pytest.raises(ValueError, match="no overlay root filesystem"):
        NodeRoot.from_inspect({"Name": "/n", "GraphDriver": {"Name": "vfs", "Data": None}})


def test_only_the_debugger_pods_mounts_get_the_node_root():
    pod = debugger_pod()
    assert node_root_mount_paths(pod, pod["spec"]["containers"][0]) == ["/host"]
    stored_before_admission_said_no = debugger_pod("mine", labels={})
    assert node_root_mount_paths(stored_before_admission_said_no,
                                 stored_before_admission_said_no["spec"]["containers"][0]) == []


def test_the_node_debuggers_host_namespaces_are_the_nodes():
    from labctl.agent.kubelet.noderoot import node_debugger_namespaces
    assert node_debugger_namespaces(debugger_pod(), "lab-worker") == {"pid_mode": "container:lab-worker",
                                                                      "ipc_mode": "container:lab-worker"}
    assert node_debugger_namespaces(debugger_pod("mine", labels={}), "lab-worker") == {}
