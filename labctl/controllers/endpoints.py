"""The Endpoints controller: for every Service with a selector, which pod IP:port serve it.

A port of ``pkg/controller/endpoint/endpoints_controller.go``. Each sync of a Service:

1. takes the namespace's pods matching ``spec.selector`` that have an IP, are not
   finished and are **not being deleted** (``deletionTimestamp`` set): a terminating pod
   leaves the Endpoints at once, so every node's proxy stops choosing it while the
   kubelet's drain delay still keeps its containers answering (see ``docs/services.md``);
2. resolves every Service port's ``targetPort`` per pod: a number is used as is, a name
   is looked up in the pod's ``containers[].ports`` (``podutil.FindPort``), so one Service
   can front pods that expose the port under different numbers; a pod without the named
   port is left out of that port;
3. puts Ready pods under ``addresses`` and the others under ``notReadyAddresses``
   (all under ``addresses`` with ``publishNotReadyAddresses``), groups addresses that
   share the same ports into subsets (``RepackSubsets``) and writes the Endpoints object
   only when its subsets or labels changed.

Services without a selector are left alone: their Endpoints are written by hand (an
external database, the API server's own ``kubernetes`` Service) and must survive.
"""

from __future__ import annotations

import asyncio
import logging

from ..client.informer import FuncHandler
from ..client.rest import APIStatusError, resource_path
from ..kube.labels import LabelSelector, SelectorError, selector_from_set
from ..kube.meta import timestamp
from ..kube.objects import HEADLESS_LABEL, pod_is_ready
from .base import Controller, key_of, split_key
from .context import ControllerContext

log = logging.getLogger("labctl.controllers.endpoints")

TRIGGER_TIME_ANNOTATION = "endpoints.kubernetes.io/last-change-trigger-time"


# -- pure helpers (unit-tested) -------------------------------------------------------------
def service_selector(svc: dict) -> LabelSelector | None:
    """The Service's selector, or None when it has none (its Endpoints are hand-written)."""
    selector = (svc.get("spec") or {}).get("selector")
    if not selector:
        return None
    return selector_from_set(selector)


def find_port(pod: dict, svc_port: dict) -> int | None:
    """``podutil.FindPort``: the container port a Service port's ``targetPort`` means on ``pod``."""
    target = svc_port.get("targetPort", svc_port.get("port"))
    if isinstance(target, int):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = svc_port.get("protocol") or "TCP"
    for container in (pod.get("spec") or {}).get("containers") or []:
        for port in container.get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port["containerPort"])
    return None


