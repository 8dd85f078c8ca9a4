"""The table of resources the API server serves: THE list of kinds labctl knows.

One row per REST resource, holding what discovery advertises (verbs, short names,
categories, subresources), what every client needs to address it (group, version,
plural, scope) and how its ``metadata.name`` is validated. The API client builds paths
from it, the API server routes, discovers and validates names with it. Adding a kind to
the lab is adding a row here plus the API server's strategy for it
(``labctl/apiserver/strategies``: defaulting, validation, printing).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .validators import DNS1035_LABEL, DNS_LABEL, DNS_SUBDOMAIN, PATH_SEGMENT

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
#: the reviews (SelfSubjectAccessReview, SelfSubjectReview, ...) are answered, never stored
CREATE_ONLY = ("create",)
RBAC_GROUP = "rbac.authorization.k8s.io"
APIEXTENSIONS_GROUP = "apiextensions.k8s.io"
#: metrics-server's group: ``kubectl top`` reads NodeMetrics and PodMetrics from it
METRICS_GROUP = "metrics.k8s.io"


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
    #: how ``metadata.name`` is validated, a key of :data:`labctl.kube.validators.NAME_RULES`
    name_rule: str = DNS_SUBDOMAIN
    #: a second view of another resource's objects (``events.k8s.io/v1`` events are core/v1's, converted):
    #: that resource's storage key
    view_of: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    #: a custom resource's list kind (``spec.names.listKind``); built-in kinds: ``<kind>List``
    custom_list_kind: str = ""

    @property
    def list_kind(self) -> str:
        return self.custom_list_kind or self.kind + "List"

    @property
    def key(self) -> str:
        """Storage key prefix, like etcd's ``/registry/<group>/<plural>`` (a view's is the viewed resource's)."""
        return self.view_of or f"{self.group or 'core'}/{self.plural}"

    @property
    def qualified(self) -> str:
        """``deployments.apps`` as it appears in error messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES: tuple[ResourceType, ...] = (
    ResourceType("", "v1", "Namespace", "namespaces", "namespace", False, ("ns",), (), ("status", "finalize"),
                 name_rule=DNS_LABEL),
    ResourceType("", "v1", "Node", "nodes", "node", False, ("no",), (), ("status", "proxy")),
    ResourceType("", "v1", "Pod", "pods", "pod", True, ("po",), ("all",),
                 ("status", "binding", "log", "exec", "attach", "portforward", "ephemeralcontainers", "eviction",
                  "proxy")),
    # Service names become DNS names and environment variables: they must start with a letter
    ResourceType("", "v1", "Service", "services", "service", True, ("svc",), ("all",), ("status", "proxy"),
                 name_rule=DNS1035_LABEL),
    ResourceType("", "v1", "Endpoints", "endpoints", "endpoints", True, ("ep",)),
    ResourceType("", "v1", "Event", "events", "event", True, ("ev",)),
    ResourceType("", "v1", "ConfigMap", "configmaps", "configmap", True, ("cm",)),
    ResourceType("", "v1", "Secret", "secrets", "secret", True),
    ResourceType("", "v1", "ServiceAccount", "serviceaccounts", "serviceaccount", True, ("sa",), (), ("token",)),
    ResourceType("", "v1", "PersistentVolume", "persistentvolumes", "persistentvolume", False, ("pv",), (),
                 ("status",)),
    ResourceType("", "v1", "PersistentVolumeClaim", "persistentvolumeclaims", "persistentvolumeclaim", True,
                 ("pvc",), (), ("status",)),
    ResourceType("", "v1", "LimitRange", "limitranges", "limitrange", True, ("limits",)),
    ResourceType("", "v1", "ResourceQuota", "resourcequotas", "resourcequota", True, ("quota",), (), ("status",)),
    ResourceType("apps", "v1", "ReplicaSet", "replicasets", "replicaset", True, ("rs",), ("all",),
                 ("status", "scale")),
    ResourceType("apps", "v1", "Deployment", "deployments", "deployment", True, ("deploy",), ("all",),
                 ("status", "scale")),
    ResourceType("apps", "v1", "DaemonSet", "daemonsets", "daemonset", True, ("ds",), ("all",), ("status",)),
    ResourceType("apps", "v1", "StatefulSet", "statefulsets", "statefulset", True, ("sts",), ("all",),
                 ("status", "scale")),
    ResourceType("apps", "v1", "ControllerRevision", "controllerrevisions", "controllerrevision", True),
    ResourceType("batch", "v1", "Job", "jobs", "job", True, (), ("all",), ("status",)),
    ResourceType("batch", "v1", "CronJob", "cronjobs", "cronjob", True, ("cj",), ("all",), ("status",)),
    ResourceType("authentication.k8s.io", "v1", "SelfSubjectReview", "selfsubjectreviews", "selfsubjectreview",
                 False, verbs=CREATE_ONLY),
    ResourceType("authorization.k8s.io", "v1", "LocalSubjectAccessReview", "localsubjectaccessreviews",
                 "localsubjectaccessreview", True, verbs=CREATE_ONLY),
    ResourceType("authorization.k8s.io", "v1", "SelfSubjectAccessReview", "selfsubjectaccessreviews",
                 "selfsubjectaccessreview", False, verbs=CREATE_ONLY),
    ResourceType("authorization.k8s.io", "v1", "SelfSubjectRulesReview", "selfsubjectrulesreviews",
                 "selfsubjectrulesreview", False, verbs=CREATE_ONLY),
    ResourceType("authorization.k8s.io", "v1", "SubjectAccessReview", "subjectaccessreviews", "subjectaccessreview",
                 False, verbs=CREATE_ONLY),
    # RBAC names are path segments, not DNS names: "system:node", "system:aggregate-to-view"
    ResourceType(RBAC_GROUP, "v1", "ClusterRoleBinding", "clusterrolebindings", "clusterrolebinding", False,
                 name_rule=PATH_SEGMENT),
    ResourceType(RBAC_GROUP, "v1", "ClusterRole", "clusterroles", "clusterrole", False, name_rule=PATH_SEGMENT),
    ResourceType(RBAC_GROUP, "v1", "RoleBinding", "rolebindings", "rolebinding", True, name_rule=PATH_SEGMENT),
    ResourceType(RBAC_GROUP, "v1", "Role", "roles", "role", True, name_rule=PATH_SEGMENT),
    ResourceType("coordination.k8s.io", "v1", "Lease", "leases", "lease", True),
    ResourceType("discovery.k8s.io", "v1", "EndpointSlice", "endpointslices", "endpointslice", True),
    ResourceType("networking.k8s.io", "v1", "NetworkPolicy", "networkpolicies", "networkpolicy", True, ("netpol",)),
    ResourceType("scheduling.k8s.io", "v1", "PriorityClass", "priorityclasses", "priorityclass", False, ("pc",)),
    ResourceType("storage.k8s.io", "v1", "StorageClass", "storageclasses", "storageclass", False, ("sc",)),
    ResourceType("policy", "v1", "PodDisruptionBudget", "poddisruptionbudgets", "poddisruptionbudget", True, ("pdb",),
                 (), ("status",)),
    ResourceType("networking.k8s.io", "v1", "Ingress", "ingresses", "ingress", True, ("ing",),
                 subresources=("status",)),
    ResourceType("networking.k8s.io", "v1", "IngressClass", "ingressclasses", "ingressclass", False),
    ResourceType(APIEXTENSIONS_GROUP, "v1", "CustomResourceDefinition", "customresourcedefinitions",
                 "customresourcedefinition", False, ("crd", "crds"), ("api-extensions",), ("status",)),
    ResourceType("events.k8s.io", "v1", "Event", "events", "event", True, view_of="core/events"),
    ResourceType("autoscaling", "v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers",
                 "horizontalpodautoscaler", True, ("hpa",), ("all",), ("status",)),
    # read-only figures computed on request (labctl/apiserver/resourcemetrics.py), never stored,
    # as metrics-server serves them through the aggregation layer
    ResourceType(METRICS_GROUP, "v1beta1", "NodeMetrics", "nodes", "", False, verbs=("get", "list")),
    ResourceType(METRICS_GROUP, "v1beta1", "PodMetrics", "pods", "", True, verbs=("get", "list")),
)
#: by plural, views aside; the core group wins a plural metrics.k8s.io shares with it ("pods", "nodes")
_BY_PLURAL: dict[str, ResourceType] = {}
for _rt in RESOURCES:
    if not _rt.view_of:
        _BY_PLURAL.setdefault(_rt.plural, _rt)


def _unserved(api_version: str, kind: str, plural: str, namespaced: bool = False,
              short_names: tuple[str, ...] = ()) -> ResourceType:
    group, _, version = api_version.rpartition("/")
    return ResourceType(group, version, kind, plural, kind.lower(), namespaced, short_names, verbs=())


#: Kubernetes' built-in kinds labctl does not serve. Discovery lists them with no verbs (the
#: truth: the resource exists in Kubernetes, this server supports nothing on it), so kubectl
#: maps a manifest's kind to a URL and the server's answer names the kind and says labctl does
#: not serve it, instead of kubectl's "no matches for kind ... ensure CRDs are installed first".
UNSERVED: tuple[ResourceType, ...] = (
    _unserved("v1", "Binding", "bindings", True),
    _unserved("v1", "ComponentStatus", "componentstatuses", short_names=("cs",)),
    _unserved("v1", "PodTemplate", "podtemplates", True),
    _unserved("v1", "ReplicationController", "replicationcontrollers", True, ("rc",)),
    _unserved("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "mutatingwebhookconfigurations"),
    _unserved("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", "validatingadmissionpolicies"),
    _unserved("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding",
              "validatingadmissionpolicybindings"),
    _unserved("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "validatingwebhookconfigurations"),
    _unserved("apiregistration.k8s.io/v1", "APIService", "apiservices"),
    _unserved("authentication.k8s.io/v1", "TokenReview", "tokenreviews"),
    _unserved("certificates.k8s.io/v1", "CertificateSigningRequest", "certificatesigningrequests",
              short_names=("csr",)),
    _unserved("flowcontrol.apiserver.k8s.io/v1", "FlowSchema", "flowschemas"),
    _unserved("flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration", "prioritylevelconfigurations"),
    _unserved("networking.k8s.io/v1", "IPAddress", "ipaddresses"),
    _unserved("networking.k8s.io/v1", "ServiceCIDR", "servicecidrs"),
    _unserved("node.k8s.io/v1", "RuntimeClass", "runtimeclasses"),
    _unserved("resource.k8s.io/v1", "DeviceClass", "deviceclasses"),
    _unserved("resource.k8s.io/v1", "ResourceClaim", "resourceclaims", True),
    _unserved("resource.k8s.io/v1", "ResourceClaimTemplate", "resourceclaimtemplates", True),
    _unserved("resource.k8s.io/v1", "ResourceSlice", "resourceslices"),
    _unserved("storage.k8s.io/v1", "CSIDriver", "csidrivers"),
    _unserved("storage.k8s.io/v1", "CSINode", "csinodes"),
    _unserved("storage.k8s.io/v1", "CSIStorageCapacity", "csistoragecapacities", True),
    _unserved("storage.k8s.io/v1", "VolumeAttachment", "volumeattachments"),
    _unserved("storage.k8s.io/v1", "VolumeAttributesClass", "volumeattributesclasses"),
)


def not_served_message(rt: ResourceType) -> str:
    """What every request on an unserved kind answers."""
    return f"labctl does not serve {rt.kind} ({rt.api_version})"


def resource_for(plural: str) -> ResourceType:
    """The served resource named ``plural`` (``"pods"``, ``"deployments"``); KeyError for others.

    Plurals are unique across the groups labctl stores, views aside (``events.k8s.io`` events),
    so a plural alone names a resource, as it does for ``kubectl get`` (``pods`` and ``nodes`` of
    ``metrics.k8s.io`` are the figures about those objects, addressed by group).
    """
    return _BY_PLURAL[plural]


#: subresource -> (kind answered, verbs)
SUBRESOURCE_KINDS = {
    "status": (None, ("get", "patch", "update")),
    "scale": (("autoscaling", "v1", "Scale"), ("get", "patch", "update")),
    "binding": (("", "v1", "Binding"), ("create",)),
    "eviction": (("policy", "v1", "Eviction"), ("create",)),
    "log": (("", "v1", "Pod"), ("get",)),
    "exec": (("", "v1", "PodExecOptions"), ("create", "get")),
    "attach": (("", "v1", "PodAttachOptions"), ("create", "get")),
    "ephemeralcontainers": (None, ("get", "patch", "update")),
    "portforward": (("", "v1", "PodPortForwardOptions"), ("create", "get")),
    "finalize": (None, ("update",)),
    "token": (("authentication.k8s.io", "v1", "TokenRequest"), ("create",)),
    # the kind is the resource's own options kind: PodProxyOptions, ServiceProxyOptions, NodeProxyOptions
    "proxy": (("", "v1", "ProxyOptions"), ("create", "delete", "get", "patch", "update")),
}


def subresource_kind(rt: ResourceType, sub: str) -> tuple[tuple[str, str, str] | None, tuple[str, ...]]:
    """(group, version, kind) answered by ``rt``'s subresource ``sub`` (None: the resource's own kind), and its verbs."""
    sub_kind, verbs = SUBRESOURCE_KINDS[sub]
    if sub == "proxy":
        return ("", "v1", f"{rt.kind}ProxyOptions"), verbs
    return sub_kind, verbs


@dataclass
class Registry:
    """Lookup of resource types by group/version/plural and by kind.

    The built-in kinds are fixed; custom resources come and go with their
    CustomResourceDefinitions (:meth:`serve`, :meth:`unserve`), as kube-apiserver's
    apiextensions handler adds them to discovery and routing while it runs.
    """

    resources: tuple[ResourceType, ...] = RESOURCES
    #: listed in discovery without verbs; never looked up as served (:data:`UNSERVED`)
    unserved: tuple[ResourceType, ...] = UNSERVED
    _by_path: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)
    _by_kind: dict[tuple[str, str], ResourceType] = field(default_factory=dict)
    _unserved_by_path: dict[tuple[str, str, str], ResourceType] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for rt in self.resources:
            self._by_path[(rt.group, rt.version, rt.plural)] = rt
            self._by_kind[(rt.api_version, rt.kind)] = rt
        served = set(self._by_path)
        for rt in self.unserved:  # a kind served since (another row) wins
            if (rt.group, rt.version, rt.plural) not in served:
                self._unserved_by_path[(rt.group, rt.version, rt.plural)] = rt

    def serve(self, rt: ResourceType) -> None:
        """Add (or replace) a custom resource: every earlier version of the same resource goes."""
        self.unserve(rt.key)
        self.resources = (*self.resources, rt)
        self._by_path[(rt.group, rt.version, rt.plural)] = rt
        self._unserved_by_path.pop((rt.group, rt.version, rt.plural), None)
        self._by_kind[(rt.api_version, rt.kind)] = rt

    def unserve(self, key: str) -> None:
        """Stop serving the resource stored under ``key`` (``stable.example.com/crontabs``)."""
        gone = [rt for rt in self.resources if rt.key == key]
        if not gone:
            return
        self.resources = tuple(rt for rt in self.resources if rt.key != key)
        for rt in gone:
            self._by_path.pop((rt.group, rt.version, rt.plural), None)
            self._by_kind.pop((rt.api_version, rt.kind), None)

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def lookup_unserved(self, group: str, version: str, plural: str) -> ResourceType | None:
        """A built-in kind labctl lists in discovery but does not serve."""
        return self._unserved_by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        return self._by_kind.get((api_version, kind))

    def groups(self) -> dict[str, list[str]]:
        """group -> versions, in discovery order (core group first), the unserved kinds' too."""
        out: dict[str, list[str]] = {}
        for rt in self.resources + tuple(self._unserved_by_path.values()):
            versions = out.setdefault(rt.group, [])
            if rt.version not in versions:
                versions.append(rt.version)
        return out

    def in_group_version(self, group: str, version: str) -> list[ResourceType]:
        return [rt for rt in self.resources + tuple(self._unserved_by_path.values())
                if rt.group == group and rt.version == version]
