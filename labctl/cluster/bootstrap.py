"""The last part of ``labctl up``: from started node containers to a lab a student can use.

Through labctl's one API client, as kubeadm's phases do it: wait for the API server, install
cluster DNS (one replica first), wait for every Node to be Ready and for a DNS replica to be Ready, wait until
**cluster DNS answers on every node** through the kube-dns Service (the node's query passes
the same KUBE-SERVICES rules as a pod's, written by the same ``iptables-restore``;
docs/benchmarks.md says what a pod's query adds), then scale kube-dns to its manifest's
replicas and install the other add-ons. Only then
does ``up`` say the lab is ready: a student who types ``kubectl run … nslookup`` the moment
it returns gets an answer, not ``connection refused`` from a Service whose endpoints are
still empty.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import aiohttp

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
#: through the same KUBE-SERVICES rules a pod's query passes, again every 0.1 s until an answer
#: with records comes (exit 0) or ``argv[3]`` seconds pass (exit 1). One process per node for the
#: whole wait, started once a replica is Ready: a ``docker exec`` of a new process per try cost
#: the node's proxy sync and the DNS replicas CPU, and its start latency on every retry. Run as
#: ``python3 -I -S`` with the query packed by hand (site's imports and dnslib cost more CPU than
#: the queries; dig would do, but waits at least a second per try). The socket is unconnected,
#: so the REJECT of a Service without endpoints is no answer rather than an error, and a send
#: the node's rules refuse is tried again; SERVFAIL from a replica whose caches are not listed
#: yet is no answer either.
DNS_PROBE = """
import select, socket, struct, sys, time
query = struct.pack("!6H", 0x6c61, 0x0100, 1, 0, 0, 0) + b"".join(
    bytes([len(label)]) + label.encode() for label in sys.argv[1].split(".")) + b"\\0" + struct.pack("!2H", 1, 1)
deadline = time.monotonic() + float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while time.monotonic() < deadline:
    retry = time.monotonic() + 0.1
    try:
        s.sendto(query, (sys.argv[2], 53))
        while select.select([s], [], [], max(0.0, retry - time.monotonic()))[0]:
            ident, flags, _, answers = struct.unpack("!4H", s.recv(4096)[:8].ljust(8, b"\\0"))
            if ident == 0x6c61 and flags & 0x800F == 0x8000 and answers:
                sys.exit(0)
    except OSError:  # refused or dropped on the way out: the node's rules are not there yet
        time.sleep(max(0.0, retry - time.monotonic()))
