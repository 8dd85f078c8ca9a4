"""Pod volumes: made on the node, bind-mounted into containers of the host's Docker engine.

Pod containers run on the *host's* Docker engine, so a bind mount's source is a host path.
The kubelet never hands Docker a path a user wrote. Every volume it makes lives in the node
container's own filesystem, where the real kubelet keeps them —
``/var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>`` (``docker exec <node> ls``
shows them) — and a ``hostPath`` is a path of the node too. The bind mount's source is that node
path under the node container's root on the host (its overlay ``MergedDir``): the node's
``/data``, never the host's. Paths are resolved inside the node first (symlinks included), must
stay within their volume, and a hostPath must be on the node's own disk (not a mount of the node
container such as its Docker socket, ``/run`` or ``/tmp``) and outside the node's sensitive paths
(:mod:`labctl.kube.hostpath`).

* ``emptyDir`` — a directory (0777) shared by the pod's containers for the pod's life on the node
  (over its ``sizeLimit``, the pod is evicted, as by the kubelet's eviction manager);
  ``medium: Memory`` is a Docker ``tmpfs`` volume sized by ``sizeLimit`` (else the pod's memory
  limit), which the sandbox keeps mounted so it outlives container restarts.
* ``configMap``, ``secret``, ``downwardAPI``, ``projected`` — files written by the atomic writer
  (:mod:`.projection`), mounted read-only (as the kubelet forces); rewritten when their source
  changes. The service-account token volume that admission adds (``kube-api-access-…``) is written
  by the token manager (:mod:`.serviceaccount`) instead, and renewed with the token.
* ``hostPath`` — the node's path, with the ``type`` checks (``DirectoryOrCreate``, ``File``…).
* ``persistentVolumeClaim`` — the bound PersistentVolume's ``hostPath``/``local`` path of this node
  (a local-path volume: ``/var/local-path-provisioner/pvc-…``, created on first mount), mounted as
  a hostPath; read-only with ``readOnly: true``. An unbound claim fails the mount until bound.

The content builders are pure and unit-tested; :class:`NodeVolumes` does the node's file work.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ...kube.confinement import host_path_refusal
from ...kube.containers import KUBELET_PODS_DIR
from ...kube.quantity import milli_value, parse_quantity, value
from ...kube.storage import volume_node, volume_path
from .projection import FILE_MODE, VolumeFile, write_volume

PODS_DIR = KUBELET_PODS_DIR
#: the sandbox mounts every Memory emptyDir here, so the tmpfs stays while containers restart
SANDBOX_VOLUMES_DIR = "/volumes"
EMPTY_DIR_MODE = 0o777
#: the kubelet reads at most this much of a container's terminationMessagePath
TERMINATION_MESSAGE_MAX = 4096
#: the pod's hosts and resolv.conf: readable by any user the containers run as
POD_FILE_MODE = 0o644
#: volume kinds whose files the kubelet writes; their mounts are read-only whatever the spec says
PROJECTED_KINDS = ("configMap", "secret", "downwardAPI", "projected")
PLUGINS = {"emptyDir": "empty-dir", "configMap": "configmap", "secret": "secret", "downwardAPI": "downward-api",
           "projected": "projected"}


class VolumeError(Exception):
    """A volume that cannot be set up (yet): the text after ``MountVolume.SetUp failed for volume "x" :``."""


@dataclass
class Sources:
    """The ConfigMaps and Secrets a pod's volumes name (None: not found), and its token."""

    config_maps: dict[str, dict | None] = field(default_factory=dict)
    secrets: dict[str, dict | None] = field(default_factory=dict)
    token: str = ""
    ca: bytes = b""


def volume_kind(volume: dict) -> str:
    return next((k for k in volume if k != "name"), "")


def referenced(volumes: list[dict]) -> tuple[set[str], set[str]]:
    """Names of the ConfigMaps and Secrets these volumes of a pod read."""
    config_maps, secrets = set(), set()
    for volume in volumes:
        if "configMap" in volume:
            config_maps.add(volume["configMap"].get("name", ""))
        if "secret" in volume:
            secrets.add(volume["secret"].get("secretName", ""))
        for source in (volume.get("projected") or {}).get("sources") or []:
            if "configMap" in source:
                config_maps.add(source["configMap"].get("name", ""))
            if "secret" in source:
                secrets.add(source["secret"].get("name", ""))
    return config_maps, secrets