def should_pod_be_in_endpoints(pod: dict, include_terminating: bool) -> bool:
    """``endpointsliceutil.ShouldPodBeInEndpoints``: has an IP, not finished, not terminating."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return False
    if not status.get("podIP"):
        return False
    return include_terminating or not pod["metadata"].get("deletionTimestamp")


def endpoint_address(pod: dict, svc: dict) -> dict:
    """``podToEndpointAddressForService``: IP, node, the pod as targetRef (and a DNS hostname)."""
    meta, spec = pod["metadata"], pod.get("spec") or {}
    addr = {"ip": pod["status"]["podIP"]}
    if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"]:
        addr["hostname"] = spec["hostname"]
    if spec.get("nodeName"):
        addr["nodeName"] = spec["nodeName"]
    addr["targetRef"] = {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"], "uid": meta.get("uid", "")}
    return addr


def endpoint_port(svc_port: dict, number: int) -> dict:
    port = {"port": number, "protocol": svc_port.get("protocol") or "TCP"}
    if svc_port.get("name"):
        port["name"] = svc_port["name"]
    if svc_port.get("appProtocol"):
        port["appProtocol"] = svc_port["appProtocol"]
    return port


def build_subsets(svc: dict, pods: list[dict]) -> list[dict]:
    """The Endpoints subsets of ``svc`` over the already selector-matched ``pods``, repacked."""
    spec = svc.get("spec") or {}
    tolerate_unready = bool(spec.get("publishNotReadyAddresses"))
    svc_ports = spec.get("ports") or []
    headless_without_ports = spec.get("clusterIP") == "None" and not svc_ports
    entries: list[tuple[dict, bool, tuple[dict, ...]]] = []
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, tolerate_unready):
            continue
        ready = tolerate_unready or pod_is_ready(pod)
        ports = []
        for svc_port in svc_ports:
            number = find_port(pod, svc_port)
            if number is None:
                log.debug("pod %s has no port %r for service %s", pod["metadata"]["name"],
                          svc_port.get("targetPort"), svc["metadata"]["name"])
                continue
            ports.append(endpoint_port(svc_port, number))
        if ports or headless_without_ports:
            entries.append((endpoint_address(pod, svc), ready, tuple(ports)))
    return repack_subsets(entries)


def _port_key(port: dict) -> tuple:
    return (port.get("name", ""), port["port"], port["protocol"], port.get("appProtocol", ""))


def repack_subsets(entries: list[tuple[dict, bool, tuple[dict, ...]]]) -> list[dict]:
    """``endpoints.RepackSubsets``: one subset per distinct port set, everything sorted.

    Sorting makes the result independent of informer order, so an unchanged Service
    compares equal to its stored Endpoints and costs no write.
    """
    groups: dict[tuple, dict] = {}
    for addr, ready, ports in entries:
        key = tuple(sorted({_port_key(p) for p in ports}))
        group = groups.setdefault(key, {"ports": {_port_key(p): p for p in ports}, True: {}, False: {}})
        group[ready].setdefault(addr["ip"], addr)
    subsets = []
    for key in sorted(groups):
        group = groups[key]
        subset: dict = {}
        if group[True]:
            subset["addresses"] = [group[True][ip] for ip in sorted(group[True], key=_ip_sort_key)]
        if group[False]:
            subset["notReadyAddresses"] = [group[False][ip] for ip in sorted(group[False], key=_ip_sort_key)]
        if key:
            subset["ports"] = [group["ports"][k] for k in key]
        subsets.append(subset)
    return subsets


def _ip_sort_key(ip: str) -> tuple:
    try:
        return tuple(int(part) for part in ip.split("."))
    except ValueError:
        return (ip,)


def _rv(obj: dict) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


def desired_labels(svc: dict) -> dict[str, str]:
    """The Service's labels, plus ``service.kubernetes.io/headless`` for headless Services."""
    labels = dict(svc["metadata"].get("labels") or {})
    if (svc.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS_LABEL] = ""
    return labels


def services_selecting(pod: dict, services: list[dict]) -> list[dict]:
    """The Services in the pod's namespace whose selector matches its labels."""
    ns, labels = pod["metadata"].get("namespace"), pod["metadata"].get("labels") or {}
    out = []
    for svc in services:
        if svc["metadata"].get("namespace") != ns:
            continue
        try:
            selector = service_selector(svc)
        except SelectorError:
            continue
        if selector is not None and selector.matches(labels):
            out.append(svc)
    return out


def endpoints_relevant(pod: dict) -> tuple:
    """The part of a pod the Endpoints depend on: an update changing nothing here is skipped."""
    meta, status = pod["metadata"], pod.get("status") or {}
    return (meta.get("labels"), bool(meta.get("deletionTimestamp")), status.get("podIP"), status.get("phase"),
            pod_is_ready(pod), (pod.get("spec") or {}).get("nodeName"), (pod.get("spec") or {}).get("hostname"))


