"""Pods as Docker containers, the dockershim way: a pause sandbox plus app containers.

The sandbox (``labctl/pause``, ``network_mode: none``) owns the pod's network namespace,
which the CNI plugin wires; app containers join it with ``network_mode:
container:<sandbox>`` (and its IPC namespace), so every container of a pod shares one IP.
Names and labels follow dockershim (``k8s_POD_web_default_<uid>_0``,
``io.kubernetes.pod.name``…) so ``docker ps`` reads like a Kubernetes node, and Docker
labels are the kubelet's memory: after an agent restart it finds its pods by label.

A ``hostNetwork`` pod's app containers join the *node container's* network namespace
(``network_mode: container:<node>``), never the real host's: they see ``cni0``, the
veths and the node's IP, and no CNI plugin runs for them. Its sandbox still holds the
pod's IPC namespace. Every pod's ``/etc/hosts`` and ``resolv.conf`` are kubelet files on the
node, bind-mounted into its containers (:mod:`.podfiles`).

The builders here are pure (unit-tested); :class:`Runtime` is the blocking Docker side,
which the pod workers call from a thread pool.
"""

from __future__ import annotations

import io
import re
import tarfile
from dataclasses import dataclass, field
from typing import Any

import docker
import docker.errors

from ...clusterconfig import ClusterConfig
from ...kube import containers as c
from ...kube.meta import parse_time
from ...kube.quantity import milli_value, value
from .etchosts import pod_hostname
from .noderoot import NodeRoot, node_debugger_namespaces
from .security import docker_user, effective_security, host_config_options

PAUSE_IMAGE = "labctl/pause:latest"
SANDBOX = "POD"  # CONTAINER_NAME_LABEL value of sandboxes, as dockershim
CPU_PERIOD_US = 100_000  # the kernel's CFS period the kubelet uses
MIN_CPU_SHARES = 2


@dataclass(frozen=True)
class PodRef:
    """The identity of a pod on this node: enough to name and label its containers."""

    namespace: str
    name: str
    uid: str

    @classmethod
    def of(cls, pod: dict) -> PodRef:
        meta = pod["metadata"]
        return cls(meta.get("namespace", "default"), meta["name"], meta["uid"])

    def describe(self) -> str:
        return f"{self.name}_{self.namespace}({self.uid})"


@dataclass
class ContainerRecord:
    """One Docker container of a pod (an instance: restarts make new ones), from inspect."""

    id: str
    name: str          # Kubernetes container name, or "POD"
    attempt: int
    running: bool
    exit_code: int = 0
    oom_killed: bool = False
    started_at: str = ""
    finished_at: str = ""
    image_id: str = ""
    netns: str = ""    # NetworkSettings.SandboxKey (sandboxes)
    host_network: bool = False  # a hostNetwork pod's sandbox (c.HOST_NETWORK_LABEL)
    error: str = ""
    finished_epoch: float = 0.0  # FinishedAt with sub-second precision, for back-off arithmetic
    spec_image: str = ""  # the spec's image when it was made (c.CONTAINER_SPEC_IMAGE_LABEL); '' if unknown
    termination_message: str = ""  # what it wrote to its terminationMessagePath (read by the pod worker)
    start_error: bool = False  # Docker could not start it: exited as containerd's StartError (record_from_inspect)

    @property
    def exited(self) -> bool:
        return not self.running and bool(self.finished_at)


