"""``labctl up``: build a lab from a plan, or leave nothing behind.

The steps, each reported through :class:`~labctl.progress.Progress`:
  1. check the engine, the name and the host ports (fail before creating anything)
  2. ensure the lab images (build what is missing or stale)
  3. create the lab network and the control plane's state volume
  4. create every node container with its certificates and config, then start them
  5. wait for the API server and every Node, install the add-ons, wait for cluster DNS
     (``bootstrap.py``)
  6. merge the kubeconfig context ``labctl-<name>``
Any failure removes what was made, unless ``retain`` is set (for debugging).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import yaml

from ..client.rest import Credentials
from ..engine.exec import run
from ..engine.streams import DockerAPIError, DockerEngine
from ..errors import LabctlError
from ..kubeconfig import build_kubeconfig, merge_kubeconfig
from ..pki import CertKey, generate_ca, issue_apiserver_certificate, issue_certificate
from ..progress import Progress
from . import docker as lab_docker
from .bootstrap import bootstrap
from .plan import ClusterPlan, NodePlan, node_config


def check_ports_free(plan: ClusterPlan) -> None:
    wanted = [(plan.api_server_address, plan.api_server_port)] if plan.api_server_port else []
    wanted += [(m.listen_address, m.host_port) for m in plan.port_mappings]
    for address, port in wanted:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((address, port))
            except OSError:
                raise LabctlError(f"host port {address}:{port} is already in use",
                                  hint=f"stop what uses it (`ss -ltnp 'sport = :{port}'`), or change the topology's "
                                       "networking.apiServerPort / portMappings") from None


def cluster_pki(plan: ClusterPlan) -> tuple[CertKey, dict[str, bytes], dict[str, CertKey]]:
    """The CA, the control plane's PKI files, and one client certificate per node."""
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


def create_cluster(plan: ClusterPlan, status: Progress, client: docker.DockerClient,
                   kubeconfig_path: Path | None, retain: bool = False) -> dict:
    """Run ``plan`` (its API server port chosen); the lab's admin kubeconfig, also merged into
    ``kubeconfig_path`` if given."""
    if plan.name in lab_docker.list_clusters(client):
        raise LabctlError(f"a lab named {plan.name!r} already exists",
                          hint=f"use it (`kubectl --context labctl-{plan.name} get nodes`), remove it with "
                               f"`labctl down --name {plan.name}`, or pick another --name")
    lab_docker.remove_cluster(client, plan.name)  # leftovers of a crashed run: ours by label
    check_ports_free(plan)
    try:
        ca, cp_files, certs = cluster_pki(plan)
        status.start(f"Creating lab network {plan.network} ({plan.subnet})")
        lab_docker.create_network(client, plan)
        lab_docker.create_state_volume(client, plan)
        status.start(f"Creating {len(plan.nodes)} node(s) 📦")
        with ThreadPoolExecutor(max_workers=len(plan.nodes)) as pool:
            futures = []
            for node in plan.nodes:
                files = node_files(plan, node, ca, certs[node.name])
                if node.role == "control-plane":
                    files.update(cp_files)
                futures.append(pool.submit(lab_docker.create_node, client, plan, node, files))
            ids = [f.result() for f in futures]
        status.start("Starting nodes and the control plane 🕹")
        lab_docker.start(client, ids)
        reach = "127.0.0.1" if plan.api_server_address == "0.0.0.0" else plan.api_server_address
        server = f"https://{reach}:{plan.api_server_port}"
        admin = certs["__admin__"]
        kubeconfig = build_kubeconfig(plan.name, server, ca.cert, admin.cert, admin.key)
        asyncio.run(_bootstrap(plan, Credentials.from_kubeconfig(kubeconfig), status))
        if kubeconfig_path is not None:
            status.start(f"Writing kubeconfig context labctl-{plan.name} to {kubeconfig_path}")
            merge_kubeconfig(kubeconfig_path, kubeconfig)
        status.end(True)
    except BaseException:
        status.end(False)
        if not retain:
            lab_docker.remove_cluster(client, plan.name)
        raise
    return kubeconfig


async def _bootstrap(plan: ClusterPlan, credentials: Credentials, status: Progress) -> None:
    containers = {n.name: n.container for n in plan.nodes}
    async with DockerEngine.from_env() as engine:
        async def exec_in_node(node: str, argv: Sequence[str]) -> int:
            try:
                return (await run(engine, containers[node], argv)).exit_code
            except DockerAPIError as err:
                raise LabctlError(f"failed to run {argv[0]!r} in node {node!r}: {err.message}") from None

        await bootstrap(credentials, plan.cluster, list(containers), plan.image, exec_in_node, status)
