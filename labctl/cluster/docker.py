"""The Docker side of a lab: nodes, the lab network, the state volume, found by label.

Everything here takes the lab's one Docker SDK client (:func:`labctl.engine.sdk.connect`);
what to create was decided in ``plan.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import docker
import docker.errors

from ..engine.sdk import tar_of
from ..errors import LabctlError
from ..kube.containers import CLUSTER_LABEL
from .constants import API_SERVER_CONTAINER_PORT, NODE_LABEL, ROLE_LABEL

if TYPE_CHECKING:  # the plan (and the topology, the add-ons under it) is `up`'s: `down`, `status` and
    # `kubeconfig` find a lab by its labels alone and do not load them (docs/benchmarks.md)
    from .plan import ClusterPlan, NodePlan

#: Docker calls ``remove_cluster`` makes at once (the SDK's connection pool holds 10)
REMOVE_WORKERS = 10
#: lists and removals of a lab's containers at most (:func:`remove_cluster`)
REMOVE_SWEEPS = 3


@dataclass(frozen=True)
class NodeInfo:
    """A node of a lab as Docker sees it: its InternalIP is its address on the lab network."""

    name: str          # as Kubernetes names it: control-plane, worker, worker2
    role: str          # control-plane | worker
    container: str     # <lab>-<name>
    internal_ip: str   # "" while the container is not running
    state: str         # Docker's: created | running | exited | …


def _containers(client: docker.DockerClient, labels: list[str]) -> list[dict]:
    """Containers by label from one list call (no per-container inspect that could race a removal)."""
    return client.api.containers(all=True, filters={"label": labels})


def list_clusters(client: docker.DockerClient) -> list[str]:
    names = {c["Labels"].get(CLUSTER_LABEL) for c in _containers(client, [CLUSTER_LABEL, NODE_LABEL])}
    return sorted(n for n in names if n)


def list_nodes(client: docker.DockerClient, cluster: str) -> list[NodeInfo]:
    """The lab's nodes, control plane first, then workers in name order (worker, worker2, …, worker10)."""
    out = []
    for c in _containers(client, [f"{CLUSTER_LABEL}={cluster}", NODE_LABEL]):
        nets = (c.get("NetworkSettings") or {}).get("Networks") or {}
        ip = next((n.get("IPAddress") for n in nets.values() if n.get("IPAddress")), "")
        labels = c["Labels"]
        out.append(NodeInfo(name=labels[NODE_LABEL], role=labels.get(ROLE_LABEL, ""), container=_name(c),
                            internal_ip=ip, state=c.get("State", "")))
    order = {"control-plane": 0, "worker": 1}
    return sorted(out, key=lambda n: (order.get(n.role, 2), _natural(n.name)))


def _natural(name: str) -> tuple:
    digits = "".join(ch for ch in name if ch.isdigit())
    return (name.rstrip("0123456789"), int(digits) if digits else 0)


def docker_networks(client: docker.DockerClient) -> dict[str, str]:
    """``{subnet: network name}`` of every IPv4 subnet of every Docker network (what a lab must not overlap)."""
    return {cfg["Subnet"]: net["Name"] for net in client.api.networks()
            for cfg in (net.get("IPAM") or {}).get("Config") or [] if "." in cfg.get("Subnet", "")}


def api_server_url(client: docker.DockerClient, control_plane: str) -> str | None:
    """``https://127.0.0.1:<port>``: where the control-plane container publishes its API server."""
    try:
        attrs = client.api.inspect_container(control_plane)
    except docker.errors.NotFound:
        return None
    port = f"{API_SERVER_CONTAINER_PORT}/tcp"
    # a stopped container has no live bindings, only the configured ones
    bindings = ((attrs["NetworkSettings"].get("Ports") or {}).get(port)
                or (attrs["HostConfig"].get("PortBindings") or {}).get(port) or [])
    if not bindings or not bindings[0].get("HostPort"):
        return None
    host = bindings[0].get("HostIp") or "127.0.0.1"
    return f"https://{'127.0.0.1' if host == '0.0.0.0' else host}:{bindings[0]['HostPort']}"


def create_network(client: docker.DockerClient, plan: ClusterPlan) -> None:
    from .plan import network_labels

    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=plan.subnet, gateway=plan.gateway)])
    try:
        client.networks.create(plan.network, driver="bridge", ipam=ipam, labels=network_labels(plan),
                               options={"com.docker.network.bridge.name": plan.bridge})
    except docker.errors.APIError as err:
        raise LabctlError(f"failed to create the lab network {plan.network!r} ({plan.subnet}): {err.explanation}",
                          hint="choose another networking.labSubnet in the topology") from None


def create_state_volume(client: docker.DockerClient, plan: ClusterPlan) -> None:
    from .plan import volume_labels

    client.volumes.create(plan.state_volume, labels=volume_labels(plan))


