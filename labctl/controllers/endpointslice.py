"""The EndpointSlice controller: ``discovery.k8s.io/v1`` slices next to every Service's Endpoints.

The node proxies read EndpointSlices, as kube-proxy does (:mod:`labctl.proxy.changes`), and
so does kubectl v1.33+ for ``kubectl describe service`` (the ``Endpoints:`` line). This
controller writes the facts of :mod:`.endpoints` in that shape, as Kubernetes' two
controllers do:

* a Service **with** a selector: one slice per distinct port set (at most 100 endpoints
  each), ``managed-by: endpointslice-controller.k8s.io``; unlike Endpoints, terminating
  pods stay listed with ``conditions.terminating: true, ready: false`` (the
  ``endpointslice`` controller's behaviour since Kubernetes 1.22);
* a Service **without** a selector: its hand-written Endpoints mirrored
  (``managed-by: endpointslicemirroring-controller.k8s.io``). The API server's own
  ``kubernetes`` Endpoints are mirrored too, although labelled ``skip-mirror`` (upstream's API
  server writes that slice itself; here this controller does, so the proxies reach it).
  Slices someone else manages (a hand-written one) are left alone.

Slices are named ``<service>-<random>`` (``generateName``), labelled
``kubernetes.io/service-name`` (and ``service.kubernetes.io/headless`` for a headless
Service, whose slices no proxy reads) and owned by the Service. Simplified from Kubernetes: no
churn minimisation across slices — a change rewrites the Service's slices in place.
"""

from __future__ import annotations

import logging

from ..client.informer import FuncHandler
from ..client.rest import APIStatusError, resource_path
from ..kube.labels import SelectorError
from ..kube.objects import SERVICE_NAME_LABEL, pod_is_ready
from ._ownership import owner_reference
from .base import Controller, key_of, split_key
from .context import ControllerContext
from .endpoints import (
    desired_labels,
    endpoint_port,
    endpoints_relevant,
    find_port,
    service_selector,
    services_selecting,
    should_pod_be_in_endpoints,
)

log = logging.getLogger("labctl.controllers.endpointslice")

MANAGED_BY_LABEL = "endpointslice.kubernetes.io/managed-by"
CONTROLLER_NAME = "endpointslice-controller.k8s.io"
MIRRORING_NAME = "endpointslicemirroring-controller.k8s.io"
MAX_ENDPOINTS_PER_SLICE = 100


def _slice_port(port: dict) -> dict:
    out = {"name": port.get("name", ""), "port": port["port"], "protocol": port.get("protocol") or "TCP"}
    if port.get("appProtocol"):
        out["appProtocol"] = port["appProtocol"]
    return out


def _ports_key(ports: list[dict]) -> tuple:
    return tuple(sorted((p["name"], p["port"], p["protocol"]) for p in ports))


def endpoints_from_pods(svc: dict, pods: list[dict]) -> dict[tuple, tuple[list[dict], list[dict]]]:
    """Port set → (ports, endpoints) from the selected pods (terminating ones flagged)."""
    groups: dict[tuple, tuple[list[dict], list[dict]]] = {}
    publish = bool((svc.get("spec") or {}).get("publishNotReadyAddresses"))
    for pod in pods:
        if not should_pod_be_in_endpoints(pod, include_terminating=True):
            continue
        ports = [_slice_port(endpoint_port(p, n)) for p in (svc.get("spec") or {}).get("ports") or []
                 if (n := find_port(pod, p)) is not None]
        terminating = bool(pod["metadata"].get("deletionTimestamp"))
        serving = pod_is_ready(pod)
        meta, spec = pod["metadata"], pod.get("spec") or {}
        # podEndpointsChanged's rule: never ready while terminating, unless the Service publishes not-ready pods
        ep = {"addresses": [pod["status"]["podIP"]],
              "conditions": {"ready": publish or (serving and not terminating), "serving": serving,
                             "terminating": terminating},
              "targetRef": {"kind": "Pod", "namespace": meta["namespace"], "name": meta["name"], "uid": meta.get("uid", "")}}
        if spec.get("nodeName"):
            ep["nodeName"] = spec["nodeName"]
        if spec.get("hostname") and spec.get("subdomain") == svc["metadata"]["name"]:
            ep["hostname"] = spec["hostname"]
        groups.setdefault(_ports_key(ports), (ports, []))[1].append(ep)
    return groups


def endpoints_from_endpoints(endpoints: dict | None) -> dict[tuple, tuple[list[dict], list[dict]]]:
    """Port set → (ports, endpoints) mirrored from a hand-written v1 Endpoints."""
    groups: dict[tuple, tuple[list[dict], list[dict]]] = {}
    for subset in (endpoints or {}).get("subsets") or []:
        ports = [_slice_port(p) for p in subset.get("ports") or []]
        group = groups.setdefault(_ports_key(ports), (ports, []))
        for key, ready in (("addresses", True), ("notReadyAddresses", False)):
            for addr in subset.get(key) or []:
                ep = {"addresses": [addr["ip"]], "conditions": {"ready": ready}}
                for field in ("nodeName", "hostname", "targetRef"):
                    if addr.get(field):
                        ep[field] = addr[field]
                group[1].append(ep)
    return groups


