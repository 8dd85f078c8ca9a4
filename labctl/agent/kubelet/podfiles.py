"""The pod's ``/etc/hosts`` and ``/etc/resolv.conf``: kubelet files on the node, bind-mounted into every container.

As the kubelet does (``/var/lib/kubelet/pods/<uid>/etc-hosts``, ``makeHostsMount``), the files
are written in the pod's directory on the node and each container of the pod — app, init and
ephemeral — gets them as bind mounts at create time, the way the pod's volumes are mounted
(:func:`~.volumes.container_mounts`: the node path under the node's root as the host's engine
sees it). Writing them costs two local file writes, where a ``docker exec`` into the sandbox
cost a ``runc exec`` and four Engine API calls per pod (37 % of the kubelet's thread time in a
50-pod burst, docs/pod-startup.md).

The pod's IP is known only after the sandbox's CNI ADD, while its app containers are created
meanwhile: the worker writes the files first without the IP, before the sandbox (so a mount's
source exists at create time), then with it after the ADD, before any container starts. Both
writes are in place (truncate and write the same inode), so a container that has the file
mounted sees the new text, never a stale copy.

Which container gets what:

* the hosts file always (:mod:`.etchosts`: the pod's own, or for a ``hostNetwork`` pod the
  node's plus its ``hostAliases``), read-write as the kubelet mounts it;
* the resolv.conf (:mod:`.resolvconf`) unless the pod is ``hostNetwork`` with a
  ``dnsPolicy`` of the node (``ClusterFirst``, ``Default``) and no ``dnsConfig``: then it keeps
  the node container's, which Docker gives a container in the node's network namespace.
  Read-only with ``readOnlyRootFilesystem``, as containerd mounts it;
* neither where the container mounts a volume of its own at that path (as the kubelet and
  containerd leave it).

The hostname stays the sandbox's: the app containers share its UTS namespace (Docker's
``container:`` network mode), whose name :func:`~.etchosts.pod_hostname` set.
"""

from __future__ import annotations

from pathlib import Path

from ...kube.resolvconf import render as render_resolv_conf
from . import resolvconf
from .context import KubeletContext
from .etchosts import node_hosts_file, pod_hosts_file
from .runtime import host_network
from .security import effective_security

ETC_HOSTS = "etc-hosts"      # the kubelet's own name for it
RESOLV_CONF = "resolv.conf"
HOSTS_PATH = "/etc/hosts"
RESOLV_PATH = "/etc/resolv.conf"
#: dnsPolicies for which a hostNetwork pod gets the kubelet's resolv.conf, not the node's
HOST_NETWORK_OWN_RESOLV_POLICIES = ("ClusterFirstWithHostNet", "None")


def own_resolv_conf(pod: dict) -> bool:
    """Whether the pod's containers mount the kubelet's resolv.conf (not so a hostNetwork pod with the node's DNS)."""
    spec = pod.get("spec") or {}
    return not host_network(pod) or spec.get("dnsPolicy") in HOST_NETWORK_OWN_RESOLV_POLICIES or bool(spec.get("dnsConfig"))


def pod_file_mounts(pod: dict, container: dict, host_pod_dir: str) -> list[dict]:
    """Docker ``Mounts`` of the pod's files for ``container``; ``host_pod_dir``: the pod's directory as the
    host's engine sees it (the node's root, then ``/var/lib/kubelet/pods/<uid>``)."""
    taken = {m.get("mountPath", "").rstrip("/") for m in container.get("volumeMounts") or [] if isinstance(m, dict)}
    wanted = [(ETC_HOSTS, HOSTS_PATH, False)]
    if own_resolv_conf(pod):
        wanted.append((RESOLV_CONF, RESOLV_PATH, effective_security(pod, container).read_only_root))
    # rslave: Docker insists on it for a source inside its own root (the node's overlay is), as for volumes
    return [{"Type": "bind", "Source": f"{host_pod_dir.rstrip('/')}/{name}", "Target": target, "ReadOnly": read_only,
             "BindOptions": {"Propagation": "rslave"}}
            for name, target, read_only in wanted if target not in taken]


async def write_pod_files(ctx: KubeletContext, pod: dict, pod_ip: str, sandbox_id: str = "") -> None:
    """Write the pod's hosts file (with ``pod_ip`` once known) and resolv.conf in its node directory.

    ``sandbox_id``: the started sandbox, whose Docker-written resolv.conf holds the host's
    resolvers, which ``dnsPolicy: Default`` needs when the node's own nameserver is Docker's
    embedded DNS (out of a pod's reach); '' before the sandbox exists.
    """
    cluster = ctx.cfg.cluster
    uid = pod["metadata"]["uid"]
    node_text = await ctx.blocking(_read_text, ctx.resolv_conf)
    docker_text = ""
    if (sandbox_id and resolvconf.dns_type(pod) != "cluster" and not host_network(pod)
            and resolvconf.loopback_nameservers(node_text)):
        docker_text = await ctx.blocking(ctx.runtime.read_file, sandbox_id, RESOLV_PATH)
    host = resolvconf.node_resolver(node_text, docker_text)
    dns = resolvconf.pod_dns(pod, host, [cluster.dns_service_ip], cluster.cluster_domain)
    if host_network(pod):
        hosts = node_hosts_file(await ctx.blocking(_read_text, ctx.hosts_file),
                                (pod.get("spec") or {}).get("hostAliases") or [])
    else:
        hosts = pod_hosts_file(pod, [pod_ip] if pod_ip else [], cluster.cluster_domain)
    await ctx.blocking(ctx.volumes.write_pod_files, uid, {ETC_HOSTS: hosts, RESOLV_CONF: render_resolv_conf(dns)})


def _read_text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""
