"""``labctl up``: build a lab from a plan, or leave nothing behind.

The steps, each reported through :class:`~labctl.status.Status`:
  1. check the engine, the name and the host ports (fail before creating anything)
  2. ensure the lab images (build what is missing or stale)
  3. create the lab network and the control plane's state volume
  4. create every node container with its certificates and config, then start them
  5. wait for the API server, then for every Node to be Ready
  6. merge the kubeconfig context ``labctl-<name>``
Any failure removes what was made, unless ``retain`` is set (for debugging).
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import docker

from ..errors import LabctlError
from ..kubeconfig import build_kubeconfig, merge_kubeconfig
from ..pki import APISERVER_DNS_NAMES, CertKey, generate_ca, issue_certificate
from ..status import Status
from . import docker as lab_docker
from .constants import API_SERVER_CONTAINER_PORT
from .plan import ClusterPlan, NodePlan, agent_config

READY_TIMEOUT = 120.0


@dataclass
class CreatedCluster:
    plan: ClusterPlan
    server: str
    kubeconfig: dict
    seconds: float


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
                                  hint="stop what uses it (`ss -ltnp 'sport = :%d'`), or change the topology's "
                                       "networking.apiServerPort / portMappings" % port) from None


def cluster_pki(plan: ClusterPlan) -> tuple[CertKey, dict[str, bytes], dict[str, CertKey]]:
    """The CA, the control plane's PKI files, and one client certificate per node."""
    ca = generate_ca(f"labctl-{plan.name}-ca")
    cp = plan.control_plane
    serving = issue_certificate(ca, "kube-apiserver", dns_names=APISERVER_DNS_NAMES + (cp.name, cp.container),
                                ip_addresses=(cp.ip, "127.0.0.1", "10.96.0.1", plan.api_server_address),
                                server=True)
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
    import yaml

    return {
        "/etc/labctl/node.json": agent_config(plan, node).dump().encode(),
        "/etc/labctl/kubelet.kubeconfig": yaml.safe_dump(kubeconfig).encode(),
        "/etc/labctl/ca.crt": ca.cert,
    }


def create_cluster(plan: ClusterPlan, status: Status, client: docker.DockerClient,
                   kubeconfig_path: Path | None, retain: bool = False) -> CreatedCluster:
    started = time.monotonic()
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
        host_port = _published_api_port(client, plan)
        reach = "127.0.0.1" if plan.api_server_address == "0.0.0.0" else plan.api_server_address
        server = f"https://{reach}:{host_port}"
        admin = certs["__admin__"]
        kubeconfig = build_kubeconfig(plan.name, server, ca.cert, admin.cert, admin.key)
        _wait_for_api(server, ca, admin, status)
        status.start(f"Waiting for {len(plan.nodes)} node(s) to be Ready ⏳")
        _wait_for_nodes(server, ca, admin, [n.name for n in plan.nodes], status)
        status.start("Installing cluster add-ons (kube-dns) 🔎")
        install_addons(server, ca, admin, plan.image)
        if kubeconfig_path is not None:
            status.start(f"Writing kubeconfig context labctl-{plan.name} to {kubeconfig_path}")
            merge_kubeconfig(kubeconfig_path, kubeconfig)
        status.end(True)
    except BaseException:
        status.end(False)
        if not retain:
            lab_docker.remove_cluster(client, plan.name)
        raise
    return CreatedCluster(plan, server, kubeconfig, time.monotonic() - started)


def install_addons(server: str, ca: CertKey, admin: CertKey, node_image: str) -> None:
    """Create the add-ons' objects (as kubeadm installs CoreDNS); existing ones are kept."""
    from ..addons import ADDONS, load_addon
    from ..apiserver.resources import Registry
    from ..client.rest import resource_path

    registry = Registry()
    host, port = urllib.parse.urlsplit(server).hostname, urllib.parse.urlsplit(server).port
    conn = http.client.HTTPSConnection(host, port, context=_admin_context(ca, admin), timeout=10)
    try:
        for name in ADDONS:
            for obj in load_addon(name, image=node_image):
                rt = registry.by_kind(obj["apiVersion"], obj["kind"])
                namespace = obj["metadata"].get("namespace", "default") if rt.namespaced else None
                conn.request("POST", resource_path(rt.plural, namespace), body=json.dumps(obj),
                             headers={"Content-Type": "application/json"})
                answer = conn.getresponse()
                body = answer.read()
                if answer.status >= 300 and answer.status != 409:
                    raise LabctlError(f"failed to install add-on {name!r} ({obj['kind']} "
                                      f"{obj['metadata']['name']}): {body.decode()[:300]}")
    finally:
        conn.close()


def _published_api_port(client: docker.DockerClient, plan: ClusterPlan) -> int:
    if plan.api_server_port:
        return plan.api_server_port
    ports = client.api.inspect_container(plan.control_plane.container)["NetworkSettings"]["Ports"]
    return int(ports[f"{API_SERVER_CONTAINER_PORT}/tcp"][0]["HostPort"])


def _admin_context(ca: CertKey, admin: CertKey) -> ssl.SSLContext:
    import tempfile

    ctx = ssl.create_default_context(cadata=ca.cert.decode())
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "a.crt").write_bytes(admin.cert)
        (Path(tmp) / "a.key").write_bytes(admin.key)
        ctx.load_cert_chain(Path(tmp) / "a.crt", Path(tmp) / "a.key")
    return ctx


def _get_json(url: str, ctx: ssl.SSLContext) -> dict:
    with urllib.request.urlopen(url, context=ctx, timeout=3) as resp:
        return json.loads(resp.read())


def _wait_for_api(server: str, ca: CertKey, admin: CertKey, status: Status) -> None:
    ctx = _admin_context(ca, admin)
    deadline = time.monotonic() + READY_TIMEOUT
    last = ""
    while time.monotonic() < deadline:
        try:
            _get_json(f"{server}/version", ctx)
            return
        except (urllib.error.URLError, OSError, ValueError) as err:
            last = str(err)
            time.sleep(0.1)
    raise LabctlError(f"the API server did not answer on {server} within {READY_TIMEOUT:.0f}s ({last})",
                      hint="see `labctl logs control-plane` (or rerun with --retain and inspect the node)")


def _wait_for_nodes(server: str, ca: CertKey, admin: CertKey, names: list[str], status: Status) -> None:
    ctx = _admin_context(ca, admin)
    deadline = time.monotonic() + READY_TIMEOUT
    ready: set[str] = set()
    while time.monotonic() < deadline:
        try:
            nodes = _get_json(f"{server}/api/v1/nodes", ctx)["items"]
        except (urllib.error.URLError, OSError, ValueError):
            nodes = []
        ready = {n["metadata"]["name"] for n in nodes
                 if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))}
        status.update(f"{len(ready & set(names))}/{len(names)} Ready")
        if set(names) <= ready:
            return
        time.sleep(0.1)
    missing = ", ".join(sorted(set(names) - ready))
    raise LabctlError(f"node(s) {missing} did not become Ready within {READY_TIMEOUT:.0f}s",
                      hint="see `labctl logs NODE` for the node agent's log")
