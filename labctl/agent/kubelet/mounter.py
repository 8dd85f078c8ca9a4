"""One pod's volumes, set up and kept fresh: the kubelet's volume manager for a pod worker.

Before the sandbox exists every volume of the pod is made on the node (:mod:`.volumes`); a
volume that cannot be made yet — a ConfigMap or Secret that does not exist — fails the whole
setup with the volume's name, which the worker reports as a ``FailedMount`` event and retries,
the pod staying ``ContainerCreating``. While the pod runs, the kubelet-written volumes are
rewritten when their sources change (checked every :data:`VOLUME_RESYNC_S`), and the
service-account token (the ``kube-api-access-…`` volume that admission added to the pod,
:mod:`labctl.kube.serviceaccount`) whenever the token manager renews it,
and a disk emptyDir over its ``sizeLimit`` gets the pod evicted.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from ...client.rest import APIStatusError, resource_path
from ...kube.nodedebug import is_node_debugger, is_node_root
from ...kube.quantity import value
from ...kube.serviceaccount import token_volume
from .context import KubeletContext
from .podfiles import ETC_HOSTS, pod_file_mounts
from .projection import VolumeFile
from .runtime import SANDBOX, ContainerRecord, PodRef
from .serviceaccount import ProjectedToken
from .volumes import (
    PROJECTED_KINDS,
    PreparedVolumes,
    Sources,
    VolumeError,
    claim_host_path,
    container_mounts,
    docker_volume_name,
    fs_group,
    memory_volume_options,
    referenced,
    volume_files,
    volume_kind,
)

log = logging.getLogger("labctl.kubelet")
#: how often a running pod's ConfigMap, Secret and downward API volumes are compared with their sources
VOLUME_RESYNC_S = 10.0


@dataclass
class MountFailure(Exception):
    """A volume of the pod could not be set up; ``str()`` is the kubelet's FailedMount message."""

    volume: str
    reason: str

    def __str__(self) -> str:
        return f'MountVolume.SetUp failed for volume "{self.volume}" : {self.reason}'