@dataclass
class CreateSpec:
    """Arguments of Docker's create call, split as the low-level API takes them."""

    name: str
    image: str
    labels: dict[str, str]
    host_config: dict[str, Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: Engine API container-config keys docker-py's create call cannot set (``StdinOnce``)
    config: dict[str, Any] = field(default_factory=dict)


def docker_time(text: str) -> str:
    """Docker's ``2026-11-30T10:00:00.123456789Z`` → Kubernetes' ``2026-11-30T10:00:00Z``."""
    if not text or text.startswith("0001-"):
        return ""
    return text.split(".")[0].rstrip("Z") + "Z"


def docker_epoch(text: str) -> float:
    """Seconds since the epoch of a Docker timestamp (nanoseconds trimmed); 0 for "never"."""
    if not text or text.startswith("0001-"):
        return 0.0
    when = parse_time(text)
    return when.timestamp() if when else 0.0


#: the exit code containerd's CRI gives a container it could not start (``errorStartExitCode``)
START_ERROR_EXIT_CODE = 128


def record_from_inspect(info: dict) -> ContainerRecord:
    """A container instance as the kubelet sees it.

    A container Docker could not start (``docker start`` failed: the command is not in the
    image...) stays "created", with the daemon's error and no FinishedAt, forever. Under
    containerd, what a real kubelet runs on, it is exited with reason ``StartError`` and exit code
    128 at the time of the failure, so the kubelet restarts it as it restarts a crash: in the
    restart back-off (``CrashLoopBackOff``), with ``restartCount`` growing. It is recorded so here,
    its finish being its creation (the start is tried at once after it).
    """
    labels = info["Config"].get("Labels") or {}
    state = info.get("State") or {}
    start_error = state.get("Status") == "created" and bool(state.get("Error"))
    if start_error:
        state = {**state, "ExitCode": START_ERROR_EXIT_CODE, "FinishedAt": info.get("Created", "")}
    return ContainerRecord(
        id=info["Id"], name=labels.get(c.CONTAINER_NAME_LABEL, ""),
        attempt=int(labels.get(c.CONTAINER_ATTEMPT_LABEL, "0") or 0),
        running=bool(state.get("Running")) and not state.get("Restarting"),
        exit_code=int(state.get("ExitCode") or 0), oom_killed=bool(state.get("OOMKilled")),
        started_at=docker_time(state.get("StartedAt", "")), finished_at=docker_time(state.get("FinishedAt", "")),
        image_id=info.get("Image", ""), netns=(info.get("NetworkSettings") or {}).get("SandboxKey") or "",
        error=state.get("Error") or "", finished_epoch=docker_epoch(state.get("FinishedAt", "")),
        host_network=labels.get(c.HOST_NETWORK_LABEL) == "true", spec_image=labels.get(c.CONTAINER_SPEC_IMAGE_LABEL, ""),
        start_error=start_error)


def pod_labels(pod: PodRef, cluster: str, node_container: str, container: str, attempt: int) -> dict[str, str]:
    return {
        c.CLUSTER_LABEL: cluster, c.POD_NODE_LABEL: node_container,
        c.POD_NAME_LABEL: pod.name, c.POD_NAMESPACE_LABEL: pod.namespace, c.POD_UID_LABEL: pod.uid,
        c.CONTAINER_NAME_LABEL: container, c.CONTAINER_ATTEMPT_LABEL: str(attempt),
        c.CONTAINER_TYPE_LABEL: "podsandbox" if container == SANDBOX else "container",
    }


def docker_name(pod: PodRef, container: str, attempt: int) -> str:
    """dockershim's ``k8s_<container>_<pod>_<namespace>_<uid>_<attempt>``."""
    return f"k8s_{container}_{pod.name}_{pod.namespace}_{pod.uid}_{attempt}"


def host_network(pod: dict) -> bool:
    """``spec.hostNetwork``: the pod runs in its node container's network namespace."""
    return bool((pod.get("spec") or {}).get("hostNetwork"))


def build_sandbox(pod: dict, cluster: ClusterConfig, node_container: str, attempt: int = 0,
                  mounts: list[dict] | None = None) -> CreateSpec:
    """The pause container: hostname and network namespace of the pod (unused when hostNetwork),
    and its Memory emptyDirs.

    No DNS settings: Docker then writes the host's resolvers into the sandbox's resolv.conf
    (what ``dnsPolicy: Default`` builds on); the pod's containers mount the kubelet's files
    instead of the sandbox's (:mod:`.podfiles`).
    """
    ref = PodRef.of(pod)
    host_config: dict[str, Any] = {"network_mode": "none", "ipc_mode": "shareable"}
    if mounts:
        host_config["mounts"] = mounts
    labels = pod_labels(ref, cluster.name, node_container, SANDBOX, attempt)
    if host_network(pod):
        labels[c.HOST_NETWORK_LABEL] = "true"
    return CreateSpec(docker_name(ref, SANDBOX, attempt), PAUSE_IMAGE, labels, host_config,
                      {"hostname": pod_hostname(pod, cluster.cluster_domain)})


def resource_limits(container: dict, cluster: ClusterConfig) -> dict[str, Any]:
    """limits.memory → Memory, limits.cpu → CFS quota, requests.cpu → shares, as the kubelet sets;
    without limits.memory the lab's default (topology ``resources.pods``), and its pids limit always."""
    resources = container.get("resources") or {}
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    out: dict[str, Any] = {"pids_limit": cluster.pod_pids_limit}
    out["mem_limit"] = value(limits["memory"]) if "memory" in limits else cluster.pod_default_memory_limit
    if "cpu" in limits:
        out["cpu_period"] = CPU_PERIOD_US
        out["cpu_quota"] = max(1000, milli_value(limits["cpu"]) * CPU_PERIOD_US // 1000)
    cpu_request = requests.get("cpu", limits.get("cpu"))
    if cpu_request is not None:
        out["cpu_shares"] = max(MIN_CPU_SHARES, milli_value(cpu_request) * 1024 // 1000)
    return out


_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: known names are replaced, ``$$`` escapes, unknown stay."""
    def sub(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        return env.get(m.group(1), m.group(0))
    return _VAR_REF.sub(sub, text)


def build_container(pod: dict, container: dict, image: str, sandbox_id: str, attempt: int, cluster: ClusterConfig,
                    node_container: str, env: dict[str, str], *, pid_container: str = "",
                    mounts: list[dict] | None = None, image_user: str = "") -> CreateSpec:
    """An app container joined to the sandbox's network (the node's, if hostNetwork) and IPC namespaces,
    with its resolved ``env`` (:func:`~.envvars.container_env`), which ``$(VAR)`` in command and args
    may use, ``pid_container``'s PIDs when given (an ephemeral container's target), else the sandbox's
    with ``shareProcessNamespace`` (kube's pod-level PID namespace, whose PID 1 is the pause process), its
    ``mounts`` (volumes, :mod:`.volumes`, and the pod's hosts and resolv.conf, :mod:`.podfiles`)
    and securityContext (:mod:`.security`, which may raise its ConfigError).
    """
    ref = PodRef.of(pod)
    sec = effective_security(pod, container)
    kwargs: dict[str, Any] = {"environment": env}
    user = docker_user(sec, image_user)
    if user is not None:
        kwargs["user"] = user
    if container.get("command"):
        # command replaces ENTRYPOINT, and Docker then drops the image's CMD, as Kubernetes wants
        kwargs["entrypoint"] = [expand(str(a), env) for a in container["command"]]
    if container.get("args"):
        kwargs["command"] = [expand(str(a), env) for a in container["args"]]
    if container.get("workingDir"):
        kwargs["working_dir"] = container["workingDir"]
    if container.get("tty"):
        kwargs["tty"] = True
    host_config = {"network_mode": f"container:{sandbox_id}", "ipc_mode": f"container:{sandbox_id}",
                   **resource_limits(container, cluster),
                   **host_config_options(sec, ephemeral=any(e.get("name") == container["name"]
                                                            for e in pod["spec"].get("ephemeralContainers") or []))}
    if pid_container:
        host_config["pid_mode"] = f"container:{pid_container}"
    elif pod["spec"].get("shareProcessNamespace"):  # one PID namespace for the pod: the sandbox's
        host_config["pid_mode"] = f"container:{sandbox_id}"
    host_config.update(node_debugger_namespaces(pod, node_container))
    if host_network(pod):
        host_config["network_mode"] = f"container:{node_container}"  # the node's namespace, not the host's
    if mounts:
        host_config["mounts"] = mounts
    labels = pod_labels(ref, cluster.name, node_container, container["name"], attempt)
    labels[c.CONTAINER_SPEC_IMAGE_LABEL] = str(container.get("image") or "")
    return CreateSpec(docker_name(ref, container["name"], attempt), image, labels, host_config, kwargs,
                      stdin_config(container))


def stdin_config(container: dict) -> dict[str, Any]:
    """``stdin``/``stdinOnce`` as the Engine API's ``OpenStdin``/``StdinOnce`` (for ``kubectl attach``).

    ``stdin: true`` keeps the main process's stdin open for attaching clients (``sh`` waits for
    input); with ``stdinOnce`` the first attach that ends its input closes that stdin for good,
    so ``kubectl run -i -- sh`` ends when its piped input does.
    """
    if not container.get("stdin"):
        return {}
    return {"OpenStdin": True, "AttachStdin": False, "StdinOnce": bool(container.get("stdinOnce"))}


class Runtime:
    """Blocking Docker operations on pod containers; every method is safe to run in a thread."""

    def __init__(self, client: docker.DockerClient, cluster: str, node_container: str) -> None:
        self.client = client
        self.api = client.api
        self.cluster = cluster
        self.node_container = node_container

    def node_filter(self, **labels: str) -> dict[str, list[str]]:
        wanted = {c.CLUSTER_LABEL: self.cluster, c.POD_NODE_LABEL: self.node_container, **labels}
        return {"label": [f"{k}={v}" for k, v in wanted.items()]}

    def list_node_containers(self) -> list[dict]:
        """Summaries (``docker ps -a``) of every pod container of this node."""
        return self.api.containers(all=True, filters=self.node_filter())

    def list_pod(self, uid: str, sandboxes: bool = True) -> list[ContainerRecord]:
        """Every container instance of pod ``uid``, inspected, oldest attempt first.

        ``sandboxes=False`` leaves the sandboxes out (no inspect): the pod's status is made of
        its containers only, so a status write need not read the sandbox (one Engine API call
        less per status, docs/pod-startup.md).
        """
        summaries = self.api.containers(all=True, filters=self.node_filter(**{c.POD_UID_LABEL: uid}))
        return self.inspect_all([s["Id"] for s in summaries
                                 if sandboxes or (s.get("Labels") or {}).get(c.CONTAINER_NAME_LABEL) != SANDBOX])

    def inspect_all(self, container_ids: list[str]) -> list[ContainerRecord]:
        """The records of ``container_ids`` that still exist, oldest attempt first."""
        records = []
        for container_id in container_ids:
            try:
                records.append(record_from_inspect(self.api.inspect_container(container_id)))
            except docker.errors.NotFound:
                continue  # removed meanwhile
        return sorted(records, key=lambda r: (r.name, r.attempt))

    def node_root(self) -> NodeRoot:
        """This node container's root filesystem as the host's engine sees it (overlay2's ``MergedDir``):
        what a node path is under, as a bind-mount source (pod volumes, ``kubectl debug node``'s /host)."""
        return NodeRoot.from_inspect(self.api.inspect_container(self.node_container))

    def image_user(self, image: str) -> str:
        """The image's ``USER`` (``""`` is root), for runAsNonRoot and runAsGroup."""
        return (self.api.inspect_image(image).get("Config") or {}).get("User") or ""

    def ensure_volume(self, name: str, labels: dict[str, str], driver_opts: dict[str, str]) -> None:
        """A Docker ``local`` volume (a Memory emptyDir's tmpfs); an existing one is kept."""
        try:
            self.api.inspect_volume(name)
        except docker.errors.NotFound:
            self.api.create_volume(name, driver="local", driver_opts=driver_opts, labels=labels)

    def volume_labels(self, pod: PodRef, volume: str) -> dict[str, str]:
        return {c.CLUSTER_LABEL: self.cluster, c.POD_NODE_LABEL: self.node_container, c.POD_NAME_LABEL: pod.name,
                c.POD_NAMESPACE_LABEL: pod.namespace, c.POD_UID_LABEL: pod.uid, c.VOLUME_NAME_LABEL: volume}

    def volume_pod_uids(self) -> set[str]:
        """Pod uids that own a Docker volume on this node."""
        volumes = self.api.volumes(filters=self.node_filter()).get("Volumes") or []
        return {(v.get("Labels") or {}).get(c.POD_UID_LABEL, "") for v in volumes} - {""}

    def remove_pod_volumes(self, uid: str) -> None:
        """Remove the Docker volumes of pod ``uid`` (its containers are gone)."""
        for volume in self.api.volumes(filters=self.node_filter(**{c.POD_UID_LABEL: uid})).get("Volumes") or []:
            try:
                self.api.remove_volume(volume["Name"], force=True)
            except docker.errors.NotFound:
                pass

    def read_file(self, container_id: str, path: str) -> str:
        """The text of a file of a container ('' when it is not there)."""
        try:
            stream, _stat = self.api.get_archive(container_id, path)
        except docker.errors.NotFound:
            return ""
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as archive:
            member = archive.next()
            extracted = archive.extractfile(member) if member is not None else None
            return extracted.read().decode(errors="replace") if extracted is not None else ""

    def log_tail(self, container_id: str, lines: int) -> bytes:
        """The last ``lines`` lines the container wrote, stdout and stderr interleaved (b'' when it is gone)."""
        try:
            return bytes(self.api.logs(container_id, stdout=True, stderr=True, tail=lines))
        except docker.errors.NotFound:
            return b""

    def create(self, spec: CreateSpec) -> str:
        host_config = self.api.create_host_config(**spec.host_config)
        kwargs = {"command": None, **spec.kwargs}  # ContainerConfig takes the command positionally
        config = self.api.create_container_config(spec.image, labels=spec.labels, host_config=host_config, **kwargs)
        config.update(spec.config)
        try:
            created = self.api.create_container_from_config(config, name=spec.name)
        except docker.errors.APIError as err:
            if err.status_code != 409:
                raise
            self.remove(spec.name)  # a leftover of a crash between create and bookkeeping
            created = self.api.create_container_from_config(config, name=spec.name)
        return created["Id"]

    def start(self, container_id: str) -> None:
        self.api.start(container_id)

    def inspect(self, container_id: str) -> ContainerRecord:
        return record_from_inspect(self.api.inspect_container(container_id))

    def stop(self, container_id: str, grace_seconds: int) -> None:
        """SIGTERM, wait ``grace_seconds``, SIGKILL (``docker stop --time``)."""
        try:
            self.api.stop(container_id, timeout=max(0, int(grace_seconds)))
        except docker.errors.NotFound:
            pass

    def remove(self, container_id: str) -> None:
        try:
            self.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.APIError as err:
            if "already in progress" not in str(err):
                raise

    def exec(self, container_id: str, command: list[str]) -> tuple[int, str]:
        """Run ``command`` in a container (exec probes); (exit code, output)."""
        exec_id = self.api.exec_create(container_id, command, stdout=True, stderr=True)["Id"]
        output = self.api.exec_start(exec_id)
        code = self.api.exec_inspect(exec_id).get("ExitCode")
        return (code if code is not None else -1), output.decode(errors="replace")
