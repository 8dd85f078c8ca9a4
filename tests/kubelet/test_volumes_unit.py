"""Pod volumes and securityContext as pure logic: file contents, Docker mounts, security options,
and the node-side path checks on a temporary node root."""

from __future__ import annotations

import asyncio
import base64
import os
from types import SimpleNamespace

import pytest

from labctl.agent.kubelet.mounter import MountFailure, PodMounter
from labctl.agent.kubelet.projection import VolumeFile
from labctl.agent.kubelet.runtime import ContainerRecord, PodRef, build_container, build_sandbox
from labctl.agent.kubelet.security import (
    ConfigError,
    docker_user,
    effective_security,
    host_config_options,
    non_root_problem,
)
from labctl.agent.kubelet.status import terminated_state
from labctl.agent.kubelet.volumes import (
    NodeVolumes,
    PreparedVolumes,
    Sources,
    VolumeError,
    container_mounts,
    memory_volume_options,
    sandbox_mounts,
    volume_files,
)
from labctl.client.rest import APIStatusError
from labctl.clusterconfig import ClusterConfig
from labctl.kube.confinement import capability_refusal, host_path_refusal

POD = {"metadata": {"name": "web", "namespace": "shop", "uid": "u1", "labels": {"app": "web", "tier": "fe"},
                    "annotations": {"note": 'say "hi"'}},
       "spec": {"containers": [{"name": "app", "image": "x", "resources": {"limits": {"cpu": "1500m",
                                                                                    "memory": "64Mi"}}}]}}
HOST = "/var/lib/docker/overlay2/abc/merged"


def files(volume: dict, sources: Sources | None = None) -> dict[str, VolumeFile]:
    return volume_files(POD, volume, sources or Sources(), default_memory=512 * 2**20, node_cpus=2)


# -- contents ---------------------------------------------------------------------------------------
def test_config_map_keys_items_and_modes():
    cm = {"data": {"a.conf": "x=1", "b": "2"}, "binaryData": {"bin": base64.b64encode(b"\x00\x01").decode()}}
    sources = Sources(config_maps={"cfg": cm})
    every = files({"name": "v", "configMap": {"name": "cfg", "defaultMode": 0o600}}, sources)
    assert every == {"a.conf": VolumeFile(b"x=1", 0o600), "b": VolumeFile(b"2", 0o600),
                     "bin": VolumeFile(b"\x00\x01", 0o600)}
    picked = files({"name": "v", "configMap": {"name": "cfg", "items": [{"key": "a.conf", "path": "conf/app.conf",
                                                                          "mode": 0o400}]}}, sources)
    assert picked == {"conf/app.conf": VolumeFile(b"x=1", 0o400)}


def test_missing_sources_and_keys_fail_unless_optional():
    with pytest.raises(VolumeError, match='^configmap "nope" not found$'):
        files({"name": "v", "configMap": {"name": "nope"}}, Sources(config_maps={"nope": None}))
    assert files({"name": "v", "configMap": {"name": "nope", "optional": True}}, Sources(config_maps={"nope": None})) == {}
    with pytest.raises(VolumeError, match='^secret "db" not found$'):
        files({"name": "v", "secret": {"secretName": "db"}}, Sources(secrets={"db": None}))
    with pytest.raises(VolumeError, match="non-existent config key: z"):
        files({"name": "v", "configMap": {"name": "c", "items": [{"key": "z", "path": "z"}]}},
              Sources(config_maps={"c": {"data": {"a": "1"}}}))


def test_secret_data_is_base64_decoded():
    secret = {"data": {"password": base64.b64encode(b"s3cret").decode()}}
    assert files({"name": "v", "secret": {"secretName": "db"}}, Sources(secrets={"db": secret})) == {
        "password": VolumeFile(b"s3cret", 0o644)}