class PodMounter:
    def __init__(self, ctx: KubeletContext, ref: PodRef) -> None:
        self.ctx = ctx
        self.ref = ref
        self.prepared: PreparedVolumes | None = None
        self.token: ProjectedToken | None = None   # the token the pod's kube-api-access-… volume holds
        self.resync_at = 0.0
        self.log_messages: dict[str, str] = {}  # container id → its FallbackToLogsOnError message

    def token_volume(self, pod: dict) -> str | None:
        """The pod's service-account token volume, which the token manager keeps (None: it has none)."""
        return token_volume(pod) if self.ctx.tokens is not None else None

    async def setup(self, pod: dict) -> PreparedVolumes:
        """Every volume of the pod on the node; raises :class:`MountFailure`."""
        ctx, volumes = self.ctx, self.ctx.volumes
        names = [v["name"] for v in pod["spec"].get("volumes") or []]
        token_name = self.token_volume(pod)
        if not volumes.host_root:  # every pod needs it: its /etc/hosts is a node file too (podfiles.py)
            try:
                volumes.host_root = (await ctx.blocking(ctx.runtime.node_root)).merged_dir
            except Exception as err:
                raise MountFailure(names[0] if names else ETC_HOSTS, str(err)) from err
        prepared, sources = PreparedVolumes(), _Lazy(self._sources, pod)
        for volume in pod["spec"].get("volumes") or []:
            if is_node_debugger(pod) and is_node_root(volume):
                prepared.elsewhere.add(volume["name"])  # kubectl debug node's /host: noderoot.py binds it
                continue
            if volume["name"] == token_name:
                continue  # the token manager's: written below
            try:
                await self._setup_volume(pod, volume, prepared, sources)
            except VolumeError as err:
                raise MountFailure(volume["name"], str(err)) from err
            except OSError as err:
                raise MountFailure(volume["name"], f"{err.strerror}: {err.filename}") from err
        if token_name:
            try:
                await self.write_token(pod)
            except Exception as err:
                raise MountFailure(token_name, str(err)) from err
            prepared.node_paths[token_name] = volumes.volume_dir(self.ref.uid, "projected", token_name)
            prepared.read_only.add(token_name)
        self.prepared = prepared
        self.resync_at = time.monotonic() + VOLUME_RESYNC_S
        return prepared

    async def _setup_volume(self, pod: dict, volume: dict, prepared: PreparedVolumes, sources: _Lazy) -> None:
        ctx, volumes, name, kind = self.ctx, self.ctx.volumes, volume["name"], volume_kind(volume)
        group = fs_group(pod)
        if kind == "emptyDir" and volume["emptyDir"].get("medium") == "Memory":
            docker_name = docker_volume_name(self.ref.uid, name)
            await ctx.blocking(ctx.runtime.ensure_volume, docker_name, ctx.runtime.volume_labels(self.ref, name),
                               memory_volume_options(volume, ctx.cfg.cluster.pod_default_memory_limit))
            prepared.docker_volumes[name] = docker_name
        elif kind == "emptyDir":
            prepared.node_paths[name] = await ctx.blocking(volumes.empty_dir, self.ref.uid, name, group)
            prepared.writable.add(name)
        elif kind == "hostPath":
            prepared.node_paths[name] = await ctx.blocking(volumes.host_path, volume["hostPath"])
            prepared.writable.add(name)
        elif kind == "persistentVolumeClaim":
            source = volume["persistentVolumeClaim"]
            prepared.node_paths[name] = await ctx.blocking(volumes.host_path, await self._claim_host_path(source))
            (prepared.read_only if source.get("readOnly") else prepared.writable).add(name)
        elif kind in PROJECTED_KINDS:
            files = volume_files(pod, volume, await sources.get(),
                                 default_memory=ctx.cfg.cluster.pod_default_memory_limit, node_cpus=os.cpu_count() or 1)
            prepared.node_paths[name] = await ctx.blocking(volumes.write, self.ref.uid, kind, name, files, group)
            prepared.read_only.add(name)
        else:
            raise VolumeError(f"volume type {kind!r} is not supported by labctl")

    async def _claim_host_path(self, source: dict) -> dict:
        """The node path of a claim's bound volume (the pod's claim, then the volume bound to it)."""
        claim = source.get("claimName", "")
        pvc = await self._get("persistentvolumeclaims", self.ref.namespace, claim)
        volume_name = ((pvc or {}).get("spec") or {}).get("volumeName")
        pv = await self._get("persistentvolumes", None, volume_name) if volume_name else None
        return claim_host_path(claim, pvc, pv, self.ctx.cfg.node_name)

    async def _get(self, plural: str, namespace: str | None, name: str) -> dict | None:
        try:
            return await self.ctx.client.get(resource_path(plural, namespace, name))
        except APIStatusError as err:
            if err.code != 404:
                raise VolumeError(f"failed to get {plural[:-1]} {name!r}: {err}") from err
            return None

    async def _sources(self, pod: dict) -> Sources:
        """The ConfigMaps and Secrets the pod's volumes read (None: not found), and the token if projected
        (but for the token volume's: the token manager serves that one)."""
        token_name = self.token_volume(pod)
        served = [v for v in pod["spec"].get("volumes") or [] if v["name"] != token_name]
        config_maps, secrets = referenced(served)
        sources = Sources()
        for plural, names, into in (("configmaps", config_maps, sources.config_maps),
                                    ("secrets", secrets, sources.secrets)):
            for name in names:
                try:
                    into[name] = await self.ctx.client.get(resource_path(plural, self.ref.namespace, name))
                except APIStatusError as err:
                    if err.code != 404:
                        raise VolumeError(f"failed to get {plural[:-1]} {name!r}: {err}") from err
                    into[name] = None
        if self.ctx.tokens is not None and any(
                "serviceAccountToken" in s for v in served for s in (v.get("projected") or {}).get("sources") or []):
            sources.token = (await self.ctx.tokens.token(pod)).token
        return sources

    async def write_token(self, pod: dict) -> bool:
        """Write the pod's current token into its kube-api-access-… volume if it changed; True when written."""
        tokens, name = self.ctx.tokens, self.token_volume(pod)
        assert tokens is not None and name is not None
        token = await tokens.token(pod)
        if self.token is not None and self.token.token == token.token:
            return False
        files = {name: VolumeFile(content) for name, content in tokens.volume(pod, token).items()}
        await self.ctx.blocking(self.ctx.volumes.write, self.ref.uid, "projected", name, files, fs_group(pod))
        self.token = token
        return True

    async def refresh(self, pod: dict) -> None:
        """Rewrite the ConfigMap/Secret/downward API volumes of a running pod whose sources changed.

        A source that disappeared leaves the last files in place (as the kubelet does).
        """
        if self.prepared is None or time.monotonic() < self.resync_at:
            return
        self.resync_at = time.monotonic() + VOLUME_RESYNC_S
        sources, token_name = _Lazy(self._sources, pod), self.token_volume(pod)
        for volume in pod["spec"].get("volumes") or []:
            if volume_kind(volume) in PROJECTED_KINDS and volume["name"] != token_name:
                try:
                    await self._setup_volume(pod, volume, PreparedVolumes(), sources)
                except (VolumeError, OSError) as err:
                    log.warning("pod %s/%s: volume %s not updated: %s", self.ref.namespace, self.ref.name,
                                volume["name"], err)

    async def over_limit(self, pod: dict) -> str:
        """The eviction manager's verdict on the disk emptyDirs with a ``sizeLimit``: '' or why to evict."""
        if self.prepared is None:
            return ""
        for volume in pod["spec"].get("volumes") or []:
            limit = (volume.get("emptyDir") or {}).get("sizeLimit")
            path = self.prepared.node_paths.get(volume["name"])
            if limit and path and volume["emptyDir"].get("medium") != "Memory":
                if await self.ctx.blocking(self.ctx.volumes.usage, path) > value(limit):
                    return f'Usage of EmptyDir volume "{volume["name"]}" exceeds the limit "{limit}".'
        return ""

    async def mounts(self, pod: dict, container: dict) -> list[dict]:
        """The container's Docker mounts: its volumeMounts, the pod's hosts and resolv.conf."""
        assert self.prepared is not None
        volumes = self.ctx.volumes
        mounts = await self.ctx.blocking(container_mounts, container, self.prepared, volumes.host_root,
                                         volumes.subpath)
        return mounts + pod_file_mounts(pod, container, volumes.host_root.rstrip("/") + volumes.pod_dir(self.ref.uid))

    async def termination_mount(self, container: dict, attempt: int) -> dict:
        """The Docker bind mount of a new termination-message file at the container's
        ``terminationMessagePath`` (``/dev/termination-log`` by default), as the kubelet gives every container."""
        ctx, volumes = self.ctx, self.ctx.volumes
        if not volumes.host_root:
            volumes.host_root = (await ctx.blocking(ctx.runtime.node_root)).merged_dir
        path = await ctx.blocking(volumes.termination_log, self.ref.uid, container["name"], attempt)
        return {"Type": "bind", "Source": volumes.host_root.rstrip("/") + path,
                "Target": container.get("terminationMessagePath") or "/dev/termination-log", "ReadOnly": False,
                "BindOptions": {"Propagation": "rslave"}}

    async def read_termination_messages(self, pod: dict, records: list[ContainerRecord]) -> None:
        """Fill in what each exited container wrote to its terminationMessagePath (``lastState.terminated.message``),
        or with ``terminationMessagePolicy: FallbackToLogsOnError`` the end of its log when it wrote nothing and
        failed (read once per container instance: an exited one never changes)."""
        exited = [r for r in records if r.exited and r.name != SANDBOX]
        if not exited:
            return
        read = self.ctx.volumes.termination_message
        messages = await self.ctx.blocking(lambda: [read(self.ref.uid, r.name, r.attempt) for r in exited])
        specs = {c.get("name"): c for key in ("initContainers", "containers") for c in pod["spec"].get(key) or []}
        for record, message in zip(exited, messages, strict=True):
            if not message and falls_back_to_logs(specs.get(record.name), record):
                if record.id not in self.log_messages:
                    tail = await self.ctx.blocking(self.ctx.runtime.log_tail, record.id, TERMINATION_LOG_LINES)
                    self.log_messages[record.id] = last_log_chunk(tail)
                message = self.log_messages[record.id]
            record.termination_message = message
        kept = {r.id for r in exited}
        self.log_messages = {cid: m for cid, m in self.log_messages.items() if cid in kept}

    async def teardown(self) -> None:
        """Remove the pod's volumes from the node (its containers are gone)."""
        await remove_pod_volumes(self.ctx, self.ref.uid)


