"""Pod, pod template, ReplicaSet and Deployment validation (core and apps ``validation.go``)."""

from __future__ import annotations

import json
from typing import Any

from labctl.apiserver._validate_affinity import validate_affinity
from labctl.apiserver._validate_common import (
    IS_NEGATIVE,
    as_dict,
    as_list,
    is_int,
    nonnegative,
    validate_annotations,
    validate_dns1123_label,
    validate_dns1123_subdomain,
    validate_label_selector,
    validate_labels,
    validate_port_num_or_name,
    validate_protocol,
)
from labctl.apiserver.errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from labctl.kube import validators as v
from labctl.kube.labels import LabelSelector, SelectorError, selector_from_label_selector
from labctl.kube.nodedebug import MANAGED_BY_KUBECTL_DEBUG, MANAGED_BY_LABEL, is_node_debugger, is_node_root
from labctl.kube.quantity import QUANTITY_FORMAT_ERROR, canonical_quantity, parse_quantity

__all__ = [
    "validate_deployment",
    "validate_pod",
    "validate_pod_spec",
    "validate_pod_update",
    "validate_replicaset",
    "validate_selector_update",
    "validate_template",
]

Obj = dict[str, Any]

_RESTART_POLICIES = ["Always", "OnFailure", "Never"]
_DNS_POLICIES = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
_PULL_POLICIES = ["Always", "IfNotPresent", "Never"]
_TERMINATION_MESSAGE_POLICIES = ["File", "FallbackToLogsOnError"]
_TAINT_EFFECTS = ["NoSchedule", "PreferNoSchedule", "NoExecute"]
_CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}
_MAX_INT32 = 2**31 - 1

POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,"
    "`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)


def _enum(value: Any, path: str, allowed: list[str]) -> list[FieldError]:
    if not value:
        return [required(path)]
    return [] if value in allowed else [not_supported(path, value, allowed)]


# --- containers ------------------------------------------------------------------------