# -- file contents (pure) ------------------------------------------------------------------------
def key_files(kind: str, name: str, obj: dict | None, data: Mapping[str, bytes], source: dict,
              default_mode: int) -> dict[str, VolumeFile]:
    """``items`` (key → path, mode) or every key, of a ConfigMap or Secret; kube's errors when missing."""
    if obj is None:
        if source.get("optional"):
            return {}
        raise VolumeError(f'{kind} "{name}" not found')
    items = source.get("items")
    if not items:
        return {key: VolumeFile(content, default_mode) for key, content in data.items()}
    files = {}
    for item in items:
        if item["key"] not in data:
            if source.get("optional"):
                continue
            raise VolumeError(f"{kind} references non-existent config key: {item['key']}")
        files[item["path"]] = VolumeFile(data[item["key"]], item.get("mode", default_mode))
    return files


def config_map_data(obj: dict | None) -> dict[str, bytes]:
    if obj is None:
        return {}
    data = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


def secret_data(obj: dict | None) -> dict[str, bytes]:
    return {k: base64.b64decode(v) for k, v in ((obj or {}).get("data") or {}).items()}


def format_map(values: Mapping[str, str]) -> str:
    """kube's ``fieldpath.FormatMap``: ``key="value"`` lines, sorted (Go's %q quoting)."""
    return "\n".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in sorted(values.items()))


def field_value(pod: dict, path: str) -> str:
    """A downward API ``fieldRef`` a volume may use."""
    meta = pod["metadata"]
    for kind in ("labels", "annotations"):
        if path == f"metadata.{kind}":
            return format_map(meta.get(kind) or {})
        prefix = f"metadata.{kind}['"
        if path.startswith(prefix) and path.endswith("']"):
            return str((meta.get(kind) or {}).get(path[len(prefix):-2], ""))
    simple = {"metadata.name": meta["name"], "metadata.namespace": meta.get("namespace", "default"),
              "metadata.uid": meta["uid"]}
    if path not in simple:
        raise VolumeError(f"unsupported fieldPath: {path}")
    return simple[path]


def resource_value(pod: dict, container_name: str, resource: str, divisor: str | None,
                   default_memory: int, node_cpus: int) -> str:
    """A ``resourceFieldRef``: the container's limit (or request), divided and rounded up, as the kubelet.

    A limit that is not set reads as what binds the container: labctl's default memory limit,
    or the node's cores.
    """
    container = next((c for c in pod["spec"].get("containers") or [] if c["name"] == container_name), None)
    if container is None:
        raise VolumeError(f"resourceFieldRef: container {container_name!r} not found")
    kind, _, name = resource.partition(".")
    if kind not in ("limits", "requests") or name not in ("cpu", "memory"):
        raise VolumeError(f"unsupported resource: {resource}")
    resources = container.get("resources") or {}
    quantity = (resources.get(kind) or {}).get(name)
    if quantity is None and kind == "requests":
        quantity = (resources.get("limits") or {}).get(name)
    if name == "cpu":
        milli = milli_value(quantity) if quantity is not None else (0 if kind == "requests" else node_cpus * 1000)
        return str(math.ceil(milli / milli_value(divisor or "1")))
    amount = value(quantity) if quantity is not None else (0 if kind == "requests" else default_memory)
    return str(math.ceil(amount / parse_quantity(divisor or "1")))


def downward_files(pod: dict, items: list[dict], default_mode: int, *, default_memory: int,
                   node_cpus: int) -> dict[str, VolumeFile]:
    files = {}
    for item in items:
        if "fieldRef" in item:
            text = field_value(pod, item["fieldRef"]["fieldPath"])
        else:
            ref = item["resourceFieldRef"]
            text = resource_value(pod, ref.get("containerName", ""), ref["resource"], ref.get("divisor"),
                                  default_memory, node_cpus)
        files[item["path"]] = VolumeFile(text.encode(), item.get("mode", default_mode))
    return files