#: kube's MaxContainerTerminationMessageLogLines and …LogLength: what FallbackToLogsOnError keeps of the log
TERMINATION_LOG_LINES = 80
TERMINATION_LOG_BYTES = 2048


def falls_back_to_logs(container: dict | None, record: ContainerRecord) -> bool:
    """Whether an exited instance that wrote no termination message gets the end of its log instead: the
    policy says so, it failed, and it ran at all (a container that could not start has no log)."""
    return ((container or {}).get("terminationMessagePolicy") == "FallbackToLogsOnError"
            and record.exit_code != 0 and not record.start_error)


def last_log_chunk(tail: bytes) -> str:
    """The last :data:`TERMINATION_LOG_BYTES` of the log's last lines (the kubelet's circular buffer)."""
    return tail[-TERMINATION_LOG_BYTES:].decode(errors="replace")


class _Lazy:
    """The pod's ConfigMaps and Secrets, fetched once per setup or refresh, and only if a volume reads them."""

    def __init__(self, fetch: Callable[[dict], Awaitable[Sources]], pod: dict) -> None:
        self.fetch, self.pod = fetch, pod
        self.value: Sources | None = None

    async def get(self) -> Sources:
        if self.value is None:
            self.value = await self.fetch(self.pod)
        return self.value


async def remove_pod_volumes(ctx: KubeletContext, uid: str) -> None:
    await ctx.blocking(ctx.runtime.remove_pod_volumes, uid)
    await ctx.blocking(ctx.volumes.remove_pod, uid)