sys.exit(1)
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
    start the moment their node registers instead of after every node is Ready. Its
    Deployment is created with one replica and scaled to the manifest's count (kubeadm's
    two) once cluster DNS answers on every node: two DNS servers importing at once on two
    cores made the first one Ready later, and one replica is all an answer needs. The other
    add-ons follow at the same moment.
    """
    first = [a for a in addons if a == DNS_SERVICE]
    later = [a for a in addons if a != DNS_SERVICE]
    async with APIClient(credentials) as api:
        await _wait_for_api(api, credentials.server)
        progress.start(f"Installing cluster add-ons ({', '.join(first)}) 🔎")
        installed = asyncio.ensure_future(install_addons(api, cluster, node_image, first, ingress_image,
                                                         first_replica_only=True))
        await asyncio.gather(installed, *([api_answers()] if api_answers else []))
        replicas = installed.result()
        progress.start(f"Waiting for {len(node_names)} node(s) to be Ready ⏳")
        await _wait_for_nodes(api, node_names, progress)
        progress.start(f"Waiting for cluster DNS ({cluster.dns_service_ip}) to answer on every node 📡")
        deadline = time.monotonic() + READY_TIMEOUT
        await _wait_for_dns_endpoints(api, progress, deadline)
        await _wait_for_dns(cluster, node_names, exec_in_node, progress, deadline)
        # the other add-ons' pods (the ingress controller's Python and nginx, the storage
        # provisioner) and kube-dns's other replicas would take the two cores from the first
        # DNS replica's start and from every node's proxy sync: they go in once cluster DNS
        # answers on every node (before `up` returns, as before; `up` never waited for them
        # to be Ready)
        if later or replicas:
            what = [*later, *(f"{name} replicas" for _, name in replicas)]
            progress.start(f"Installing cluster add-ons ({', '.join(what)}) 🔎")
            # each add-on's objects in their order (a namespace before what is in it), the
            # add-ons and the scales side by side: `up` waits for these writes
            await asyncio.gather(*(_scale(api, namespace, name, count) for (namespace, name), count in replicas.items()),
                                 *(install_addons(api, cluster, node_image, [a], ingress_image) for a in later))


async def _scale(api: APIClient, namespace: str, name: str, replicas: int) -> None:
    """``kubectl scale deployment``: through the scale subresource."""
    try:
        await api.patch(resource_path("deployments", namespace, name, "scale"), {"spec": {"replicas": replicas}})
    except APIStatusError as err:
        raise LabctlError(f"failed to scale Deployment {namespace}/{name} to {replicas}: {err}") from None


async def install_addons(api: APIClient, cluster: ClusterConfig, node_image: str,
                         addons: Sequence[str] = ("kube-dns",), ingress_image: str = DEFAULT_INGRESS_IMAGE,
                         first_replica_only: bool = False) -> dict[tuple[str, str], int]:
    """Create the add-ons' objects (as kubeadm installs CoreDNS); existing ones are kept.

    With ``first_replica_only`` each Deployment is created with one replica; the answer maps
    those Deployments (namespace, name) to the replicas their manifest asks for, to scale to.
    """
    registry = Registry()
    later: dict[tuple[str, str], int] = {}
    for name in addons:
        for obj in load_addon(name, cluster, node_image, ingress_image):
            rt = registry.by_kind(obj["apiVersion"], obj["kind"])
            if rt is None:
                raise LabctlError(f"add-on {name!r} has a {obj['kind']} the API server does not serve")
            namespace = obj["metadata"].get("namespace", "default") if rt.namespaced else None
            wanted = obj.get("spec", {}).get("replicas", 1) if obj["kind"] == "Deployment" else 1
            if first_replica_only and wanted > 1:
                obj["spec"]["replicas"] = 1
            try:
                await api.create(resource_path(rt.plural, namespace), obj)
                if first_replica_only and wanted > 1:
                    later[(namespace or "default", obj["metadata"]["name"])] = wanted
            except APIStatusError as err:
                if err.code != 409:
                    raise LabctlError(f"failed to install add-on {name!r} ({obj['kind']} "
                                      f"{obj['metadata']['name']}): {err}") from None
    return later


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


async def _wait_for_dns_endpoints(api: APIClient, progress: Progress, deadline: float) -> None:
    """Until the kube-dns Service has a ready endpoint, through the API: a list, then a watch of
    its EndpointSlices (the moment the EndpointSlice controller writes one, where a poll added
    up to its period and a request per period to the API server's load). Before that no node
    can get an answer, and a probe process per node would only take CPU from the DNS replica
    that is starting."""
    path = resource_path("endpointslices", "kube-system")
    selector = f"kubernetes.io/service-name={DNS_SERVICE}"

    def ready(endpoint_slice: dict) -> bool:
        return any((e.get("conditions") or {}).get("ready") for e in endpoint_slice.get("endpoints") or [])

    progress.update("waiting for a kube-dns replica to be Ready")
    while time.monotonic() < deadline:
        try:
            listed = await api.get(path, labelSelector=selector)
            if any(ready(s) for s in listed["items"]):
                return
            async for event in api.watch(path, listed["metadata"]["resourceVersion"], labelSelector=selector,
                                         timeout_seconds=max(1, int(deadline - time.monotonic()))):
                if event["type"] in ("ADDED", "MODIFIED") and ready(event["object"]):
                    return
        except (TimeoutError, APIStatusError, OSError, aiohttp.ClientError):
            await asyncio.sleep(POLL_SECONDS)  # then list again, as a reflector does
    raise LabctlError(f"no kube-dns replica became Ready within {READY_TIMEOUT:.0f}s",
                      hint="see `kubectl -n kube-system get pods -l k8s-app=kube-dns` and "
                           "`kubectl -n kube-system logs deploy/kube-dns`")


async def _wait_for_dns(cluster: ClusterConfig, node_names: Sequence[str], exec_in_node: NodeExec,
                        progress: Progress, deadline: float) -> None:
    """Until cluster DNS answers on every node: one probe process per node, retrying inside."""
    name = f"kubernetes.default.svc.{cluster.cluster_domain}"
    answered: set[str] = set()

    async def probe(node: str) -> None:
        while True:
            seconds = f"{max(0.0, deadline - time.monotonic()):.1f}"
            if not await exec_in_node(node, ["python3", "-I", "-S", "-c", DNS_PROBE, name, cluster.dns_service_ip,
                                             seconds]):
                break
            if time.monotonic() < deadline:  # the probe itself failed: start it again
                await asyncio.sleep(POLL_SECONDS)
                continue
            raise LabctlError(f"cluster DNS ({cluster.dns_service_ip}) did not answer on node {node!r} "
                              f"within {READY_TIMEOUT:.0f}s",
                              hint="see `kubectl -n kube-system get pods -l k8s-app=kube-dns` and "
                                   "`kubectl -n kube-system logs deploy/kube-dns`")
        answered.add(node)
        progress.update(f"{len(answered)}/{len(node_names)} nodes resolve {name}")

    await asyncio.gather(*(probe(n) for n in node_names))
