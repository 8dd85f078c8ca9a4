"""What a labctl pod may ask for: node paths it may mount, capabilities it may add.

Pods run on the host's Docker engine; these rules keep one from getting the host. Admission
refuses what breaks them (a 422 naming the field) and the kubelet checks again where only
the node can tell (a path's symlinks).

**Capabilities.** A container starts with Docker's default set; ``capabilities.drop`` may remove
any of them (``ALL`` too) and ``capabilities.add`` may only put back one of them.

**hostPath.** A ``hostPath`` means a path of the
*node* (the node container's own filesystem, docs/kubelet.md), never the real host's. Even so,
the node is root with the host's Docker socket: a pod that could write the node's programs
(``/usr``, ``/opt/labctl``), its configuration and credentials (``/etc``, ``/etc/labctl``), the
kubelet's pod volumes or the node's runtime mounts would own the node, and through its socket
the host. So those paths — and every directory *above* them, like ``/`` or ``/var`` — are
refused, read-only or not. What stays is what tutorials use: ``/data``, ``/mnt/…``, ``/srv``,
``/var/log``, ``/var/tmp``, ``/home/…``.

Admission checks the literal path; the kubelet checks it again resolved inside the node
(symlinks), and refuses anything that is a mount of the node container rather than its own disk.
"""

from __future__ import annotations

import posixpath

#: Docker's default capability set (moby ``oci/caps/defaults.go``): a pod may add nothing beyond it
DOCKER_DEFAULT_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "NET_RAW",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"})


def capability_name(name: str) -> str:
    """``cap_net_raw``/``CAP_NET_RAW``/``NET_RAW`` → ``NET_RAW`` (runtimes accept each spelling)."""
    upper = name.upper()
    return upper[4:] if upper.startswith("CAP_") else upper


def capability_refusal(name: str) -> str | None:
    """Why ``capabilities.add`` may not hold ``name``, or None."""
    if capability_name(name) in DOCKER_DEFAULT_CAPABILITIES:
        return None
    return (f"capability {capability_name(name)} is beyond Docker's default set, which labctl pods may not "
            f"exceed: they run on the host's Docker engine")

#: paths of the node a pod must never see (nor a directory that holds one of them)
SENSITIVE_NODE_PATHS = (
    "/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32", "/opt", "/proc", "/root",
    "/run", "/sbin", "/sys", "/usr", "/var/lib/kubelet", "/var/lib/labctl", "/var/run",
)


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


def host_path_refusal(path: str) -> str | None:
    """Why ``path`` may not be a pod's hostPath, or None when it may (pure: no look at a disk)."""
    if not path.startswith("/"):
        return "must be an absolute path"
    clean = posixpath.normpath(path)
    if clean.startswith("//"):
        clean = "/" + clean.lstrip("/")
    for sensitive in SENSITIVE_NODE_PATHS:
        if _within(clean, sensitive) or _within(sensitive, clean):
            return (f"{clean} is or holds the node's {sensitive}, which pods may not mount: labctl pods run on the "
                    f"host's Docker engine and the node holds its socket (use a path like /data or /mnt/...)")
    return None
