"""The root CA publisher: a ``kube-root-ca.crt`` ConfigMap in every namespace.

A port of kube-controller-manager's ``root-ca-cert-publisher``
(``pkg/controller/certificates/rootcacertpublisher``). Every namespace holds the cluster CA
under the key ``ca.crt``, so a pod's token volume (:mod:`labctl.kube.serviceaccount`) and any
client in a pod can verify the API server at ``kubernetes.default.svc``. Deleted or edited,
the ConfigMap is written back at once, as on a real cluster: ``kubectl get configmaps`` in
any namespace lists it, and a student cannot lose it.
"""

from __future__ import annotations

import logging

from ..client.informer import FuncHandler
from ..client.rest import APIStatusError, resource_path
from ..kube.serviceaccount import ROOT_CA_CONFIG_MAP, ROOT_CA_KEY
from .base import Controller
from .context import ControllerContext

log = logging.getLogger("labctl.controllers.rootcacert")

DESCRIPTION_ANNOTATION = "kubernetes.io/description"
#: kube's words on the ConfigMap (``pkg/controller/certificates/rootcacertpublisher``)
ROOT_CA_DESCRIPTION = ("Contains a CA bundle that can be used to verify the kube-apiserver when using internal "
                       "endpoints such as the internal service IP or kubernetes.default.svc. No other usage is "
                       "guaranteed across distributions of Kubernetes clusters.")


def wanted_config_map(namespace: str, ca: str, current: dict | None = None) -> dict:
    """The ConfigMap as it must be (pure): the current one, with the CA as its only data and a
    description annotation (as kube's publisher, which leaves everything else as it finds it)."""
    cm = dict(current or {"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": ROOT_CA_CONFIG_MAP, "namespace": namespace}})
    meta = dict(cm["metadata"])
    annotations = meta.get("annotations") or {}
    if not annotations.get(DESCRIPTION_ANNOTATION):
        meta["annotations"] = {**annotations, DESCRIPTION_ANNOTATION: ROOT_CA_DESCRIPTION}
    cm["metadata"] = meta
    cm["data"] = {ROOT_CA_KEY: ca}
    return cm


class RootCACertPublisher(Controller):
    """Keys are namespace names."""

    name = "root-ca-cert-publisher"

    def __init__(self, ctx: ControllerContext) -> None:
        super().__init__()
        self.client = ctx.client
        self.ca = ctx.client.credentials.ca_pem.decode()
        self.namespaces = ctx.informer("namespaces")
        self.config_maps = ctx.informer("configmaps", field_selector=f"metadata.name={ROOT_CA_CONFIG_MAP}")
        self.namespaces.add_handler(FuncHandler(self._enqueue, lambda _old, new: self._enqueue(new)))
        self.config_maps.add_handler(FuncHandler(self._changed, lambda _old, new: self._changed(new),
                                                 lambda cm: self.queue.add(cm["metadata"]["namespace"])))

    def _enqueue(self, namespace: dict) -> None:
        self.queue.add(namespace["metadata"]["name"])

    def _changed(self, cm: dict) -> None:
        if cm != wanted_config_map(cm["metadata"]["namespace"], self.ca, cm):
            self.queue.add(cm["metadata"]["namespace"])

    def keys_for_resync(self) -> list[str]:
        return [ns["metadata"]["name"] for ns in self.namespaces.list()]

    async def reconcile(self, key: str) -> None:
        namespace = self.namespaces.get("", key)
        if namespace is None or namespace["metadata"].get("deletionTimestamp"):
            return  # gone, or going: the namespace's deletion removes the ConfigMap
        current = self.config_maps.get(key, ROOT_CA_CONFIG_MAP)
        wanted = wanted_config_map(key, self.ca, current)
        try:
            if current is None:
                await self.client.create(resource_path("configmaps", key), wanted)
                log.info("published %s in namespace %s", ROOT_CA_CONFIG_MAP, key)
            elif wanted != current:
                await self.client.replace(resource_path("configmaps", key, ROOT_CA_CONFIG_MAP), wanted)
                log.info("restored %s in namespace %s", ROOT_CA_CONFIG_MAP, key)
        except APIStatusError as err:
            if err.code == 409:  # the cache was behind: the next event or resync looks again
                self.queue.add_after(key, 0.5)
                return
            if err.code == 404 or (err.code == 403 and "being terminated" in str(err)):
                return
            raise
