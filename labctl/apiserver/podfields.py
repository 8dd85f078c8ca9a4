"""Pod admission that never lies: the one table of the Pod fields labctl honours.

kube-apiserver stores any valid Pod, and a real kubelet then does what it says. labctl's
kubelet does less, and a field it would ignore is worse than a refusal: the pod shows
Running with the wrong setup and the student learns a wrong picture. So every field of a
Pod's spec — and of the pod template of a ReplicaSet or Deployment, so the student sees
it at ``kubectl apply`` time — is checked against the tables below at create and update,
and a field not in them is a 422 naming it::

    spec.containers[0].lifecycle.stopSignal: Forbidden: labctl does not support this field (it would be ignored)

It is an allow-list: a field nobody thought of is refused, not ignored.

**The format.** :data:`POD_SPEC` maps paths relative to a pod spec, :data:`CONTAINER` paths
relative to one container of every list in :data:`CONTAINER_LISTS`. A path is JSON field
names joined by ``.``, a list's items written ``[]`` (``env[].valueFrom.fieldRef.fieldPath``);
a map's keys are path segments like fields (``resources.limits.cpu``). Each path maps to
what is accepted there:

* :data:`ANY` — honoured with any value, including everything below it;
* a tuple of JSON values — only those are accepted (``("ClusterFirst", "Default")``); a
  default that changes nothing belongs here too (``terminationMessagePolicy: ("File",)``),
  because kube-apiserver and kubectl fill such values in on every pod. A :class:`Matching`
  among them accepts every string of a form (``metadata.labels['<key>']``).

A path that is only a prefix of entries (``livenessProbe``, ``env[]``) is walked into; an
empty object, empty list, ``null`` or ``""`` carries nothing and always passes
(``securityContext: {}``), except a volume source (``emptyDir: {}`` is a volume).

Making a field honoured is one line: add its path, e.g. ``"envFrom": ANY,`` to
:data:`CONTAINER`, ``"volumes[].emptyDir": ANY,`` to :data:`POD_SPEC`, or ``"initContainers"``
to :data:`CONTAINER_LISTS` (whose containers then follow :data:`CONTAINER`).

**Never allowed.** A pod's containers run on the host's Docker engine, so some values
would give a student's pod the host itself. :data:`UNSAFE_POD_SPEC` and
:data:`UNSAFE_CONTAINER` (the latter for every container list, honoured or not) refuse
them with that reason, before and whatever the tables above say::

    spec.hostPID: Forbidden: a pod runs on the host's Docker engine: this would give it the host (its processes)

An update is held only to what it changes (kube's validation ratcheting): an object
stored before a field was refused can still be scaled, labelled or finalized.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

from labctl.apiserver.errors import FieldError, forbidden
from labctl.kube.confinement import capability_refusal, host_path_refusal
from labctl.kube.serviceaccount import ADMISSION_TOKEN_SECONDS

#: accepted with any value, and everything below it
ANY: Final = "*"

Accepts = str | tuple[Any, ...]

#: the one capability beyond Docker's defaults a container may add: an ephemeral container's
EPHEMERAL_PTRACE = "SYS_PTRACE"


@dataclass(frozen=True)
class Matching:
    """An accepted value that is a form, not one string: ``metadata.labels['<key>']``."""

    pattern: re.Pattern[str]
    shown: str

    def matches(self, value: Any) -> bool:
        return isinstance(value, str) and self.pattern.fullmatch(value) is not None


#: the subscripted fieldPaths of the downward API (kube's validation: a label or annotation key)
_LABEL_REF = Matching(re.compile(r"metadata\.labels\['[^']+'\]"), "metadata.labels['<key>']")
_ANNOTATION_REF = Matching(re.compile(r"metadata\.annotations\['[^']+'\]"), "metadata.annotations['<key>']")

#: honoured by the scheduler, the kubelet (``labctl/agent/kubelet``) or the API server itself
POD_SPEC: dict[str, Accepts] = {
    # scheduling (labctl/controllers/_scheduling.py)
    "nodeName": ANY,
    "nodeSelector": ANY,
    "affinity.nodeAffinity": ANY,  # required: a filter; preferred: a score
    "affinity.podAffinity": ANY,  # InterPodAffinity (labctl/controllers/_interpodaffinity.py)
    "affinity.podAntiAffinity": ANY,
    "tolerations": ANY,  # the scheduler's filter; NoExecute ones: node lifecycle's eviction
    "schedulerName": ANY,  # only default-scheduler schedules: another name stays Pending, as in kube
    "priority": ANY,  # the Priority admission computes it (strategies/scheduling.py); queue order
    "priorityClassName": ANY,
    "preemptionPolicy": ANY,
    "overhead": ANY,
    # the kubelet
    "restartPolicy": ANY,
    "terminationGracePeriodSeconds": ANY,
    "serviceAccountName": ANY,
    "serviceAccount": ANY,
    "automountServiceAccountToken": ANY,
    # resolv.conf and /etc/hosts (the kubelet's resolvconf.py, etchosts.py); ClusterFirstWithHostNet:
    # cluster DNS for a hostNetwork pod too (the kubelet's resolv.conf bind-mounted, podfiles.py)
    "dnsPolicy": ("ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"),
    "dnsConfig": ANY,
    "hostname": ANY,
    "subdomain": ANY,
    "setHostnameAsFQDN": ANY,
    "hostAliases": ANY,
    "enableServiceLinks": ANY,  # the Service environment variables (the kubelet's envvars.py)
    "os.name": ("linux",),
    # true: the pod's containers join its *node container's* network namespace (runtime.py) — the lab
    # node's eth0, cni0 and IP, never the host's; no CNI call
    "hostNetwork": ANY,
    # kube's defaults, or what they mean, which is what labctl does
    "hostPID": (False,),
    "hostIPC": (False,),
    "hostUsers": (True,),
    # true: every container joins the sandbox's PID namespace (runtime.py), the pause process its PID 1
    "shareProcessNamespace": (False, True),
    "securityContext.seccompProfile.type": ("RuntimeDefault",),  # Docker's default profile
    "securityContext.appArmorProfile.type": ("RuntimeDefault",),
    "volumes[].name": ANY,  # a volume's source decides: each source not listed here is refused
    # kubectl debug's ephemeral containers (labctl/agent/kubelet/ephemeral.py): the target's PID
    # namespace, and the SYS_PTRACE its default profile ("general") asks for to trace the target
    "ephemeralContainers[].targetContainerName": ANY,
    "ephemeralContainers[].securityContext.capabilities.add[]": (EPHEMERAL_PTRACE,),
    # volumes, made on the node and bind-mounted (labctl/agent/kubelet/volumes.py, docs/kubelet.md)
    "volumes[].emptyDir.medium": ("", "Memory"),
    "volumes[].emptyDir.sizeLimit": ANY,  # Memory: the tmpfs's size; disk: the pod is evicted past it
    "volumes[].configMap": ANY,
    "volumes[].secret": ANY,
    "volumes[].downwardAPI": ANY,
    "volumes[].projected.defaultMode": ANY,
    "volumes[].projected.sources[].configMap": ANY,
    "volumes[].projected.sources[].secret": ANY,
    "volumes[].projected.sources[].downwardAPI": ANY,
    "volumes[].projected.sources[].serviceAccountToken.path": ANY,  # the pod's own token (no audience)
    # the ServiceAccount admission's value; the lab's token lifetime applies (labctl/kube/serviceaccount.py)
    "volumes[].projected.sources[].serviceAccountToken.expirationSeconds": (ADMISSION_TOKEN_SECONDS,),
    "volumes[].hostPath.path": ANY,  # a path of the node; UNSAFE_POD_SPEC refuses the node's sensitive ones
    "volumes[].hostPath.type": ("", "DirectoryOrCreate", "Directory", "FileOrCreate", "File", "Socket",
                                "CharDevice", "BlockDevice"),
    # the bound PersistentVolume's path of the node (labctl/controllers/persistentvolume.py, docs/storage.md)
    "volumes[].persistentVolumeClaim.claimName": ANY,
    "volumes[].persistentVolumeClaim.readOnly": ANY,
    # securityContext (labctl/agent/kubelet/security.py)
    "securityContext.runAsUser": ANY,
    "securityContext.runAsGroup": ANY,
    "securityContext.runAsNonRoot": ANY,
    "securityContext.supplementalGroups": ANY,
    "securityContext.fsGroup": ANY,
}

#: the container lists :data:`CONTAINER` applies to: init containers run in order before the app,
#: sidecars among them (labctl/agent/kubelet/initcontainers.py); ephemeral ones are kubectl debug's
#: (labctl/agent/kubelet/ephemeral.py; kube's validation refuses their ports, probes, hooks, resources)
CONTAINER_LISTS: tuple[str, ...] = ("containers", "initContainers", "ephemeralContainers")

#: honoured in one container (labctl/agent/kubelet/runtime.py, envvars.py, podworker.py, probes.py, images.py)
CONTAINER: dict[str, Accepts] = {
    "name": ANY,
    "image": ANY,
    "imagePullPolicy": ANY,
    "command": ANY,
    "args": ANY,
    "workingDir": ANY,
    "env[].name": ANY,
    "env[].value": ANY,
    # the kubelet's FIELD_REFS (envvars.py); tests/unit/test_podfields.py keeps the two in step
    "env[].valueFrom.fieldRef.fieldPath": ("metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName",
                                           "spec.serviceAccountName", "status.podIP", "status.podIPs",
                                           "status.hostIP", "status.hostIPs", _LABEL_REF, _ANNOTATION_REF),
    "env[].valueFrom.configMapKeyRef": ANY,
    "env[].valueFrom.secretKeyRef": ANY,
    "env[].valueFrom.resourceFieldRef.containerName": ANY,
    "env[].valueFrom.resourceFieldRef.resource": tuple(f"{kind}.{name}" for kind in ("limits", "requests")
                                                       for name in ("cpu", "memory", "ephemeral-storage")),
    "env[].valueFrom.resourceFieldRef.divisor": ANY,
    "envFrom": ANY,
    "env[].valueFrom.fieldRef.apiVersion": ("v1",),
    "ports[].containerPort": ANY,
    "ports[].name": ANY,  # probes and Services' targetPort find named ports
    "ports[].protocol": ANY,
    "ports[].hostPort": ANY,  # forwarded on the node by the chained labctl-portmap plugin (labctl/cni/portmap.py)
    "ports[].hostIP": ANY,    # the portmap rule's destination address
    "resources.limits.cpu": ANY,
    "resources.limits.memory": ANY,
    "resources.requests.cpu": ANY,
    "resources.requests.memory": ANY,
    "stdin": ANY,
    "tty": ANY,
    "stdinOnce": ANY,
    "terminationMessagePath": ANY,  # a file the kubelet binds there, read into lastState.terminated.message
    "terminationMessagePolicy": ("File", "FallbackToLogsOnError"),  # the kubelet's mounter.py
    # volume mounts and securityContext (labctl/agent/kubelet/volumes.py, security.py)
    "volumeMounts[].name": ANY,
    "volumeMounts[].mountPath": ANY,
    "volumeMounts[].readOnly": ANY,
    "volumeMounts[].subPath": ANY,
    "volumeMounts[].mountPropagation": ("None",),
    "securityContext.runAsUser": ANY,
    "securityContext.runAsGroup": ANY,
    "securityContext.runAsNonRoot": ANY,
    "securityContext.readOnlyRootFilesystem": ANY,
    "securityContext.allowPrivilegeEscalation": ANY,
    "securityContext.capabilities.add": ANY,  # UNSAFE_CONTAINER refuses any beyond Docker's defaults
    "securityContext.capabilities.drop": ANY,
    # what Docker does anyway
    "securityContext.privileged": (False,),
    "securityContext.procMount": ("Default",),
    "securityContext.seccompProfile.type": ("RuntimeDefault",),
    "securityContext.appArmorProfile.type": ("RuntimeDefault",),
    # a sidecar: an init container that keeps running (validation allows it only on init containers)
    "restartPolicy": ("Always",),
    # postStart / preStop (labctl/agent/kubelet/hooks.py); tcpSocket fails when run, as upstream's runner
    **{f"lifecycle.{hook}.{field}": ANY for hook in ("postStart", "preStop") for field in (
        "exec.command", "httpGet.host", "httpGet.path", "httpGet.port", "httpGet.scheme", "httpGet.httpHeaders",
        "tcpSocket.host", "tcpSocket.port", "sleep.seconds")},
    **{f"{probe}.{field}": ANY for probe in ("livenessProbe", "readinessProbe", "startupProbe") for field in (
        "exec.command", "httpGet.host", "httpGet.path", "httpGet.port", "httpGet.scheme", "httpGet.httpHeaders",
        "tcpSocket.host", "tcpSocket.port", "initialDelaySeconds", "periodSeconds", "timeoutSeconds",
        "successThreshold", "failureThreshold")},
}

#: (refused when, what it would give the pod)
Unsafe = tuple[Callable[[Any], bool], str]


def _true(value: Any) -> bool:
    return value is True


def _present(value: Any) -> bool:
    return value not in (None, "", {}, [])


def _beyond_docker_defaults(capability: Any) -> bool:
    return not isinstance(capability, str) or capability_refusal(capability) is not None


def _sensitive_node_path(path: Any) -> bool:
    return not isinstance(path, str) or host_path_refusal(path) is not None


def _unconfined(value: Any) -> bool:
    return value == "Unconfined"


#: never allowed in a pod spec: the host's namespaces, filesystem and kernel settings
UNSAFE_POD_SPEC: dict[str, Unsafe] = {
    "hostPID": (_true, "its processes"),
    "hostIPC": (_true, "its IPC namespace"),
    # a hostPath is the node's (docs/kubelet.md), but the node holds the host's Docker socket:
    # its system paths would give the host (labctl/kube/confinement.py; the kubelet checks again)
    "volumes[].hostPath.path": (_sensitive_node_path, "its filesystem, through the node's system paths: "
                                                      "use a path like /data or /mnt/..."),
    "securityContext.sysctls": (_present, "its kernel settings"),
    "securityContext.seccompProfile.type": (_unconfined, "every system call"),
    "securityContext.appArmorProfile.type": (_unconfined, "an unconfined process"),
}

#: never allowed in any container (containers, initContainers, ephemeralContainers)
UNSAFE_CONTAINER: dict[str, Unsafe] = {
    "securityContext.privileged": (_true, "every device and capability"),
    "securityContext.capabilities.add[]": (_beyond_docker_defaults, "a capability beyond Docker's defaults"),
    "securityContext.procMount": (lambda value: value not in (None, "", "Default"), "an unmasked /proc"),
    "securityContext.seccompProfile.type": (_unconfined, "every system call"),
    "securityContext.appArmorProfile.type": (_unconfined, "an unconfined process"),
}
ALL_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
#: an ephemeral container may trace the processes of its pod: it sees no others (no host PID namespace)
UNSAFE_EPHEMERAL: dict[str, Unsafe] = {
    "securityContext.capabilities.add[]": (
        lambda cap: _beyond_docker_defaults(cap) and not _same(cap, EPHEMERAL_PTRACE),
        "a capability beyond Docker's defaults"),
}

NOT_HONOURED = "labctl does not support this field (it would be ignored)"
GIVES_THE_HOST = "a pod runs on the host's Docker engine: this would give it the host"

_MISSING: Final[Any] = object()


def _expand() -> tuple[dict[str, Accepts], dict[str, Unsafe]]:
    """The container tables written out under each container list: one flat table of each kind."""
    honoured = dict(POD_SPEC)
    for lst in CONTAINER_LISTS:
        honoured.update({f"{lst}[].{path}": accepts for path, accepts in CONTAINER.items()})
    unsafe = dict(UNSAFE_POD_SPEC)
    for lst in ALL_CONTAINER_LISTS:
        rules = {**UNSAFE_CONTAINER, **UNSAFE_EPHEMERAL} if lst == "ephemeralContainers" else UNSAFE_CONTAINER
        unsafe.update({f"{lst}[].{path}": rule for path, rule in rules.items()})
    return honoured, unsafe


_SEGMENT = re.compile(r"\[\]|[^.\[]+")


def _prefixes(paths: list[str]) -> set[str]:
    """Every proper prefix of the paths, as the walk builds them (``a``, ``a.b``, ``a.b[]`` of ``a.b[].c``)."""
    found: set[str] = set()
    for path in paths:
        built = ""
        for segment in _SEGMENT.findall(path)[:-1]:
            built = built + segment if segment == "[]" or not built else f"{built}.{segment}"
            found.add(built)
    return found


def refused_fields(spec: Any, path: str, old: Any = None) -> list[FieldError]:
    """The fields of pod spec ``spec`` (at ``path``, e.g. ``spec.template.spec``) labctl refuses.

    ``old`` is the stored spec on an update (None on a create): what did not change is not
    refused again.
    """
    if not isinstance(spec, dict):
        return []
    walk = _Walk(*_tables())
    walk.check(spec, "", path, _MISSING if old is None else old)
    return walk.errors


@cache
def _tables() -> tuple[dict[str, Accepts], dict[str, Unsafe], set[str], set[str]]:
    """The flat tables and the paths within them, built once (the tables are constants)."""
    honoured, unsafe = _expand()
    return honoured, unsafe, _prefixes(list(honoured)), _prefixes(list(unsafe))


class _Walk:
    """One walk over a pod spec: at every field the unsafe table first, then the honoured one."""

    def __init__(self, honoured: dict[str, Accepts], unsafe: dict[str, Unsafe], within: set[str],
                 within_unsafe: set[str]) -> None:
        self.honoured, self.unsafe = honoured, unsafe
        self.within, self.within_unsafe = within, within_unsafe
        self.errors: list[FieldError] = []

    def check(self, value: Any, pattern: str, shown: str, old: Any) -> None:
        if _unchanged(value, old) or _empty(value, pattern) or self._unsafe(value, pattern, shown):
            return
        accepts = self.honoured.get(pattern)
        if accepts == ANY:
            self._unsafe_below(value, pattern, shown, old)
        elif isinstance(accepts, tuple):
            if not any(allowed.matches(value) if isinstance(allowed, Matching) else _same(value, allowed)
                       for allowed in accepts):
                supported = ", ".join(_quote(a) for a in accepts)
                self.errors.append(forbidden(shown, f"labctl does not support {_quote(value)} here (it would be "
                                                    f"ignored); supported: {supported}"))
        elif pattern == "" or pattern in self.within:
            for child in _items(value, pattern, shown, old):
                self.check(*child)
        else:  # refused whole: by the unsafe values below it if any (the reason that matters), else as ignored
            found = len(self.errors)
            self._unsafe_below(value, pattern, shown, old)
            if len(self.errors) == found:
                self.errors.append(forbidden(shown, NOT_HONOURED))

    def _unsafe(self, value: Any, pattern: str, shown: str) -> bool:
        rule = self.unsafe.get(pattern)
        if rule is None or not rule[0](value):
            return False
        self.errors.append(forbidden(shown, f"{GIVES_THE_HOST} ({rule[1]})"))
        return True

    def _unsafe_below(self, value: Any, pattern: str, shown: str, old: Any) -> None:
        """Below a field honoured whole or refused whole: the unsafe values are named with their reason."""
        if pattern not in self.within_unsafe:
            return
        for child, child_pattern, child_shown, child_old in _items(value, pattern, shown, old):
            if not _unchanged(child, child_old) and not self._unsafe(child, child_pattern, child_shown):
                self._unsafe_below(child, child_pattern, child_shown, child_old)


def _unchanged(value: Any, old: Any) -> bool:
    return old is not _MISSING and _same(value, old)


def _empty(value: Any, pattern: str) -> bool:
    """Nothing to honour: Go's decoder and ``omitempty`` make these the same as an absent field.

    Except a volume's source, which its key alone names: ``emptyDir: {}`` is a volume.
    """
    if value == {} and pattern.startswith("volumes[]."):
        return False
    return value is None or (not isinstance(value, bool) and value in ("", {}, []))


def _items(value: Any, pattern: str, shown: str, old: Any) -> Iterator[tuple[Any, str, str, Any]]:
    """The children of an object or list with their table pattern, shown path and stored counterpart."""
    if isinstance(value, dict):
        old_map = old if isinstance(old, dict) else {}
        for key, child in value.items():
            yield (child, f"{pattern}.{key}" if pattern else key, f"{shown}.{key}" if shown else key,
                   old_map.get(key, _MISSING))
    elif isinstance(value, list):
        old_items = old if isinstance(old, list) else []
        for i, child in enumerate(value):
            yield child, f"{pattern}[]", f"{shown}[{i}]", old_items[i] if i < len(old_items) else _MISSING


def _same(left: Any, right: Any) -> bool:
    """JSON equality: ``true`` is not ``1``."""
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_same(v, right[k]) for k, v in left.items())
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_same(a, b) for a, b in zip(left, right, strict=True))
    return type(left) is type(right) and bool(left == right)


def _quote(value: Any) -> str:
    if isinstance(value, Matching):
        return f'"{value.shown}"'
    return f'"{value}"' if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)
