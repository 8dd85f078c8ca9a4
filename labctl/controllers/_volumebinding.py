"""The scheduler's VolumeBinding PreFilter: which nodes a pod's claims allow.

A claim bound to a volume pins the pod to the volume's node (its ``nodeAffinity``), so a
pod recreated after deletion lands where its data is. A claim still unbound is fine when
its class waits for the first consumer (the PV controller provisions on the node the pod is
bound to); a missing claim, or an unbound claim of an ``Immediate`` class, keeps the pod
Pending with kube-scheduler's messages.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..kube.storage import WAIT_FOR_FIRST_CONSUMER, volume_node

Obj = dict[str, Any]


class UnschedulableClaims(Exception):
    """The pod cannot be scheduled yet because of its claims; ``str()`` is the scheduler's reason."""


def claim_names(pod: Obj) -> list[str]:
    """The claims a pod's ``persistentVolumeClaim`` volumes name."""
    return [v["persistentVolumeClaim"].get("claimName", "") for v in (pod.get("spec") or {}).get("volumes") or []
            if isinstance(v.get("persistentVolumeClaim"), dict)]


def volume_nodes(pod: Obj, claim: Callable[[str], Obj | None], volume: Callable[[str], Obj | None],
                 storage_class: Callable[[str], Obj | None]) -> frozenset[str] | None:
    """The nodes the pod's bound volumes allow (None: any node); raises :class:`UnschedulableClaims`."""
    allowed: frozenset[str] | None = None
    for name in claim_names(pod):
        pvc = claim(name)
        if pvc is None or pvc["metadata"].get("deletionTimestamp"):
            raise UnschedulableClaims(f'persistentvolumeclaim "{name}" not found' if pvc is None
                                      else f'persistentvolumeclaim "{name}" is being deleted')
        volume_name = (pvc.get("spec") or {}).get("volumeName")
        if not volume_name:
            sc = storage_class((pvc.get("spec") or {}).get("storageClassName") or "")
            if sc is None or sc.get("volumeBindingMode") != WAIT_FOR_FIRST_CONSUMER:
                raise UnschedulableClaims("pod has unbound immediate PersistentVolumeClaims")
            continue
        pv = volume(volume_name)
        if pv is None:
            raise UnschedulableClaims('pvc(s) bound to non-existent pv(s)')
        node = volume_node(pv)
        if node is not None:
            allowed = frozenset({node}) if allowed is None else allowed & {node}
    return allowed
