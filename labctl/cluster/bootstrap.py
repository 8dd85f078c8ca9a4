"""The last part of ``labctl up``: from started node containers to a lab a student can use.

Through labctl's one API client, as kubeadm's phases do it: wait for the API server, install
cluster DNS, wait for every Node to be Ready and for a DNS replica to be Ready, wait until
**cluster DNS answers on every node** through the kube-dns Service (the node's query passes
the same KUBE-SERVICES rules as a pod's, written by the same ``iptables-restore``;
docs/benchmarks.md says what a pod's query adds), then install the other add-ons. Only then
does ``up`` say the lab is ready: a student who types ``kubectl run … nslookup`` the moment
it returns gets an answer, not ``connection refused`` from a Service whose endpoints are
still empty.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

from ..addons import DEFAULT_INGRESS_IMAGE, load_addon
from ..client.rest import APIClient, APIStatusError, Credentials, resource_path
from ..clusterconfig import ClusterConfig
from ..errors import LabctlError
from ..kube.objects import node_is_ready
from ..kube.resources import Registry
from ..progress import Progress

READY_TIMEOUT = 120.0
POLL_SECONDS = 0.1
#: the cluster DNS Service (kube-system), as kubeadm names it
DNS_SERVICE = "kube-dns"

#: Asks the kube-dns Service for ``kubernetes.default`` (an A record) from inside a node,
#: through the same KUBE-SERVICES rules a pod's query passes: exit 0 on an answer with records.
#: Run as ``python3 -I -S`` with the query packed by hand: one of these starts per node and try
#: while the DNS replicas start on the same cores, and site's imports and dnslib cost more CPU
#: than the query (dig would do, but waits at least a second per try).
DNS_PROBE = """
import socket, struct, sys
query = struct.pack("!6H", 0x6c61, 0x0100, 1, 0, 0, 0) + b"".join(
    bytes([len(label)]) + label.encode() for label in sys.argv[1].split(".")) + b"\\0" + struct.pack("!2H", 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
s.sendto(query, (sys.argv[2], 53))
reply = s.recv(4096)
ident, flags, _, answers = struct.unpack("!4H", reply[:8])
sys.exit(0 if ident == 0x6c61 and flags & 0x800F == 0x8000 and answers else 1)
"""

#: Runs ``argv`` in the named node and returns its exit code (the caller's way into Docker).
NodeExec = Callable[[str, Sequence[str]], Awaitable[int]]


async def bootstrap(credentials: Credentials, cluster: ClusterConfig, node_names: Sequence[str],
                    node_image: str, exec_in_node: NodeExec, progress: Progress,
                    addons: Sequence[str] = ("kube-dns",), ingress_image: str = DEFAULT_INGRESS_IMAGE,
                    api_answers: Callable[[], Awaitable[None]] | None = None) -> None:
    """Wait for the API server, install ``addons`` while the nodes come up, wait for cluster DNS.

    ``api_answers`` runs (beside the first add-on's install) once the API server answers.

    Cluster DNS goes in as soon as the API server answers (as kubeadm applies CoreDNS right
    after the control plane): its pods wait in the scheduler for the nodes, so the replicas
    start the moment their node registers instead of after every node is Ready. The other
    add-ons follow once cluster DNS answers on every node.
    """
    first = [a for a in addons if a == DNS_SERVICE]
    later = [a for a in addons if a != DNS_SERVICE]
    async with APIClient(credentials) as api:
        await _wait_for_api(api, credentials.server)
        progress.start(f"Installing cluster add-ons ({', '.join(first)}) 🔎")
        await asyncio.gather(install_addons(api, cluster, node_image, first, ingress_image),
                             *([api_answers()] if api_answers else []))
        progress.start(f"Waiting for {len(node_names)} node(s) to be Ready ⏳")
        await _wait_for_nodes(api, node_names, progress)
        progress.start(f"Waiting for cluster DNS ({cluster.dns_service_ip}) to answer on every node 📡")
        await _wait_for_dns_endpoints(api, progress)
        await _wait_for_dns(cluster, node_names, exec_in_node, progress)
        # the other add-ons' pods (the ingress controller's Python and nginx, the storage
        # provisioner) would take the two cores from the DNS replicas' start and from every
        # node's proxy sync: they go in once cluster DNS answers on every node (before `up`
        # returns, as before; `up` never waited for them to be Ready)
        if later:
            progress.start(f"Installing cluster add-ons ({', '.join(later)}) 🔎")
            await install_addons(api, cluster, node_image, later, ingress_image)


async def install_addons(api: APIClient, cluster: ClusterConfig, node_image: str,
                         addons: Sequence[str] = ("kube-dns",), ingress_image: str = DEFAULT_INGRESS_IMAGE) -> None:
    """Create the add-ons' objects (as kubeadm installs CoreDNS); existing ones are kept."""
    registry = Registry()
    for name in addons:
        for obj in load_addon(name, cluster, node_image, ingress_image):
            rt = registry.by_kind(obj["apiVersion"], obj["kind"])
            if rt is None:
                raise LabctlError(f"add-on {name!r} has a {obj['kind']} the API server does not serve")
            namespace = obj["metadata"].get("namespace", "default") if rt.namespaced else None
            try:
                await api.create(resource_path(rt.plural, namespace), obj)
            except APIStatusError as err:
                if err.code != 409:
                    raise LabctlError(f"failed to install add-on {name!r} ({obj['kind']} "
                                      f"{obj['metadata']['name']}): {err}") from None


async def _wait_for_api(api: APIClient, server: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not await api.healthy():
        if time.monotonic() > deadline:
            raise LabctlError(f"the API server did not answer on {server} within {READY_TIMEOUT:.0f}s",
                              hint="see `labctl logs control-plane` (or rerun with --retain and inspect the node)")
        await asyncio.sleep(POLL_SECONDS)


async def _wait_for_nodes(api: APIClient, names: Sequence[str], progress: Progress) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    ready: set[str] = set()
    while time.monotonic() < deadline:
        try:
            nodes = (await api.get(resource_path("nodes")))["items"]
        except (TimeoutError, APIStatusError, OSError):
            nodes = []
        ready = {n["metadata"]["name"] for n in nodes if node_is_ready(n)}
        progress.update(f"{len(ready & set(names))}/{len(names)} Ready")
        if set(names) <= ready:
            return
        await asyncio.sleep(POLL_SECONDS)
    missing = ", ".join(sorted(set(names) - ready))
    raise LabctlError(f"node(s) {missing} did not become Ready within {READY_TIMEOUT:.0f}s",
                      hint="see `labctl logs NODE` for the node agent's log")


async def _wait_for_dns_endpoints(api: APIClient, progress: Progress) -> None:
    """Until the kube-dns Service has a ready endpoint, through the API (one cheap GET a poll):
    before that no node can get an answer, and a Python process per node and poll would only
    take CPU from the DNS replicas that are starting."""
    path = resource_path("endpointslices", "kube-system")
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            slices = (await api.get(path, labelSelector=f"kubernetes.io/service-name={DNS_SERVICE}"))["items"]
        except (TimeoutError, APIStatusError, OSError):
            slices = []
        ready = [e for s in slices for e in s.get("endpoints") or [] if (e.get("conditions") or {}).get("ready")]
        if ready:
            return
        progress.update("waiting for a kube-dns replica to be Ready")
        await asyncio.sleep(POLL_SECONDS)
    raise LabctlError(f"no kube-dns replica became Ready within {READY_TIMEOUT:.0f}s",
                      hint="see `kubectl -n kube-system get pods -l k8s-app=kube-dns` and "
                           "`kubectl -n kube-system logs deploy/kube-dns`")


async def _wait_for_dns(cluster: ClusterConfig, node_names: Sequence[str], exec_in_node: NodeExec,
                        progress: Progress) -> None:
    name = f"kubernetes.default.svc.{cluster.cluster_domain}"
    argv = ["python3", "-I", "-S", "-c", DNS_PROBE, name, cluster.dns_service_ip]
    deadline = time.monotonic() + READY_TIMEOUT
    answered: set[str] = set()

    async def probe(node: str) -> None:
        while node not in answered:
            if await exec_in_node(node, argv) == 0:
                answered.add(node)
                progress.update(f"{len(answered)}/{len(node_names)} nodes resolve {name}")
            elif time.monotonic() > deadline:
                raise LabctlError(f"cluster DNS ({cluster.dns_service_ip}) did not answer on node {node!r} "
                                  f"within {READY_TIMEOUT:.0f}s",
                                  hint="see `kubectl -n kube-system get pods -l k8s-app=kube-dns` and "
                                       "`kubectl -n kube-system logs deploy/kube-dns`")
            else:
                await asyncio.sleep(POLL_SECONDS)

    await asyncio.gather(*(probe(n) for n in node_names))