def test_downward_api_fields_and_resources():
    got = files({"name": "v", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "note", "fieldRef": {"fieldPath": "metadata.annotations['note']"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
        {"path": "cpu", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu"}},
        {"path": "mcpu", "resourceFieldRef": {"containerName": "app", "resource": "limits.cpu", "divisor": "1m"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "app", "resource": "limits.memory", "divisor": "1Mi"}},
        {"path": "req", "resourceFieldRef": {"containerName": "app", "resource": "requests.memory"}}]}})
    assert {k: v.content.decode() for k, v in got.items()} == {
        "labels": 'app="web"\ntier="fe"', "note": 'say "hi"', "annotations": 'note="say \\"hi\\""', "ns": "shop",
        "cpu": "2", "mcpu": "1500", "mem": "64", "req": str(64 * 2**20)}


def test_projected_sources_merge_into_one_directory():
    sources = Sources(config_maps={"c": {"data": {"a": "1"}}}, secrets={"s": {"data": {"b": "Mg=="}}}, token="tok")
    got = files({"name": "v", "projected": {"defaultMode": 0o440, "sources": [
        {"configMap": {"name": "c"}}, {"secret": {"name": "s"}},
        {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
        {"serviceAccountToken": {"path": "token"}}]}}, sources)
    assert {k: (v.content, v.mode) for k, v in got.items()} == {
        "a": (b"1", 0o440), "b": (b"2", 0o440), "name": (b"web", 0o440), "token": (b"tok", 0o440)}


# -- mounts -------------------------------------------------------------------------------------------
def test_container_mounts_bind_node_paths_under_the_nodes_root_and_force_read_only():
    prepared = PreparedVolumes(node_paths={"cfg": "/var/lib/kubelet/pods/u1/volumes/kubernetes.io~configmap/cfg",
                                           "data": "/data"},
                               docker_volumes={"ram": "k8s_ram_u1"}, read_only={"cfg"}, writable={"data"})
    container = {"volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg"},
                                  {"name": "data", "mountPath": "/d", "subPath": "logs", "readOnly": True},
                                  {"name": "ram", "mountPath": "/scratch"}]}
    resolved = []

    def resolve(base: str, sub: str, create: bool) -> str:
        resolved.append((base, sub, create))
        return f"{base}/{sub}"
    mounts = container_mounts(container, prepared, HOST, resolve)
    assert mounts == [
        {"Type": "bind", "Source": f"{HOST}/var/lib/kubelet/pods/u1/volumes/kubernetes.io~configmap/cfg",
         "Target": "/etc/cfg", "ReadOnly": True, "BindOptions": {"Propagation": "rslave"}},
        {"Type": "bind", "Source": f"{HOST}/data/logs", "Target": "/d", "ReadOnly": True,
         "BindOptions": {"Propagation": "rslave"}},
        {"Type": "volume", "Source": "k8s_ram_u1", "Target": "/scratch", "ReadOnly": False,
         "VolumeOptions": {"NoCopy": True}}]
    assert resolved == [("/data", "logs", True)]
    node_debugger = PreparedVolumes(elsewhere={"host-root"})  # kubectl debug node's /host: noderoot.py's binds
    assert container_mounts({"volumeMounts": [{"name": "host-root", "mountPath": "/host"}]}, node_debugger, HOST,
                            resolve) == []
    with pytest.raises(VolumeError, match='"nope" is not a volume'):
        container_mounts({"volumeMounts": [{"name": "nope", "mountPath": "/x"}]}, prepared, HOST, resolve)


