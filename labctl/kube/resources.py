"""The table of resources the API server serves.

One row per REST resource, holding what discovery advertises (verbs, short names,
categories, subresources) and what the handlers need to know (scope, kind, list kind).
Adding a kind to the lab is adding a row here plus its defaulting/validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class ResourceType:
    """A REST resource, e.g. ``apps/v1 deployments``."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = tuple(ALL_VERBS)
    #: kinds whose ``spec`` changes bump ``metadata.generation``
    has_spec: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return self.kind + "List"

    @property
    def key(self) -> str:
        """Storage key prefix, like etcd's ``/registry/<group>/<plural>``."""
        return f"{self.group or 'core'}/{self.plural}"

    @property
    def qualified(self) -> str:
        """``deployments.apps`` as it appears in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Namespace", "namespaces", "namespace", False, ("ns",), (), ("status", "finalize"),
                 has_spec=False),
    ResourceType("", "v1", "Node", "nodes", "node", False, ("no",), (), ("status",)),
    ResourceType("", "v1", "Pod", "pods", "pod", True, ("po",), ("all",),
                 ("status", "binding", "log", "exec", "eviction")),
    ResourceType("", "v1", "Service", "services", "service", True, ("svc",), ("all",), ("status",)),
    ResourceType("", "v1", "Endpoints", "endpoints", "endpoints", True, ("ep",), (), (), has_spec=False),
    ResourceType("", "v1", "Event", "events", "event", True, ("ev",), (), (), has_spec=False),
    ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",), (), (), has_spec=False),
    ResourceType("", "v1", "Secret", "secrets", "secret", True, (), (), (), has_spec=False),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True, ("sa",), (), ("token",),
                 has_spec=False),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", "replicaset", True, ("rs",), ("all",),
                 ("status", "scale")),
    ResourceType("apps", "v1", "Deployment", "deployments", "deployment", True, ("deploy",), ("all",),
                 ("status", "scale")),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", "lease", True),
    ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", True,
                 has_spec=False),
)

#: subresource -> (kind answered, verbs)
SUBRESOURCE_KINDS = {
    "status": (None, ("get", "patch", "update")),
    "scale": (("autoscaling", "v1", "Scale"), ("get", "patch", "update")),
    "binding": (("", "v1", "Binding"), ("create",)),
    "eviction": (("policy", "v1", "Eviction"), ("create",)),
    "log": (("", "v1", "Pod"), ("get",)),
    "exec": (("", "v1", "PodExecOptions"), ("create", "get")),
    "finalize": (None, ("update",)),
    "token": (("authentication.k8s.io", "v1", "TokenRequest"), ("create",)),
}


@dataclass
class Registry:
    """Lookup of resource types by group/version/plural and by kind."""

    resources: tuple[ResourceType, ...] = RESOURCES
    _by_path: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _by_kind: dict[tuple[str, str], ResourceType] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rt in self.resources:
            self._by_path[(rt.group, rt.version, rt.plural)] = rt
            self._by_kind[(rt.api_version, rt.kind)] = rt

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def groups(self) -> dict[str, list[str]]:
        """group -> versions, in discovery order (core group first)."""
        out: dict[str, list[str]] = {}
        for rt in self.resources:
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self.resources if rt.group == group and rt.version == version]
