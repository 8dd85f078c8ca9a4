"""A container's ``securityContext`` as Docker create options (pod-level settings, container wins).

* ``runAsUser``/``runAsGroup`` → Docker's ``user`` (``uid[:gid]``); without ``runAsUser`` the
  image's user keeps running, with the group replaced.
* ``supplementalGroups`` and ``fsGroup`` → ``group_add`` (the kubelet adds fsGroup too, so the
  volumes it chowns to that group are the container's to use).
* ``runAsNonRoot`` → the kubelet's own check against the image's user before creating:
  ``CreateContainerConfigError: container has runAsNonRoot and image will run as root``.
* ``readOnlyRootFilesystem`` → ``read_only``; ``allowPrivilegeEscalation: false`` →
  ``no-new-privileges``.
* ``capabilities`` → ``cap_drop`` (any, ``ALL`` too) and ``cap_add`` (only Docker's default set:
  :mod:`labctl.kube.confinement`).

Pure functions, unit-tested; the pod worker turns a :class:`ConfigError` into the
container's ``CreateContainerConfigError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...kube.confinement import capability_name, capability_refusal

#: what ``kubectl debug``'s default profile asks for an ephemeral container, to trace its target
EPHEMERAL_PTRACE = "SYS_PTRACE"


class ConfigError(Exception):
    """The container cannot be created with this configuration (``CreateContainerConfigError``)."""


@dataclass
class EffectiveSecurity:
    """The pod's and the container's securityContext, merged as the kubelet does."""

    run_as_user: int | None = None
    run_as_group: int | None = None
    run_as_non_root: bool = False
    groups: list[int] = field(default_factory=list)
    read_only_root: bool = False
    no_new_privileges: bool = False
    cap_add: list[str] = field(default_factory=list)
    cap_drop: list[str] = field(default_factory=list)


def effective_security(pod: dict, container: dict) -> EffectiveSecurity:
    pod_ctx = pod["spec"].get("securityContext") or {}
    ctx = container.get("securityContext") or {}

    def pick(key: str) -> Any:
        return ctx[key] if ctx.get(key) is not None else pod_ctx.get(key)

    groups = [int(g) for g in pod_ctx.get("supplementalGroups") or []]
    if pod_ctx.get("fsGroup") is not None and int(pod_ctx["fsGroup"]) not in groups:
        groups.append(int(pod_ctx["fsGroup"]))
    caps = ctx.get("capabilities") or {}
    user, group = pick("runAsUser"), pick("runAsGroup")
    return EffectiveSecurity(
        run_as_user=int(user) if user is not None else None, run_as_group=int(group) if group is not None else None,
        run_as_non_root=bool(pick("runAsNonRoot")), groups=groups,
        read_only_root=bool(ctx.get("readOnlyRootFilesystem")),
        no_new_privileges=ctx.get("allowPrivilegeEscalation") is False,
        cap_add=[capability_name(c) for c in caps.get("add") or []],
        cap_drop=[capability_name(c) for c in caps.get("drop") or []])


def docker_user(sec: EffectiveSecurity, image_user: str) -> str | None:
    """Docker's ``user`` option, or None to keep the image's."""
    if sec.run_as_user is None and sec.run_as_group is None:
        return None
    user = str(sec.run_as_user) if sec.run_as_user is not None else (image_user.split(":", 1)[0] or "0")
    return f"{user}:{sec.run_as_group}" if sec.run_as_group is not None else user


def non_root_problem(sec: EffectiveSecurity, image_user: str, pod_desc: str, container: str) -> str | None:
    """The kubelet's ``verifyRunAsNonRoot``: why this container may not start, or None."""
    if not sec.run_as_non_root:
        return None
    where = f'(pod: "{pod_desc}", container: {container})'
    if sec.run_as_user is not None:
        return f"container's runAsUser breaks non-root policy {where}" if sec.run_as_user == 0 else None
    user = image_user.split(":", 1)[0]
    if user in ("", "root", "0"):
        return f"container has runAsNonRoot and image will run as root {where}"
    if not user.isdigit():
        return (f"container has runAsNonRoot and image has non-numeric user ({user}), "
                f"cannot verify user is non-root {where}")
    return None


def host_config_options(sec: EffectiveSecurity, ephemeral: bool = False) -> dict[str, Any]:
    """The HostConfig part: capabilities, read-only root, no-new-privileges, extra groups.

    An ephemeral container may also add :data:`EPHEMERAL_PTRACE` (admission grants it there only).
    """
    for cap in sec.cap_add:
        problem = None if ephemeral and cap == EPHEMERAL_PTRACE else capability_refusal(cap)
        if problem:
            raise ConfigError(problem)
    out: dict[str, Any] = {}
    if sec.cap_add:
        out["cap_add"] = sec.cap_add
    if sec.cap_drop:
        out["cap_drop"] = sec.cap_drop
    if sec.read_only_root:
        out["read_only"] = True
    if sec.no_new_privileges:
        out["security_opt"] = ["no-new-privileges"]
    if sec.groups:
        out["group_add"] = [str(g) for g in sec.groups]
    return out
