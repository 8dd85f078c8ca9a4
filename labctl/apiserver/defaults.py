"""Defaulting: fill in what kube-apiserver fills in before an object is stored.

A port of ``pkg/apis/core/v1/defaults.go``, ``pkg/apis/apps/v1/defaults.go`` and the
generated ``zz_generated.defaults.go`` for the kinds labctl serves, plus the few
values real clusters add at admission or in the registry strategy (a pod's
``serviceAccountName``, ``status.phase`` and ``qosClass``, a Service's
``ipFamilies``, a Namespace's ``kubernetes`` finalizer). Students compare
``kubectl get -o yaml`` output with a real cluster's, so the values and where they
appear (Pod vs. pod *template*) matter.

One ``default_<kind>`` per kind, called by that kind's strategy
(:mod:`labctl.apiserver.strategies`), as kube's scheme calls the generated defaulters.
Every function mutates in place and tolerates malformed input: validation runs
afterwards and reports what is wrong, defaulting must never raise on it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from labctl.kube.quantity import canonical_quantity, parse_quantity

__all__ = ["default_cronjob", "default_daemonset", "default_deployment", "default_endpoints", "default_endpointslice",
           "default_job", "default_namespace", "default_network_policy", "default_node", "default_pod",
           "default_replicaset", "default_secret", "default_service", "default_statefulset", "image_tag", "pod_qos_class",
           "prepare_service_update"]

Obj = dict[str, Any]


def _child(obj: Obj, key: str) -> Obj:
    """Return ``obj[key]`` as a dict, creating it when absent (and leaving wrong types alone)."""
    value = obj.get(key)
    if value is None:
        value = obj[key] = {}
    return value if isinstance(value, dict) else {}


def _dicts(value: Any) -> list[Obj]:
    """The dict items of a list field; anything else yields nothing."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def image_tag(image: str) -> str:
    """The tag of an image reference (``""`` when there is none or it is pinned by digest).

    ``localhost:5000/web`` has no tag: the colon belongs to the registry host.
    """
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


# --- pods -------------------------------------------------------------------------------


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for key, default in (("timeoutSeconds", 1), ("periodSeconds", 10),
                         ("successThreshold", 1), ("failureThreshold", 3)):
        if not probe.get(key):
            probe[key] = default
    _default_http_get(probe.get("httpGet"))


def _default_http_get(http: Any) -> None:
    """SetDefaults_HTTPGetAction: of probes and of lifecycle hooks alike."""
    if isinstance(http, dict):
        if not http.get("path"):
            http["path"] = "/"
        if not http.get("scheme"):
            http["scheme"] = "HTTP"


def _canonical_resources(resources: Obj) -> None:
    """Round and print quantities as the API server stores them (``1000m`` → ``1``)."""
    for key in ("limits", "requests"):
        rl = resources.get(key)
        if not isinstance(rl, dict):
            continue
        for name, q in rl.items():
            try:
                rl[name] = canonical_quantity(q)
            except (ValueError, TypeError):
                pass  # validation reports it