def test_memory_empty_dir_is_a_sized_tmpfs_the_sandbox_holds():
    assert memory_volume_options({"emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}}, 2**29) == {
        "type": "tmpfs", "device": "tmpfs", "o": "size=16777216,mode=1777"}
    assert memory_volume_options({"emptyDir": {"medium": "Memory"}}, 2**29)["o"] == "size=536870912,mode=1777"
    mounts = sandbox_mounts(PreparedVolumes(docker_volumes={"ram": "k8s_ram_u1"}))
    spec = build_sandbox({**POD, "spec": {}}, ClusterConfig(name="lab"), "lab-worker", mounts=mounts)
    assert spec.host_config["mounts"] == [{"Type": "volume", "Source": "k8s_ram_u1", "Target": "/volumes/ram",
                                           "ReadOnly": False, "VolumeOptions": {"NoCopy": True}}]


# -- the node's side ---------------------------------------------------------------------------------
@pytest.fixture
def node(tmp_path) -> NodeVolumes:
    root = tmp_path / "node"
    root.mkdir()
    return NodeVolumes(root=root, host_root=HOST)


def test_a_termination_message_file_per_container_instance_read_once_it_exited(node):
    """kubernetes.io's "Determine the Reason for Pod Failure": what the container wrote to
    /dev/termination-log is its ``lastState.terminated.message`` (at most 4096 bytes)."""
    path = node.termination_log("u-1", "app", 2)
    assert path == "/var/lib/kubelet/pods/u-1/containers/app/2"
    file = node.root / path.lstrip("/")
    assert file.read_bytes() == b"" and file.stat().st_mode & 0o777 == 0o666  # any runAsUser may write it
    file.write_text("Sleep expired\n" + "x" * 5000)
    message = node.termination_message("u-1", "app", 2)
    assert message.startswith("Sleep expired\n") and len(message) == 4096
    assert node.termination_message("u-1", "app", 3) == ""
    exited = ContainerRecord("c1", "app", 2, False, 0, finished_at="2026-12-07T10:00:00Z",
                             termination_message=message[:14])
    assert terminated_state(exited)["terminated"]["message"] == "Sleep expired\n"


def test_pod_files_are_rewritten_in_place_so_a_bind_mount_sees_the_new_text(node):
    node.write_pod_files("u1", {"etc-hosts": "# without the IP\n"})
    path = node.root / "var/lib/kubelet/pods/u1/etc-hosts"
    inode = path.stat().st_ino
    node.write_pod_files("u1", {"etc-hosts": "10.244.1.7\tweb\n"})
    assert path.read_text() == "10.244.1.7\tweb\n" and path.stat().st_ino == inode
    assert path.stat().st_mode & 0o777 == 0o644  # readable by any runAsUser


def test_host_path_types_are_checked_and_created_in_the_node(node):
    assert node.host_path({"path": "/data/app", "type": "DirectoryOrCreate"}) == "/data/app"
    assert (node.root / "data/app").is_dir()
    assert node.host_path({"path": "/data/app/log", "type": "FileOrCreate"}) == "/data/app/log"
    assert (node.root / "data/app/log").is_file()
    with pytest.raises(VolumeError, match="hostPath type check failed: /data/app/log is not a directory"):
        node.host_path({"path": "/data/app/log", "type": "Directory"})
    with pytest.raises(VolumeError, match="hostPath type check failed: /data/none is not a file"):
        node.host_path({"path": "/data/none", "type": "File"})


def test_host_path_refuses_sensitive_paths_also_through_symlinks(node):
    for path in ("/", "/var", "/etc", "/var/run/docker.sock", "/proc/1", "/var/lib/kubelet/pods", "/usr/bin"):
        with pytest.raises(VolumeError, match="which pods may not mount"):
            node.host_path({"path": path})
    (node.root / "data").mkdir()
    (node.root / "data/escape").symlink_to("../etc")  # resolved in the node: the node's /etc
    os.makedirs(node.root / "etc")
    with pytest.raises(VolumeError, match="the node's /etc"):
        node.host_path({"path": "/data/escape"})


def test_subpath_must_stay_within_its_volume(node):
    base = node.empty_dir("u1", "cache", None)
    assert node.subpath(base, "logs/app", True) == f"{base}/logs/app"
    assert {(node.root / base.lstrip("/") / p).stat().st_mode & 0o7777 for p in ("logs", "logs/app")} == {0o777}
    os.symlink("../../../../../../..", node.root / base.lstrip("/") / "up")
    with pytest.raises(VolumeError, match="resolves outside its volume"):
        node.subpath(base, "up", False)
    with pytest.raises(VolumeError, match="without '..'"):
        node.subpath(base, "../x", True)


def test_empty_dir_is_world_writable_and_fs_group_owned(node):
    path = node.root / node.empty_dir("u1", "shared", os.getgid()).lstrip("/")
    assert path.stat().st_mode & 0o7777 == 0o2777 and path.stat().st_gid == os.getgid()
    (path / "blob").write_bytes(b"x" * 100_000)
    assert 100_000 <= node.usage(node.volume_dir("u1", "emptyDir", "shared")) < 120_000
    node.write("u1", "secret", "db", {"k": VolumeFile(b"v")}, None)
    assert node.pod_uids() == {"u1"}
    node.remove_pod("u1")
    assert node.pod_uids() == set()


def test_confinement_rules_shared_with_admission():
    assert host_path_refusal("/data") is None and host_path_refusal("/var/log") is None
    assert host_path_refusal("/mnt/x") is None and host_path_refusal("/var/lib/mydb") is None
    for path in ("/", "/var", "/var/lib", "/etc/labctl", "/var/run/docker.sock", "/dev/sda", "/sys", "//", "/./"):
        assert host_path_refusal(path), path
    assert host_path_refusal("data") == "must be an absolute path"
    assert capability_refusal("NET_BIND_SERVICE") is None and capability_refusal("cap_kill") is None
    assert "SYS_ADMIN is beyond Docker's default set" in (capability_refusal("SYS_ADMIN") or "")


# -- securityContext ---------------------------------------------------------------------------------
def pod_with(pod_ctx: dict, ctx: dict) -> tuple[dict, dict]:
    container = {"name": "app", "image": "x", "securityContext": ctx}
    return {**POD, "spec": {"securityContext": pod_ctx, "containers": [container]}}, container


def test_container_settings_win_over_the_pods():
    pod, container = pod_with({"runAsUser": 1000, "runAsGroup": 1000, "fsGroup": 2000, "supplementalGroups": [4000]},
                              {"runAsUser": 1001})
    sec = effective_security(pod, container)
    assert (sec.run_as_user, sec.run_as_group, sec.groups) == (1001, 1000, [4000, 2000])
    assert docker_user(sec, "") == "1001:1000"
    assert docker_user(effective_security(*pod_with({"runAsGroup": 5}, {})), "nginx:nginx") == "nginx:5"
    assert docker_user(effective_security(*pod_with({}, {})), "nginx") is None


def test_security_options_for_docker():
    pod, container = pod_with({"fsGroup": 2000}, {
        "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "CAP_CHOWN"]}})
    assert host_config_options(effective_security(pod, container)) == {
        "cap_add": ["NET_BIND_SERVICE", "CHOWN"], "cap_drop": ["ALL"], "read_only": True,
        "security_opt": ["no-new-privileges"], "group_add": ["2000"]}
    with pytest.raises(ConfigError, match="SYS_ADMIN is beyond Docker's default set"):
        host_config_options(effective_security(*pod_with({}, {"capabilities": {"add": ["SYS_ADMIN"]}})))


def test_run_as_non_root_is_checked_against_the_image_user():
    def problem(pod_ctx: dict, ctx: dict, image_user: str) -> str | None:
        return non_root_problem(effective_security(*pod_with(pod_ctx, ctx)), image_user, "web_shop(u1)", "app")
    assert problem({"runAsNonRoot": True}, {}, "") == (
        'container has runAsNonRoot and image will run as root (pod: "web_shop(u1)", container: app)')
    assert problem({"runAsNonRoot": True}, {}, "root:root").startswith("container has runAsNonRoot and image will")
    assert "non-numeric user (nginx)" in problem({"runAsNonRoot": True}, {}, "nginx")
    assert problem({"runAsNonRoot": True}, {}, "101") is None
    assert problem({"runAsNonRoot": True}, {"runAsUser": 1000}, "") is None
    assert problem({}, {"runAsNonRoot": True, "runAsUser": 0}, "").startswith("container's runAsUser breaks")
    assert problem({}, {}, "") is None


def test_build_container_carries_mounts_user_and_security():
    pod, container = pod_with({"runAsUser": 1000}, {"readOnlyRootFilesystem": True})
    mounts = [{"Type": "bind", "Source": f"{HOST}/data", "Target": "/d", "ReadOnly": False}]
    spec = build_container(pod, container, "img", "sandbox", 0, ClusterConfig(name="lab"), "lab-worker", {},
                           mounts=mounts)
    assert spec.kwargs["user"] == "1000"
    assert spec.host_config["mounts"] == mounts and spec.host_config["read_only"] is True


# -- setting a pod's volumes up: FailedMount until the source exists ----------------------------------
class ConfigMaps:
    """The kubelet's API client, answering GETs of ConfigMaps from a dict."""

    def __init__(self) -> None:
        self.objects: dict[str, dict] = {}

    async def get(self, path: str) -> dict:
        name = path.rsplit("/", 1)[-1]
        if name not in self.objects:
            raise APIStatusError(404, {"reason": "NotFound", "message": f'configmaps "{name}" not found'})
        return self.objects[name]


async def _direct(fn, *args, **kwargs):
    return fn(*args, **kwargs)


def test_a_missing_config_map_fails_the_mount_until_it_appears(node):
    client = ConfigMaps()
    ctx = SimpleNamespace(volumes=node, tokens=None, blocking=_direct, client=client,
                          cfg=SimpleNamespace(cluster=ClusterConfig(name="lab")))
    pod = {**POD, "spec": {**POD["spec"], "volumes": [{"name": "cfg", "configMap": {"name": "nope"}},
                                                      {"name": "cache", "emptyDir": {}}]}}
    mounter = PodMounter(ctx, PodRef.of(pod))
    with pytest.raises(MountFailure) as failed:
        asyncio.run(mounter.setup(pod))
    assert str(failed.value) == 'MountVolume.SetUp failed for volume "cfg" : configmap "nope" not found'
    client.objects["nope"] = {"data": {"greeting": "hi"}}
    prepared = asyncio.run(mounter.setup(pod))
    assert prepared.read_only == {"cfg"} and prepared.writable == {"cache"}
    assert (node.root / prepared.node_paths["cfg"].lstrip("/") / "greeting").read_text() == "hi"
    nfs = {**pod, "spec": {**pod["spec"], "volumes": [{"name": "data", "nfs": {"server": "s", "path": "/"}}]}}
    with pytest.raises(MountFailure, match="volume type 'nfs' is not supported by labctl"):
        asyncio.run(mounter.setup(nfs))


def test_a_claim_mounts_its_bound_volume_of_this_node_once_bound(node):
    client = ConfigMaps()
    ctx = SimpleNamespace(volumes=node, tokens=None, blocking=_direct, client=client,
                          cfg=SimpleNamespace(cluster=ClusterConfig(name="lab"), node_name="worker"))
    pod = {**POD, "spec": {**POD["spec"], "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "c"}}]}}
    mounter = PodMounter(ctx, PodRef.of(pod))
    with pytest.raises(MountFailure, match='persistentvolumeclaims "c" not found'):
        asyncio.run(mounter.setup(pod))
    client.objects["c"] = {"metadata": {"name": "c", "namespace": "shop"}, "spec": {}, "status": {"phase": "Pending"}}
    with pytest.raises(MountFailure, match="error processing PVC shop/c: PVC is not bound"):
        asyncio.run(mounter.setup(pod))
    path = "/var/local-path-provisioner/pvc-1_shop_c"
    client.objects["c"] = {**client.objects["c"], "spec": {"volumeName": "pvc-1"}, "status": {"phase": "Bound"}}
    affinity = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["worker2"]}]}]}}
    client.objects["pvc-1"] = {"metadata": {"name": "pvc-1"}, "spec": {
        "hostPath": {"path": path, "type": "DirectoryOrCreate"}, "nodeAffinity": affinity}}
    with pytest.raises(MountFailure, match="volume pvc-1 is on node 'worker2', not 'worker'"):
        asyncio.run(mounter.setup(pod))
    affinity["required"]["nodeSelectorTerms"][0]["matchExpressions"][0]["values"] = ["worker"]
    prepared = asyncio.run(mounter.setup(pod))
    assert prepared.node_paths["data"] == path and prepared.writable == {"data"}
    assert (node.root / path.lstrip("/")).is_dir()  # created in the node on first mount