def volume_files(pod: dict, volume: dict, sources: Sources, *, default_memory: int,
                 node_cpus: int) -> dict[str, VolumeFile]:
    """The files of a configMap, secret, downwardAPI or projected volume."""
    kind = volume_kind(volume)
    spec = volume[kind]
    mode = spec.get("defaultMode", FILE_MODE)
    if kind == "configMap":
        name = spec.get("name", "")
        obj = sources.config_maps.get(name)
        return key_files("configmap", name, obj, config_map_data(obj), spec, mode)
    if kind == "secret":
        name = spec.get("secretName", "")
        obj = sources.secrets.get(name)
        return key_files("secret", name, obj, secret_data(obj), spec, mode)
    if kind == "downwardAPI":
        return downward_files(pod, spec.get("items") or [], mode, default_memory=default_memory, node_cpus=node_cpus)
    files: dict[str, VolumeFile] = {}
    for source in spec.get("sources") or []:
        if "configMap" in source:
            sub = source["configMap"]
            obj = sources.config_maps.get(sub.get("name", ""))
            files.update(key_files("configmap", sub.get("name", ""), obj, config_map_data(obj), sub, mode))
        elif "secret" in source:
            sub = source["secret"]
            obj = sources.secrets.get(sub.get("name", ""))
            files.update(key_files("secret", sub.get("name", ""), obj, secret_data(obj), sub, mode))
        elif "downwardAPI" in source:
            files.update(downward_files(pod, source["downwardAPI"].get("items") or [], mode,
                                        default_memory=default_memory, node_cpus=node_cpus))
        elif "serviceAccountToken" in source:
            files[source["serviceAccountToken"]["path"]] = VolumeFile(sources.token.encode(), mode)
    return files


def claim_host_path(claim_name: str, pvc: dict | None, pv: dict | None, node: str) -> dict:
    """The ``hostPath`` spec a ``persistentVolumeClaim`` volume mounts: its bound PV's path on this node.

    A claim not found or not bound yet, or a volume of another node, fails the mount (the pod
    stays ContainerCreating with a ``FailedMount`` event and the kubelet retries); the PV's
    ``hostPath``/``local`` path is a path of the node, checked as a pod's hostPath is.
    """
    if pvc is None:
        raise VolumeError(f'error processing PVC {claim_name}: persistentvolumeclaims "{claim_name}" not found')
    volume_name = (pvc.get("spec") or {}).get("volumeName")
    if not volume_name or (pvc.get("status") or {}).get("phase") != "Bound":
        raise VolumeError(f"error processing PVC {pvc['metadata'].get('namespace')}/{claim_name}: PVC is not bound")
    if pv is None:
        raise VolumeError(f'persistentvolumes "{volume_name}" not found')
    path, pinned = volume_path(pv), volume_node(pv)
    if not path:
        raise VolumeError(f"volume {volume_name}: only hostPath and local volumes are supported by labctl")
    if pinned is not None and pinned != node:
        raise VolumeError(f"volume {volume_name} is on node {pinned!r}, not {node!r}")
    spec = pv.get("spec") or {}
    return {"path": path, "type": (spec.get("hostPath") or {}).get("type", "DirectoryOrCreate")}


# -- mounts (pure) -------------------------------------------------------------------------------
@dataclass
class PreparedVolumes:
    """Where each of a pod's volumes is: a node path (bind) or a Docker volume (Memory emptyDir)."""

    node_paths: dict[str, str] = field(default_factory=dict)
    docker_volumes: dict[str, str] = field(default_factory=dict)
    read_only: set[str] = field(default_factory=set)   # kubelet-written: always read-only
    writable: set[str] = field(default_factory=set)    # a subPath may be created in them
    elsewhere: set[str] = field(default_factory=set)   # bound by noderoot.py (kubectl debug node's /host)


def container_mounts(container: dict, prepared: PreparedVolumes, host_root: str,
                     resolve: Callable[[str, str, bool], str]) -> list[dict]:
    """Docker ``Mounts`` of a container's ``volumeMounts``.

    ``resolve(base, subPath, create)`` gives the node path of a subPath (checked inside the node).
    """
    mounts = []
    wanted = [(m, bool(m.get("readOnly"))) for m in container.get("volumeMounts") or []]
    for mount, read_only in wanted:
        name, target = mount["name"], mount["mountPath"]
        if name in prepared.elsewhere:
            continue
        read_only = read_only or name in prepared.read_only
        if name in prepared.docker_volumes:
            if mount.get("subPath"):
                raise VolumeError(f'subPath is not supported for the medium "Memory" emptyDir volume "{name}"')
            mounts.append({"Type": "volume", "Source": prepared.docker_volumes[name], "Target": target,
                           "ReadOnly": read_only, "VolumeOptions": {"NoCopy": True}})
            continue
        if name not in prepared.node_paths:
            raise VolumeError(f'volume "{name}" is not a volume of the pod')
        source = prepared.node_paths[name]
        if mount.get("subPath"):
            source = resolve(source, mount["subPath"], name in prepared.writable)
        # rslave: Docker insists on it for a source inside its own root (the node's overlay is)
        mounts.append({"Type": "bind", "Source": host_root.rstrip("/") + source, "Target": target,
                       "ReadOnly": read_only, "BindOptions": {"Propagation": "rslave"}})
    return mounts


