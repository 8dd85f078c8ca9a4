"""One pod's sync loop: make Docker match the pod spec, then report status.

Like the kubelet's pod workers, each pod has its own task that wakes on any signal
(pod changed, a container died in Docker, a probe verdict flipped, a back-off
expired) and runs :meth:`PodWorker.sync` — never two syncs of one pod at once, many
pods in parallel. A sync reads the truth from Docker (labels, inspect), so a
restarted agent simply adopts what it finds.
"""

from __future__ import annotations

import asyncio
import logging
import time

from ...client.rest import APIStatusError, resource_path
from ...engine.sdk import daemon_error
from ...kube.meta import timestamp
from . import network, probes
from .context import KubeletContext
from .envvars import ContainerConfigError, EnvSources, PodAddresses, container_env, referenced_objects, service_env
from .ephemeral import ephemeral_containers, ephemeral_statuses, sync_ephemeral_containers
from .hooks import container_spec, run_handler, stop_container
from .images import ImageNeverPullError, ImagePullError, ResolvedImage, alias_message, always_message
from .initcontainers import latest_record, plan_init, should_restart
from .mounter import MountFailure, PodMounter
from .noderoot import node_root_mount_paths
from .podfiles import write_pod_files
from .runtime import SANDBOX, ContainerRecord, PodRef, build_container, build_sandbox
from .security import ConfigError, effective_security, non_root_problem
from .status import TERMINAL_PHASES, ContainerView, build_pod_status
from .teardown import grace_seconds, kill_pod, release_sandboxes, stop_containers
from .volumes import VolumeError, sandbox_mounts

log = logging.getLogger("labctl.kubelet")
RETRY_S = 2.0
#: A pod worker re-checks Docker this long after its last sync at the latest, in case an event was missed.
RESYNC_S = 10.0


def group_records(records: list[ContainerRecord]) -> dict[str, list[ContainerRecord]]:
    """Container name → its instances, oldest attempt first."""
    out: dict[str, list[ContainerRecord]] = {}
    for record in sorted(records, key=lambda r: r.attempt):
        out.setdefault(record.name, []).append(record)
    return out


