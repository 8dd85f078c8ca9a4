"""``labctl up``: build a lab from a topology, or leave nothing behind.

The steps, each reported through :class:`~labctl.progress.Progress`:
  1. under the host lock (:mod:`labctl.filelock`), so two ``labctl up`` at once never pick
     the same subnet or port: refuse a name in use, pick the lab subnet and the API server's
     host port, check them against the host (``preflight.py``), then create the lab network,
     the control plane's state volume and every node container with its certificates and
     config, and start them — once Docker holds the subnet and the ports, the lock goes
  2. wait for the API server and every Node, install the add-ons, wait for cluster DNS
     (``bootstrap.py``)
  3. merge the kubeconfig context ``labctl-<name>`` (under that file's own lock)
Any failure removes what was made, unless ``retain`` is set (for debugging); so does a
:class:`~labctl.cluster.cancel.Cancellation` (SIGINT, SIGTERM, SIGHUP in the CLI), which is
honoured between steps and never inside a Docker call.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import docker
import yaml

from ..addons import DEFAULT_INGRESS_IMAGE
from ..errors import LabctlError
from ..filelock import locked
from ..kubeconfig import build_kubeconfig, merge_kubeconfig
from ..progress import Progress
from ..topology import Topology, pick_lab_subnet
from . import docker as lab_docker
from . import preflight
from .cancel import Cancellation
from .plan import NODE_CPU_SHARES, ClusterPlan, NodePlan, node_config, plan_from_topology

if TYPE_CHECKING:  # cryptography and aiohttp load in the steps that use them (aiohttp on another thread)
    from ..pki import CertKey

#: the host lock held while a lab's subnet and host ports are chosen and taken by Docker
HOST_LOCK = "up"
#: node containers created at once (each is a create call and a copy of its files)
CREATE_WORKERS = 16
#: the library of the bootstrap's API client and Docker exec streams: ~0.15 s of CPU to import,
#: a fifth of ``up``'s own start, which :func:`_preload` overlaps with the nodes' creation
BOOTSTRAP_LIBRARY = "aiohttp"


def _preload(name: str) -> None:
    """Import the package ``name`` on a daemon thread while this one waits for the Docker engine
    (creating the network and the node containers, starting them: no imports of its own there).
    A third-party package entered by its top-level name, which imports nothing of labctl, so
    the two threads never wait for each other's module locks in a cycle; a failed import is
    left for the step that needs the package, which raises it as it always did."""
    def load() -> None:
        with contextlib.suppress(Exception):
            importlib.import_module(name)

    threading.Thread(target=load, name=f"preload-{name}", daemon=True).start()


def cluster_pki(plan: ClusterPlan) -> tuple[CertKey, dict[str, bytes], dict[str, CertKey]]:
    """The CA, the control plane's PKI files, and one client certificate per node."""
    from ..pki import generate_ca, issue_apiserver_certificate, issue_certificate

    ca = generate_ca(f"labctl-{plan.name}-ca")
    cp = plan.control_plane
    serving = issue_apiserver_certificate(ca, plan.cluster, ip_addresses=(cp.ip, plan.api_server_address),
                                          dns_names=(cp.name, cp.container))
    admin = issue_certificate(ca, "kubernetes-admin", orgs=("system:masters",), client=True)
    pki_dir = "/var/lib/labctl/apiserver/pki"
    files = {f"{pki_dir}/ca.crt": ca.cert, f"{pki_dir}/ca.key": ca.key,
             f"{pki_dir}/apiserver.crt": serving.cert, f"{pki_dir}/apiserver.key": serving.key,
             f"{pki_dir}/admin.crt": admin.cert, f"{pki_dir}/admin.key": admin.key}
    nodes = {n.name: issue_certificate(ca, f"system:node:{n.name}", orgs=("system:nodes",), client=True)
             for n in plan.nodes}
    nodes["__admin__"] = admin
    return ca, files, nodes


def node_files(plan: ClusterPlan, node: NodePlan, ca: CertKey, cert: CertKey) -> dict[str, bytes]:
    kubeconfig = build_kubeconfig(plan.name, plan.internal_api_url, ca.cert, cert.cert, cert.key)
    return {
        "/etc/labctl/node.json": node_config(plan, node).dump().encode(),
        "/etc/labctl/kubelet.kubeconfig": yaml.safe_dump(kubeconfig).encode(),
        "/etc/labctl/ca.crt": ca.cert,
    }


