"""A pod's service-account token volume, as kube's ServiceAccount admission writes it into the pod.

kube-apiserver's ServiceAccount admission plugin (``plugin/pkg/admission/serviceaccount``)
gives every new pod whose ``automountServiceAccountToken`` — the pod's, else its
ServiceAccount's — is not false a projected volume ``kube-api-access-<5 random>``: the pod's
token, the cluster CA from the ``kube-root-ca.crt`` ConfigMap that every namespace holds, and
the pod's namespace. Every container and init container with nothing of its own at
``/var/run/secrets/kubernetes.io/serviceaccount`` mounts it there read-only. It is written into
the stored pod, so ``kubectl get pod -o yaml`` and ``kubectl describe pod`` show the volume and
its mounts as on any cluster; the API server writes it (:mod:`labctl.apiserver.admission`),
the kubelet recognises it (:func:`token_volume`) and keeps its token fresh.
"""

from __future__ import annotations

import secrets
from typing import Any

MOUNT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount"
VOLUME_PREFIX = "kube-api-access-"
#: the ConfigMap the root CA publisher keeps in every namespace
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"
ROOT_CA_KEY = "ca.crt"
#: kube's ``WarnOnlyBoundTokenExpirationSeconds``, the admission's ``expirationSeconds``. kube-apiserver
#: extends such tokens (``--service-account-extend-token-expiration``); a lab gives them its own token
#: lifetime (``serviceAccountTokenSeconds``), which is what makes rotation visible within a lesson.
ADMISSION_TOKEN_SECONDS = 3607
#: ``utilrand.String``'s alphabet: no vowels, no look-alikes
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_DEFAULT_MODE = 0o644


def token_volume_source() -> dict[str, Any]:
    """The projected source of the volume (kube's ``TokenVolumeSource``)."""
    return {"defaultMode": _DEFAULT_MODE, "sources": [
        {"serviceAccountToken": {"expirationSeconds": ADMISSION_TOKEN_SECONDS, "path": "token"}},
        {"configMap": {"name": ROOT_CA_CONFIG_MAP, "items": [{"key": ROOT_CA_KEY, "path": ROOT_CA_KEY}]}},
        {"downwardAPI": {"items": [{"path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}]}


def should_automount(pod: dict, account: dict | None) -> bool:
    """The pod's ``automountServiceAccountToken`` if set, else its ServiceAccount's, else true."""
    own = (pod.get("spec") or {}).get("automountServiceAccountToken")
    if own is not None:
        return own is not False
    return ((account or {}).get("automountServiceAccountToken")) is not False


def mount_token_volume(pod: dict, suffix: str | None = None) -> None:
    """Add the volume and its mounts to a new pod, as the admission plugin does (in place).

    A volume already named ``kube-api-access-…`` is reused; the volume is added only when a
    container mounts it.
    """
    spec = pod.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("volumes") or [], list):
        return  # malformed: validation words it, on the pod as it was sent
    volumes = spec.get("volumes") or []
    name = next((v.get("name") for v in volumes if isinstance(v, dict)
                 and str(v.get("name", "")).startswith(VOLUME_PREFIX)), None)
    has_volume = name is not None
    name = name or VOLUME_PREFIX + (suffix or "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(5)))
    needed = False
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            if not isinstance(container, dict):
                continue
            mounts = container.get("volumeMounts") or []
            if not isinstance(mounts, list) or any(isinstance(m, dict) and m.get("mountPath") == MOUNT_PATH
                                                   for m in mounts):
                continue
            container["volumeMounts"] = [*mounts, {"name": name, "readOnly": True, "mountPath": MOUNT_PATH}]
            needed = True
    if needed and not has_volume:
        spec["volumes"] = [*volumes, {"name": name, "projected": token_volume_source()}]


def token_volume(pod: dict) -> str | None:
    """The name of the pod's admission-made token volume, if it has one.

    Only the exact admission shape counts: the kubelet serves that volume from its token manager
    (the token, the node's copy of the cluster CA, the namespace); any other projection of a token
    is served source by source like every projected volume.
    """
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        if (str(volume.get("name", "")).startswith(VOLUME_PREFIX)
                and volume.get("projected") == token_volume_source()):
            return str(volume["name"])
    return None