class EndpointsController(Controller):
    name = "endpoints-controller"
    workers = 2
    resync_seconds = 30.0

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        self.services = ctx.informer("services")
        self.pods = ctx.informer("pods")
        self.endpoints = ctx.informer("endpoints")
        #: per Service: a lock (two workers never sync one Service at once) and the Endpoints we
        #: last wrote, used until the informer shows it (else a quick second sync would send a
        #: stale resourceVersion and lose a round to a 409 while a pod is draining)
        self._locks: dict[str, asyncio.Lock] = {}
        self._written: dict[str, dict] = {}
        self.services.add_handler(FuncHandler(self._enqueue, lambda _old, new: self._enqueue(new), self._enqueue))
        self.pods.add_handler(FuncHandler(self._pod_changed, self._pod_updated, self._pod_changed))
        # someone edited or deleted "our" Endpoints: converge back
        self.endpoints.add_handler(FuncHandler(None, lambda _old, new: self._enqueue(new), self._enqueue))

    # -- event handlers: only enqueue keys --------------------------------------------------
    def _enqueue(self, obj: dict) -> None:
        self.queue.add(key_of(obj))

    def _pod_changed(self, pod: dict) -> None:
        for svc in services_selecting(pod, self.services.list()):
            self.queue.add(key_of(svc))

    def _pod_updated(self, old: dict, new: dict) -> None:
        if endpoints_relevant(old) == endpoints_relevant(new):
            return
        services = self.services.list()
        for key in {key_of(svc) for pod in (old, new) for svc in services_selecting(pod, services)}:
            self.queue.add(key)

    def keys_for_resync(self) -> list[str]:
        return [key_of(s) for s in self.services.list()]

    # -- sync --------------------------------------------------------------------------------
    def _current(self, key: str) -> dict | None:
        cached = self.endpoints.get(*split_key(key))
        written = self._written.get(key)
        if written is None or (cached is not None and _rv(cached) >= _rv(written)):
            self._written.pop(key, None)
            return cached
        return written

    async def reconcile(self, key: str) -> None:
        async with self._locks.setdefault(key, asyncio.Lock()):  # one small lock per Service ever seen
            try:
                await self._sync(key)
            except Exception:
                self._written.pop(key, None)  # the retry trusts the cache again
                raise

    async def _sync(self, key: str) -> None:
        namespace, name = split_key(key)
        svc = self.services.get(namespace, name)
        if svc is None:
            self._written.pop(key, None)
            await self._delete_endpoints(namespace, name)
            return
        try:
            selector = service_selector(svc)
        except SelectorError as err:
            log.warning("service %s has an invalid selector: %s", key, err)
            return
        if selector is None:
            return  # hand-written Endpoints
        pods = [p for p in self.pods.list()
                if p["metadata"].get("namespace") == namespace and selector.matches(p["metadata"].get("labels") or {})]
        subsets = build_subsets(svc, pods)
        labels = desired_labels(svc)
        current = self._current(key)
        if current is not None and (current.get("subsets") or []) == subsets \
                and (current["metadata"].get("labels") or {}) == labels:
            return
        await self._write(namespace, name, current, subsets, labels)

    async def _write(self, namespace: str, name: str, current: dict | None, subsets: list[dict],
                     labels: dict[str, str]) -> None:
        now = timestamp()
        if current is None:
            obj = {"apiVersion": "v1", "kind": "Endpoints",
                   "metadata": {"name": name, "namespace": namespace, "labels": labels,
                                "annotations": {TRIGGER_TIME_ANNOTATION: now}},
                   "subsets": subsets}
            try:
                self._written[f"{namespace}/{name}"] = await self.client.create(resource_path("endpoints", namespace), obj)
            except APIStatusError as err:
                raise RuntimeError(f"failed to create endpoints \"{namespace}/{name}\": {err}") from err
            return
        meta = dict(current["metadata"])
        meta["labels"] = labels
        meta["annotations"] = {**(meta.get("annotations") or {}), TRIGGER_TIME_ANNOTATION: now}
        obj = {**current, "metadata": meta, "subsets": subsets}
        try:
            self._written[f"{namespace}/{name}"] = await self.client.replace(
                resource_path("endpoints", namespace, name), obj)
        except APIStatusError as err:  # 409: our cache was stale; the retry reads the new version
            raise RuntimeError(f"failed to update endpoints \"{namespace}/{name}\": {err}") from err

    async def _delete_endpoints(self, namespace: str, name: str) -> None:
        if self.endpoints.get(namespace, name) is None:
            return
        try:
            await self.client.delete(resource_path("endpoints", namespace, name))
        except APIStatusError as err:
            if err.code != 404:
                raise RuntimeError(f"failed to delete endpoints \"{namespace}/{name}\": {err}") from err