def create_cluster(topology: Topology, node_image: str, status: Progress, client: docker.DockerClient,
                   kubeconfig_path: Path | None, retain: bool = False,
                   cancel: Cancellation | None = None,
                   ingress_image: str = DEFAULT_INGRESS_IMAGE) -> tuple[ClusterPlan, dict]:
    """Create the lab ``topology`` describes from ``node_image`` (its ingress controller from
    ``ingress_image``); its plan and admin kubeconfig, also merged into ``kubeconfig_path`` if given."""
    cancel = cancel or Cancellation()
    made = False
    status.start("Choosing the lab network and host ports")
    try:
        with locked(HOST_LOCK, waiting=lambda: _wait_for_lock(status, cancel)):
            cancel.check()
            _refuse_existing(client, topology.name)
            lab_docker.remove_cluster(client, topology.name)  # leftovers of a crashed run: ours by label
            plan = replace(plan_on_host(topology, node_image, client), ingress_image=ingress_image)
            ca, cp_files, certs = cluster_pki(plan)
            cancel.check()
            made = True
            _preload(BOOTSTRAP_LIBRARY)
            _create_nodes(plan, client, ca, cp_files, certs, status, cancel)
        admin = certs["__admin__"]
        kubeconfig = build_kubeconfig(plan.name, plan.api_server_url, ca.cert, admin.cert, admin.key)
        asyncio.run(cancel.guard(_bootstrap(plan, kubeconfig, status)))
        cancel.check()
        if kubeconfig_path is not None:
            status.start(f"Writing kubeconfig context labctl-{plan.name} to {kubeconfig_path}")
            merge_kubeconfig(kubeconfig_path, kubeconfig)
        status.end(True)
    except BaseException:
        with contextlib.suppress(OSError):  # the terminal may be gone with a SIGHUP
            status.end(False)
        if made and not retain:
            _roll_back(client, topology.name, status)
        raise
    return plan, kubeconfig


def plan_on_host(topology: Topology, node_image: str, client: docker.DockerClient) -> ClusterPlan:
    """The plan with this host's facts: a free lab subnet (``auto``) and API server port, every
    subnet, the bridge name and the host ports checked against the host. Hold the host lock."""
    routes = preflight.host_routes()
    networks = lab_docker.docker_networks(client)
    subnet = topology.networking.lab_subnet or pick_lab_subnet(
        topology, preflight.lab_subnet_conflicts(routes, networks))
    topology = topology.with_lab_subnet(subnet)  # validated against the pod and Service subnets
    preflight.check_subnets(topology, routes, networks)
    plan = plan_from_topology(topology, subnet, node_image)
    preflight.check_bridge_free(plan)
    if not plan.api_server_port:
        # a fixed port, chosen now: Docker would pick a new one at every restart of the node
        plan = replace(plan, api_server_port=preflight.free_port(plan.api_server_address))
    preflight.check_ports_free(plan)
    return plan


def _refuse_existing(client: docker.DockerClient, name: str) -> None:
    if name in lab_docker.list_clusters(client):
        raise LabctlError(f"a lab named {name!r} already exists",
                          hint=f"use it (`kubectl --context labctl-{name} get nodes`), remove it with "
                               f"`labctl down --name {name}`, or pick another --name")


def _wait_for_lock(status: Progress, cancel: Cancellation) -> None:
    cancel.check()
    status.update("another labctl up is creating its lab; waiting for it")


def _create_nodes(plan: ClusterPlan, client: docker.DockerClient, ca: CertKey, cp_files: dict[str, bytes],
                  certs: dict[str, CertKey], status: Progress, cancel: Cancellation) -> None:
    """The lab network, the state volume and the node containers, started."""
    status.start(f"Creating lab network {plan.network} ({plan.subnet}, bridge {plan.bridge})")
    lab_docker.create_network(client, plan)
    lab_docker.create_state_volume(client, plan)
    cancel.check()
    status.start(f"Creating {len(plan.nodes)} node(s) 📦")

    def create(node: NodePlan) -> str:
        cancel.check()
        files = node_files(plan, node, ca, certs[node.name])
        if node.role == "control-plane":
            files.update(cp_files)
        return lab_docker.create_node(client, plan, node, files)

    with ThreadPoolExecutor(max_workers=min(len(plan.nodes), CREATE_WORKERS)) as pool:
        ids = list(pool.map(create, plan.nodes))
    cancel.check()
    status.start("Starting nodes and the control plane 🕹")
    lab_docker.start(client, ids)


def _roll_back(client: docker.DockerClient, name: str, status: Progress) -> None:
    """Remove everything labelled with the lab, under the host lock: another ``up`` of the same
    name must not create its objects while these are being listed and removed."""
    with contextlib.suppress(OSError):
        status.start(f"Removing what was made of lab {name} 🧹")
    with locked(HOST_LOCK):
        problems = lab_docker.remove_cluster(client, name)
    with contextlib.suppress(OSError):
        status.end(not problems)


async def _bootstrap(plan: ClusterPlan, kubeconfig: dict, status: Progress) -> None:
    from ..client.rest import Credentials
    from ..engine.exec import run
    from ..engine.streams import DockerAPIError, DockerEngine
    from .bootstrap import bootstrap

    credentials = Credentials.from_kubeconfig(kubeconfig)
    containers = {n.name: n.container for n in plan.nodes}
    async with DockerEngine.from_env() as engine:
        async def exec_in_node(node: str, argv: Sequence[str]) -> int:
            try:
                return (await run(engine, containers[node], argv)).exit_code
            except DockerAPIError as err:
                raise LabctlError(f"failed to run {argv[0]!r} in node {node!r}: {err.message}") from None

        async def end_start_priority() -> None:
            # the control plane weighed twice a worker until its API server answered (plan.py)
            try:
                await engine.update(plan.control_plane.container, {"CpuShares": NODE_CPU_SHARES})
            except DockerAPIError as err:
                raise LabctlError(f"failed to set the control plane's CPU weight: {err.message}") from None

        await bootstrap(credentials, plan.cluster, list(containers), plan.image, exec_in_node, status,
                        addons=plan.addons, ingress_image=plan.ingress_image, api_answers=end_start_priority)