def _default_container(ctr: Obj) -> None:
    """SetDefaults_Container plus the declarative defaults of its ports and probes."""
    if not ctr.get("imagePullPolicy"):
        image = ctr.get("image")
        if not isinstance(image, str):
            image = ""
        tag = image_tag(image)
        if not tag and "@" not in image:
            tag = "latest"  # kube reads "nginx" as "nginx:latest", so it pulls it every time
        ctr["imagePullPolicy"] = "Always" if tag == "latest" else "IfNotPresent"
    if not ctr.get("terminationMessagePath"):
        ctr["terminationMessagePath"] = "/dev/termination-log"
    if not ctr.get("terminationMessagePolicy"):
        ctr["terminationMessagePolicy"] = "File"
    for port in _dicts(ctr.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
    _canonical_resources(_child(ctr, "resources"))
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(ctr.get(probe))
    lifecycle = ctr.get("lifecycle")
    for hook in ("postStart", "preStop"):
        handler = lifecycle.get(hook) if isinstance(lifecycle, dict) else None
        if isinstance(handler, dict):
            _default_http_get(handler.get("httpGet"))


def _default_pod_spec(spec: Obj) -> None:
    """SetDefaults_PodSpec: what a Pod *and* a pod template get."""
    if not spec.get("dnsPolicy"):
        spec["dnsPolicy"] = "ClusterFirst"
    if not spec.get("restartPolicy"):
        spec["restartPolicy"] = "Always"
    if spec.get("securityContext") is None:
        spec["securityContext"] = {}
    if spec.get("terminationGracePeriodSeconds") is None:
        spec["terminationGracePeriodSeconds"] = 30
    if not spec.get("schedulerName"):
        spec["schedulerName"] = "default-scheduler"
    for ctr in _dicts(spec.get("initContainers")) + _dicts(spec.get("containers")) + \
            _dicts(spec.get("ephemeralContainers")):
        _default_container(ctr)


def _default_requests_from_limits(ctr: Obj) -> None:
    resources = ctr.get("resources")
    if not isinstance(resources, dict) or not isinstance(resources.get("limits"), dict):
        return
    requests = resources.get("requests")
    if not isinstance(requests, dict):
        requests = resources["requests"] = {}
    for name, q in resources["limits"].items():
        requests.setdefault(name, q)


# Added by the DefaultTolerationSeconds admission plugin to every pod, so a pod on a node
# that goes NotReady is evicted after five minutes rather than at once.
_DEFAULT_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]


def _default_tolerations(spec: Obj) -> None:
    tolerations = spec.get("tolerations")
    if tolerations is None:
        tolerations = spec["tolerations"] = []
    if not isinstance(tolerations, list):
        return
    present = {t.get("key") for t in _dicts(tolerations) if t.get("effect") in (None, "", "NoExecute")}
    for default in _DEFAULT_TOLERATIONS:
        if default["key"] not in present:
            tolerations.append(dict(default))


def default_pod(pod: Obj) -> None:
    """SetDefaults_Pod plus what admission (ServiceAccount, tolerations) and create add.

    ``priority`` and ``preemptionPolicy`` are the Priority admission's (strategies/scheduling.py):
    it needs the PriorityClasses, so it runs where the store is at hand.
    """
    spec = _child(pod, "spec")
    for ctr in _dicts(spec.get("initContainers")) + _dicts(spec.get("containers")):
        _default_requests_from_limits(ctr)
    _default_pod_spec(spec)
    if spec.get("enableServiceLinks") is None:
        spec["enableServiceLinks"] = True
    if spec.get("hostNetwork") is True:
        # defaultHostNetworkPorts: on the node's network every container port is a host port
        for ctr in _dicts(spec.get("initContainers")) + _dicts(spec.get("containers")):
            for port in _dicts(ctr.get("ports")):
                if not port.get("hostPort"):
                    port["hostPort"] = port.get("containerPort")
    if not spec.get("serviceAccountName"):
        spec["serviceAccountName"] = spec.get("serviceAccount") or "default"
    if not spec.get("serviceAccount"):
        spec["serviceAccount"] = spec["serviceAccountName"]
    _default_tolerations(spec)
    status = _child(pod, "status")
    if not status.get("phase"):
        status["phase"] = "Pending"
    if not status.get("qosClass"):
        status["qosClass"] = pod_qos_class(spec)


def pod_qos_class(spec: Obj) -> str:
    """Guaranteed, Burstable or BestEffort, as ``qos.GetPodQOS`` decides from cpu/memory.

    Guaranteed: every container limits both cpu and memory and requests equal limits.
    BestEffort: no container requests or limits cpu or memory. Burstable: the rest.
    """
    requests: dict[str, Decimal] = {}
    limits: dict[str, Decimal] = {}
    guaranteed = True
    for ctr in _dicts(spec.get("initContainers")) + _dicts(spec.get("containers")):
        resources = ctr.get("resources")
        if not isinstance(resources, dict):
            resources = {}
        ctr_req = _compute(resources.get("requests"))
        ctr_lim = _compute(resources.get("limits"))
        for name, q in ctr_req.items():
            requests[name] = requests.get(name, Decimal(0)) + q
        for name, q in ctr_lim.items():
            limits[name] = limits.get(name, Decimal(0)) + q
        if set(ctr_lim) != {"cpu", "memory"}:
            guaranteed = False
        if any(ctr_req.get(name, ctr_lim[name]) != ctr_lim[name] for name in ctr_lim):
            guaranteed = False
    if not requests and not limits:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def _compute(rl: Any) -> dict[str, Decimal]:
    """The non-zero cpu and memory entries of a ResourceList, parsed."""
    out: dict[str, Decimal] = {}
    if isinstance(rl, dict):
        for name in ("cpu", "memory"):
            try:
                if name in rl and parse_quantity(rl[name]) != 0:
                    out[name] = parse_quantity(rl[name])
            except (ValueError, TypeError):
                continue
    return out


