"""Ephemeral containers (``kubectl debug``): what ``pods/ephemeralcontainers`` may add (core ``validation.go``).

An ephemeral container is added to a *running* pod through its own subresource, never at
create and never through an ordinary pod update; it is never restarted, so the fields
that describe a long-lived container (ports, probes, lifecycle, resources, a restart
policy) are refused; ``targetContainerName`` names the container whose process namespace
it joins. Added containers stay: the list may only grow.
"""

from __future__ import annotations

from typing import Any

from labctl.apiserver._validate_common import as_dict, as_list
from labctl.apiserver._validate_pods import validate_container, validate_container_name
from labctl.apiserver.errors import FieldError, forbidden, invalid

__all__ = ["validate_ephemeral_containers", "validate_ephemeral_containers_update", "validate_no_ephemeral_on_create"]

Obj = dict[str, Any]

#: the container fields an ephemeral container may not set (kube's ``validateEphemeralContainers``)
_NOT_FOR_EPHEMERAL = ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe", "ports", "resources",
                      "resizePolicy", "restartPolicy")


def validate_no_ephemeral_on_create(pod: Obj) -> list[FieldError]:
    if as_list(as_dict(pod.get("spec")).get("ephemeralContainers")):
        return [forbidden("spec.ephemeralContainers", "cannot be set on create")]
    return []


def validate_ephemeral_containers(spec: Obj) -> list[FieldError]:
    """Names unique across every container of the pod, the forbidden fields, an existing target."""
    errs: list[FieldError] = []
    regular = [str(as_dict(c).get("name")) for key in ("initContainers", "containers")
               for c in as_list(spec.get(key))]
    volumes = {str(as_dict(v).get("name")) for v in as_list(spec.get("volumes"))}
    names = set(regular)
    for i, ctr in enumerate(as_list(spec.get("ephemeralContainers"))):
        ctr, path = as_dict(ctr), f"spec.ephemeralContainers[{i}]"
        errs += validate_container_name(ctr, path, names)
        for key in _NOT_FOR_EPHEMERAL:
            if ctr.get(key) not in (None, {}, []):
                errs.append(forbidden(f"{path}.{key}", "cannot be set for an Ephemeral Container"))
        target = ctr.get("targetContainerName")
        if target and target not in regular:
            errs.append(FieldError("FieldValueNotFound", f"{path}.targetContainerName", target))
        errs += validate_container({k: v for k, v in ctr.items() if k not in _NOT_FOR_EPHEMERAL}, path, volumes)
    return errs


def validate_ephemeral_containers_update(old: Obj, new: Obj) -> list[FieldError]:
    """ValidatePodEphemeralContainersUpdate: the new list is valid and keeps every old entry unchanged."""
    new_spec = as_dict(new.get("spec"))
    errs = validate_ephemeral_containers(new_spec)
    current = {as_dict(c).get("name"): c for c in as_list(new_spec.get("ephemeralContainers"))}
    for ctr in as_list(as_dict(old.get("spec")).get("ephemeralContainers")):
        name = as_dict(ctr).get("name")
        if name not in current:
            errs.append(forbidden("spec.ephemeralContainers", f'existing ephemeral containers "{name}" may not be removed'))
        elif current[name] != ctr:
            errs.append(invalid("spec.ephemeralContainers", name, "may not be changed once added"))
    return errs
