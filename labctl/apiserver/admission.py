"""The admission chain of writes, after the kind's strategy: kube's mutating, then validating admission plugins.

Kube runs its admission plugins around the registry's create/update: the mutating ones
(``LimitRanger`` fills in container resources, ``ServiceAccount`` adds the token volume,
:mod:`labctl.kube.serviceaccount`) before the strategy validates, the validating ones
(``LimitRanger``'s min/max, ``ResourceQuota``) after, right before the write. Labctl's other
admission steps belong to one kind and live in its strategy (``Strategy.admit``: the Pod
fields labctl honours, DefaultStorageClass ...); these read other objects of the namespace
(LimitRanges, ServiceAccounts, ResourceQuotas), so ``rest.py`` calls them here for every kind.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labctl.kube.resources import ResourceType
from labctl.kube.serviceaccount import mount_token_volume, should_automount

from . import errors, limitranger, resourcequota
from .authz.node import MIRROR_POD_ANNOTATION

if TYPE_CHECKING:
    from .strategies.base import Storage

Obj = dict[str, Any]


def mutate(api: Storage, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
    """Mutating admission of a new pod: its containers get their namespace's default resources
    (LimitRanger) and its service-account token volume (ServiceAccount)."""
    if old is None and rt.key == "core/pods":
        limitranger.default_pod(api, obj)
        mount_service_account_token(api, obj)


def mount_service_account_token(api: Storage, pod: Obj) -> None:
    """kube's ServiceAccount admission: the pod's ServiceAccount must exist (a 403 naming it, as kube's),
    and the ``kube-api-access-…`` volume is mounted in every container."""
    meta = pod.get("metadata") or {}
    if MIRROR_POD_ANNOTATION in (meta.get("annotations") or {}):
        return  # a static pod's mirror: the kubelet's file, not the API, says what it mounts
    spec = pod["spec"] if isinstance(pod.get("spec"), dict) else {}
    namespace, name = str(meta.get("namespace") or ""), str(spec.get("serviceAccountName") or "default")
    account = api.store.get(("core/serviceaccounts", namespace, name))
    if account is None:
        raise errors.forbidden_error(f'pods "{meta.get("name") or meta.get("generateName") or ""}" is forbidden: '
                                     f'error looking up service account {namespace}/{name}: '
                                     f'serviceaccount "{name}" not found')
    if should_automount(pod, account):
        mount_token_volume(pod)


def validate(api: Storage, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
    """Validating admission of a create or of an update of the main resource; raises a 403 APIError."""
    if not rt.namespaced:
        return
    if old is None or rt.key != "core/pods":  # a pod's containers' resources never change after its create
        limitranger.validate(api, rt, obj)
    resourcequota.admit(api, rt, obj, old)


def record(api: Storage, rt: ResourceType, namespace: str | None) -> None:
    """After any stored write: the quotas of the namespace count it (their ``status.used``)."""
    resourcequota.record(api, rt, namespace)