def desired_slices(svc: dict, groups: dict[tuple, tuple[list[dict], list[dict]]], managed_by: str) -> list[dict]:
    """Slice bodies (no names) for the groups, sorted and chunked by MAX_ENDPOINTS_PER_SLICE."""
    labels = {**desired_labels(svc), SERVICE_NAME_LABEL: svc["metadata"]["name"], MANAGED_BY_LABEL: managed_by}
    out: list[dict] = []
    for key in sorted(groups):
        ports, eps = groups[key]
        eps = sorted(eps, key=lambda e: tuple(int(x) if x.isdigit() else 0 for x in e["addresses"][0].split(".")))
        for start in range(0, max(len(eps), 1), MAX_ENDPOINTS_PER_SLICE):
            out.append({"labels": labels, "addressType": "IPv4", "ports": sorted(ports, key=lambda p: p["name"]),
                        "endpoints": eps[start:start + MAX_ENDPOINTS_PER_SLICE]})
    if not out:  # a selected Service without pods still gets an (empty) slice, as in Kubernetes
        out.append({"labels": labels, "addressType": "IPv4", "ports": [], "endpoints": []})
    return out


def _rv(obj: dict) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except ValueError:
        return 0


def _same(current: dict, want: dict) -> bool:
    return ((current["metadata"].get("labels") or {}) == want["labels"]
            and (current.get("ports") or []) == want["ports"]
            and (current.get("endpoints") or []) == want["endpoints"])


class EndpointSliceController(Controller):
    name = "endpointslice-controller"
    workers = 1  # one key at a time: two workers could both create a Service's first slice

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        self.services = ctx.informer("services")
        self.pods = ctx.informer("pods")
        self.endpoints = ctx.informer("endpoints")
        self.slices = ctx.informer("endpointslices")
        #: service key → slice name → what we last wrote (None: deleted), until the cache catches up
        self._written: dict[str, dict[str, dict | None]] = {}
        self.services.add_handler(FuncHandler(self._enqueue, lambda _o, new: self._enqueue(new), self._enqueue))
        self.pods.add_handler(FuncHandler(self._pod_changed, self._pod_updated, self._pod_changed))
        self.endpoints.add_handler(FuncHandler(self._enqueue, lambda _o, new: self._enqueue(new), self._enqueue))
        self.slices.add_handler(FuncHandler(None, lambda _o, new: self._slice_changed(new), self._slice_changed))

    def _enqueue(self, obj: dict) -> None:
        self.queue.add(key_of(obj))

    def _slice_changed(self, s: dict) -> None:
        name = (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL)
        if name:
            self.queue.add(f"{s['metadata']['namespace']}/{name}")

    def _pod_changed(self, pod: dict) -> None:
        for svc in services_selecting(pod, self.services.list()):
            self._enqueue(svc)

    def _pod_updated(self, old: dict, new: dict) -> None:
        if endpoints_relevant(old) != endpoints_relevant(new):
            self._pod_changed(old)
            self._pod_changed(new)

    def keys_for_resync(self) -> list[str]:
        return [key_of(s) for s in self.services.list()]

    def _ours(self, namespace: str, name: str) -> list[dict]:
        """Our slices of the Service: the cache, corrected by writes it has not shown yet."""
        found = {s["metadata"]["name"]: s for s in self.slices.list() if s["metadata"].get("namespace") == namespace
                 and (s["metadata"].get("labels") or {}).get(SERVICE_NAME_LABEL) == name
                 and (s["metadata"].get("labels") or {}).get(MANAGED_BY_LABEL) in (CONTROLLER_NAME, MIRRORING_NAME)}
        for slice_name, written in self._written.get(f"{namespace}/{name}", {}).items():
            cached = found.get(slice_name)
            if written is None:
                found.pop(slice_name, None)
            elif cached is None or _rv(cached) < _rv(written):
                found[slice_name] = written
        return [found[n] for n in sorted(found)]

    async def reconcile(self, key: str) -> None:
        namespace, name = split_key(key)
        svc = self.services.get(namespace, name)
        current = self._ours(namespace, name)
        want: list[dict] = []
        if svc is not None:
            try:
                selector = service_selector(svc)
            except SelectorError:
                return
            if selector is not None:
                pods = [p for p in self.pods.list() if p["metadata"].get("namespace") == namespace
                        and selector.matches(p["metadata"].get("labels") or {})]
                want = desired_slices(svc, endpoints_from_pods(svc, pods), CONTROLLER_NAME)
            elif self.endpoints.get(namespace, name) is not None:
                want = desired_slices(svc, endpoints_from_endpoints(self.endpoints.get(namespace, name)), MIRRORING_NAME)
        await self._converge(svc, namespace, name, current, want)

    async def _converge(self, svc: dict | None, namespace: str, name: str, current: list[dict],
                        want: list[dict]) -> None:
        path = resource_path("endpointslices", namespace)
        written = self._written.setdefault(f"{namespace}/{name}", {})
        try:
            for existing, body in zip(current, want):
                if not _same(existing, body):
                    meta = {**existing["metadata"], "labels": body["labels"]}
                    obj = await self.client.replace(f"{path}/{existing['metadata']['name']}", {
                        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": meta,
                        "addressType": body["addressType"], "ports": body["ports"], "endpoints": body["endpoints"]})
                    written[obj["metadata"]["name"]] = obj
            for body in want[len(current):]:
                assert svc is not None  # without a Service nothing is wanted
                obj = await self.client.create(path, {
                    "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                    "metadata": {"generateName": f"{name}-", "namespace": namespace, "labels": body["labels"],
                                 "ownerReferences": [owner_reference({"apiVersion": "v1", "kind": "Service", **svc})]},
                    "addressType": body["addressType"], "ports": body["ports"], "endpoints": body["endpoints"]})
                written[obj["metadata"]["name"]] = obj
            for extra in current[len(want):]:
                try:
                    await self.client.delete(f"{path}/{extra['metadata']['name']}")
                except APIStatusError as err:
                    if err.code != 404:
                        raise
                written[extra["metadata"]["name"]] = None
        except APIStatusError as err:
            self._written.pop(f"{namespace}/{name}", None)  # re-read the cache on the retry
            raise RuntimeError(f"failed to sync the endpoint slices of service \"{namespace}/{name}\": {err}") from err
