"""The library facade the CLI (and later the TUI) call: up, down, status, kubeconfig, exec."""

from __future__ import annotations

import dataclasses
import io
import socket
import tarfile
from dataclasses import dataclass
from pathlib import Path

import docker
import docker.errors

from .. import images as lab_images
from ..errors import LabctlError
from ..kubeconfig import build_kubeconfig, context_name, default_path, remove_context
from ..progress import Progress
from ..topology import Topology
from . import docker as lab_docker
from .constants import API_SERVER_CONTAINER_PORT, DEFAULT_CLUSTER_NAME
from .create import CreatedCluster, create_cluster
from .plan import plan_from_topology


def up(topology: Topology, status: Progress, kubeconfig_path: Path | None = None,
       retain: bool = False) -> CreatedCluster:
    client = lab_docker.connect()
    status.start("Ensuring lab images 🖼")
    node_image = _ensure_images(client, status)
    subnet = topology.networking.lab_subnet or lab_docker.pick_subnet(client)
    plan = plan_from_topology(topology, subnet, node_image)
    if not plan.api_server_port:
        # a fixed port, chosen now: Docker would pick a new one at every restart of the node
        plan = dataclasses.replace(plan, api_server_port=free_port(plan.api_server_address))
    return create_cluster(plan, status, client, kubeconfig_path if kubeconfig_path else default_path(), retain)


def free_port(address: str) -> int:
    with socket.socket() as s:
        s.bind((address, 0))
        return s.getsockname()[1]


def _ensure_images(client: docker.DockerClient, status: Progress) -> str:
    def progress(step: str, done: int, total: int) -> None:
        status.update(f"[{done}/{total}] {step[:90]}")

    try:
        statuses = lab_images.ensure_images(client, progress=progress)
    except lab_images.LabctlImageError as err:
        raise LabctlError(str(err), hint="run `labctl images build` to see the full build log") from None
    return next(s.ref for s in statuses if s.key == "node")


def resolve_cluster(client: docker.DockerClient, name: str | None) -> str:
    """The cluster a command means: ``--name``, else ``lab``, else the only one there is."""
    clusters = lab_docker.list_clusters(client)
    if name:
        if name not in clusters:
            raise LabctlError(f"no lab named {name!r}" + (f" (labs: {', '.join(clusters)})" if clusters else ""),
                              hint="`labctl status` lists the labs; `labctl up` creates one")
        return name
    if DEFAULT_CLUSTER_NAME in clusters or not clusters:
        if not clusters:
            raise LabctlError("there is no lab on this machine", hint="create one with `labctl up`")
        return DEFAULT_CLUSTER_NAME
    if len(clusters) == 1:
        return clusters[0]
    raise LabctlError(f"several labs exist ({', '.join(clusters)})", hint="say which with --name")


def down(name: str, kubeconfig_path: Path | None = None) -> list[str]:
    """Remove a lab; returns problems met along the way (it keeps going past them)."""
    client = lab_docker.connect()
    if name not in lab_docker.list_clusters(client) and not _has_leftovers(client, name):
        raise LabctlError(f"no lab named {name!r}", hint="`labctl status` lists the labs")
    problems = lab_docker.remove_cluster(client, name)
    remove_context(kubeconfig_path or default_path(), name)
    return problems


def _has_leftovers(client: docker.DockerClient, name: str) -> bool:
    from .constants import CLUSTER_LABEL

    label = {"label": f"{CLUSTER_LABEL}={name}"}
    return bool(client.networks.list(filters=label) or client.volumes.list(filters=label)
                or client.containers.list(all=True, filters=label))


@dataclass
class LabStatus:
    name: str
    nodes: list[lab_docker.NodeContainer]
    server: str | None


def status(client: docker.DockerClient | None = None) -> list[LabStatus]:
    client = client or lab_docker.connect()
    return [LabStatus(c, lab_docker.list_nodes(client, c), _server_url(client, c))
            for c in lab_docker.list_clusters(client)]


def _control_plane(client: docker.DockerClient, name: str):
    nodes = [n for n in lab_docker.list_nodes(client, name) if n.role == "control-plane"]
    if not nodes:
        raise LabctlError(f"lab {name!r} has no control-plane node", hint=f"recreate it: `labctl down --name {name}` then `labctl up`")
    return client.containers.get(nodes[0].container)


def _server_url(client: docker.DockerClient, name: str) -> str | None:
    try:
        cp = _control_plane(client, name)
    except LabctlError:
        return None
    bindings = (cp.attrs["NetworkSettings"].get("Ports") or {}).get(f"{API_SERVER_CONTAINER_PORT}/tcp") or []
    if not bindings:
        host_cfg = cp.attrs["HostConfig"].get("PortBindings", {}).get(f"{API_SERVER_CONTAINER_PORT}/tcp") or []
        bindings = host_cfg
    if not bindings or not bindings[0].get("HostPort"):
        return None
    host = bindings[0].get("HostIp") or "127.0.0.1"
    return f"https://{'127.0.0.1' if host == '0.0.0.0' else host}:{bindings[0]['HostPort']}"


def kubeconfig(name: str) -> dict:
    """The admin kubeconfig of a running lab, read from its control plane."""
    client = lab_docker.connect()
    cp = _control_plane(client, name)
    server = _server_url(client, name)
    if cp.status != "running" or server is None:
        raise LabctlError(f"the control plane of lab {name!r} is not running", hint=f"start it: `docker start {cp.name}`")
    pki = _read_files(cp, "/var/lib/labctl/apiserver/pki", ("ca.crt", "admin.crt", "admin.key"))
    return build_kubeconfig(name, server, pki["ca.crt"], pki["admin.crt"], pki["admin.key"])


def _read_files(container, directory: str, names: tuple[str, ...]) -> dict[str, bytes]:
    stream, _ = container.get_archive(directory)
    data = io.BytesIO(b"".join(stream))
    out = {}
    with tarfile.open(fileobj=data) as tar:
        for member in tar.getmembers():
            base = member.name.rsplit("/", 1)[-1]
            if base in names:
                out[base] = tar.extractfile(member).read()
    return out


def node_container(name: str, node: str) -> str:
    """The container of a node named as Kubernetes names it (``worker``) or as Docker does."""
    client = lab_docker.connect()
    for n in lab_docker.list_nodes(client, name):
        if node in (n.name, n.container):
            if n.status != "running":
                raise LabctlError(f"node {n.name!r} of lab {name!r} is {n.status}", hint=f"`docker start {n.container}`")
            return n.container
    names = ", ".join(n.name for n in lab_docker.list_nodes(client, name))
    raise LabctlError(f"lab {name!r} has no node {node!r}", hint=f"its nodes: {names}")


__all__ = ["up", "down", "status", "kubeconfig", "resolve_cluster", "node_container", "context_name"]