# --- workloads ------------------------------------------------------------------------


def _default_template(spec: Obj) -> None:
    template = spec.get("template")
    if isinstance(template, dict):
        _default_pod_spec(_child(template, "spec"))


def default_replicaset(rs: Obj) -> None:
    spec = _child(rs, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    _default_template(spec)


def default_deployment(deploy: Obj) -> None:
    spec = _child(deploy, "spec")
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    strategy = _child(spec, "strategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy.get("type") == "RollingUpdate":
        rolling = _child(strategy, "rollingUpdate")
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = "25%"
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = "25%"
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    if spec.get("progressDeadlineSeconds") is None:
        spec["progressDeadlineSeconds"] = 600
    _default_template(spec)


def default_daemonset(ds: Obj) -> None:
    """SetDefaults_DaemonSet: a rolling update one node at a time, ten revisions kept."""
    spec = _child(ds, "spec")
    strategy = _child(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
    if strategy.get("type") == "RollingUpdate":
        rolling = _child(strategy, "rollingUpdate")
        if rolling.get("maxUnavailable") is None:
            rolling["maxUnavailable"] = 1
        if rolling.get("maxSurge") is None:
            rolling["maxSurge"] = 0
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    _default_template(spec)


def default_statefulset(sts: Obj) -> None:
    """SetDefaults_StatefulSet: OrderedReady, a rolling update from partition 0 one pod at a time, claims
    retained, one replica.

    The claim templates get a claim's defaults (``volumeMode: Filesystem``, ``status.phase:
    Pending``), as they read back from a real cluster.
    """
    spec = _child(sts, "spec")
    if not spec.get("podManagementPolicy"):
        spec["podManagementPolicy"] = "OrderedReady"
    strategy = _child(spec, "updateStrategy")
    if not strategy.get("type"):
        strategy["type"] = "RollingUpdate"
        strategy.setdefault("rollingUpdate", {})
    rolling = strategy.get("rollingUpdate")
    if strategy["type"] == "RollingUpdate" and isinstance(rolling, dict):
        if rolling.get("partition") is None:
            rolling["partition"] = 0
        if rolling.get("maxUnavailable") is None:  # MaxUnavailableStatefulSet: beta, on by default
            rolling["maxUnavailable"] = 1
    retention = _child(spec, "persistentVolumeClaimRetentionPolicy")
    for when in ("whenDeleted", "whenScaled"):
        if not retention.get(when):
            retention[when] = "Retain"
    if spec.get("replicas") is None:
        spec["replicas"] = 1
    if spec.get("revisionHistoryLimit") is None:
        spec["revisionHistoryLimit"] = 10
    for claim in _dicts(spec.get("volumeClaimTemplates")):
        claim.setdefault("apiVersion", "v1")
        claim.setdefault("kind", "PersistentVolumeClaim")
        claim_spec, claim_status = _child(claim, "spec"), _child(claim, "status")
        if not claim_spec.get("volumeMode"):
            claim_spec["volumeMode"] = "Filesystem"
        if not claim_status.get("phase"):
            claim_status["phase"] = "Pending"
    _default_template(spec)


def _default_job_spec(spec: Obj) -> None:
    """SetDefaults_Job's spec part; a CronJob's job template gets only its pod template's defaults."""
    if spec.get("completions") is None and spec.get("parallelism") is None:
        spec["completions"] = 1
    if spec.get("parallelism") is None:
        spec["parallelism"] = 1
    if spec.get("backoffLimit") is None:
        spec["backoffLimit"] = 2147483647 if spec.get("backoffLimitPerIndex") is not None else 6
    if not spec.get("completionMode"):
        spec["completionMode"] = "NonIndexed"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if not spec.get("podReplacementPolicy"):
        spec["podReplacementPolicy"] = "Failed" if spec.get("podFailurePolicy") else "TerminatingOrFailed"
    _default_template(spec)


def default_job(job: Obj) -> None:
    _default_job_spec(_child(job, "spec"))


def default_cronjob(cj: Obj) -> None:
    """SetDefaults_CronJob: concurrency Allow, not suspended, 3 successful and 1 failed Job kept."""
    spec = _child(cj, "spec")
    if not spec.get("concurrencyPolicy"):
        spec["concurrencyPolicy"] = "Allow"
    if spec.get("suspend") is None:
        spec["suspend"] = False
    if spec.get("successfulJobsHistoryLimit") is None:
        spec["successfulJobsHistoryLimit"] = 3
    if spec.get("failedJobsHistoryLimit") is None:
        spec["failedJobsHistoryLimit"] = 1
    job_template = spec.get("jobTemplate")
    if isinstance(job_template, dict):
        _default_template(_child(job_template, "spec"))


# --- services -------------------------------------------------------------------------


def default_service(svc: Obj) -> None:
    """SetDefaults_Service plus the registry's IP-family and clusterIPs normalisation."""
    spec = _child(svc, "spec")
    if not spec.get("type"):
        spec["type"] = "ClusterIP"
    svc_type = spec["type"]
    if not spec.get("sessionAffinity"):
        spec["sessionAffinity"] = "None"
    if spec["sessionAffinity"] == "None":
        spec.pop("sessionAffinityConfig", None)
    elif spec["sessionAffinity"] == "ClientIP":
        config = spec.get("sessionAffinityConfig")
        client_ip = config.get("clientIP") if isinstance(config, dict) else None
        if not isinstance(client_ip, dict) or client_ip.get("timeoutSeconds") is None:
            spec["sessionAffinityConfig"] = {"clientIP": {"timeoutSeconds": 10800}}
    for port in _dicts(spec.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
        if port.get("targetPort") in (None, 0, ""):
            port["targetPort"] = port.get("port")
    externally_accessible = svc_type in ("NodePort", "LoadBalancer") or (
        svc_type == "ClusterIP" and bool(spec.get("externalIPs")))
    if externally_accessible and not spec.get("externalTrafficPolicy"):
        spec["externalTrafficPolicy"] = "Cluster"
    if svc_type in ("ClusterIP", "NodePort", "LoadBalancer") and not spec.get("internalTrafficPolicy"):
        spec["internalTrafficPolicy"] = "Cluster"
    if svc_type == "LoadBalancer" and spec.get("allocateLoadBalancerNodePorts") is None:
        spec["allocateLoadBalancerNodePorts"] = True
    if svc_type != "ExternalName":
        # The strategy keeps clusterIP and clusterIPs in step; the allocator sets both later.
        if spec.get("clusterIP") and not spec.get("clusterIPs"):
            spec["clusterIPs"] = [spec["clusterIP"]]
        elif spec.get("clusterIPs") and not spec.get("clusterIP") and isinstance(spec["clusterIPs"], list):
            spec["clusterIP"] = spec["clusterIPs"][0]
        if not spec.get("ipFamilies"):
            spec["ipFamilies"] = ["IPv4"]
        if not spec.get("ipFamilyPolicy"):
            spec["ipFamilyPolicy"] = "SingleStack"


def prepare_service_update(old: Obj, new: Obj) -> None:
    """The Service strategy's PrepareForUpdate: keep allocations, drop type-specific leftovers.

    Called by the Service strategy after defaulting and before validation. Two kube rules:
    ``patchAllocatedValues`` (an update that omits ``clusterIP``/``nodePort``, as
    ``kubectl replace`` of the original manifest does, means "keep them") and
    ``dropTypeDependentFields`` (NodePort → ClusterIP clears the node ports and
    ``externalTrafficPolicy`` the client left untouched, instead of rejecting them).
    """
    old_spec, new_spec = old.get("spec"), new.get("spec")
    if not isinstance(old_spec, dict) or not isinstance(new_spec, dict):
        return
    old_type, new_type = old_spec.get("type"), new_spec.get("type")
    if "ExternalName" not in (old_type, new_type):
        if not new_spec.get("clusterIP") and old_spec.get("clusterIP"):
            new_spec["clusterIP"] = old_spec["clusterIP"]
        if old_spec.get("clusterIPs") and new_spec.get("clusterIP") == old_spec.get("clusterIP"):
            new_spec["clusterIPs"] = list(old_spec["clusterIPs"])
    elif new_type == "ExternalName" and old_type != "ExternalName":
        for key in ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy", "internalTrafficPolicy"):
            if new_spec.get(key) == old_spec.get(key):
                new_spec.pop(key, None)
    old_ports = {(p.get("port"), p.get("protocol", "TCP")): p for p in _dicts(old_spec.get("ports"))}
    for port in _dicts(new_spec.get("ports")):
        previous = old_ports.get((port.get("port"), port.get("protocol", "TCP")), {})
        if new_type in ("NodePort", "LoadBalancer") and old_type in ("NodePort", "LoadBalancer"):
            if not port.get("nodePort") and previous.get("nodePort"):
                port["nodePort"] = previous["nodePort"]
        elif new_type not in ("NodePort", "LoadBalancer") and port.get("nodePort") == previous.get("nodePort"):
            port.pop("nodePort", None)
    externally_accessible = new_type in ("NodePort", "LoadBalancer") or (
        new_type == "ClusterIP" and bool(new_spec.get("externalIPs")))
    if not externally_accessible and new_spec.get("externalTrafficPolicy") == old_spec.get("externalTrafficPolicy"):
        new_spec.pop("externalTrafficPolicy", None)
    if new_type != "LoadBalancer" and new_spec.get("allocateLoadBalancerNodePorts") == old_spec.get(
            "allocateLoadBalancerNodePorts"):
        new_spec.pop("allocateLoadBalancerNodePorts", None)


# --- the rest -------------------------------------------------------------------------


def default_namespace(ns: Obj) -> None:
    """Namespace defaults, its strategy's ``kubernetes`` finalizer and the name label."""
    name = _child(ns, "metadata").get("name")
    if name:
        labels = _child(ns["metadata"], "labels")
        labels["kubernetes.io/metadata.name"] = name
    spec = _child(ns, "spec")
    if not spec.get("finalizers"):
        spec["finalizers"] = ["kubernetes"]
    status = _child(ns, "status")
    if not status.get("phase"):
        status["phase"] = "Active"


def default_node(node: Obj) -> None:
    """SetDefaults_NodeStatus: allocatable defaults to capacity."""
    status = node.get("status")
    if isinstance(status, dict) and isinstance(status.get("capacity"), dict) and status.get("allocatable") is None:
        status["allocatable"] = dict(status["capacity"])


def default_secret(secret: Obj) -> None:
    if not secret.get("type"):
        secret["type"] = "Opaque"


def default_endpoints(ep: Obj) -> None:
    for subset in _dicts(ep.get("subsets")):
        for port in _dicts(subset.get("ports")):
            if not port.get("protocol"):
                port["protocol"] = "TCP"


def default_endpointslice(slice_: Obj) -> None:
    for port in _dicts(slice_.get("ports")):
        if not port.get("protocol"):
            port["protocol"] = "TCP"
    for endpoint in _dicts(slice_.get("endpoints")):
        _child(endpoint, "conditions")


def default_network_policy(policy: Obj) -> None:
    """``networking/v1`` defaults: an empty ``podSelector``, TCP ports, ``policyTypes`` from the rules.

    A policy without ``policyTypes`` is an Ingress policy, and an Egress one too when it
    has egress rules (``SetDefaults_NetworkPolicy``): so ``{podSelector: {}}`` alone is
    the classic default deny of ingress.
    """
    spec = _child(policy, "spec")
    _child(spec, "podSelector")
    for direction in ("ingress", "egress"):
        for rule in _dicts(spec.get(direction)):
            for port in _dicts(rule.get("ports")):
                if not port.get("protocol"):
                    port["protocol"] = "TCP"
    if not spec.get("policyTypes"):
        spec["policyTypes"] = ["Ingress", "Egress"] if spec.get("egress") else ["Ingress"]