def sandbox_mounts(prepared: PreparedVolumes) -> list[dict]:
    """The sandbox holds every Memory emptyDir, so its tmpfs lives as long as the pod."""
    return [{"Type": "volume", "Source": docker_volume, "Target": f"{SANDBOX_VOLUMES_DIR}/{name}",
             "ReadOnly": False, "VolumeOptions": {"NoCopy": True}}
            for name, docker_volume in sorted(prepared.docker_volumes.items())]


def memory_volume_options(volume: dict, pod_memory_limit: int) -> dict[str, str]:
    """Docker ``local`` driver options of a ``medium: Memory`` emptyDir: a tmpfs of sizeLimit bytes."""
    size = value(volume["emptyDir"]["sizeLimit"]) if volume["emptyDir"].get("sizeLimit") else pod_memory_limit
    return {"type": "tmpfs", "device": "tmpfs", "o": f"size={size},mode=1777"}


def docker_volume_name(uid: str, name: str) -> str:
    return f"k8s_{name}_{uid}"


def check_subpath(sub: str) -> None:
    if sub.startswith("/") or ".." in sub.split("/"):
        raise VolumeError(f"subPath {sub!r} must be a relative path without '..'")


# -- the node's side -------------------------------------------------------------------------------
class NodeVolumes:
    """The volume directories of this node's pods; ``root`` is ``/`` in a node (a temp dir in tests)."""

    def __init__(self, root: Path = Path("/"), host_root: str = "") -> None:
        self.root = root
        self.host_root = host_root   # the node's root as the host's Docker engine sees it (MergedDir)

    def node(self, path: str) -> Path:
        return self.root / path.lstrip("/")

    def pod_dir(self, uid: str) -> str:
        return f"{PODS_DIR}/{uid}"

    def volume_dir(self, uid: str, kind: str, name: str) -> str:
        return f"{PODS_DIR}/{uid}/volumes/kubernetes.io~{PLUGINS[kind]}/{name}"

    def _real(self, path: str) -> str:
        """``path`` resolved inside the node (symlinks followed), as a node path."""
        real = os.path.realpath(self.node(path))
        root = os.path.realpath(self.root)
        if not (real == root or real.startswith(root.rstrip("/") + "/")):
            raise VolumeError(f"{path} resolves outside the node")
        relative = os.path.relpath(real, root)
        return "/" if relative == "." else "/" + relative

    def empty_dir(self, uid: str, name: str, fs_group: int | None) -> str:
        path = self.volume_dir(uid, "emptyDir", name)
        target = self.node(path)
        if not target.is_dir():
            target.mkdir(parents=True)
            target.chmod(EMPTY_DIR_MODE | (stat.S_ISGID if fs_group is not None else 0))
            if fs_group is not None:
                os.chown(target, -1, fs_group)
        return path

    def write(self, uid: str, kind: str, name: str, files: Mapping[str, VolumeFile], fs_group: int | None) -> str:
        path = self.volume_dir(uid, kind, name)
        write_volume(self.node(path), files, gid=fs_group)
        return path

    def write_pod_files(self, uid: str, files: Mapping[str, str]) -> None:
        """Files of the pod's own directory (its ``etc-hosts``), written in place: a container that
        has one bind-mounted keeps the same inode, so it sees the new text."""
        directory = self.node(self.pod_dir(uid))
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            fd = os.open(directory / name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, POD_FILE_MODE)
            with os.fdopen(fd, "w") as f:
                f.write(text)

    def host_path(self, spec: dict) -> str:
        """A hostPath volume's node path, after kube's type checks (``DirectoryOrCreate`` creates)."""
        path, kind = spec["path"], spec.get("type", "")
        problem = host_path_refusal(path)
        if problem is None and os.path.lexists(self.node(path)):
            problem = host_path_refusal(self._real(path))
        if problem:
            raise VolumeError(f"hostPath {path}: {problem}")
        target = self.node(path)
        if kind in ("DirectoryOrCreate", "") and not os.path.lexists(target):
            target.mkdir(parents=True, mode=0o755)
        elif kind == "FileOrCreate" and not os.path.lexists(target):
            if not target.parent.is_dir():
                raise VolumeError(f"hostPath type check failed: {path}: the parent directory does not exist")
            target.touch(mode=0o644)
        checks: dict[str, Callable[[Path], bool]] = {
            "Directory": Path.is_dir, "DirectoryOrCreate": Path.is_dir, "File": Path.is_file,
            "FileOrCreate": Path.is_file, "Socket": Path.is_socket, "CharDevice": Path.is_char_device,
            "BlockDevice": Path.is_block_device}
        if kind in checks and not checks[kind](target):
            article = "a directory" if "Directory" in kind else f"a {kind.removesuffix('OrCreate').lower()}"
            raise VolumeError(f"hostPath type check failed: {path} is not {article}")
        real = self._real(path)
        problem = host_path_refusal(real)
        if problem:
            raise VolumeError(f"hostPath {path}: {problem}")
        if os.stat(self.node(real)).st_dev != os.stat(self.root).st_dev:
            raise VolumeError(f"hostPath {path} is on a filesystem mounted into the node, not the node's own disk: "
                              f"labctl can only share the node's own files with a pod")
        return real

    def subpath(self, base: str, sub: str, create: bool) -> str:
        """``base/sub`` resolved inside the node; it must stay within ``base`` (kube's subPath checks)."""
        check_subpath(sub)
        target = self.node(f"{base}/{sub}")
        if create and not os.path.lexists(target):
            # as the kubelet: the volume's own mode and group, so an fsGroup member can write there
            volume = self.node(base)
            owner = os.stat(volume)
            parts = target.relative_to(volume).parts
            for depth in range(1, len(parts) + 1):
                made = volume.joinpath(*parts[:depth])
                if not os.path.lexists(made):
                    made.mkdir()
                    os.chmod(made, stat.S_IMODE(owner.st_mode))
                    os.chown(made, -1, owner.st_gid)
        real, base_real = self._real(f"{base}/{sub}"), self._real(base)
        if not (real == base_real or real.startswith(base_real.rstrip("/") + "/")):
            raise VolumeError(f"subPath {sub!r} resolves outside its volume")
        if not os.path.exists(self.node(real)):
            raise VolumeError(f"subPath {sub!r} does not exist in its volume")
        return real

    def usage(self, path: str) -> int:
        """Bytes used under a node directory (``du``: what the eviction manager measures)."""
        total = 0
        for dirpath, dirnames, filenames in os.walk(self.node(path)):
            for name in filenames + dirnames:
                try:
                    total += os.lstat(os.path.join(dirpath, name)).st_blocks * 512
                except OSError:
                    continue  # removed meanwhile
        return total

    def termination_log(self, uid: str, container: str, attempt: int) -> str:
        """A new, empty termination-message file of one container instance, writable by any user (as
        the kubelet makes it: ``pods/<uid>/containers/<name>/<instance>``); the container gets it at its
        ``terminationMessagePath``, and the kubelet reads it once the container has exited."""
        path = f"{self.pod_dir(uid)}/containers/{container}/{attempt}"
        target = self.node(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"")
        target.chmod(0o666)
        return path

    def termination_message(self, uid: str, container: str, attempt: int) -> str:
        """What the container instance wrote to its termination-message file ('' when nothing or no file)."""
        try:
            with open(self.node(f"{self.pod_dir(uid)}/containers/{container}/{attempt}"), "rb") as file:
                return file.read(TERMINATION_MESSAGE_MAX).decode(errors="replace")
        except OSError:
            return ""

    def remove_pod(self, uid: str) -> None:
        shutil.rmtree(self.node(self.pod_dir(uid)), ignore_errors=True)

    def pod_uids(self) -> set[str]:
        pods = self.node(PODS_DIR)
        return {p.name for p in pods.iterdir()} if pods.is_dir() else set()


def fs_group(pod: dict) -> int | None:
    value_ = (pod["spec"].get("securityContext") or {}).get("fsGroup")
    return int(value_) if value_ is not None else None
