"""The Node authorizer and the NodeRestriction admission check: what a node's credentials may do.

Every node agent authenticates as ``system:node:<name>`` in ``system:nodes`` (its client
certificate). Like kube-apiserver's ``--authorization-mode=Node`` plus the
``NodeRestriction`` admission plugin, a node may

* read what its kubelet, service-proxy and network-policy roles watch: Nodes, Pods, Services,
  Endpoints, EndpointSlices, Namespaces, NetworkPolicies;
* read a Secret or ConfigMap, and ask a token for a ServiceAccount, only when a pod bound to
  it (``spec.nodeName``) uses them, and get a PersistentVolumeClaim such a pod mounts and the
  PersistentVolume bound to it — the graph kube keeps, walked here in the store;
* write its own Node and Node status, its own Lease in ``kube-node-lease``, the status of
  pods bound to it, delete (and evict) pods bound to it, record Events — and nothing else.

The authorizer decides from the URL; :class:`NodeRestriction` then looks at the object
(the stored pod's ``spec.nodeName``, the name in a create's body, a TokenRequest's
``boundObjectRef``), as admission does after authorization. Simplifications: labctl has no
mirror pods or CSI; a node's labels and taints are its agent's to set (the agent
registers its role labels, which kube's kubelet may not).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from labctl.apiserver import errors
from labctl.apiserver.storage import Store
from labctl.apiserver.users import User, node_name

from .attributes import Attributes, forbidden_object
from .rules import Rule

NODE_LEASE_NAMESPACE = "kube-node-lease"
MIRROR_POD_ANNOTATION = "kubernetes.io/config.mirror"
_READ = ["get", "list", "watch"]


def _rule(verbs: list[str], groups: list[str], resources: list[str]) -> dict[str, list[str]]:
    return {"verbs": verbs, "apiGroups": groups, "resources": resources}


#: kube's ``bootstrappolicy.NodeRules()`` (the ``system:node`` ClusterRole's rules)
KUBE_NODE_RULES: tuple[dict[str, list[str]], ...] = (
    _rule(["create"], ["authentication.k8s.io"], ["tokenreviews"]),
    _rule(["create"], ["authorization.k8s.io"], ["subjectaccessreviews", "localsubjectaccessreviews"]),
    _rule(_READ, [""], ["services"]),
    _rule(["create", "get", "list", "watch"], [""], ["nodes"]),
    _rule(["update", "patch"], [""], ["nodes/status"]),
    _rule(["update", "patch"], [""], ["nodes"]),
    _rule(["create", "update", "patch"], [""], ["events"]),
    _rule(_READ, [""], ["pods"]),
    _rule(["create", "delete"], [""], ["pods"]),
    _rule(["update", "patch"], [""], ["pods/status"]),
    _rule(["create"], [""], ["pods/eviction"]),
    _rule(["get", "list", "watch"], [""], ["secrets", "configmaps"]),
    _rule(["get"], [""], ["endpoints"]),
    _rule(["get"], [""], ["persistentvolumeclaims", "persistentvolumes"]),
    _rule(["get", "create", "update", "patch", "delete"], ["coordination.k8s.io"], ["leases"]),
    _rule(["create"], [""], ["serviceaccounts/token"]),
)
#: what labctl's agent needs beyond them: it is kube-proxy too (kube gives kube-proxy
#: ``system:node-proxier`` under its own identity), reads Namespaces, and enforces
#: NetworkPolicies (what kube gives a CNI's node agent, e.g. Calico's, under its own identity)
NODE_RULES: tuple[dict[str, list[str]], ...] = (
    *KUBE_NODE_RULES,
    _rule(["list", "watch"], [""], ["services", "endpoints"]),
    _rule(_READ, [""], ["nodes"]),
    _rule(["list", "watch"], ["discovery.k8s.io"], ["endpointslices"]),
    _rule(["create", "patch", "update"], ["", "events.k8s.io"], ["events"]),
    _rule(_READ, [""], ["namespaces"]),
    _rule(["list", "watch"], ["networking.k8s.io"], ["networkpolicies"]),
)
_COMPILED = tuple(Rule.of(r) for r in NODE_RULES)


def _pods_on(store: Store, namespace: str, node: str) -> Iterator[dict[str, Any]]:
    for pod in store.list("core/pods", namespace):
        if (pod.get("spec") or {}).get("nodeName") == node:
            yield pod


def _references(pod: dict[str, Any], kind: str) -> Iterator[str]:
    """Names of the Secrets (``kind="secret"``) or ConfigMaps (``"configMap"``) a pod uses (``VisitPodSecretNames``)."""
    spec = pod.get("spec") or {}
    key_ref, env_from = ("secretKeyRef", "secretRef") if kind == "secret" else ("configMapKeyRef", "configMapRef")
    if kind == "secret":
        yield from (s.get("name", "") for s in spec.get("imagePullSecrets") or [] if isinstance(s, dict))
    for volume in spec.get("volumes") or []:
        source = volume.get(kind) if isinstance(volume, dict) else None
        if isinstance(source, dict):
            yield source.get("secretName" if kind == "secret" else "name", "")
        for projected in ((volume.get("projected") or {}).get("sources") or []) if isinstance(volume, dict) else []:
            if isinstance(projected, dict) and isinstance(projected.get(kind), dict):
                yield projected[kind].get("name", "")
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(group) or []:
            for env in container.get("env") or []:
                ref = ((env.get("valueFrom") or {}).get(key_ref) or {}) if isinstance(env, dict) else {}
                yield ref.get("name", "")
            for source in container.get("envFrom") or []:
                yield ((source.get(env_from) or {}) if isinstance(source, dict) else {}).get("name", "")


def _claims(pod: dict[str, Any]) -> Iterator[str]:
    """The claims a pod's ``persistentVolumeClaim`` volumes name."""
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        source = volume.get("persistentVolumeClaim") if isinstance(volume, dict) else None
        if isinstance(source, dict):
            yield str(source.get("claimName", ""))