class PodWorker:
    def __init__(self, ctx: KubeletContext, pod: dict) -> None:
        self.ctx = ctx
        self.pod = pod
        self.ref = PodRef.of(pod)
        self.gone = False          # the API object is deleted: only clean up
        self.pod_ip = ""
        self.sandbox_ready = False
        self.pod_files = False     # its /etc/hosts and resolv.conf are on the node (podfiles.py)
        self.released = False      # terminal pod: network released once
        self.start_time = (pod.get("status") or {}).get("startTime", "")
        self.waiting: dict[str, tuple[str, str]] = {}   # container → (reason, message)
        self.readiness: dict[str, bool] = {}            # container id → ready
        self.started_ids: set[str] = set()              # container ids whose startupProbe passed
        self.first_attempts: dict[str, int] = {}        # attempt numbers to continue after a new sandbox
        self.probe_tasks: dict[tuple[str, str], asyncio.Task] = {}
        self.probe_grid = time.monotonic()  # the probes' ticks count from here (upstream's AddPod)
        self.last_status: dict | None = None
        self.sending_status: dict | None = None  # the status of a PATCH not answered yet
        self.pull_failures: dict[str, tuple[float, str]] = {}  # container → (when, message)
        self.volumes = PodMounter(ctx, self.ref)
        self.evicted = ""  # the eviction message, once evicted
        self._token_timer: asyncio.TimerHandle | None = None
        self._post_start: asyncio.Task | None = None    # the postStart hook the sync waits for
        self.own_starts: set[str] = set()  # containers it is starting, whose Docker "start" event is no news
        self._wake = asyncio.Event()
        self._wake.set()
        self._resync: asyncio.TimerHandle | None = None
        self.task: asyncio.Task | None = None

    # -- signals -------------------------------------------------------------------------
    def update(self, pod: dict) -> None:
        echo = self.own_status_echo(pod)
        self.pod = pod
        if pod["metadata"].get("deletionTimestamp") and self._post_start is not None:
            self._post_start.cancel()  # a hook that never returns must not hold the deletion
        if not echo:
            self.wake()

    def own_status_echo(self, pod: dict) -> bool:
        """True when ``pod`` is only the API server's echo of the status this worker last wrote.

        Waking on it would re-read Docker (a list and an inspect per container, twice) for
        nothing — in a 50-pod burst that was most of the kubelet's Docker calls. Anything
        else (spec, metadata, a status someone else changed, like the node lifecycle
        controller's Ready=Unknown) still wakes the worker. The echo may come through the
        watch before the PATCH's own answer: the status being sent counts too.
        """
        status = pod.get("status") or {}
        if not any(written is not None and all(status.get(key) == value for key, value in written.items())
                   for written in (self.last_status, self.sending_status)):
            return False
        return _without_status(pod) == _without_status(self.pod)

    def wake(self) -> None:
        self._wake.set()

    def container_event(self, action: str, container_id: str) -> None:
        """A Docker event about one of the pod's containers: wake, unless it is the ``start`` of a
        container this worker started itself.

        That start is the echo of the worker's own call, whose sync writes the status after it
        anyway; waking on it cost every new pod one more sync — a list and an inspect per
        container, twice — for nothing (docs/pod-startup.md). A container with probes still gets
        its sync (:meth:`start_container`), which starts them.
        """
        if action == "start" and container_id in self.own_starts:
            self.own_starts.discard(container_id)
            return
        self.wake()

    async def start(self, container_id: str) -> None:
        """``docker start``, its event expected as an echo (:meth:`container_event`)."""
        self.own_starts.add(container_id)
        try:
            await self.ctx.blocking(self.ctx.runtime.start, container_id)
        except BaseException:
            self.own_starts.discard(container_id)
            raise

    def wake_after(self, delay: float) -> None:
        asyncio.get_running_loop().call_later(max(0.05, delay), self.wake)

    async def run(self) -> None:
        """Sync on every wake-up until the pod is torn down, and :data:`RESYNC_S` after the last sync.

        The resync is timed per pod from its own last sync, as the kubelet's pod workers
        re-queue themselves after each sync: a pod that has just been synced is not looked at
        again for nothing, and a node's pods are not all woken at the same tick (in a burst,
        a tick that came during a pod's start cost it a second sync at once, and all of them
        at the same moment).
        """
        loop = asyncio.get_running_loop()
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if self._resync is not None:
                    self._resync.cancel()
                try:
                    if await self.sync():
                        return
                except asyncio.CancelledError:
                    raise
                except Exception as err:
                    log.warning("failed to sync pod %s/%s: %s", self.ref.namespace, self.ref.name, err,
                                exc_info=True)
                    self.wake_after(RETRY_S)
                self._resync = loop.call_later(RESYNC_S, self.wake)
        finally:
            if self._resync is not None:
                self._resync.cancel()

    # -- sync ----------------------------------------------------------------------------
    async def sync(self) -> bool:
        """One pass; True when the pod is gone for good."""
        pod = self.pod
        if self.gone or pod["metadata"].get("deletionTimestamp"):
            await self.terminate()
            return True
        records = await self.ctx.blocking(self.ctx.runtime.list_pod, self.ref.uid)
        by_name = group_records(records)
        if self.terminal():
            await self.release(by_name)
            return False
        sandboxes = by_name.get(SANDBOX, [])
        sandbox = sandboxes[-1] if sandboxes else None
        made: list[ContainerRecord] | None = None
        if sandbox is None or not sandbox.running or await self.network_gone(sandbox):
            attempts: dict[str, int] = {}
            if sandbox is not None:
                await self.kill_sandbox(by_name)
                if self.gone:  # the pod was deleted meanwhile: the next pass only cleans up
                    self.wake()
                    return False
                attempts = {name: rs[-1].attempt + 1 for name, rs in by_name.items() if name != SANDBOX}
            made = await self.start_pod(sandbox.attempt + 1 if sandbox else 0, attempts,
                                        records if sandbox is None else None)
        else:
            await self.sync_containers(by_name, sandbox.id)
            await self.refresh_volumes()
        await self.write_status(made)
        return False

    def terminal(self) -> bool:
        phases = {(self.pod.get("status") or {}).get("phase"), (self.last_status or {}).get("phase")}
        return bool(phases & set(TERMINAL_PHASES))

    async def network_gone(self, sandbox: ContainerRecord) -> bool:
        """True when a running sandbox we wired has lost its veth (it must be re-created)."""
        if sandbox.host_network:  # the node's own namespace: nothing of ours to lose
            self.pod_ip, self.sandbox_ready = self.ctx.cfg.internal_ip, True
            return False
        if not self.pod_ip:
            self.pod_ip = await self.ctx.blocking(network.pod_ip_in_netns, sandbox.netns)
            self.sandbox_ready = bool(self.pod_ip)
        problem = network.pod_network_problem(sandbox.id)
        if problem:
            log.warning("pod %s/%s: the network of its sandbox is gone (%s): re-creating the sandbox",
                        self.ref.namespace, self.ref.name, problem)
        return bool(problem)

    async def kill_sandbox(self, by_name: dict[str, list[ContainerRecord]]) -> None:
        """The sandbox died (Docker restarted, someone killed it) or lost its network: say so, then kill the pod.

        The status is written first: re-creating waits for a CNI slot, and until then the
        pod must not go on looking Running and Ready with its containers gone.
        """
        self.ctx.event(self.pod, "Normal", "SandboxChanged", "Pod sandbox changed, it will be killed and re-created.")
        self.cancel_probes()
        self.pod_ip, self.sandbox_ready = "", False
        self.readiness.clear()
        await self.write_status()
        await kill_pod(self.ctx, [r for rs in by_name.values() for r in rs], grace_seconds(self.pod))

    async def start_pod(self, attempt: int, container_attempts: dict[str, int] | None = None,
                        listed: list[ContainerRecord] | None = None) -> list[ContainerRecord] | None:
        """Sandbox → (network ∥ image + create of each container) → start the containers.

        ``container_attempts`` continues the containers' attempt numbers after a sandbox
        re-creation, so their restart counts rise, as the kubelet counts them. ``listed`` is
        the pod's containers as the sync has just read them from Docker, nothing done to them
        since (None: not known). When that was none at all, the pod's containers are exactly the
        ones made here: their records are returned, read after the start, for the status (no
        second list of the pod; None otherwise, and the status lists them).
        """
        pod, ctx = self.pod, self.ctx
        first = container_attempts or {}
        if self.last_status is None:
            # the kubelet's first status, before anything is created: ContainerCreating (or
            # PodInitializing), which `kubectl get pods` shows while images, the network and a
            # postStart hook take their time
            await self.write_status(listed)
        if not await self.setup_volumes():
            return None
        assert self.volumes.prepared is not None
        # the files the containers mount must exist when they are created: without the IP until the ADD
        await write_pod_files(ctx, pod, "")
        self.pod_files = True
        spec = build_sandbox(pod, ctx.cfg.cluster, ctx.runtime.node_container, attempt,
                             sandbox_mounts(self.volumes.prepared))
        self.pod_ip, self.sandbox_ready = "", False
        self.start_time = self.start_time or timestamp()
        t0 = time.monotonic()
        sandbox_id = await ctx.blocking(ctx.runtime.create, spec)
        t1 = time.monotonic()
        containers = pod["spec"].get("containers") or []
        self.first_attempts = dict(first)
        if pod["spec"].get("initContainers"):
            # the app containers wait for the init containers: one step per sync from here on
            if await self.start_network(sandbox_id):
                await self.sync_containers({}, sandbox_id)
            return None
        needs_ip = any(_uses_pod_ip(c) for c in containers)
        # the network's task first, so it queues for the blocking threads ahead of the creates
        network = asyncio.ensure_future(self.start_network(sandbox_id))
        network_ready, ids = await asyncio.gather(
            network,
            asyncio.gather(*(self.create_container(c, sandbox_id, first.get(c["name"], 0))
                             for c in containers if not needs_ip)))
        if not network_ready:
            return None
        if needs_ip:
            ids = await asyncio.gather(*(self.create_container(c, sandbox_id, first.get(c["name"], 0))
                                         for c in containers))
        t2 = time.monotonic()
        await asyncio.gather(*(self.start_container(c, cid) for c, cid in zip(containers, ids) if cid))
        log.info("pod %s/%s started: sandbox %.2fs, network+create %.2fs, start %.2fs", self.ref.namespace,
                 self.ref.name, t1 - t0, t2 - t1, time.monotonic() - t2)
        if listed != []:
            return None
        return await ctx.blocking(ctx.runtime.inspect_all, [cid for cid in ids if cid])

    async def start_network(self, sandbox_id: str) -> bool:
        ctx = self.ctx
        try:
            t0 = time.monotonic()
            await self.start(sandbox_id)
            sandbox = await ctx.blocking(ctx.runtime.inspect, sandbox_id)
            t1 = time.monotonic()
            if sandbox.host_network:  # the node's namespace: no CNI ADD, the node's IP
                self.pod_ip = ctx.cfg.internal_ip
            else:
                async with ctx.cni_slots:
                    self.pod_ip = await ctx.blocking(network.setup_pod_network, ctx.netconf, sandbox_id,
                                                     sandbox.netns, network.port_mappings(self.pod))
            await write_pod_files(ctx, self.pod, self.pod_ip, sandbox_id)  # now with the pod's IP
            log.debug("pod %s/%s: sandbox start %.2fs, CNI ADD %.2fs", self.ref.namespace, self.ref.name,
                      t1 - t0, time.monotonic() - t1)
        except Exception as err:
            msg = f"Failed to create pod sandbox: {err}"
            log.warning("pod %s/%s: %s", self.ref.namespace, self.ref.name, msg)
            self.ctx.event(self.pod, "Warning", "FailedCreatePodSandBox", msg)
            await ctx.blocking(ctx.runtime.remove, sandbox_id)
            self.wake_after(RETRY_S)
            return False
        self.sandbox_ready = True
        if ctx.policies_exist():
            # Other nodes' NetworkPolicy rules learn a pod's address from its status. Written now, they
            # hold it before the containers' first packet (a one-shot `kubectl run -i -- wget` whose
            # first SYN would otherwise be dropped), as Calico's CNI plugin publishes the endpoint
            # before the container starts. Without policies nothing waits for it: no extra write.
            await self.write_status()
        return True

    async def sync_containers(self, by_name: dict[str, list[ContainerRecord]], sandbox_id: str) -> None:
        """Init containers in order (:func:`plan_init`), then start missing app containers and
        restart exited ones per restartPolicy and back-off."""
        spec = self.pod["spec"]
        policy = spec.get("restartPolicy", "Always")
        plan = plan_init(spec, by_name, self.is_started)
        for record in plan.stop:
            self.ctx.event(self.pod, "Normal", "Killing", f"Stopping container {record.name}")
            await stop_container(self.ctx, self.pod, container_spec(self.pod, record.name), record,
                                 grace_seconds(self.pod), self.pod_ip)
        for container in plan.start:
            await self.run_container(container, by_name.get(container["name"], []), sandbox_id)
        if plan.done and spec.get("initContainers") and not any(by_name.get(c["name"]) for c in spec["containers"]):
            # as the kubelet's status at the top of its sync: initialized, the app still PodInitializing
            await self.write_status()
        live_ids = set()
        for container in spec.get("initContainers") or []:
            sidecar = latest_record(by_name.get(container["name"]))
            if sidecar is not None and sidecar.running:
                live_ids.add(sidecar.id)
                self.ensure_probes(container, sidecar)
        for container in spec.get("containers") or [] if plan.done else []:
            instances = by_name.get(container["name"], [])
            latest = latest_record(instances)
            if latest is not None and latest.running and definition_changed(container, latest):
                await self.replace_changed(container, latest, instances, sandbox_id)
            elif latest is not None and latest.running:
                live_ids.add(latest.id)
                self.ensure_probes(container, latest)
            elif latest is None or not latest.exited or should_restart(policy, latest.exit_code) \
                    or definition_changed(container, latest):
                await self.run_container(container, instances, sandbox_id)
        self.cancel_probes(keep=live_ids)
        self.started_ids &= live_ids
        await sync_ephemeral_containers(self, by_name, sandbox_id)

    async def run_container(self, container: dict, instances: list[ContainerRecord], sandbox_id: str) -> None:
        """Bring one container that should run to running: create, start, or restart after back-off."""
        latest = instances[-1] if instances else None
        if latest is None:
            cid = await self.create_container(container, sandbox_id, self.first_attempts.get(container["name"], 0))
            if cid:
                await self.start_container(container, cid)
        elif not latest.exited:
            await self.start_container(container, latest.id)  # created, never started (agent restart)
        else:
            await self.restart_container(container, latest, instances, sandbox_id)

    async def replace_changed(self, container: dict, latest: ContainerRecord, instances: list[ContainerRecord],
                              sandbox_id: str) -> None:
        """The kubelet's "definition changed": the pod's update changed the container's image
        (the one container field a pod update may change), so it is stopped and made again at
        once, whatever the restartPolicy and without back-off; the restart count goes up."""
        name = container["name"]
        self.ctx.event(self.pod, "Normal", "Killing", f"Container {name} definition changed, will be restarted")
        await stop_container(self.ctx, self.pod, container, latest, grace_seconds(self.pod), self.pod_ip)
        cid = await self.create_container(container, sandbox_id, latest.attempt + 1)
        if cid:
            await asyncio.gather(*(self.ctx.blocking(self.ctx.runtime.remove, old.id) for old in instances[:-1]))
            await self.start_container(container, cid)

    def restarts_after_error(self, container: dict) -> bool:
        """Whether a container that failed runs again (the kubelet's ``ShouldContainerBeRestarted``):
        then it waits with the error's reason, else it stays terminated."""
        spec = self.pod["spec"]
        if any(c["name"] == container["name"] for c in spec.get("ephemeralContainers") or []):
            return False
        return container.get("restartPolicy") == "Always" or spec.get("restartPolicy", "Always") != "Never"

    def is_started(self, record: ContainerRecord) -> bool:
        """The kubelet's ``started``: running, and its startupProbe (if any) passed."""
        spec = container_spec(self.pod, record.name) or {}
        return record.running and (not spec.get("startupProbe") or record.id in self.started_ids)

    async def restart_container(self, container: dict, latest: ContainerRecord, instances: list[ContainerRecord],
                                sandbox_id: str) -> None:
        name, key = container["name"], (self.ref.uid, container["name"])
        remaining = self.ctx.crash_backoff.remaining(key, latest.finished_epoch, time.time())
        if remaining > 0:
            delay = self.ctx.crash_backoff.delay(key)
            self.waiting[name] = ("CrashLoopBackOff", f"back-off {int(delay)}s restarting failed "
                                                      f"container={name} pod={self.ref.describe()}")
            self.ctx.event(self.pod, "Warning", "BackOff",
                           f"Back-off restarting failed container {name} in pod {self.ref.describe()}")
            self.wake_after(remaining)
            return
        self.ctx.crash_backoff.next(key, time.time())
        cid = await self.create_container(container, sandbox_id, latest.attempt + 1)
        if cid:
            # keep only the instance being replaced, for `kubectl logs --previous`
            await asyncio.gather(*(self.ctx.blocking(self.ctx.runtime.remove, old.id) for old in instances[:-1]))
            await self.start_container(container, cid)

    async def resolve_image(self, container: dict) -> ResolvedImage | None:
        """Host copy, alias or pull — with the kubelet's events and ImagePullBackOff."""
        ctx, name, image = self.ctx, container["name"], container["image"]
        policy = container.get("imagePullPolicy") or "IfNotPresent"
        key = (self.ref.uid, f"pull:{name}")
        resolved = await ctx.blocking(ctx.images.find, image)
        if resolved is None:
            failed_at, error = self.pull_failures.get(name, (0.0, ""))
            remaining = ctx.pull_backoff.remaining(key, failed_at, time.time()) if failed_at else 0.0
            if remaining > 0:
                self.waiting[name] = ("ImagePullBackOff", f'Back-off pulling image "{image}": ErrImagePull: {error}')
                ctx.event(self.pod, "Normal", "BackOff", f'Back-off pulling image "{image}"')
                self.wake_after(remaining)
                return None
            if policy != "Never":
                ctx.event(self.pod, "Normal", "Pulling", f'Pulling image "{image}"')
            try:
                resolved = await ctx.blocking(ctx.images.pull, image, policy)
            except ImageNeverPullError as err:
                # no back-off: nothing was tried; the next sync looks for the image again
                self.waiting[name] = ("ErrImageNeverPull", str(err))
                ctx.event(self.pod, "Warning", "ErrImageNeverPull", str(err))
                return None
            except ImagePullError as err:
                self.pull_failures[name] = (time.time(), str(err))
                delay = ctx.pull_backoff.next(key, time.time())
                self.waiting[name] = ("ErrImagePull", str(err))
                ctx.event(self.pod, "Warning", "Failed", f'Failed to pull image "{image}": {err}')
                ctx.event(self.pod, "Warning", "Failed", "Error: ErrImagePull")
                self.wake_after(min(1.0, delay))  # the next sync shows ImagePullBackOff
                return None
            ctx.pull_backoff.reset(key)
            ctx.event(self.pod, "Normal", "Pulled", f'Successfully pulled image "{image}" in {resolved.pull_seconds:.3f}s')
        elif policy == "Always":
            ctx.event(self.pod, "Normal", "Pulled", always_message(image, resolved.run))
        elif resolved.how == "alias":
            ctx.event(self.pod, "Normal", "Pulled", alias_message(image, resolved.run))
        else:
            ctx.event(self.pod, "Normal", "Pulled", f'Container image "{image}" already present on machine')
        return resolved

    async def setup_volumes(self) -> bool:
        """The pod's volumes on the node; False (after a ``FailedMount`` event) when one cannot be made yet."""
        try:
            await self.volumes.setup(self.pod)
        except MountFailure as err:
            log.info("pod %s/%s: %s", self.ref.namespace, self.ref.name, err)
            self.ctx.event(self.pod, "Warning", "FailedMount", str(err))
            self.wake_after(RETRY_S * 2)
            return False
        if self.volumes.token is not None:
            self._refresh_token_in(self.volumes.token.refresh_at - self.ctx.tokens.clock())  # type: ignore[union-attr]
        return True

    async def create_container(self, container: dict, sandbox_id: str, attempt: int, pid_container: str = "") -> str:
        """Resolve the image and the environment, ``docker create``; '' when it cannot be created (yet).

        ``pid_container``: a container whose PID namespace this one joins (an ephemeral
        container's target)."""
        if self.volumes.prepared is None and not await self.setup_volumes():
            return ""  # an agent restart: the running pod's volumes are set up again first
        if not self.pod_files:  # an agent restart too: its hosts and resolv.conf as they must be now
            await write_pod_files(self.ctx, self.pod, self.pod_ip, sandbox_id)
            self.pod_files = True
        resolved = await self.resolve_image(container)
        if resolved is None:
            return ""
        ctx, name = self.ctx, container["name"]
        key = (self.ref.uid, f"config:{name}")
        try:
            env = await self.container_env(container)
            sec = effective_security(self.pod, container)
            image_user = ""
            if sec.run_as_non_root or (sec.run_as_group is not None and sec.run_as_user is None):
                image_user = await ctx.blocking(ctx.runtime.image_user, resolved.run)
            problem = non_root_problem(sec, image_user, self.ref.describe(), name)
            if problem:
                raise ConfigError(problem)
            spec = build_container(self.pod, container, resolved.run, sandbox_id, attempt, ctx.cfg.cluster,
                                   ctx.runtime.node_container, env, pid_container=pid_container,
                                   mounts=await self.volumes.mounts(self.pod, container), image_user=image_user)
        except (ContainerConfigError, ConfigError, VolumeError) as err:
            # the kubelet's CreateContainerConfigError: tried again, soon at first, then every 10 s
            self.waiting[name] = ("CreateContainerConfigError", str(err))
            ctx.event(self.pod, "Warning", "Failed", f"Error: {err}")
            self.wake_after(ctx.config_backoff.next(key, time.time()))
            return ""
        ctx.config_backoff.reset(key)
        try:
            for target in node_root_mount_paths(self.pod, container):  # kubectl debug node's /host
                root = await ctx.blocking(ctx.runtime.node_root)
                spec.host_config.setdefault("binds", []).extend(root.binds(target))
            spec.host_config.setdefault("mounts", []).append(await self.volumes.termination_mount(container, attempt))
            cid = await ctx.blocking(ctx.runtime.create, spec)
        except Exception as err:
            self.waiting[container["name"]] = ("CreateContainerError", daemon_error(err))
            ctx.event(self.pod, "Warning", "Failed", f"Error: {daemon_error(err)}")
            self.wake_after(RETRY_S * 5)
            return ""
        ctx.event(self.pod, "Normal", "Created", f"Created container {container['name']}")
        return cid

    async def container_env(self, container: dict) -> dict[str, str]:
        """The container's environment: its ConfigMaps and Secrets read now, the Services from the informer."""
        ctx, namespace = self.ctx, self.ref.namespace
        config_map_names, secret_names = referenced_objects(container)
        sources = EnvSources(namespace, {n: await self._get("configmaps", n) for n in sorted(config_map_names)},
                             {n: await self._get("secrets", n) for n in sorted(secret_names)})
        services = ctx.services
        if services is None or not services.synced.is_set():
            raise ContainerConfigError("services have not yet been read at least once, cannot construct envvars")
        links = (self.pod.get("spec") or {}).get("enableServiceLinks", True) is not False
        service_vars = service_env(services.list(), namespace, links)
        addresses = PodAddresses((self.pod_ip,) if self.pod_ip else (), (ctx.cfg.internal_ip,))
        return container_env(self.pod, container, sources, service_vars, addresses, ctx.allocatable())

    async def _get(self, plural: str, name: str) -> dict | None:
        """A ConfigMap or Secret of the pod's namespace, None when it does not exist."""
        try:
            return await self.ctx.client.get(resource_path(plural, self.ref.namespace, name))
        except APIStatusError as err:
            if err.code == 404:
                return None
            raise ContainerConfigError(str(err)) from err

    async def start_container(self, container: dict, cid: str) -> None:
        name = container["name"]
        try:
            await self.start(cid)
        except Exception as err:
            # it is now an exited instance (runtime.record_from_inspect: StartError): the next sync
            # restarts it per restartPolicy, in the restart back-off, as the kubelet does a crash
            message = f'failed to start container "{name}": {daemon_error(err)}'
            self.ctx.event(self.pod, "Warning", "Failed", f"Error: {message}")
            if self.restarts_after_error(container):
                self.waiting[name] = ("RunContainerError", message)
            self.wake()
            return
        self.waiting.pop(name, None)
        self.ctx.event(self.pod, "Normal", "Started", f"Started container {name}")
        if any(container.get(f"{kind}Probe") for kind in ("startup", "liveness", "readiness")):
            self.wake()  # the next sync starts its probes (ensure_probes), now that it runs
        hook = (container.get("lifecycle") or {}).get("postStart")
        if hook:
            await self.post_start(container, hook, cid)

    async def post_start(self, container: dict, hook: dict, cid: str) -> None:
        """Run postStart before anything else of this pod (the kubelet's sync waits for it too);
        if it fails, kill the container: it is restarted per restartPolicy, with back-off."""
        ctx, name = self.ctx, container["name"]
        record = await ctx.blocking(ctx.runtime.inspect, cid)
        self._post_start = asyncio.ensure_future(run_handler(ctx, hook, self.pod, container, record, self.pod_ip))
        try:
            message = await self._post_start
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the worker itself is being cancelled
            return  # only the hook was, by the pod's deletion: the next sync stops the container
        finally:
            self._post_start = None
        if not message:
            return
        ctx.event(self.pod, "Warning", "FailedPostStartHook", message)
        ctx.event(self.pod, "Normal", "Killing", "FailedPostStartHook")
        self.waiting[name] = ("PostStartHookError", message)
        await stop_container(ctx, self.pod, container, record, grace_seconds(self.pod), self.pod_ip)

    # -- volumes and the service-account token --------------------------------------------
    async def refresh_volumes(self) -> None:
        """Keep a running pod's volumes current: ConfigMap/Secret/downward API changes, and the
        service-account token, renewed at 80 % of its life (one ``..data`` swap in the pod's
        kube-api-access-… volume, which every container mounts)."""
        ctx = self.ctx
        if self.volumes.prepared is None:  # an agent restart: set everything up again (idempotent)
            await self.setup_volumes()
            return
        await self.volumes.refresh(self.pod)
        message = await self.volumes.over_limit(self.pod)
        if message:
            await self.evict(message)
            return
        if self.volumes.token_volume(self.pod) is None:
            return
        assert ctx.tokens is not None
        try:
            renewed = await self.volumes.write_token(self.pod)
        except Exception as err:
            log.warning("pod %s/%s: failed to renew the service account token: %s; retrying",
                        self.ref.namespace, self.ref.name, err)
            self._refresh_token_in(RETRY_S * 5)
            return
        token = self.volumes.token
        assert token is not None
        if renewed:
            log.info("pod %s/%s: service account token renewed (valid until %s)", self.ref.namespace,
                     self.ref.name, time.strftime("%H:%M:%S", time.gmtime(token.expires_at)))
        self._refresh_token_in(token.refresh_at - ctx.tokens.clock())

    async def evict(self, message: str) -> None:
        """The eviction manager's local-storage eviction: kill the containers at once, then the pod
        is ``Failed`` with reason ``Evicted`` (its sandbox and IP released by the next sync)."""
        log.info("pod %s/%s evicted: %s", self.ref.namespace, self.ref.name, message)
        self.evicted = message
        self.ctx.event(self.pod, "Warning", "Evicted", message)
        self.cancel_probes()
        records = await self.ctx.blocking(self.ctx.runtime.list_pod, self.ref.uid)
        await stop_containers(self.ctx, records, 0, self.pod)

    def _refresh_token_in(self, delay: float) -> None:
        """One pending wake-up for the next renewal (the 10 s resync would be late for short tokens)."""
        if self._token_timer is not None:
            self._token_timer.cancel()
        self._token_timer = asyncio.get_running_loop().call_later(max(0.05, delay), self.wake)

    # -- probes --------------------------------------------------------------------------
    def ensure_probes(self, container: dict, record: ContainerRecord) -> None:
        """The startup probe first; liveness and readiness only once the container has started."""
        if not self.pod_ip:
            return
        kinds = ("readiness", "liveness") if self.is_started(record) else ("startup",)
        for kind in kinds:
            probe = container.get(f"{kind}Probe")
            if not probe or (record.id, kind) in self.probe_tasks:
                continue
            self.probe_tasks[(record.id, kind)] = self.ctx.spawn(self.probe(kind, probe, container, record))

    async def probe(self, kind: str, probe: dict, container: dict, record: ContainerRecord) -> None:
        name, label = container["name"], kind.capitalize()

        def attempt_failed(_ok: bool, message: str) -> None:
            self.ctx.event(self.pod, "Warning", "Unhealthy", f"{label} probe failed: {message}")

        def changed(ok: bool, message: str) -> None:
            if kind == "readiness":
                self.readiness[record.id] = ok
                self.wake()
            elif kind == "startup" and ok:
                self.started_ids.add(record.id)
                self.wake()  # liveness and readiness may start; the next sidecar or init step may go
            elif not ok:
                self.ctx.event(self.pod, "Normal", "Killing",
                               f"Container {name} failed {kind} probe, will be restarted")
                self.ctx.spawn(stop_container(self.ctx, self.pod, container, record, grace_seconds(self.pod),
                                              self.pod_ip))

        async def exec_fn(command: list[str]) -> tuple[int, str]:
            return await self.ctx.blocking(self.ctx.runtime.exec, record.id, command)

        await probes.probe_loop(kind, probe, self.pod_ip, container, self.ctx.http, exec_fn, changed, attempt_failed,
                                self.probe_grid)

    def cancel_probes(self, keep: set[str] | None = None) -> None:
        for (cid, kind), task in list(self.probe_tasks.items()):
            if keep is None or cid not in keep:
                task.cancel()
                del self.probe_tasks[(cid, kind)]

    # -- status --------------------------------------------------------------------------
    async def write_status(self, records: list[ContainerRecord] | None = None) -> None:
        """Compute the status from a fresh look at Docker; PATCH it when it changed.

        ``records``: the pod's containers as the caller has just read them (the status needs
        no sandbox); None lists them.
        """
        if records is None:
            records = await self.ctx.blocking(self.ctx.runtime.list_pod, self.ref.uid, False)
        await self.volumes.read_termination_messages(self.pod, records)
        by_name = group_records(records)
        spec = self.pod["spec"]
        default_reason = "PodInitializing" if spec.get("initContainers") else "ContainerCreating"
        init_views = [self.view(c, by_name, default_reason, init=True) for c in spec.get("initContainers") or []]
        views = [self.view(c, by_name, default_reason) for c in spec.get("containers") or []]
        status = build_pod_status(self.pod, views, pod_ip=self.pod_ip, host_ip=self.ctx.cfg.internal_ip,
                                  start_time=self.start_time, sandbox_ready=self.sandbox_ready, now=timestamp(),
                                  init_views=init_views)
        if ephemeral_containers(self.pod):
            status["ephemeralContainerStatuses"] = ephemeral_statuses(self.pod, by_name, self.waiting)
        if self.evicted:
            status.update(phase="Failed", reason="Evicted", message=self.evicted)
        if status == self.last_status and _ready(self.pod.get("status")) == _ready(status):
            return  # unchanged, and nobody (the node lifecycle controller) overwrote Ready meanwhile
        path = resource_path("pods", self.ref.namespace, self.ref.name, "status")
        self.sending_status = status
        try:
            await self.ctx.client.patch(path, {"status": status})
        except APIStatusError as err:
            if err.code == 404:
                self.gone = True
                self.wake()
                return
            raise
        finally:
            self.sending_status = None
        if status["phase"] in TERMINAL_PHASES and (self.last_status or {}).get("phase") != status["phase"]:
            self.wake()  # release the sandbox and the IP
        self.last_status = status

    def view(self, container: dict, by_name: dict[str, list[ContainerRecord]], default_reason: str,
             init: bool = False) -> ContainerView:
        """What Docker and the probes say about one container, for :func:`build_pod_status`."""
        instances = by_name.get(container["name"], [])
        latest = instances[-1] if instances else None
        reason, message = self.waiting.get(container["name"], ("", ""))
        if latest is not None and latest.running:
            reason, message = "", ""
        if init and container.get("restartPolicy") != "Always":
            ready = bool(latest and latest.exited and latest.exit_code == 0)  # a completed init container
        else:
            # no container of a pod without a network is ready (its sandbox is about to be re-created)
            ready = bool(latest and latest.running and self.sandbox_ready and
                         (self.readiness.get(latest.id, False) if container.get("readinessProbe") else True))
        # a running container's status names the image it was made from (the spec's may have changed since)
        image = latest.spec_image if latest is not None and latest.running and latest.spec_image else container["image"]
        return ContainerView(container["name"], image, latest,
                             instances[-2] if len(instances) > 1 else None, reason, message, ready,
                             startup_passed=latest is None or not latest.running or self.is_started(latest),
                             default_reason=default_reason)

    # -- teardown ------------------------------------------------------------------------
    async def release(self, by_name: dict[str, list[ContainerRecord]]) -> None:
        """A Succeeded/Failed pod keeps its exited containers (logs) but not its sandbox and IP."""
        if not self.released:
            self.cancel_probes()
            await release_sandboxes(self.ctx, by_name.get(SANDBOX, []))
            self.released = True

    async def terminate(self) -> None:
        """Graceful deletion; then remove the API object (``gracePeriodSeconds: 0``)."""
        self.cancel_probes()
        if self._token_timer is not None:
            self._token_timer.cancel()
        records = await self.ctx.blocking(self.ctx.runtime.list_pod, self.ref.uid)
        await kill_pod(self.ctx, records, grace_seconds(self.pod), None if self.gone else self.pod, self.pod_ip)
        await self.volumes.teardown()
        self.ctx.crash_backoff.forget_prefix(self.ref.uid)
        if self.gone:
            return
        path = resource_path("pods", self.ref.namespace, self.ref.name)
        try:
            await self.ctx.client.request("DELETE", path, body={"gracePeriodSeconds": 0,
                                                                "preconditions": {"uid": self.ref.uid}})
        except APIStatusError as err:
            if err.code not in (404, 409):
                raise
        log.info("pod %s/%s terminated and deleted", self.ref.namespace, self.ref.name)


def definition_changed(container: dict, record: ContainerRecord) -> bool:
    """The container runs an image the pod's spec no longer names (containers made before the
    spec image was recorded are never "changed")."""
    return bool(record.spec_image) and record.spec_image != container.get("image")


def _uses_pod_ip(container: dict) -> bool:
    return any(((e.get("valueFrom") or {}).get("fieldRef") or {}).get("fieldPath") in ("status.podIP", "status.podIPs")
               for e in container.get("env") or [])


def _without_status(pod: dict) -> dict:
    """The pod minus what a status write changes (status, resourceVersion, managedFields)."""
    meta = {k: v for k, v in pod["metadata"].items() if k not in ("resourceVersion", "managedFields")}
    return {**{k: v for k, v in pod.items() if k != "status"}, "metadata": meta}


def _ready(status: dict | None) -> str | None:
    return next((c.get("status") for c in (status or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
