"""In-cluster credentials: how a pod finds and authenticates to the API server.

client-go's ``rest.InClusterConfig``: the kubelet gives every pod the ``kubernetes``
Service's address in ``KUBERNETES_SERVICE_HOST``/``KUBERNETES_SERVICE_PORT`` and mounts its
service account's token, the cluster CA and its namespace under
``/var/run/secrets/kubernetes.io/serviceaccount``.
Any labctl component running in a pod (the cluster DNS server) uses this.

The token is short-lived and the kubelet rotates it, so the client is given the file, not
only its content: :class:`~labctl.client.tokenfile.TokenFile` re-reads it when it changes
(client-go's ``BearerTokenFile``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from ..kube.serviceaccount import MOUNT_PATH
from .rest import Credentials

SERVICE_ACCOUNT_DIR = Path(MOUNT_PATH)


class InClusterConfigError(Exception):
    """Not running in a pod (or the pod has no service account token mounted)."""


def in_cluster_credentials(env: Mapping[str, str] = os.environ,
                           directory: Path = SERVICE_ACCOUNT_DIR) -> Credentials:
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise InClusterConfigError("unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
                                   "KUBERNETES_SERVICE_PORT must be defined")
    token_file = directory / "token"
    try:
        token = token_file.read_text().strip()
        ca_pem = (directory / "ca.crt").read_bytes()
    except OSError as err:
        raise InClusterConfigError(f"failed to read the service account credentials in {str(directory)!r}: "
                                   f"{err.strerror}") from err
    server_host = f"[{host}]" if ":" in host else host
    return Credentials(f"https://{server_host}:{port}", ca_pem, token=token, token_file=str(token_file))


def in_cluster_namespace(directory: Path = SERVICE_ACCOUNT_DIR) -> str:
    """The pod's own namespace, ``default`` outside a pod."""
    try:
        return (directory / "namespace").read_text().strip() or "default"
    except OSError:
        return "default"
