"""The kubelet role of the node agent: informers in, pod workers and Docker out.

``Kubelet(client, cfg).run()`` writes the CNI config, watches the pods bound to this
node (``fieldSelector=spec.nodeName=<node>``) and the Nodes (for host-gw routes),
keeps the Services (for the containers' Service environment variables), follows
Docker's event stream for this node's pod containers (a crash is noticed at
once, no polling; when the stream breaks — the engine restarted — every pod is looked at
again as soon as it is back), removes containers of pods that are gone — also after an
agent or node restart — and gives every pod its own :class:`~.podworker.PodWorker`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import docker

from ...client.events import EventRecorder
from ...client.informer import FuncHandler, Informer
from ...client.rest import APIClient
from ...clusterconfig import NodeConfig
from ...cni.routes import sync_pod_cidr_routes
from ...engine.sdk import reuse_connections
from ...kube.containers import CLUSTER_LABEL, POD_NODE_LABEL, POD_UID_LABEL, node_container_name
from . import gc, lock, network
from .backoff import Backoff
from .context import BLOCKING_THREADS, KubeletContext
from .images import DOCKER_URL, ImageResolver
from .podworker import PodWorker
from .runtime import Runtime
from .serviceaccount import ServiceAccountTokens

log = logging.getLogger("labctl.kubelet")
ROUTE_RESYNC_S = 30.0


class Kubelet:
    ctx: KubeletContext  # made by run() before the informers, workers and route sync that use it start

    def __init__(self, client: APIClient, cfg: NodeConfig, *, docker_url: str = DOCKER_URL,
                 crash_backoff: Backoff | None = None, node_lock: bool = True,
                 policies_exist: Callable[[], bool] = lambda: False) -> None:
        self.client = client
        self.cfg = cfg
        self.docker_url = docker_url
        self.crash_backoff = crash_backoff or Backoff()
        self.node_lock = node_lock  # False when the caller already holds the node's kubelet lock
        self.policies_exist = policies_exist  # the node's policy enforcer knows (agent/__main__.py)
        self.node_container = node_container_name(cfg.cluster.name, cfg.node_name)
        self.workers: dict[str, PodWorker] = {}   # pod uid → worker
        self._routes_dirty = asyncio.Event()

    async def run(self) -> None:
        """Run until cancelled (waiting first for any other kubelet on this node to end)."""
        lock_fd = await asyncio.get_running_loop().run_in_executor(None, lock.acquire) if self.node_lock else None
        executor = ThreadPoolExecutor(BLOCKING_THREADS, thread_name_prefix="kubelet")
        dclient = reuse_connections(docker.DockerClient(base_url=self.docker_url, timeout=120,
                                                        max_pool_size=BLOCKING_THREADS + 4))
        http = aiohttp.ClientSession()
        cni_daemon = network.start_cni_daemon()
        try:
            netconf = await asyncio.get_running_loop().run_in_executor(executor, network.install_cni, self.cfg.pod_cidr)
            self.ctx = KubeletContext(
                self.client, self.cfg, Runtime(dclient, self.cfg.cluster.name, self.node_container),
                ImageResolver(dclient, self.cfg.image_aliases, docker_url=self.docker_url),
                EventRecorder(self.client, "kubelet", self.cfg.node_name), netconf, http, executor,
                crash_backoff=self.crash_backoff, policies_exist=self.policies_exist,
                tokens=ServiceAccountTokens(self.client,
                                            expiration_seconds=self.cfg.cluster.service_account_token_seconds))
            await self._serve()
        finally:
            cni_daemon.close()
            await http.close()
            dclient.close()
            executor.shutdown(wait=False, cancel_futures=True)
            if lock_fd is not None:
                os.close(lock_fd)

    async def _serve(self) -> None:
        pods = Informer(self.client, "pods", [FuncHandler(self.on_pod_add, self.on_pod_update, self.on_pod_delete)],
                        field_selector=f"spec.nodeName={self.cfg.node_name}")
        nodes = Informer(self.client, "nodes", [FuncHandler(self._node_changed, lambda o, n: self._node_changed(n),
                                                            self._node_changed)])
        # the Services a container's environment variables describe (pkg/kubelet/envvars)
        services = Informer(self.client, "services")
        self.pods = pods
        self.ctx.services, self.ctx.nodes = services, nodes
        tasks = [asyncio.create_task(pods.run(), name="kubelet-pods"),
                 asyncio.create_task(nodes.run(), name="kubelet-nodes"),
                 asyncio.create_task(services.run(), name="kubelet-services"),
                 asyncio.create_task(self._sync_routes_forever(nodes), name="kubelet-routes")]
        self._start_docker_events()
        try:
            await pods.synced.wait()
            removed = await gc.remove_orphans(self.ctx, self.known_uids)
            log.info("kubelet on %s ready: %d pod(s) bound, %d orphan pod(s) cleaned up",
                     self.cfg.node_name, len(pods.cache), removed)
            for pod in pods.list():
                self.ensure_worker(pod)
            await self._housekeeping()
        finally:
            for task in tasks:
                task.cancel()
            for worker in self.workers.values():
                if worker.task:
                    worker.task.cancel()

    async def _housekeeping(self) -> None:
        """Collect orphans every GC_PERIOD_S (each pod worker resyncs itself, :data:`.podworker.RESYNC_S`)."""
        while True:
            await asyncio.sleep(gc.GC_PERIOD_S)
            try:
                await gc.remove_orphans(self.ctx, self.known_uids)
            except Exception as err:
                log.warning("failed to collect orphan pod containers: %s", err)

    def known_uids(self) -> set[str]:
        return {p["metadata"]["uid"] for p in self.pods.list()} | set(self.workers)

    # -- pods ----------------------------------------------------------------------------
    def ensure_worker(self, pod: dict) -> None:
        uid = pod["metadata"]["uid"]
        worker = self.workers.get(uid)
        if worker is not None:
            worker.update(pod)
            return
        worker = PodWorker(self.ctx, pod)
        self.workers[uid] = worker
        worker.task = asyncio.get_running_loop().create_task(worker.run(), name=f"pod-{pod['metadata']['name']}")
        worker.task.add_done_callback(lambda _t: self.workers.pop(uid, None))

    def on_pod_add(self, pod: dict) -> None:
        if self.pods.synced.is_set():
            self.ensure_worker(pod)

    def on_pod_update(self, old: dict, new: dict) -> None:
        """Only spec and deletion matter: our own status writes must not wake the worker."""
        if not self.pods.synced.is_set():
            return
        uid = new["metadata"]["uid"]
        changed = (old.get("spec") != new.get("spec")
                   or old["metadata"].get("deletionTimestamp") != new["metadata"].get("deletionTimestamp"))
        if uid not in self.workers or changed:
            self.ensure_worker(new)
        else:
            self.workers[uid].pod = new

    def on_pod_delete(self, pod: dict) -> None:
        worker = self.workers.get(pod["metadata"]["uid"])
        if worker is not None:
            worker.gone = True
            worker.wake()

    # -- Docker events -------------------------------------------------------------------
    def _start_docker_events(self) -> None:
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._follow_docker_events, args=(loop,), name="kubelet-docker-events",
                         daemon=True).start()

    def _follow_docker_events(self, loop: asyncio.AbstractEventLoop) -> None:
        """Wake a pod's worker when one of its containers starts, dies or is OOM-killed."""
        filters = {"type": "container", "event": ["die", "start", "oom", "destroy"],
                   "label": [f"{CLUSTER_LABEL}={self.cfg.cluster.name}", f"{POD_NODE_LABEL}={self.node_container}"]}
        reconnect = False
        while not loop.is_closed():
            try:
                # no timeout: the event stream stays open for hours (docker accepts None; its stubs say int)
                api = docker.APIClient(base_url=self.docker_url, timeout=None)  # type: ignore[arg-type]
                events = api.events(filters=filters, decode=True)
                if reconnect:  # what happened while the stream was down is not in it: look at every pod
                    loop.call_soon_threadsafe(self._wake_all)
                reconnect = True
                for event in events:
                    uid = ((event.get("Actor") or {}).get("Attributes") or {}).get(POD_UID_LABEL)
                    if uid:
                        loop.call_soon_threadsafe(self._container_event, uid, event.get("Action") or "",
                                                  event.get("id") or "")
            except Exception as err:
                log.debug("docker event stream ended: %s", err)
            threading.Event().wait(1.0)

    def _wake_all(self) -> None:
        for worker in list(self.workers.values()):
            worker.wake()

    def _container_event(self, uid: str, action: str, container_id: str) -> None:
        worker = self.workers.get(uid)
        if worker is not None:
            worker.container_event(action, container_id)

    # -- routes --------------------------------------------------------------------------
    def _node_changed(self, _node: dict) -> None:
        self._routes_dirty.set()

    async def _sync_routes_forever(self, nodes: Informer) -> None:
        """host-gw: ``<podCIDR> via <InternalIP>`` for every other node, kept in step with Nodes."""
        while True:
            try:
                await asyncio.wait_for(self._routes_dirty.wait(), ROUTE_RESYNC_S)
            except TimeoutError:
                pass
            self._routes_dirty.clear()
            if not nodes.synced.is_set():
                continue
            wanted = network.wanted_routes(nodes.list(), self.cfg.node_name)
            try:
                await asyncio.get_running_loop().run_in_executor(self.ctx.executor, sync_pod_cidr_routes, wanted)
            except Exception as err:
                log.warning("failed to sync pod CIDR routes %s: %s", wanted, err)
