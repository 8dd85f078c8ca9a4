"""The node's root filesystem for ``kubectl debug node/NODE``: ``hostPath: /`` means the *node*, never the host.

``kubectl debug node/worker -it --image=busybox`` creates a pod on that node with a
``hostPath: {path: /}`` volume mounted at ``/host`` (plus ``hostNetwork``, ``hostPID``,
``hostIPC``). On a real cluster that is the machine's root. Here a node is a container on
the host's Docker engine and the pod is a sibling container of that engine, so a bind of
``/`` would be the *real host's* root. The kubelet binds instead the node container's own
root filesystem as the engine sees it — its overlay ``MergedDir`` — and over it the three
files Docker gives every container (``/etc/hostname``, ``/etc/hosts``, ``/etc/resolv.conf``),
so ``cat /host/etc/hostname`` prints the node's name. The node's other mounts (the host's
Docker socket, ``/var/run/docker/netns``, the control plane's state volume, ``/lib/modules``)
are not part of that filesystem, so they never appear under ``/host``.

``/host`` is read-only, whatever the pod asks: the node runs as root with the host's Docker
socket, so a pod able to rewrite the node's programs (``/usr``, ``/opt/labctl``) would own the
node and through it the host. Read-only, a student still sees everything a node holds: its
CNI configuration, its IPAM files, its kubelet's configuration.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...kube.nodedebug import is_node_debugger, is_node_root


@dataclass(frozen=True)
class NodeRoot:
    """Where the node container's filesystem is, in the host engine's terms (from ``docker inspect``)."""

    merged_dir: str      # GraphDriver.Data.MergedDir
    hostname_path: str   # HostnamePath, HostsPath, ResolvConfPath: Docker's per-container files
    hosts_path: str
    resolv_conf_path: str

    @classmethod
    def from_inspect(cls, info: dict) -> NodeRoot:
        merged = ((info.get("GraphDriver") or {}).get("Data") or {}).get("MergedDir") or ""
        if not merged:
            raise ValueError(f"the node container {info.get('Name', '')!r} has no overlay root filesystem "
                             f"(storage driver {(info.get('GraphDriver') or {}).get('Name')!r})")
        return cls(merged, info.get("HostnamePath") or "", info.get("HostsPath") or "",
                   info.get("ResolvConfPath") or "")

    def binds(self, target: str) -> list[str]:
        """Docker binds putting the node's root at ``target`` (read-only), its own files included."""
        target = target.rstrip("/") or "/"
        out = [f"{self.merged_dir}:{target}:ro"]
        for source, path in ((self.hostname_path, "etc/hostname"), (self.hosts_path, "etc/hosts"),
                             (self.resolv_conf_path, "etc/resolv.conf")):
            if source:
                out.append(f"{source}:{target}/{path}:ro")
        return out


def node_root_mount_paths(pod: dict, container: dict) -> list[str]:
    """Where ``container`` of kubectl debug's node pod mounts its ``hostPath: /`` volume (``/host``)."""
    if not is_node_debugger(pod):
        return []  # admission refuses hostPath / elsewhere; a pod stored before that gets nothing
    roots = {v.get("name") for v in (pod.get("spec") or {}).get("volumes") or [] if is_node_root(v)}
    return [m["mountPath"] for m in container.get("volumeMounts") or []
            if isinstance(m, dict) and m.get("name") in roots and m.get("mountPath")]


def node_debugger_namespaces(pod: dict, node_container: str) -> dict[str, str]:
    """``hostPID``/``hostIPC`` of kubectl debug's node pod: the *node container's* namespaces, never the host's.

    ``ps`` in the debugger then lists the node's processes (its kubelet, its proxy). The pod's
    processes get no capability beyond Docker's defaults, so they cannot reach into the node's
    processes' memory or roots (``/proc/<pid>/root`` needs the node's capabilities or SYS_PTRACE).
    """
    spec = pod.get("spec") or {}
    if not is_node_debugger(pod):
        return {}
    out = {}
    if spec.get("hostPID") is True:
        out["pid_mode"] = f"container:{node_container}"
    if spec.get("hostIPC") is True:
        out["ipc_mode"] = f"container:{node_container}"  # nodes are created with a shareable IPC namespace
    return out