def _validate_container_ports(ports: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, port in enumerate(as_list(ports)):
        port, ppath = as_dict(port), f"{path}[{i}]"
        name = port.get("name")
        if name:
            msgs = v.is_valid_port_name(str(name))
            if msgs:
                errs += [invalid(f"{ppath}.name", name, m) for m in msgs]
            elif name in names:
                errs.append(duplicate(f"{ppath}.name", name))
            names.add(str(name))
        if not port.get("containerPort"):
            errs.append(required(f"{ppath}.containerPort"))
        else:
            errs += [invalid(f"{ppath}.containerPort", port["containerPort"], m)
                     for m in v.is_valid_port_num(port["containerPort"])]
        if port.get("hostPort"):
            errs += [invalid(f"{ppath}.hostPort", port["hostPort"], m) for m in v.is_valid_port_num(port["hostPort"])]
        errs += validate_protocol(port.get("protocol"), f"{ppath}.protocol")
    return errs


def _validate_resource_list(rl: Any, path: str) -> tuple[dict[str, Any], list[FieldError]]:
    """Names and quantities of one ResourceList; returns the parsed values too."""
    errs: list[FieldError] = []
    parsed = {}
    for name, q in as_dict(rl).items():
        qpath = f"{path}[{name}]"
        if "/" not in name and name not in _CONTAINER_RESOURCES and not name.startswith("hugepages-"):
            errs.append(invalid(qpath, name, "must be a standard resource for containers"))
        try:
            parsed[name] = parse_quantity(q)
        except (ValueError, TypeError):
            errs.append(invalid(qpath, q, QUANTITY_FORMAT_ERROR))
            continue
        if parsed[name] < 0:
            errs.append(invalid(qpath, canonical_quantity(q), IS_NEGATIVE))
    return parsed, errs


def validate_resources(resources: Any, path: str) -> list[FieldError]:
    """ValidateResourceRequirements: known names, parseable non-negative quantities, requests ≤ limits."""
    resources = as_dict(resources)
    limits, errs = _validate_resource_list(resources.get("limits"), f"{path}.limits")
    requests, req_errs = _validate_resource_list(resources.get("requests"), f"{path}.requests")
    errs += req_errs
    for name, request in requests.items():
        if name in limits and request > limits[name]:
            limit_text = canonical_quantity(resources["limits"][name])
            errs.append(invalid(f"{path}.requests", canonical_quantity(resources["requests"][name]),
                                f"must be less than or equal to {name} limit of {limit_text}"))
    return errs


_PROBE_HANDLERS = ("exec", "httpGet", "tcpSocket", "grpc")
_LIFECYCLE_HANDLERS = ("exec", "httpGet", "tcpSocket", "sleep")


def _validate_handler(handler: Obj, path: str, kinds: tuple[str, ...] = _PROBE_HANDLERS,
                      grace: int = 30) -> list[FieldError]:
    """Exactly one handler of ``kinds`` (a probe's, or a lifecycle hook's: no grpc, but sleep)."""
    errs: list[FieldError] = []
    count = 0
    for kind in kinds:
        if handler.get(kind) is None:
            continue
        if count:
            errs.append(forbidden(f"{path}.{kind}", "may not specify more than 1 handler type"))
            continue
        count += 1
        action, apath = as_dict(handler[kind]), f"{path}.{kind}"
        if kind == "exec" and not as_list(action.get("command")):
            errs.append(required(f"{apath}.command"))
        if kind == "httpGet":
            if not action.get("path"):
                errs.append(required(f"{apath}.path"))
            if action.get("scheme") not in ("HTTP", "HTTPS"):
                errs.append(not_supported(f"{apath}.scheme", action.get("scheme"), ["HTTP", "HTTPS"]))
        if kind in ("httpGet", "tcpSocket"):
            errs += validate_port_num_or_name(action.get("port"), f"{apath}.port")
        if kind == "grpc":
            errs += [invalid(f"{apath}.port", action.get("port"), m) for m in v.is_valid_port_num(action.get("port"))]
        if kind == "sleep":
            seconds = action.get("seconds")
            if not is_int(seconds) or not 0 <= seconds <= grace:
                errs.append(invalid(f"{apath}.seconds", seconds, "must be non-negative and less than "
                                    f"terminationGracePeriodSeconds ({grace})"))
    if count == 0:
        errs.append(required(path, "must specify a handler type"))
    return errs


def _validate_probe(probe: Any, path: str, success_must_be_one: bool) -> list[FieldError]:
    if probe is None:
        return []
    probe = as_dict(probe)
    errs = _validate_handler(probe, path)
    for key in ("initialDelaySeconds", "timeoutSeconds", "periodSeconds", "successThreshold", "failureThreshold"):
        if probe.get(key) is not None:
            errs += nonnegative(probe[key], f"{path}.{key}")
    if success_must_be_one and probe.get("successThreshold") not in (None, 1):
        errs.append(invalid(f"{path}.successThreshold", probe["successThreshold"], "must be 1"))
    return errs


def _validate_lifecycle(lifecycle: Any, path: str, grace: int) -> list[FieldError]:
    """``validateLifecycle``: postStart and preStop are handlers (a ``sleep`` within the grace period)."""
    errs: list[FieldError] = []
    for hook in ("postStart", "preStop"):
        handler = as_dict(lifecycle).get(hook)
        if handler is not None:
            errs += _validate_handler(as_dict(handler), f"{path}.{hook}", _LIFECYCLE_HANDLERS, grace)
    return errs


def _validate_restart_policy(ctr: Obj, path: str, init: bool) -> list[FieldError]:
    """A container's own ``restartPolicy``: only ``Always``, only on init containers (a sidecar);
    a regular init container runs to completion, so it may have no lifecycle hooks and no probes."""
    policy, errs = ctr.get("restartPolicy"), []
    if not init:
        return [] if policy is None else [forbidden(f"{path}.restartPolicy", "may not be set for non-init containers")]
    if policy is not None and policy != "Always":
        errs.append(not_supported(f"{path}.restartPolicy", policy, ["Always"]))
    if policy != "Always":
        for key in ("lifecycle", "livenessProbe", "readinessProbe", "startupProbe"):
            if ctr.get(key) is not None:
                errs.append(forbidden(f"{path}.{key}", "may not be set for init containers without restartPolicy=Always"))
    return errs


def validate_container_name(ctr: Obj, path: str, names: set[str]) -> list[FieldError]:
    """A container's name: required, a DNS label, unique among the pod's containers (``names``, which it joins)."""
    name = ctr.get("name")
    if not name:
        return [required(f"{path}.name")]
    errs = validate_dns1123_label(name, f"{path}.name")
    if name in names:
        errs.append(duplicate(f"{path}.name", name))
    names.add(str(name))
    return errs


def validate_container(ctr: Obj, path: str, volumes: set[str], init: bool = False,
                       grace: int = 30) -> list[FieldError]:
    errs: list[FieldError] = _validate_restart_policy(ctr, path, init)
    image = ctr.get("image")
    if not image:
        errs.append(required(f"{path}.image"))
    elif not isinstance(image, str) or image.strip() != image:
        errs.append(invalid(f"{path}.image", image, "must not have leading or trailing whitespace"))
    errs += _validate_container_ports(ctr.get("ports"), f"{path}.ports")
    for i, env in enumerate(as_list(ctr.get("env"))):
        if not as_dict(env).get("name"):
            errs.append(required(f"{path}.env[{i}].name"))
    for i, mount in enumerate(as_list(ctr.get("volumeMounts"))):
        mount = as_dict(mount)
        if not mount.get("name"):
            errs.append(required(f"{path}.volumeMounts[{i}].name"))
        elif mount["name"] not in volumes:
            errs.append(FieldError("FieldValueNotFound", f"{path}.volumeMounts[{i}].name", mount["name"]))
        if not mount.get("mountPath"):
            errs.append(required(f"{path}.volumeMounts[{i}].mountPath"))
    errs += validate_resources(ctr.get("resources"), f"{path}.resources")
    errs += _validate_probe(ctr.get("livenessProbe"), f"{path}.livenessProbe", True)
    errs += _validate_probe(ctr.get("readinessProbe"), f"{path}.readinessProbe", False)
    errs += _validate_probe(ctr.get("startupProbe"), f"{path}.startupProbe", True)
    errs += _validate_lifecycle(ctr.get("lifecycle"), f"{path}.lifecycle", grace)
    errs += _enum(ctr.get("imagePullPolicy"), f"{path}.imagePullPolicy", _PULL_POLICIES)
    errs += _enum(ctr.get("terminationMessagePolicy"), f"{path}.terminationMessagePolicy",
                  _TERMINATION_MESSAGE_POLICIES)
    return errs


def _validate_host_network(spec: Obj, path: str) -> list[FieldError]:
    """validateHostNetwork: on the node's network a container port *is* its host port."""
    if spec.get("hostNetwork") is not True:
        return []
    errs: list[FieldError] = []
    for field_name in ("initContainers", "containers"):
        for i, ctr in enumerate(as_list(spec.get(field_name))):
            for j, port in enumerate(as_list(as_dict(ctr).get("ports"))):
                port = as_dict(port)
                if port.get("hostPort") and port.get("hostPort") != port.get("containerPort"):
                    errs.append(invalid(f"{path}.{field_name}[{i}].ports[{j}].hostPort", port["hostPort"],
                                        "must match `containerPort` when `hostNetwork` is true"))
    return errs


def _validate_containers(spec: Obj, path: str, volumes: set[str]) -> list[FieldError]:
    """Init and app containers: names are DNS labels unique across both lists."""
    errs: list[FieldError] = []
    names: set[str] = set()
    grace = spec.get("terminationGracePeriodSeconds")
    grace = grace if is_int(grace) else 30
    if not as_list(spec.get("containers")):
        errs.append(required(f"{path}.containers"))
    for field_name in ("initContainers", "containers"):
        for i, ctr in enumerate(as_list(spec.get(field_name))):
            ctr, cpath = as_dict(ctr), f"{path}.{field_name}[{i}]"
            errs += validate_container_name(ctr, cpath, names)
            errs += validate_container(ctr, cpath, volumes, field_name == "initContainers", grace)
    return errs


# --- pod spec --------------------------------------------------------------------------


def _validate_volumes(volumes: Any, path: str) -> tuple[set[str], list[FieldError]]:
    errs: list[FieldError] = []
    names: set[str] = set()
    for i, vol in enumerate(as_list(volumes)):
        vol, vpath = as_dict(vol), f"{path}[{i}]"
        name = vol.get("name")
        if not name:
            errs.append(required(f"{vpath}.name"))
            continue
        errs += validate_dns1123_label(name, f"{vpath}.name")
        if name in names:
            errs.append(duplicate(f"{vpath}.name", name))
        names.add(str(name))
        sources = [key for key in vol if key != "name"]
        if len(sources) > 1:
            errs.append(forbidden(f"{vpath}.{sources[1]}", "may not specify more than 1 volume type"))
    return names, errs


def _validate_tolerations(tolerations: Any, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    for i, tol in enumerate(as_list(tolerations)):
        tol, tpath = as_dict(tol), f"{path}[{i}]"
        key, operator, value, effect = tol.get("key"), tol.get("operator") or "", tol.get("value"), tol.get("effect")
        if key:
            errs += [invalid(f"{tpath}.key", key, m) for m in v.is_qualified_name(str(key))]
        elif operator != "Exists":
            errs.append(invalid(f"{tpath}.operator", operator,
                                'operator must be Exists when `key` is empty, which means "match all values and all keys"'))
        if tol.get("tolerationSeconds") is not None and effect != "NoExecute":
            errs.append(invalid(f"{tpath}.effect", effect, "effect must be 'NoExecute' when `tolerationSeconds` is set"))
        if operator in ("", "Equal"):
            errs += [invalid(f"{tpath}.value", value, m) for m in v.is_valid_label_value(str(value or ""))]
        elif operator == "Exists":
            if value:
                errs.append(invalid(f"{tpath}.operator", tol, "value must be empty when `operator` is 'Exists'"))
        else:
            errs.append(not_supported(f"{tpath}.operator", operator, ["Equal", "Exists"]))
        if effect and effect not in _TAINT_EFFECTS:
            errs.append(not_supported(f"{tpath}.effect", effect, _TAINT_EFFECTS))
    return errs


def validate_pod_spec(spec: Any, path: str) -> list[FieldError]:
    """ValidatePodSpec for the fields labctl's node agent acts on."""
    spec = as_dict(spec)
    volumes, errs = _validate_volumes(spec.get("volumes"), f"{path}.volumes")
    errs += _validate_containers(spec, path, volumes)
    errs += _validate_host_network(spec, path)
    errs += _enum(spec.get("restartPolicy"), f"{path}.restartPolicy", _RESTART_POLICIES)
    errs += _enum(spec.get("dnsPolicy"), f"{path}.dnsPolicy", _DNS_POLICIES)
    errs += validate_labels(spec.get("nodeSelector"), f"{path}.nodeSelector")
    for key in ("serviceAccountName", "nodeName"):
        if spec.get(key):
            errs += validate_dns1123_subdomain(spec[key], f"{path}.{key}")
    for key in ("hostname", "subdomain"):
        if spec.get(key):
            errs += validate_dns1123_label(spec[key], f"{path}.{key}")
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and (not is_int(deadline) or not 1 <= deadline <= _MAX_INT32):
        errs.append(invalid(f"{path}.activeDeadlineSeconds", deadline, f"must be between 1 and {_MAX_INT32}, inclusive"))
    if spec.get("terminationGracePeriodSeconds") is not None and not is_int(spec["terminationGracePeriodSeconds"]):
        errs.append(invalid(f"{path}.terminationGracePeriodSeconds", spec["terminationGracePeriodSeconds"],
                            "must be an integer"))
    errs += _validate_tolerations(spec.get("tolerations"), f"{path}.tolerations")
    errs += validate_affinity(spec.get("affinity"), f"{path}.affinity")
    return errs


def validate_pod(pod: Obj) -> list[FieldError]:
    """The pod's spec (metadata is checked by the caller)."""
    return validate_pod_spec(pod.get("spec"), "spec") + _validate_node_root(pod, "spec")


def _validate_node_root(pod: Obj, path: str) -> list[FieldError]:
    """``hostPath: /`` is the node's root, given only to ``kubectl debug node/…``'s pod (kube/nodedebug.py)."""
    if is_node_debugger(pod):
        return []
    return [forbidden(f"{path}.volumes[{i}].hostPath.path",
                      "the node's root is only mounted for `kubectl debug node/NODE` (its pod, labelled "
                      f"{MANAGED_BY_LABEL}={MANAGED_BY_KUBECTL_DEBUG}); labctl pods run on the host's Docker engine")
            for i, vol in enumerate(as_list(as_dict(pod.get("spec")).get("volumes"))) if is_node_root(vol)]


def validate_pod_update(old: Obj, new: Obj) -> list[FieldError]:
    """ValidatePodUpdate: only images, activeDeadlineSeconds and added tolerations may change."""
    old_spec, new_spec = as_dict(old.get("spec")), as_dict(new.get("spec"))
    errs: list[FieldError] = []
    old_deadline, new_deadline = old_spec.get("activeDeadlineSeconds"), new_spec.get("activeDeadlineSeconds")
    if new_deadline is None and old_deadline is not None:
        errs.append(invalid("spec.activeDeadlineSeconds", None, "must not update from a positive integer to nil value"))
    elif is_int(new_deadline) and is_int(old_deadline) and new_deadline > old_deadline:
        errs.append(invalid("spec.activeDeadlineSeconds", new_deadline, "must be less than or equal to previous value"))
    new_tolerations = as_list(new_spec.get("tolerations"))
    if any(tol not in new_tolerations for tol in as_list(old_spec.get("tolerations"))):
        errs.append(forbidden("spec.tolerations", "existing toleration can not be modified except its tolerationSeconds"))
    munged = _munge_updatable(new_spec, old_spec)
    if munged != old_spec:
        errs.append(forbidden("spec", POD_UPDATE_FORBIDDEN + "\n" + _spec_diff(old_spec, munged)))
    return errs


def _munge_updatable(new_spec: Obj, old_spec: Obj) -> Obj:
    """``new_spec`` with the updatable fields copied from ``old_spec``, to compare the rest."""
    munged = json.loads(json.dumps(new_spec))
    for key in ("containers", "initContainers"):
        old_ctrs, new_ctrs = as_list(old_spec.get(key)), as_list(munged.get(key))
        if len(old_ctrs) == len(new_ctrs):
            for old_ctr, new_ctr in zip(old_ctrs, new_ctrs):
                if isinstance(new_ctr, dict) and isinstance(old_ctr, dict) and "image" in old_ctr:
                    new_ctr["image"] = old_ctr["image"]
    for key in ("activeDeadlineSeconds", "tolerations"):
        munged.pop(key, None)
        if key in old_spec:
            munged[key] = old_spec[key]
    old_grace, new_grace = old_spec.get("terminationGracePeriodSeconds"), munged.get("terminationGracePeriodSeconds")
    if is_int(old_grace) and old_grace < 0 and new_grace == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    return munged


def _spec_diff(old: Any, new: Any, path: str = "spec") -> str:
    """A short ``path: old -> new`` listing of what differs (kube prints a Go cmp.Diff here)."""
    lines: list[str] = []

    def walk(a: Any, b: Any, p: str) -> None:
        if isinstance(a, dict) and isinstance(b, dict):
            for key in sorted(set(a) | set(b)):
                walk(a.get(key), b.get(key), f"{p}.{key}")
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                walk(x, y, f"{p}[{i}]")
        elif a != b:
            lines.append(f"  {p}: {json.dumps(a, sort_keys=True)} -> {json.dumps(b, sort_keys=True)}")

    walk(old, new, path)
    return "\n".join(lines[:20])


# --- workloads -------------------------------------------------------------------------


def validate_template(spec: Obj, path: str, selector: LabelSelector,
                      restart_policies: tuple[str, ...] = ("Always",)) -> list[FieldError]:
    """ValidatePodTemplateSpecForReplicaSet: labels match a non-empty selector, restartPolicy Always.

    A Job's template (``restart_policies`` OnFailure, Never) is checked the same way: its pods end.
    """
    template = spec.get("template")
    if not isinstance(template, dict):
        return [required(path)]
    meta = as_dict(template.get("metadata"))
    errs: list[FieldError] = []
    if not selector.empty and not selector.matches(as_dict(meta.get("labels"))):
        errs.append(invalid(f"{path}.metadata.labels", meta.get("labels") or {},
                            "`selector` does not match template `labels`"))
    errs += validate_labels(meta.get("labels"), f"{path}.metadata.labels")
    errs += validate_annotations(meta.get("annotations"), f"{path}.metadata.annotations")
    tspec = as_dict(template.get("spec"))
    errs += validate_pod_spec(tspec, f"{path}.spec") + _validate_node_root({"spec": tspec}, f"{path}.spec")
    if tspec.get("restartPolicy") not in restart_policies:
        errs.append(not_supported(f"{path}.spec.restartPolicy", tspec.get("restartPolicy"), list(restart_policies)))
    if tspec.get("activeDeadlineSeconds") is not None and restart_policies == ("Always",):
        errs.append(invalid(f"{path}.spec.activeDeadlineSeconds", tspec["activeDeadlineSeconds"],
                            "activeDeadlineSeconds in ReplicaSet is not Supported"))
    return errs


def _validate_workload_spec(spec: Obj) -> list[FieldError]:
    """What ReplicaSet and Deployment specs share: replicas, selector, template, minReadySeconds."""
    errs = nonnegative(spec.get("replicas", 0), "spec.replicas")
    selector = spec.get("selector")
    converted = _as_selector(selector)
    if selector is None:
        errs.append(required("spec.selector"))
    else:
        errs += validate_label_selector(selector, "spec.selector")
        if converted is not None and converted.empty:
            # Kube's wording, "deployment" even for a ReplicaSet.
            errs.append(invalid("spec.selector", selector, "empty selector is invalid for deployment"))
    if converted is None:
        # LabelSelectorAsSelector failed: kube reports it and skips the template entirely.
        errs.append(invalid("spec.selector", selector, "invalid label selector"))
    else:
        errs += validate_template(spec, "spec.template", converted)
    errs += nonnegative(spec.get("minReadySeconds", 0), "spec.minReadySeconds")
    return errs


def _as_selector(selector: Any) -> LabelSelector | None:
    """``metav1.LabelSelectorAsSelector``, or None where kube fails to convert (bad operator, key or values).

    An absent selector converts to the empty one (the caller reports it as required); one
    whose parts have the wrong JSON shape (a list where an object belongs) does not convert.
    """
    try:
        return selector_from_label_selector(as_dict(selector))
    except (SelectorError, AttributeError, TypeError):
        return None


def validate_replicaset(rs: Obj) -> list[FieldError]:
    return _validate_workload_spec(as_dict(rs.get("spec")))


def _validate_strategy(strategy: Any, path: str) -> list[FieldError]:
    strategy = as_dict(strategy)
    kind = strategy.get("type")
    if kind == "Recreate":
        if strategy.get("rollingUpdate") is not None:
            return [forbidden(f"{path}.rollingUpdate", "may not be specified when strategy `type` is 'Recreate'")]
        return []
    if kind != "RollingUpdate":
        return [not_supported(f"{path}.type", kind, ["Recreate", "RollingUpdate"])]
    rolling = strategy.get("rollingUpdate")
    if not isinstance(rolling, dict):
        return [required(f"{path}.rollingUpdate", "this should be defaulted and never be nil")]
    rpath = f"{path}.rollingUpdate"
    errs: list[FieldError] = []
    values = {}
    for key in ("maxUnavailable", "maxSurge"):
        value = rolling.get(key)
        if isinstance(value, str):
            errs += [invalid(f"{rpath}.{key}", value, m) for m in v.is_valid_percent(value)]
        else:
            errs += nonnegative(value, f"{rpath}.{key}")
        values[key] = _int_or_percent(value)
    if values["maxUnavailable"] == 0 and values["maxSurge"] == 0:
        errs.append(invalid(f"{rpath}.maxUnavailable", rolling.get("maxUnavailable"), "may not be 0 when `maxSurge` is 0"))
    unavailable = rolling.get("maxUnavailable")
    if isinstance(unavailable, str) and (values["maxUnavailable"] or 0) > 100:
        errs.append(invalid(f"{rpath}.maxUnavailable", unavailable, "must not be greater than 100%"))
    return errs


def _int_or_percent(value: Any) -> int | None:
    if is_int(value):
        return value
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return int(value[:-1])
    return None


def validate_deployment(deploy: Obj) -> list[FieldError]:
    """ValidateDeploymentSpec."""
    spec = as_dict(deploy.get("spec"))
    errs = _validate_workload_spec(spec)
    errs += _validate_strategy(spec.get("strategy"), "spec.strategy")
    if spec.get("revisionHistoryLimit") is not None:
        errs += nonnegative(spec["revisionHistoryLimit"], "spec.revisionHistoryLimit")
    deadline = spec.get("progressDeadlineSeconds")
    if deadline is not None:
        errs += nonnegative(deadline, "spec.progressDeadlineSeconds")
        min_ready = spec.get("minReadySeconds", 0)
        if is_int(deadline) and is_int(min_ready) and deadline <= min_ready:
            errs.append(invalid("spec.progressDeadlineSeconds", deadline, "must be greater than minReadySeconds"))
    return errs


def validate_selector_update(old: Obj, new: Obj) -> list[FieldError]:
    """apps/v1 selectors are immutable: changing them would orphan the running pods."""
    old_sel, new_sel = as_dict(old.get("spec")).get("selector"), as_dict(new.get("spec")).get("selector")
    if old_sel != new_sel:
        return [invalid("spec.selector", new_sel, "field is immutable")]
    return []