class NodeAuthorizer:
    """kube's ``NodeAuthorizer``: decides for node identities only, no opinion on anyone else."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def authorize(self, attrs: Attributes) -> tuple[bool | None, str]:
        """(True, "") allowed; (None, reason) no opinion — RBAC decides next."""
        node = node_name(attrs.user)
        if node is None:
            return None, ""
        if not node:
            return None, f'unknown node for user "{attrs.user.name}"'
        if attrs.resource_request and attrs.api_group == "":
            if attrs.resource in ("secrets", "configmaps"):
                return self._read_related(node, attrs)
            if attrs.resource == "serviceaccounts":
                return self._create_token(node, attrs)
            if attrs.resource in ("persistentvolumeclaims", "persistentvolumes"):
                return self._read_volume(node, attrs)
        if attrs.resource_request and (attrs.api_group, attrs.resource) == ("coordination.k8s.io", "leases"):
            return self._lease(node, attrs)
        if any(rule.allows(attrs) for rule in _COMPILED):
            return True, ""
        return None, ""

    def _read_related(self, node: str, attrs: Attributes) -> tuple[bool | None, str]:
        if attrs.verb not in _READ:
            return None, "can only read resources of this type"
        if attrs.subresource:
            return None, "cannot read subresource"
        if not attrs.namespace:
            return None, "can only read namespaced object of this type"
        if not attrs.name:
            return None, "No Object name found"
        kind = "secret" if attrs.resource == "secrets" else "configMap"
        if any(attrs.name in set(_references(pod, kind)) for pod in _pods_on(self.store, attrs.namespace, node)):
            return True, ""
        return None, f"no relationship found between node '{node}' and this object"

    def _read_volume(self, node: str, attrs: Attributes) -> tuple[bool | None, str]:
        """A claim a pod of the node mounts, or the volume bound to such a claim (the graph's pod → pvc → pv)."""
        if attrs.verb != "get" or attrs.subresource or not attrs.name:
            return None, "can only get individual resources of this type"
        namespaces = [attrs.namespace] if attrs.resource == "persistentvolumeclaims" else [None]
        for pod in (p for ns in namespaces for p in self.store.list("core/pods", ns)):
            if (pod.get("spec") or {}).get("nodeName") != node:
                continue
            for claim in _claims(pod):
                if attrs.resource == "persistentvolumeclaims" and claim == attrs.name:
                    return True, ""
                pvc = self.store.get(("core/persistentvolumeclaims", pod["metadata"].get("namespace", ""), claim))
                if attrs.resource == "persistentvolumes" and ((pvc or {}).get("spec") or {}).get(
                        "volumeName") == attrs.name:
                    return True, ""
        return None, f"no relationship found between node '{node}' and this object"

    def _create_token(self, node: str, attrs: Attributes) -> tuple[bool | None, str]:
        if attrs.verb != "create" or not attrs.name:
            return None, "can only create tokens for individual service accounts"
        if attrs.subresource != "token":
            return None, "can only create token subresource of serviceaccount"
        for pod in _pods_on(self.store, attrs.namespace, node):
            if ((pod.get("spec") or {}).get("serviceAccountName") or "default") == attrs.name:
                return True, ""
        return None, f"no relationship found between node '{node}' and this object"

    def _lease(self, node: str, attrs: Attributes) -> tuple[bool | None, str]:
        if attrs.verb not in ("get", "create", "update", "patch", "delete"):
            return None, "can only get, create, update, patch, or delete a node lease"
        if attrs.namespace != NODE_LEASE_NAMESPACE:
            return None, f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace'
        if attrs.verb != "create" and attrs.name != node:
            return None, "can only access node lease with the same name as the requesting node"
        return True, ""


class NodeRestriction:
    """kube's ``NodeRestriction`` admission plugin: a node writes only what is its own.

    :meth:`needs_body` says when the object must be read (creates name their object in the
    body only); :meth:`admit` raises the 403 kube's plugin answers.
    """

    def __init__(self, store: Store) -> None:
        self.store = store

    @staticmethod
    def needs_body(attrs: Attributes) -> bool:
        return (attrs.verb == "create" and attrs.api_group in ("", "coordination.k8s.io")
                and (attrs.resource, attrs.subresource) in (("nodes", ""), ("pods", ""), ("leases", ""),
                                                            ("serviceaccounts", "token")))

    def admit(self, user: User, attrs: Attributes, body: dict[str, Any] | None) -> None:
        node = node_name(user)
        if node is None or not attrs.resource_request or attrs.verb not in ("create", "update", "patch", "delete"):
            return
        resource = (attrs.api_group, attrs.resource)
        if resource == ("", "pods"):
            self._admit_pod(node, attrs, body)
        elif resource == ("", "nodes"):
            requested = attrs.name or _name_of(body)
            if requested != node:
                raise _forbidden(attrs, requested, f'node "{node}" is not allowed to modify node "{requested}"')
        elif resource == ("coordination.k8s.io", "leases"):
            requested = attrs.name or _name_of(body)
            if attrs.namespace != NODE_LEASE_NAMESPACE:
                raise _forbidden(attrs, requested,
                                 f'can only access leases in the "{NODE_LEASE_NAMESPACE}" system namespace')
            if requested != node:
                raise _forbidden(attrs, requested,
                                 "can only access node lease with the same name as the requesting node")
        elif resource == ("", "serviceaccounts") and attrs.subresource == "token" and attrs.verb == "create":
            self._admit_token(node, attrs, body or {})

    def _admit_pod(self, node: str, attrs: Attributes, body: dict[str, Any] | None) -> None:
        if attrs.subresource in ("status", "eviction") or (attrs.subresource == "" and attrs.verb == "delete"):
            pod = self.store.get(("core/pods", attrs.namespace, attrs.name))
            if pod is None:
                return  # the REST layer answers 404, as the plugin does
            if (pod.get("spec") or {}).get("nodeName") != node:
                what = {"status": f'node "{node}" can only update pod status for pods with spec.nodeName set to itself',
                        "eviction": f"node {node} can only evict pods with spec.nodeName set to itself",
                        "": f'node "{node}" can only delete pods with spec.nodeName set to itself'}
                raise _forbidden(attrs, attrs.name, what[attrs.subresource])
        elif attrs.subresource:
            raise _forbidden(attrs, attrs.name, f"unexpected pod subresource \"{attrs.subresource}\", "
                                                "only 'status' and 'eviction' are allowed")
        elif attrs.verb == "create":
            pod = body or {}
            if MIRROR_POD_ANNOTATION not in ((pod.get("metadata") or {}).get("annotations") or {}):
                raise _forbidden(attrs, _name_of(body), f'pod does not have "{MIRROR_POD_ANNOTATION}" annotation, '
                                                        f'node "{node}" can only create mirror pods')
            if (pod.get("spec") or {}).get("nodeName") != node:
                raise _forbidden(attrs, _name_of(body),
                                 f'node "{node}" can only create pods with spec.nodeName set to itself')

    def _admit_token(self, node: str, attrs: Attributes, body: dict[str, Any]) -> None:
        ref = (body.get("spec") or {}).get("boundObjectRef") or {}
        bound_to_pod = isinstance(ref, dict) and (ref.get("apiVersion"), ref.get("kind")) == ("v1", "Pod")
        if not bound_to_pod or not ref.get("name"):
            raise _forbidden(attrs, attrs.name, "node requested token not bound to a pod")
        if not ref.get("uid"):
            raise _forbidden(attrs, attrs.name, "node requested token with a pod binding without a uid")
        pod = self.store.get(("core/pods", attrs.namespace, str(ref["name"])))
        if pod is None:
            raise errors.not_found("pods", "", str(ref["name"]))
        if pod["metadata"].get("uid") != ref["uid"]:
            raise _forbidden(attrs, attrs.name, f"the UID in the bound object reference ({ref['uid']}) does not "
                                                "match the UID in record. The object might have been deleted and "
                                                "then recreated")
        if (pod.get("spec") or {}).get("nodeName") != node:
            raise _forbidden(attrs, attrs.name, "node requested token bound to a pod scheduled on a different node")


def _name_of(body: dict[str, Any] | None) -> str:
    name = ((body or {}).get("metadata") or {}).get("name") if isinstance((body or {}).get("metadata"), dict) else ""
    return name if isinstance(name, str) and name else "Unknown"


def _forbidden(attrs: Attributes, name: str, detail: str) -> errors.APIError:
    """``admission.NewForbidden``: the object's resource and name, then the plugin's reason."""
    return forbidden_object(attrs.api_group, attrs.resource, name, detail)
