"""The service-account token volume, as the kubelet projects it — and keeps fresh.

For a pod that admission gave a ``kube-api-access-…`` volume (:mod:`labctl.kube.serviceaccount`),
the kubelet asks the API server for a token bound to the pod (TokenRequest on its ServiceAccount)
and writes ``token``, ``ca.crt`` (the node's copy of the cluster CA, which is what the
``kube-root-ca.crt`` ConfigMap holds) and ``namespace`` into it; every container mounts it at
``/var/run/secrets/kubernetes.io/serviceaccount``. With ``KUBERNETES_SERVICE_HOST``/``PORT``,
which every container gets from the ``kubernetes`` Service's environment variables
(:mod:`.envvars`), that is all client-go's in-cluster config (and labctl's DNS server) needs to
call the API through that Service. The files are written in kube's atomic-writer layout
(:mod:`.projection`), like every projected volume.

A token expires (``expirationSeconds``, an hour by default), so like the kubelet's token
manager this one renews a pod's token once 80 % of its life has passed, or once it is 24 h
old, and the pod worker rewrites it in the running containers. The clock is injectable, so
the schedule is tested without waiting an hour.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ...client.rest import APIClient, resource_path
from ...clusterconfig import DEFAULT_SERVICE_ACCOUNT_TOKEN_SECONDS
from ...kube.meta import parse_time

CA_PATH = Path("/etc/labctl/ca.crt")
#: the kubelet's token manager: refresh after 80 % of the lifetime, or when 24 h old
REFRESH_FRACTION = 0.8
MAX_TOKEN_AGE_SECONDS = 24 * 3600


@dataclass(frozen=True)
class ProjectedToken:
    """A pod's token and its validity, as the TokenRequest answered it."""

    token: str
    issued_at: float   # seconds since the epoch: expires_at - expirationSeconds, as the kubelet reckons
    expires_at: float

    @property
    def refresh_at(self) -> float:
        """When the kubelet replaces it (``requiresRefresh``): 80 % of its life, at most 24 h."""
        life = self.expires_at - self.issued_at
        return self.issued_at + min(REFRESH_FRACTION * life, MAX_TOKEN_AGE_SECONDS)


class ServiceAccountTokens:
    """Fetches pod-bound tokens and says when each must be renewed (the kubelet's token manager)."""

    def __init__(self, client: APIClient, *, expiration_seconds: int = DEFAULT_SERVICE_ACCOUNT_TOKEN_SECONDS,
                 clock: Callable[[], float] = time.time, ca_path: Path = CA_PATH) -> None:
        self.client = client
        self.expiration_seconds = expiration_seconds
        self.clock = clock
        self.ca_path = ca_path
        self._cache: dict[str, ProjectedToken] = {}

    async def token(self, pod: dict) -> ProjectedToken:
        """The pod's current token: the cached one until its refresh time, then a new one."""
        uid = pod["metadata"]["uid"]
        cached = self._cache.get(uid)
        if cached is not None and self.clock() < cached.refresh_at:
            return cached
        meta = pod["metadata"]
        account = pod["spec"].get("serviceAccountName") or "default"
        answer = await self.client.create(
            resource_path("serviceaccounts", meta["namespace"], account, "token"),
            {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
             "spec": {"expirationSeconds": self.expiration_seconds,
                      "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": meta["name"], "uid": uid}}})
        fresh = token_from_answer(answer, self.clock())
        self._cache[uid] = fresh
        return fresh

    def volume(self, pod: dict, token: ProjectedToken) -> dict[str, bytes]:
        """``{file name: content}`` of the pod's service-account volume."""
        return {"token": token.token.encode(),
                "ca.crt": self.ca_path.read_bytes() if self.ca_path.exists() else b"",
                "namespace": pod["metadata"]["namespace"].encode()}

    def forget(self, uid: str) -> None:
        self._cache.pop(uid, None)


def token_from_answer(answer: dict, now: float) -> ProjectedToken:
    """The token of a TokenRequest answer, its issue time derived as the kubelet does."""
    status, spec = answer["status"], answer.get("spec") or {}
    expires = parse_time(status.get("expirationTimestamp"))
    seconds = spec.get("expirationSeconds")
    if expires is None or not seconds:  # a server that leaves them out: trust the clock
        seconds = seconds or DEFAULT_SERVICE_ACCOUNT_TOKEN_SECONDS
        return ProjectedToken(status["token"], now, now + seconds)
    return ProjectedToken(status["token"], expires.timestamp() - seconds, expires.timestamp())
