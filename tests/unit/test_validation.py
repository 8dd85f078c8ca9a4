"""Validation: kube's field paths and messages, rule by rule, on defaulted objects."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from labctl.apiserver.errors import invalid_object
from labctl.apiserver.strategies import strategy_for

SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                 "and must start and end with an alphanumeric character (e.g. 'example.com', regex used for "
                 "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start "
             "and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation "
             "is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
DNS1035_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
               "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
               "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                   "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
                   "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")
CONFIG_KEY_MSG = ("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  "
                  "or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')")


# --- the course's manifests -------------------------------------------------------------

def replicaset() -> dict:
    return {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "example-1", "namespace": "default"},
            "spec": {"replicas": 4, "minReadySeconds": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web", "env": "dev"}},
                                  "spec": {"containers": [{"name": "nginx", "image": "nginx:1.14.2",
                                                           "resources": {"limits": {"memory": "128Mi", "cpu": "500m"}},
                                                           "ports": [{"containerPort": 80}]}]}}}}


def service(name: str = "ex1-svc", svc_type: str = "ClusterIP", node_port: int | None = None) -> dict:
    port: dict[str, Any] = {"name": "web", "port": 80, "targetPort": 80, "protocol": "TCP"}
    if node_port:
        port["nodePort"] = node_port
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"type": svc_type, "selector": {"app": "web"}, "ports": [port]}}


def deployment() -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "example-2", "namespace": "default"},
            "spec": {"minReadySeconds": 5, "replicas": 4, "revisionHistoryLimit": 10,
                     "selector": {"matchLabels": {"app": "web"}},
                     "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                     "template": {"metadata": {"labels": {"app": "web", "env": "dev"}},
                                  "spec": {"containers": [{"name": "web", "image": "nginx",
                                                           "ports": [{"containerPort": 80}]}]}}}}


def pod() -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {"containers": [{"name": "web", "image": "nginx:1.25", "ports": [{"containerPort": 80, "name": "http"}]}]}}


def simple(resource: str, namespaced: bool = True, **fields) -> dict:
    meta = {"name": "x", "namespace": "default"} if namespaced else {"name": "x"}
    return {"metadata": meta, **fields}


def check(resource: str, obj: dict) -> list[str]:
    obj = copy.deepcopy(obj)
    strategy_for(resource).default(obj)
    return [str(e) for e in strategy_for(resource).validate(obj)]


VALID = [
    ("replicasets", replicaset()),
    ("services", service()),
    ("services", service("ex1-svc-external", "NodePort", 30000)),
    ("deployments", deployment()),
    ("pods", pod()),
    ("namespaces", simple("namespaces", False)),
    ("nodes", {"metadata": {"name": "lab-worker"}, "spec": {"podCIDR": "10.244.1.0/24", "podCIDRs": ["10.244.1.0/24"]},
               "status": {"addresses": [{"type": "InternalIP", "address": "172.30.0.3"}]}}),
    ("configmaps", simple("configmaps", data={"game.properties": "a=b", "KEY_1": "v"})),
    ("secrets", simple("secrets", data={"password": "czNjcjN0"})),
    ("secrets", simple("secrets", type="kubernetes.io/tls", data={"tls.crt": "YQ==", "tls.key": "Yg=="})),
    ("serviceaccounts", simple("serviceaccounts")),
    ("endpoints", simple("endpoints", subsets=[{"addresses": [{"ip": "10.244.1.5", "nodeName": "lab-worker"}],
                                                 "ports": [{"port": 80}]}])),
    ("endpointslices", simple("endpointslices", addressType="IPv4",
                              endpoints=[{"addresses": ["10.244.1.5"]}], ports=[{"name": "web", "port": 80}])),
    ("leases", simple("leases", spec={"holderIdentity": "lab-worker", "leaseDurationSeconds": 40})),
    ("events", simple("events", involvedObject={"kind": "Pod", "name": "web", "namespace": "default"}, reason="Started")),
    ("services", {"metadata": {"name": "headless", "namespace": "default"}, "spec": {"clusterIP": "None", "selector": {"a": "b"}}}),
    ("services", {"metadata": {"name": "ext", "namespace": "default"},
                  "spec": {"type": "ExternalName", "externalName": "example.com."}}),
]


@pytest.mark.parametrize("resource, obj", VALID, ids=[f"{r}-{i}" for i, (r, _) in enumerate(VALID)])
def test_valid_objects_pass_after_defaulting(resource, obj):
    assert check(resource, obj) == []


# --- invalid objects: (resource, base, mutation, expected error lines) ---------------------

def _set(path: str, value: Any) -> Callable[[dict], None]:
    """A mutation that sets a dotted path (``spec.template.spec.containers.0.image``)."""
    def mutate(obj: dict) -> None:
        keys = path.split(".")
        target: Any = obj
        for key in keys[:-1]:
            target = target[int(key)] if isinstance(target, list) else target.setdefault(key, {})
        last = keys[-1]
        if value is _DELETE:
            del target[int(last) if isinstance(target, list) else last]
        elif isinstance(target, list):
            target[int(last)] = value
        else:
            target[last] = value
    return mutate


_DELETE = object()

INVALID: list[tuple[str, Callable[[], dict], Callable[[dict], None], list[str]]] = [
    # metadata
    ("pods", pod, _set("metadata.name", "Web_1"), [f'metadata.name: Invalid value: "Web_1": {SUBDOMAIN_MSG}']),
    ("pods", pod, _set("metadata.name", ""), ["metadata.name: Required value: name or generateName is required"]),
    ("pods", pod, _set("metadata.namespace", ""), ["metadata.namespace: Required value"]),
    ("namespaces", lambda: simple("namespaces", False), _set("metadata.name", "team.a"),
     [f'metadata.name: Invalid value: "team.a": {LABEL_MSG}']),
    ("services", service, _set("metadata.name", "1web"), [f'metadata.name: Invalid value: "1web": {DNS1035_MSG}']),
    ("nodes", lambda: {"metadata": {"name": "n"}}, _set("metadata.namespace", "default"),
     ["metadata.namespace: Forbidden: not allowed on this type"]),
    ("pods", pod, _set("metadata.labels", {"app": "-web"}), [f'metadata.labels: Invalid value: "-web": {LABEL_VALUE_MSG}']),
    ("pods", pod, _set("metadata.labels", {"a/b/c": "x"}),
     ['metadata.labels: Invalid value: "a/b/c": a qualified name must consist of alphanumeric characters, \'-\', \'_\' '
      "or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
      "regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain "
      "prefix and '/' (e.g. 'example.com/MyName')"]),
    ("pods", pod, _set("metadata.ownerReferences", [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs"}]),
     ['metadata.ownerReferences.uid: Invalid value: "": must not be empty']),
    ("pods", pod, _set("metadata.finalizers", ["cleanup"]),
     ['metadata.finalizers: Invalid value: "cleanup": name is neither a standard finalizer name nor is it fully qualified']),
    # pods
    ("pods", pod, _set("spec.containers", []), ["spec.containers: Required value"]),
    ("pods", pod, _set("spec.containers.0.name", "Web"), [f'spec.containers[0].name: Invalid value: "Web": {LABEL_MSG}']),
    ("pods", pod, lambda p: p["spec"]["containers"].append({"name": "web", "image": "busybox"}),
     ['spec.containers[1].name: Duplicate value: "web"']),
    ("pods", pod, _set("spec.containers.0.image", _DELETE), ["spec.containers[0].image: Required value"]),
    ("pods", pod, _set("spec.containers.0.ports.0.containerPort", 70000),
     ["spec.containers[0].ports[0].containerPort: Invalid value: 70000: must be between 1 and 65535, inclusive"]),
    ("pods", pod, _set("spec.containers.0.ports.0.protocol", "ICMP"),
     ['spec.containers[0].ports[0].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"']),
    ("pods", pod, _set("spec.containers.0.ports.0.name", "http_port"),
     ['spec.containers[0].ports[0].name: Invalid value: "http_port": must contain only alpha-numeric characters '
      "(a-z, 0-9), and hyphens (-)"]),
    ("pods", pod, lambda p: p["spec"]["containers"][0]["ports"].append({"containerPort": 81, "name": "http"}),
     ['spec.containers[0].ports[1].name: Duplicate value: "http"']),
    ("pods", pod, _set("spec.containers.0.resources", {"limits": {"cpu": "500m"}, "requests": {"cpu": "1"}}),
     ['spec.containers[0].resources.requests: Invalid value: "1": must be less than or equal to cpu limit of 500m']),
    ("pods", pod, _set("spec.containers.0.resources", {"limits": {"memory": "128MB"}}),
     ['spec.containers[0].resources.limits[memory]: Invalid value: "128MB": quantities must match the regular '
      "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
      'spec.containers[0].resources.requests[memory]: Invalid value: "128MB": quantities must match the regular '
      "expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"]),
    ("pods", pod, _set("spec.containers.0.resources", {"requests": {"gpu": "1"}}),
     ['spec.containers[0].resources.requests[gpu]: Invalid value: "gpu": must be a standard resource for containers']),
    ("pods", pod, _set("spec.restartPolicy", "Sometimes"),
     ['spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"']),
    ("pods", pod, _set("spec.dnsPolicy", "Google"),
     ['spec.dnsPolicy: Unsupported value: "Google": supported values: "ClusterFirstWithHostNet", "ClusterFirst", '
      '"Default", "None"']),
    ("pods", pod, _set("spec.containers.0.livenessProbe", {"initialDelaySeconds": 3}),
     ["spec.containers[0].livenessProbe: Required value: must specify a handler type"]),
    ("pods", pod, _set("spec.containers.0.readinessProbe", {"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}}),
     ["spec.containers[0].readinessProbe.tcpSocket: Forbidden: may not specify more than 1 handler type"]),
    ("pods", pod, _set("spec.containers.0.livenessProbe", {"tcpSocket": {"port": 80}, "successThreshold": 2}),
     ["spec.containers[0].livenessProbe.successThreshold: Invalid value: 2: must be 1"]),
    ("pods", pod, _set("spec.containers.0.volumeMounts", [{"name": "data", "mountPath": "/data"}]),
     ['spec.containers[0].volumeMounts[0].name: Not found: "data"']),
    ("pods", pod, _set("spec.tolerations", [{"operator": "Equal", "value": "x"}]),
     ['spec.tolerations[0].operator: Invalid value: "Equal": operator must be Exists when `key` is empty, which '
      'means "match all values and all keys"']),
    ("pods", pod, lambda p: (p["spec"].update(hostNetwork=True),
                             p["spec"]["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 8081}])),
     ["spec.containers[0].ports[0].hostPort: Invalid value: 8081: must match `containerPort` when `hostNetwork` is true"]),
    # services
    ("services", service, _set("spec.ports", []), ["spec.ports: Required value"]),
    ("services", service, _set("spec.ports.0.port", 0), ["spec.ports[0].port: Invalid value: 0: must be between 1 and 65535, inclusive"]),
    ("services", service, lambda s: s["spec"]["ports"].append({"port": 443}), ["spec.ports[1].name: Required value"]),
    ("services", service, lambda s: s["spec"]["ports"].append({"name": "web", "port": 443}),
     ['spec.ports[1].name: Duplicate value: "web"']),
    ("services", service, _set("spec.type", "Internal"),
     ['spec.type: Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"']),
    ("services", lambda: service(svc_type="NodePort"), _set("spec.clusterIP", "None"),
     ["spec.clusterIPs[0]: Invalid value: \"None\": may not be set to 'None' for NodePort services"]),
    ("services", service, _set("spec.ports.0.nodePort", 30001),
     ["spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"]),
    ("services", service, _set("spec.selector", {"app": "web!"}), [f'spec.selector: Invalid value: "web!": {LABEL_VALUE_MSG}']),
    ("services", lambda: {"metadata": {"name": "ext", "namespace": "default"}, "spec": {"type": "ExternalName"}},
     lambda s: None, ["spec.externalName: Required value"]),
    ("services", lambda: {"metadata": {"name": "ext", "namespace": "default"}, "spec": {"type": "ExternalName"}},
     _set("spec.externalName", "Bad_Name"), [f'spec.externalName: Invalid value: "Bad_Name": {SUBDOMAIN_MSG}']),
    ("services", service, _set("spec.sessionAffinity", "Cookie"),
     ['spec.sessionAffinity: Unsupported value: "Cookie": supported values: "ClientIP", "None"']),
    ("services", service, _set("spec.clusterIP", "10.96.0.300"),
     ['spec.clusterIPs[0]: Invalid value: "10.96.0.300": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)']),
    ("services", service, _set("spec.ports.0.targetPort", "web_http"),
     ['spec.ports[0].targetPort: Invalid value: "web_http": must contain only alpha-numeric characters (a-z, 0-9), '
      "and hyphens (-)"]),
    # replicasets and deployments
    ("replicasets", replicaset, _set("spec.template.metadata.labels", {"app": "api"}),
     ['spec.template.metadata.labels: Invalid value: {"app":"api"}: `selector` does not match template `labels`']),
    ("replicasets", replicaset, _set("spec.selector", _DELETE), ["spec.selector: Required value"]),
    ("replicasets", replicaset, _set("spec.selector", {}),
     ["spec.selector: Invalid value: {}: empty selector is invalid for deployment"]),
    ("replicasets", replicaset, _set("spec.replicas", -1), ["spec.replicas: Invalid value: -1: must be greater than or equal to 0"]),
    ("replicasets", replicaset, _set("spec.template.spec.restartPolicy", "Never"),
     ['spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"']),
    ("deployments", deployment, _set("spec.selector.matchLabels", {"app": "api"}),
     ['spec.template.metadata.labels: Invalid value: {"app":"web","env":"dev"}: `selector` does not match template `labels`']),
    ("deployments", deployment, _set("spec.strategy.rollingUpdate", {"maxSurge": 0, "maxUnavailable": "0%"}),
     ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "0%": may not be 0 when `maxSurge` is 0']),
    ("deployments", deployment, _set("spec.strategy.rollingUpdate.maxSurge", "half"),
     ["spec.strategy.rollingUpdate.maxSurge: Invalid value: \"half\": a valid percent string must be a numeric string "
      "followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')"]),
    ("deployments", deployment, _set("spec.strategy.rollingUpdate.maxUnavailable", "150%"),
     ['spec.strategy.rollingUpdate.maxUnavailable: Invalid value: "150%": must not be greater than 100%']),
    ("deployments", deployment, _set("spec.strategy.type", "BlueGreen"),
     ['spec.strategy.type: Unsupported value: "BlueGreen": supported values: "Recreate", "RollingUpdate"']),
    ("deployments", deployment, _set("spec.strategy", {"type": "Recreate", "rollingUpdate": {"maxSurge": 1}}),
     ["spec.strategy.rollingUpdate: Forbidden: may not be specified when strategy `type` is 'Recreate'"]),
    ("deployments", deployment, _set("spec.minReadySeconds", -5),
     ["spec.minReadySeconds: Invalid value: -5: must be greater than or equal to 0"]),
    ("deployments", deployment, _set("spec.revisionHistoryLimit", -1),
     ["spec.revisionHistoryLimit: Invalid value: -1: must be greater than or equal to 0"]),
    ("deployments", deployment, _set("spec.progressDeadlineSeconds", 5),
     ["spec.progressDeadlineSeconds: Invalid value: 5: must be greater than minReadySeconds"]),
    ("deployments", deployment, _set("spec.selector.matchExpressions", [{"key": "tier", "operator": "In"}]),
     ["spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
      'spec.selector: Invalid value: {"matchExpressions":[{"key":"tier","operator":"In"}],"matchLabels":{"app":"web"}}: '
      "invalid label selector"]),
    # configmaps, secrets and the rest
    ("configmaps", lambda: simple("configmaps"), _set("data", {"bad key": "v"}),
     [f'data[bad key]: Invalid value: "bad key": {CONFIG_KEY_MSG}']),
    ("configmaps", lambda: simple("configmaps"), _set("data", {"..x": "v"}),
     ['data[..x]: Invalid value: "..x": must not start with \'..\'']),
    ("secrets", lambda: simple("secrets"), _set("data", {"password": "not base64!"}),
     ['data[password]: Invalid value: "<secret contents redacted>": illegal base64 data']),
    ("secrets", lambda: simple("secrets", type="kubernetes.io/tls"), _set("data", {"tls.crt": "YQ=="}),
     ["data[tls.key]: Required value"]),
    ("endpoints", lambda: simple("endpoints"), _set("subsets", [{"addresses": [{"ip": "10.0.0.256"}], "ports": [{"port": 80}]}]),
     ['subsets[0].addresses[0].ip: Invalid value: "10.0.0.256": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)']),
    ("endpoints", lambda: simple("endpoints"), _set("subsets", [{"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": 80}]}]),
     ['subsets[0].addresses[0].ip: Invalid value: "127.0.0.1": may not be in the loopback range (127.0.0.0/8, ::1/128)']),
    ("endpoints", lambda: simple("endpoints"), _set("subsets", [{"ports": [{"port": 80}]}]),
     ["subsets[0]: Required value: must specify `addresses` or `notReadyAddresses`"]),
    ("endpointslices", lambda: simple("endpointslices", addressType="IPv4"), _set("endpoints", [{"addresses": ["fd00::1"]}]),
     ['endpoints[0].addresses[0]: Invalid value: "fd00::1": must be a valid IPv4 address']),
    ("nodes", lambda: {"metadata": {"name": "n"}}, _set("spec.podCIDR", "10.244.1.0"),
     ['spec.podCIDR: Invalid value: "10.244.1.0": must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)']),
    ("nodes", lambda: {"metadata": {"name": "n"}}, _set("spec.taints", [{"key": "gpu", "effect": "Never"}]),
     ['spec.taints[0].effect: Unsupported value: "Never": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"']),
    ("leases", lambda: simple("leases"), _set("spec.leaseDurationSeconds", 0),
     ["spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"]),
    ("events", lambda: simple("events"), _set("involvedObject", {"kind": "Pod", "name": "p", "namespace": "other"}),
     ['involvedObject.namespace: Invalid value: "other": does not match event.namespace']),
    ("serviceaccounts", lambda: simple("serviceaccounts"), _set("secrets", [{"name": "Token"}]),
     [f'secrets[0].name: Invalid value: "Token": {SUBDOMAIN_MSG}']),
]


@pytest.mark.parametrize("resource, base, mutate, expected", INVALID,
                         ids=[f"{r}-{i}" for i, (r, *_rest) in enumerate(INVALID)])
def test_invalid_objects_report_kubes_errors(resource, base, mutate, expected):
    obj = base()
    mutate(obj)
    assert check(resource, obj) == expected


def test_annotations_over_256_kib_are_too_long():
    obj = pod()
    obj["metadata"]["annotations"] = {"big": "x" * (256 * 1024)}
    strategy_for("pods").default(obj)
    [error] = strategy_for("pods").validate(obj)
    assert (error.type, error.field, error.detail) == ("FieldValueTooLong", "metadata.annotations",
                                                       "must have at most 262144 bytes")


def test_generate_name_may_end_with_dash():
    obj = pod()
    obj["metadata"].update(generateName="web-", name="web-x7k2p")
    assert check("pods", obj) == []
    obj["metadata"]["generateName"] = "Web-"
    assert check("pods", obj)[0].startswith('metadata.generateName: Invalid value: "Web-": a lowercase RFC 1123')


def test_all_errors_are_reported_together():
    obj = deployment()
    obj["spec"]["replicas"] = -1
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "api"}
    paths = [line.split(":")[0] for line in check("deployments", obj)]
    assert paths == ["spec.replicas", "spec.template.metadata.labels"]


def test_invalid_status_reads_like_kubectl():
    obj = deployment()
    obj["spec"]["template"]["metadata"]["labels"] = {"app": "api"}
    strategy_for("deployments").default(obj)
    err = invalid_object("Deployment", "apps", "example-2", strategy_for("deployments").validate(obj))
    assert err.message == ('Deployment.apps "example-2" is invalid: spec.template.metadata.labels: Invalid value: '
                           '{"app":"api"}: `selector` does not match template `labels`')
    assert err.status()["details"]["causes"][0]["field"] == "spec.template.metadata.labels"


# --- updates -----------------------------------------------------------------------------

def _stored(resource: str, obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    strategy_for(resource).default(obj)
    obj["metadata"].update(uid="u-1", resourceVersion="5")
    return obj


def update(resource: str, old: dict, mutate: Callable[[dict], None]) -> list[str]:
    new = copy.deepcopy(old)
    mutate(new)
    strategy_for(resource).default(new)
    return [str(e) for e in strategy_for(resource).validate_update(old, new)]


POD_FORBIDDEN = ("spec: Forbidden: pod updates may not change fields other than `spec.containers[*].image`,"
                 "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions "
                 "to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it "
                 "was previously negative)\n")

UPDATES_OK = [
    ("pods", pod, _set("spec.containers.0.image", "nginx:1.26")),
    ("pods", pod, _set("spec.activeDeadlineSeconds", 60)),
    ("pods", pod, lambda p: p["spec"]["tolerations"].append({"key": "gpu", "operator": "Exists"})),
    ("pods", pod, _set("metadata.labels", {"app": "web", "tier": "front"})),
    ("deployments", deployment, _set("spec.replicas", 2)),
    ("deployments", deployment, _set("spec.template.spec.containers.0.image", "nginx:1.26")),
    ("services", service, _set("spec.ports.0.port", 8080)),
    ("configmaps", lambda: simple("configmaps", data={"a": "1"}), _set("data", {"a": "2"})),
    ("configmaps", lambda: simple("configmaps", data={"a": "1"}, immutable=True), _set("metadata.labels", {"x": "y"})),
]


@pytest.mark.parametrize("resource, base, mutate", UPDATES_OK, ids=[f"{r}-{i}" for i, (r, *_rest) in enumerate(UPDATES_OK)])
def test_allowed_updates(resource, base, mutate):
    assert update(resource, _stored(resource, base()), mutate) == []


def _svc_with_ip(svc_type: str = "ClusterIP") -> dict:
    svc = service(svc_type=svc_type)
    svc["spec"]["clusterIP"] = "10.96.0.20"
    return svc


UPDATES_REJECTED = [
    ("pods", pod, _set("metadata.name", "other"), ['metadata.name: Invalid value: "other": field is immutable']),
    ("pods", pod, _set("metadata.uid", "u-2"), ['metadata.uid: Invalid value: "u-2": field is immutable']),
    ("deployments", deployment, _set("spec.selector", {"matchLabels": {"app": "web", "env": "dev"}}),
     ['spec.selector: Invalid value: {"matchLabels":{"app":"web","env":"dev"}}: field is immutable']),
    ("replicasets", replicaset, _set("spec.selector", {"matchLabels": {"env": "dev"}}),
     ['spec.selector: Invalid value: {"matchLabels":{"env":"dev"}}: field is immutable']),
    ("services", _svc_with_ip, _set("spec.clusterIP", "10.96.0.21"),
     ['spec.clusterIPs[0]: Invalid value: ["10.96.0.21"]: may not change once set']),
    ("pods", pod, _set("spec.activeDeadlineSeconds", 0),
     ["spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 2147483647, inclusive"]),
    ("pods", lambda: {**pod(), "spec": {**pod()["spec"], "tolerations": [{"key": "gpu", "operator": "Exists"}]}},
     lambda p: p["spec"]["tolerations"].pop(0),
     ["spec.tolerations: Forbidden: existing toleration can not be modified except its tolerationSeconds"]),
    ("configmaps", lambda: simple("configmaps", data={"a": "1"}, immutable=True), _set("data", {"a": "2"}),
     ["data: Forbidden: field is immutable when `immutable` is set"]),
    ("configmaps", lambda: simple("configmaps", data={"a": "1"}, immutable=True), _set("immutable", False),
     ["immutable: Forbidden: field is immutable when `immutable` is set"]),
    ("secrets", lambda: simple("secrets", data={"a": "MQ=="}), _set("type", "kubernetes.io/basic-auth"),
     ['type: Invalid value: "kubernetes.io/basic-auth": field is immutable']),
]


@pytest.mark.parametrize("resource, base, mutate, expected", UPDATES_REJECTED,
                         ids=[f"{r}-{i}" for i, (r, *_rest) in enumerate(UPDATES_REJECTED)])
def test_rejected_updates(resource, base, mutate, expected):
    assert update(resource, _stored(resource, base()), mutate) == expected


def test_pod_spec_changes_are_forbidden_with_kubes_message():
    errors = update("pods", _stored("pods", pod()), _set("spec.containers.0.ports.0.containerPort", 8080))
    assert len(errors) == 1
    assert errors[0].startswith(POD_FORBIDDEN)
    assert "spec.containers[0].ports[0].containerPort: 80 -> 8080" in errors[0]


def test_pod_active_deadline_may_only_shrink():
    old = _stored("pods", pod())
    old["spec"]["activeDeadlineSeconds"] = 60
    assert update("pods", old, _set("spec.activeDeadlineSeconds", 30)) == []
    assert update("pods", old, _set("spec.activeDeadlineSeconds", 90)) == [
        "spec.activeDeadlineSeconds: Invalid value: 90: must be less than or equal to previous value"]


def test_service_update_may_omit_or_drop_ip_when_becoming_external_name():
    old = _stored("services", _svc_with_ip())
    old["spec"]["clusterIPs"] = ["10.96.0.20"]
    assert update("services", old, lambda s: (s["spec"].pop("clusterIP"), s["spec"].pop("clusterIPs"))) == []
    external = {"type": "ExternalName", "externalName": "example.com", "ports": old["spec"]["ports"],
                "sessionAffinity": "None"}
    assert update("services", old, lambda s: s.__setitem__("spec", external)) == []


def test_status_subresource_checks_only_metadata():
    old = _stored("pods", pod())
    new = copy.deepcopy(old)
    new["status"] = {"phase": "Running"}
    assert strategy_for("pods").validate_status_update(old, new) == []


@pytest.mark.parametrize("resource", ["pods", "services", "deployments", "replicasets", "secrets", "nodes",
                                      "endpoints", "endpointslices", "events", "configmaps"])
@pytest.mark.parametrize("junk", [{}, {"spec": None, "metadata": None}, {"spec": {"containers": "x", "ports": 3}},
                                  {"spec": {"containers": [None, 1], "template": []}, "data": [1], "subsets": "x"}])
def test_malformed_input_gives_errors_not_exceptions(resource, junk):
    obj = copy.deepcopy(junk)
    strategy_for(resource).default(obj)
    assert strategy_for(resource).validate(obj)  # at least the missing name
    strategy_for(resource).validate_update(obj, obj)
