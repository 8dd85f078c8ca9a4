"""The service-account volume every pod gets, as the kubelet projects it.

For a pod whose ``automountServiceAccountToken`` is not false, the kubelet asks the API
server for a token bound to the pod (TokenRequest on its ServiceAccount) and places
``token``, ``ca.crt`` and ``namespace`` at ``/var/run/secrets/kubernetes.io/serviceaccount``
in each container, with ``KUBERNETES_SERVICE_HOST``/``PORT`` in the environment: that is all
client-go's in-cluster config (and labctl's DNS server) needs to call the API through the
``kubernetes`` Service. Files are copied into the container before it starts (Docker's
``put_archive``): the node's paths are not the host's, so a bind mount cannot carry them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from ...client.rest import APIClient, resource_path

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
TOKEN_SECONDS = 3600
CA_PATH = Path("/etc/labctl/ca.crt")


@dataclass
class _Token:
    token: str
    issued: float


class ServiceAccountTokens:
    """Fetches and caches pod-bound tokens; a token is renewed after 80% of its lifetime."""

    def __init__(self, client: APIClient, service_host: str, service_port: str = "443") -> None:
        self.client = client
        self.env = {"KUBERNETES_SERVICE_HOST": service_host, "KUBERNETES_SERVICE_PORT": service_port,
                    "KUBERNETES_SERVICE_PORT_HTTPS": service_port,
                    "KUBERNETES_PORT": f"tcp://{service_host}:{service_port}"}
        self._cache: dict[str, _Token] = {}

    @staticmethod
    def wanted(pod: dict) -> bool:
        return pod.get("spec", {}).get("automountServiceAccountToken", True) is not False

    async def files(self, pod: dict) -> dict[str, bytes]:
        """``{path: content}`` for the pod's service-account volume."""
        meta = pod["metadata"]
        uid = meta["uid"]
        cached = self._cache.get(uid)
        if cached is None or time.time() - cached.issued > 0.8 * TOKEN_SECONDS:
            account = pod["spec"].get("serviceAccountName") or "default"
            answer = await self.client.create(
                resource_path("serviceaccounts", meta["namespace"], account, "token"),
                {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                 "spec": {"expirationSeconds": TOKEN_SECONDS,
                          "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": uid}}})
            cached = self._cache[uid] = _Token(answer["status"]["token"], time.time())
        return {f"{MOUNT_PATH}/token": cached.token.encode(),
                f"{MOUNT_PATH}/ca.crt": CA_PATH.read_bytes() if CA_PATH.exists() else b"",
                f"{MOUNT_PATH}/namespace": meta["namespace"].encode()}

    def forget(self, uid: str) -> None:
        self._cache.pop(uid, None)
