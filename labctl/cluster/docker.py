"""The Docker side of a lab: nodes, the lab network, the state volume, found by label.

Everything here talks to the Docker engine through the Docker SDK; what to create was
decided in ``plan.py``.
"""

from __future__ import annotations

import io
import ipaddress
import tarfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import docker
import docker.errors

from ..errors import LabctlError
from .constants import AUTO_SUBNET_POOL, CLUSTER_LABEL, NODE_LABEL, ROLE_LABEL
from .plan import ClusterPlan, NodePlan, container_spec, network_labels, volume_labels


def connect() -> docker.DockerClient:
    """A Docker client, or a one-line error saying how to start the engine."""
    try:
        client = docker.from_env(timeout=120)
        client.ping()
        return client
    except docker.errors.DockerException as err:
        raise LabctlError(f"cannot reach the Docker engine: {_short(err)}",
                          hint="start it with `sudo scripts/ensure-docker.sh` (or `sudo systemctl start docker`)") from None


def _short(err: Exception) -> str:
    text = str(err)
    return text.split("(Caused by")[0].strip()[:200]


@dataclass(frozen=True)
class NodeContainer:
    """A node as Docker sees it."""

    cluster: str
    name: str
    role: str
    container: str
    status: str
    ip: str


def _containers(client: docker.DockerClient, labels: list[str]) -> list[dict]:
    """Containers by label from one list call (no per-container inspect that could race a removal)."""
    return client.api.containers(all=True, filters={"label": labels})


def list_clusters(client: docker.DockerClient) -> list[str]:
    names = {c["Labels"].get(CLUSTER_LABEL) for c in _containers(client, [CLUSTER_LABEL, NODE_LABEL])}
    return sorted(n for n in names if n)


def list_nodes(client: docker.DockerClient, cluster: str) -> list[NodeContainer]:
    out = []
    for c in _containers(client, [f"{CLUSTER_LABEL}={cluster}", NODE_LABEL]):
        nets = (c.get("NetworkSettings") or {}).get("Networks") or {}
        ip = next((n.get("IPAddress") for n in nets.values() if n.get("IPAddress")), "")
        labels = c["Labels"]
        out.append(NodeContainer(cluster, labels[NODE_LABEL], labels.get(ROLE_LABEL, ""), c["Names"][0].lstrip("/"),
                                 c.get("State", ""), ip))
    order = {"control-plane": 0, "worker": 1}
    return sorted(out, key=lambda n: (order.get(n.role, 2), _natural(n.name)))


def _natural(name: str) -> tuple:
    digits = "".join(ch for ch in name if ch.isdigit())
    return (name.rstrip("0123456789"), int(digits) if digits else 0)


def used_subnets(client: docker.DockerClient) -> list[ipaddress.IPv4Network]:
    out = []
    for net in client.networks.list():
        for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
            if cfg.get("Subnet") and ":" not in cfg["Subnet"]:
                out.append(ipaddress.ip_network(cfg["Subnet"], strict=False))
    return out


def pick_subnet(client: docker.DockerClient, pool: str = AUTO_SUBNET_POOL) -> str:
    """The first /24 of the pool that no Docker network (or host route) overlaps."""
    taken = used_subnets(client)
    for candidate in ipaddress.ip_network(pool).subnets(new_prefix=24):
        if not any(candidate.overlaps(t) for t in taken):
            return str(candidate)
    raise LabctlError(f"no free /24 left in {pool} for the lab network",
                      hint="remove unused Docker networks (`docker network prune`) or set networking.labSubnet")


def create_network(client: docker.DockerClient, plan: ClusterPlan) -> None:
    ipam = docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet=plan.subnet, gateway=plan.gateway)])
    try:
        client.networks.create(plan.network, driver="bridge", ipam=ipam, labels=network_labels(plan),
                               options={"com.docker.network.bridge.name": f"lab-{plan.name}"[:15]})
    except docker.errors.APIError as err:
        raise LabctlError(f"failed to create the lab network {plan.network!r} ({plan.subnet}): {err.explanation}",
                          hint="choose another networking.labSubnet in the topology") from None


def create_state_volume(client: docker.DockerClient, plan: ClusterPlan) -> None:
    client.volumes.create(plan.state_volume, labels=volume_labels(plan))


def create_node(client: docker.DockerClient, plan: ClusterPlan, node: NodePlan, files: dict[str, bytes]) -> str:
    """Create (not start) a node container and copy its configuration files in."""
    spec = container_spec(plan, node)
    api = client.api
    host_config = api.create_host_config(
        binds=spec["binds"], port_bindings={k: v for k, v in spec["ports"].items()},
        cap_add=spec["cap_add"], security_opt=spec["security_opt"], sysctls=spec["sysctls"],
        restart_policy=spec["restart_policy"], tmpfs=spec["tmpfs"], init=False)
    networking = api.create_networking_config({plan.network: api.create_endpoint_config(ipv4_address=spec["ip"])})
    created = api.create_container(
        spec["image"], command=spec["command"], name=spec["name"], hostname=spec["hostname"],
        labels=spec["labels"], environment=spec["environment"], host_config=host_config,
        networking_config=networking, ports=[tuple(p.split("/")) if "/" in p else p for p in spec["ports"]],
        detach=True)
    api.put_archive(created["Id"], "/", tar_of(files))
    return created["Id"]


def tar_of(files: dict[str, bytes]) -> bytes:
    """A tar archive of ``{absolute path: content}`` (mode 0600 for keys, 0644 otherwise)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(content)
            info.mode = 0o600 if path.endswith(".key") else 0o644
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


def exec_exit_code(client: docker.DockerClient, container: str, argv: Sequence[str]) -> int:
    """Run ``argv`` in a running container, wait for it, and return its exit code (output discarded)."""
    try:
        exec_id = client.api.exec_create(container, list(argv))["Id"]
        client.api.exec_start(exec_id)  # returns once the command's output streams close
        result = client.api.exec_inspect(exec_id)
        return -1 if result["Running"] or result["ExitCode"] is None else int(result["ExitCode"])
    except docker.errors.APIError as err:
        raise LabctlError(f"failed to run {argv[0]!r} in {container}: {err.explanation}") from None


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
    """Remove every Docker object labelled with the cluster; returns error texts (keeps going)."""
    problems: list[str] = []
    containers = _containers(client, [f"{CLUSTER_LABEL}={cluster}"])
    nodes = [c for c in containers if c["Labels"].get(NODE_LABEL)]
    # stop the nodes first: a live kubelet would re-create the pod sandboxes we remove
    for c in nodes:
        if c.get("State") == "running":
            _try(problems, f"stop node {_name(c)}", lambda c=c: client.api.kill(c["Id"]))
    pods = [c for c in _containers(client, [f"{CLUSTER_LABEL}={cluster}"]) if not c["Labels"].get(NODE_LABEL)]
    for c in pods + nodes:
        _try(problems, f"remove container {_name(c)}",
             lambda c=c: client.api.remove_container(c["Id"], force=True, v=True))
    for net in client.networks.list(filters={"label": f"{CLUSTER_LABEL}={cluster}"}):
        _try(problems, f"remove network {net.name}", net.remove)
    for vol in client.volumes.list(filters={"label": f"{CLUSTER_LABEL}={cluster}"}):
        _try(problems, f"remove volume {vol.name}", lambda v=vol: v.remove(force=True))
    return problems


def _name(container: dict) -> str:
    return container["Names"][0].lstrip("/")


def _try(problems: list[str], what: str, fn: Any) -> None:
    try:
        fn()
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as err:
        problems.append(f"failed to {what}: {err.explanation}")