def create_node(client: docker.DockerClient, plan: ClusterPlan, node: NodePlan, files: dict[str, bytes]) -> str:
    """Create (not start) a node container and copy its configuration files in."""
    from .plan import container_spec

    spec = container_spec(plan, node)
    api = client.api
    host_config = api.create_host_config(
        binds=spec["binds"], port_bindings={k: v for k, v in spec["ports"].items()},
        cap_add=spec["cap_add"], security_opt=spec["security_opt"], sysctls=spec["sysctls"], ipc_mode=spec["ipc_mode"],
        restart_policy=spec["restart_policy"], tmpfs=spec["tmpfs"], init=False, mem_limit=spec["mem_limit"],
        memswap_limit=spec["memswap_limit"], pids_limit=spec["pids_limit"], cpu_shares=spec["cpu_shares"])
    endpoints = {plan.network: api.create_endpoint_config(ipv4_address=spec["ip"])}
    networking = api.create_networking_config(endpoints)  # type: ignore[arg-type]  # types-docker says one endpoint
    created = api.create_container(
        spec["image"], command=spec["command"], name=spec["name"], hostname=spec["hostname"],
        labels=spec["labels"], environment=spec["environment"], host_config=host_config,
        networking_config=networking, ports=[tuple(p.split("/")) if "/" in p else p for p in spec["ports"]],
        detach=True)
    api.put_archive(created["Id"], "/", tar_of(files))
    return created["Id"]


def start(client: docker.DockerClient, container_ids: Iterable[str]) -> None:
    """Start the nodes together: each start is mostly the engine's waiting, not ours."""
    def start_one(cid: str) -> None:
        try:
            client.api.start(cid)
        except docker.errors.APIError as err:
            raise LabctlError(f"failed to start node container: {err.explanation}",
                              hint=_port_hint(str(err.explanation))) from None

    ids = list(container_ids)
    with ThreadPoolExecutor(max_workers=max(len(ids), 1)) as pool:
        for future in [pool.submit(start_one, cid) for cid in ids]:
            future.result()


def _port_hint(text: str) -> str | None:
    if "address already in use" in text or "port is already allocated" in text:
        return "a host port of the topology is taken: free it, or change networking.apiServerPort / portMappings"
    return None


def remove_cluster(client: docker.DockerClient, cluster: str) -> list[str]:
    """Remove every Docker object labelled with the cluster; returns error texts (keeps going).

    Each step's calls run at once (:data:`REMOVE_WORKERS`): a kill or a removal is mostly
    the engine waiting on the kernel (cgroups, netns, veths), so one after the other
    would make ``labctl down`` as slow as the sum of them.
    """
    problems: list[str] = []
    containers = _containers(client, [f"{CLUSTER_LABEL}={cluster}"])
    nodes = [c for c in containers if c["Labels"].get(NODE_LABEL)]
    # stop the nodes first: a live kubelet would re-create the pod sandboxes we remove
    _all_at_once(problems, [(f"stop node {_name(c)}", partial(client.api.kill, c["Id"]))
                            for c in nodes if c.get("State") == "running"])
    # then every container of the lab; again while any is left: a kubelet's create or start that
    # the engine was already serving when its node died still lands, after the first list
    for _sweep in range(REMOVE_SWEEPS):
        left = _containers(client, [f"{CLUSTER_LABEL}={cluster}"])
        if not left:
            break
        failed: list[str] = []
        _all_at_once(failed, [(f"remove container {_name(c)}",
                               partial(client.api.remove_container, c["Id"], force=True, v=True)) for c in left])
        problems.extend(p for p in failed if p not in problems)
    label = {"label": f"{CLUSTER_LABEL}={cluster}"}
    _all_at_once(problems, [(f"remove network {n['Name']}", partial(client.api.remove_network, n["Id"]))
                            for n in client.api.networks(filters=label)]
                 + [(f"remove volume {v['Name']}", partial(client.api.remove_volume, v["Name"], force=True))
                    for v in client.api.volumes(filters=label).get("Volumes") or []])
    return problems


def _all_at_once(problems: list[str], calls: Sequence[tuple[str, Callable[[], Any]]]) -> None:
    """Run ``(what, call)`` pairs together, collecting their errors in ``problems`` (in order)."""
    if not calls:
        return
    with ThreadPoolExecutor(max_workers=min(len(calls), REMOVE_WORKERS)) as pool:
        problems.extend(p for p in pool.map(lambda call: _try(*call), calls) if p)


def leftovers(client: docker.DockerClient, cluster: str) -> list[str]:
    """Everything labelled with the cluster: ``["container lab-worker", "network labctl-lab", …]``."""
    label = {"label": f"{CLUSTER_LABEL}={cluster}"}
    return ([f"container {_name(c)}" for c in _containers(client, [f"{CLUSTER_LABEL}={cluster}"])]
            + [f"network {n['Name']}" for n in client.api.networks(filters=label)]
            + [f"volume {v['Name']}" for v in client.api.volumes(filters=label).get("Volumes") or []])


def _name(container: dict) -> str:
    return container["Names"][0].lstrip("/")


def _try(what: str, fn: Callable[[], Any]) -> str | None:
    """Call ``fn``; its failure as text (gone already is no failure)."""
    try:
        fn()
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as err:
        return f"failed to {what}: {err.explanation}"
    return None
