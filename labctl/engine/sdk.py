"""The Docker SDK client: containers, networks, volumes, images, and files in and out of containers."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterable
from typing import Any

import docker
import docker.errors
from docker.transport.unixconn import UnixHTTPAdapter, UnixHTTPConnectionPool

from ..errors import LabctlError

__all__ = ["connect", "read_files", "reuse_connections", "tar_of"]


def connect(timeout: int = 120) -> docker.DockerClient:
    """A Docker client that has answered a ping, or a one-line error saying how to start the engine.

    ``DOCKER_HOST`` is honoured as by the docker command. ``timeout`` bounds each API call:
    image builds and node starts are slow on a busy 2-core machine, hence the generous default.
    """
    try:
        client = docker.from_env(timeout=timeout)
        client.ping()
        return client
    except docker.errors.DockerException as err:
        text = str(err).split("(Caused by")[0].strip()[:200]
        raise LabctlError(f"cannot reach the Docker engine: {text}",
                          hint="start it with `sudo scripts/ensure-docker.sh` (or `sudo systemctl start docker`)"
                          ) from None


class OneEndpointAdapter(UnixHTTPAdapter):
    """docker-py's unix-socket adapter with one connection pool for the engine, not one per URL.

    docker-py keys its pools by the whole request URL (``/containers/<id>/json`` …) and keeps
    25 of them, so a kubelet starting many pods opens a fresh connection for nearly every call
    about a new container and closes evicted pools as it goes (7 % of the kubelet's Docker
    time in a 50-pod burst, docs/pod-startup.md). The engine is one endpoint: one pool of
    ``max_pool_size`` kept-alive connections serves every call.
    """

    def get_connection(self, url: str | bytes, proxies: Any = None) -> UnixHTTPConnectionPool:
        return super().get_connection("http+docker://localhost", proxies)


def reuse_connections(client: docker.DockerClient) -> docker.DockerClient:
    """``client`` with :class:`OneEndpointAdapter` when it talks over a unix socket (returned as is otherwise).

    Such a client also stops reading the environment per request (``trust_env``): requests
    otherwise looks for proxies and stats ``~/.netrc`` on every call (a fifth of a call's CPU),
    and neither applies to a local socket.
    """
    api = client.api
    current = api.adapters.get("http+docker://")
    if isinstance(current, UnixHTTPAdapter) and not isinstance(current, OneEndpointAdapter):
        adapter = OneEndpointAdapter(f"http+unix://{current.socket_path}", current.timeout,
                                     max_pool_size=current.max_pool_size)
        api.mount("http+docker://", adapter)
        setattr(api, "_custom_adapter", adapter)  # noqa: B010 - docker-py's own handle on it (its raw sockets)
        api.trust_env = False
        current.close()
    return client


def tar_of(files: dict[str, bytes]) -> bytes:
    """A tar archive of ``{absolute path: content}`` for ``put_archive`` (mode 0600 for keys, 0644 otherwise)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(content)
            info.mode = 0o600 if path.endswith(".key") else 0o644
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def daemon_error(err: Exception) -> str:
    """An engine error as Docker's CLI and dockershim word it (``Error response from daemon: …``),
    without the SDK's ``400 Client Error for http+docker://localhost/v1.41/…`` wrapper; any other
    error as it is."""
    if isinstance(err, docker.errors.APIError) and err.explanation:
        return f"Error response from daemon: {err.explanation}"
    return str(err)


def read_files(client: docker.DockerClient, container: str, directory: str,
               names: Iterable[str]) -> dict[str, bytes]:
    """``{name: content}`` of the files ``names`` in ``directory`` of a container (running or not)."""
    wanted = set(names)
    try:
        stream, _ = client.api.get_archive(container, directory)
    except docker.errors.APIError as err:
        raise LabctlError(f"failed to read {directory} from container {container}: {err.explanation}") from None
    out: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
        for member in tar.getmembers():
            base = member.name.rsplit("/", 1)[-1]
            extracted = tar.extractfile(member) if member.isfile() and base in wanted else None
            if extracted is not None:
                out[base] = extracted.read()
    return out
