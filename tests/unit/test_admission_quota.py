"""LimitRange and ResourceQuota admission, events.k8s.io/v1 conversion, unserved kinds: the REST layer's answers.

Driven through :class:`RestAPI` without sockets; the words are upstream's, since a student
compares them with a real cluster's.
"""

from __future__ import annotations

import pytest

from labctl.apiserver import eventsv1, limitranger
from labctl.apiserver.errors import APIError
from labctl.apiserver.metrics import Metrics, request_labels
from labctl.apiserver.rest import RestAPI
from labctl.apiserver.scope import RequestScope
from labctl.apiserver.storage import SQLiteStore, clone
from labctl.kube.resources import Registry, ResourceType, not_served_message


@pytest.fixture
def api(tmp_path) -> RestAPI:
    api = RestAPI(SQLiteStore(tmp_path / "store.db"))
    api.bootstrap("127.0.0.1", 6443)
    return api


def _scope(api: RestAPI, plural: str, name: str | None = None) -> RequestScope:
    return RequestScope(api.registry.lookup("", "v1", plural), "default", name)


def _create(api: RestAPI, plural: str, body: dict) -> dict:
    return api.create(_scope(api, plural), body)


def _pod(name: str, resources: dict | None = None, init: dict | None = None) -> dict:
    ctr: dict = {"name": "app", "image": "nginx"}
    if resources is not None:
        ctr["resources"] = resources
    spec: dict = {"containers": [ctr]}
    if init is not None:
        spec["initContainers"] = [{"name": "init", "image": "busybox", "resources": init}]
    return {"metadata": {"name": name}, "spec": spec}


def _refusal(api: RestAPI, plural: str, body: dict) -> APIError:
    with pytest.raises(APIError) as info:
        _create(api, plural, body)
    return info.value


LIMITS = {"metadata": {"name": "limits"}, "spec": {"limits": [
    {"type": "Container", "default": {"cpu": "500m", "memory": "128Mi"}, "defaultRequest": {"cpu": "200m"},
     "min": {"cpu": "100m"}, "max": {"cpu": "1"}, "maxLimitRequestRatio": {"cpu": "4"}},
    {"type": "Pod", "max": {"memory": "1Gi"}},
]}}


# -- LimitRange --------------------------------------------------------------------------------
def test_limit_range_items_are_defaulted_like_upstream(api):
    lr = _create(api, "limitranges", {"metadata": {"name": "lr"}, "spec": {"limits": [
        {"type": "Container", "max": {"cpu": "2"}, "min": {"memory": "64Mi"}}]}})
    item = lr["spec"]["limits"][0]
    assert item["default"] == {"cpu": "2"}  # the max
    assert item["defaultRequest"] == {"cpu": "2", "memory": "64Mi"}  # the default, else the min


def test_containers_get_the_namespace_defaults_and_the_annotation(api):
    _create(api, "limitranges", LIMITS)
    pod = _create(api, "pods", _pod("web", {"limits": {"memory": "64Mi"}}))
    resources = pod["spec"]["containers"][0]["resources"]
    assert resources["limits"] == {"memory": "64Mi", "cpu": "500m"}
    # the request of memory came from its limit (kube's defaulting), cpu from the LimitRange
    assert resources["requests"] == {"memory": "64Mi", "cpu": "200m"}
    assert pod["metadata"]["annotations"][limitranger.ANNOTATION] == (
        "LimitRanger plugin set: cpu request for container app; cpu limit for container app")
    assert pod["status"]["qosClass"] == "Burstable"


@pytest.mark.parametrize(("resources", "message"), [
    ({"requests": {"cpu": "50m"}, "limits": {"cpu": "150m"}},
     "minimum cpu usage per Container is 100m, but request is 50m"),
    ({"limits": {"cpu": "2"}}, "maximum cpu usage per Container is 1, but limit is 2"),
    ({"requests": {"cpu": "100m"}, "limits": {"cpu": "800m"}},
     "cpu max limit to request ratio per Container is 4, but provided ratio is 8.000000"),
    ({"limits": {"memory": "2Gi"}}, "maximum memory usage per Pod is 1Gi, but limit is 2Gi"),
])
def test_min_max_and_ratio_are_refused_in_upstream_words(api, resources, message):
    _create(api, "limitranges", LIMITS)
    err = _refusal(api, "pods", _pod("web", resources))
    assert (err.code, err.reason) == (403, "Forbidden")
    assert err.message == f'pods "web" is forbidden: {message}'


def test_several_violations_are_listed_together(api):
    _create(api, "limitranges", LIMITS)
    err = _refusal(api, "pods", _pod("web", {"requests": {"cpu": "50m"}, "limits": {"cpu": "2"}}))
    assert err.message == ('pods "web" is forbidden: [minimum cpu usage per Container is 100m, but request is 50m, '
                           'maximum cpu usage per Container is 1, but limit is 2, '
                           'cpu max limit to request ratio per Container is 4, but provided ratio is 40.000000]')


def test_a_claim_is_held_to_the_persistent_volume_claim_items(api):
    _create(api, "limitranges", {"metadata": {"name": "storage"}, "spec": {"limits": [
        {"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "5Gi"}}]}})
    claim = {"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                    "resources": {"requests": {"storage": "10Gi"}}}}
    err = _refusal(api, "persistentvolumeclaims", claim)
    assert err.message == ('persistentvolumeclaims "data" is forbidden: maximum storage usage per '
                           'PersistentVolumeClaim is 5Gi, but request is 10Gi')


@pytest.mark.parametrize(("item", "path", "detail"), [
    ({"type": "Pod", "default": {"cpu": "1"}}, "spec.limits[0].default",
     "Forbidden: may not be specified when `type` is 'Pod'"),
    ({"type": "Container", "min": {"cpu": "2"}, "max": {"cpu": "1"}}, "spec.limits[0].min[cpu]",
     "min value 2 is greater than max value 1"),
    ({"type": "Container", "maxLimitRequestRatio": {"cpu": "500m"}}, "spec.limits[0].maxLimitRequestRatio[cpu]",
     "ratio 500m is less than 1"),
    ({"type": "Node"}, "spec.limits[0].type", 'Unsupported value: "Node"'),
])
def test_invalid_limit_ranges_are_refused_with_field_paths(api, item, path, detail):
    err = _refusal(api, "limitranges", {"metadata": {"name": "bad"}, "spec": {"limits": [item]}})
    assert err.code == 422
    assert path in err.message and detail in err.message


# -- ResourceQuota -----------------------------------------------------------------------------
def test_quota_refuses_the_pod_over_the_count_in_upstream_words(api):
    _create(api, "resourcequotas", {"metadata": {"name": "q"}, "spec": {"hard": {"pods": "2"}}})
    _create(api, "pods", _pod("a"))
    _create(api, "pods", _pod("b"))
    err = _refusal(api, "pods", _pod("c"))
    assert (err.code, err.reason) == (403, "Forbidden")
    assert err.message == 'pods "c" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2'
    # a generated name is made before validating admission, as kube's store does (KEP-4420)
    err = _refusal(api, "pods", {"metadata": {"generateName": "web-"}, "spec": _pod("x")["spec"]})
    assert err.message.startswith('pods "web-') and "exceeded quota: q" in err.message


def test_quota_status_follows_creates_and_deletes(api):
    _create(api, "resourcequotas", {"metadata": {"name": "q"}, "spec": {"hard": {
        "pods": "5", "requests.cpu": "1", "limits.memory": "1Gi", "configmaps": "3", "count/secrets": "4"}}})
    used = api.get(_scope(api, "resourcequotas", "q"))["status"]["used"]
    assert used == {"configmaps": "0", "count/secrets": "0", "limits.memory": "0", "pods": "0", "requests.cpu": "0"}
    _create(api, "pods", _pod("a", {"requests": {"cpu": "250m"}, "limits": {"memory": "256Mi", "cpu": "1"}}))
    _create(api, "configmaps", {"metadata": {"name": "c"}})
    status = api.get(_scope(api, "resourcequotas", "q"))["status"]
    assert status["hard"]["requests.cpu"] == "1"
    assert status["used"] == {"configmaps": "1", "count/secrets": "0", "limits.memory": "256Mi", "pods": "1",
                              "requests.cpu": "250m"}
    api.delete(_scope(api, "pods", "a"), {})
    assert api.get(_scope(api, "resourcequotas", "q"))["status"]["used"]["pods"] == "0"


def test_compute_quota_needs_every_container_to_state_it(api):
    _create(api, "resourcequotas", {"metadata": {"name": "compute"}, "spec": {"hard": {
        "requests.cpu": "1", "limits.memory": "1Gi"}}})
    err = _refusal(api, "pods", _pod("web", {"requests": {"cpu": "100m"}}))
    assert err.message == 'pods "web" is forbidden: failed quota: compute: must specify limits.memory for: app'


def test_compute_quota_counts_the_larger_of_init_and_app_containers(api):
    _create(api, "resourcequotas", {"metadata": {"name": "q"}, "spec": {"hard": {"requests.cpu": "1"}}})
    _create(api, "pods", _pod("a", {"requests": {"cpu": "200m"}}, init={"requests": {"cpu": "600m"}}))
    err = _refusal(api, "pods", _pod("b", {"requests": {"cpu": "500m"}}))
    assert "requested: requests.cpu=500m, used: requests.cpu=600m, limited: requests.cpu=1" in err.message


def test_service_quotas_count_node_ports_and_an_update_is_held_to_what_it_adds(api):
    _create(api, "resourcequotas", {"metadata": {"name": "svc"}, "spec": {"hard": {
        "services.nodeports": "1", "services.loadbalancers": "0"}}})
    port = {"port": 80, "targetPort": 80, "protocol": "TCP"}
    _create(api, "services", {"metadata": {"name": "a"}, "spec": {"type": "NodePort", "ports": [port]}})
    err = _refusal(api, "services", {"metadata": {"name": "b"}, "spec": {"type": "NodePort", "ports": [port]}})
    assert "exceeded quota: svc, requested: services.nodeports=1, used: services.nodeports=1" in err.message
    _create(api, "services", {"metadata": {"name": "c"}, "spec": {"ports": [port]}})
    current = clone(api.get(_scope(api, "services", "c")))
    current["spec"]["type"] = "LoadBalancer"
    with pytest.raises(APIError) as info:
        api.update(_scope(api, "services", "c"), current)
    assert "services.loadbalancers=1" in info.value.message and info.value.code == 403


def test_best_effort_scope_counts_only_pods_without_resources(api):
    _create(api, "resourcequotas", {"metadata": {"name": "be"}, "spec": {"hard": {"pods": "1"},
                                                                        "scopes": ["BestEffort"]}})
    _create(api, "pods", _pod("a"))
    _create(api, "pods", _pod("sized", {"requests": {"cpu": "100m"}}))  # NotBestEffort: not counted
    assert _refusal(api, "pods", _pod("b")).code == 403


def test_scope_selector_does_not_exist_selects_the_opposite_scope(api):
    _create(api, "resourcequotas", {"metadata": {"name": "sized"}, "spec": {"hard": {"pods": "1"}, "scopeSelector": {
        "matchExpressions": [{"scopeName": "BestEffort", "operator": "DoesNotExist"}]}}})
    _create(api, "pods", _pod("a"))  # BestEffort: not counted
    _create(api, "pods", _pod("b", {"requests": {"cpu": "100m"}}))
    assert _refusal(api, "pods", _pod("c", {"requests": {"cpu": "100m"}})).code == 403
    assert api.get(_scope(api, "resourcequotas", "sized"))["status"]["used"] == {"pods": "1"}


@pytest.mark.parametrize(("spec", "path", "detail"), [
    ({"hard": {"foo": "1"}}, "spec.hard[foo]", "must be a standard resource for quota"),
    ({"hard": {"pods": "1"}, "scopes": ["PriorityClass"]}, "spec.scopes[0]",
     "labctl does not support the PriorityClass scope"),
    ({"hard": {"pods": "1"}, "scopeSelector": {"matchExpressions": [
        {"scopeName": "PriorityClass", "operator": "In", "values": ["high"]}]}},
     "spec.scopeSelector.matchExpressions[0].scopeName", "labctl does not support the PriorityClass scope"),
    ({"hard": {"requests.cpu": "1"}, "scopes": ["BestEffort"]}, "spec.hard[requests.cpu]",
     "unsupported scope applied to resource"),
])
def test_invalid_or_unsupported_quotas_are_refused(api, spec, path, detail):
    err = _refusal(api, "resourcequotas", {"metadata": {"name": "bad"}, "spec": spec})
    assert err.code == 422
    assert path in err.message and detail in err.message


# -- events.k8s.io/v1 ----------------------------------------------------------------------------
def test_events_v1_is_a_view_of_core_events():
    core = {"kind": "Event", "apiVersion": "v1", "metadata": {"name": "e", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "web"}, "reason": "Started", "message": "Started container",
            "source": {"component": "kubelet", "host": "worker"}, "firstTimestamp": "2026-01-01T00:00:00Z",
            "lastTimestamp": "2026-01-01T00:01:00Z", "count": 3, "type": "Normal",
            "reportingComponent": "kubelet", "reportingInstance": "worker"}
    view = eventsv1.to_view(core)
    assert view["apiVersion"] == "events.k8s.io/v1"
    assert view["note"] == "Started container" and view["regarding"] == {"kind": "Pod", "name": "web"}
    assert view["deprecatedSource"] == {"component": "kubelet", "host": "worker"}
    assert view["deprecatedCount"] == 3 and view["deprecatedLastTimestamp"] == "2026-01-01T00:01:00Z"
    assert view["reportingController"] == "kubelet"
    assert eventsv1.from_view(view) == core


def test_events_v1_creates_are_validated_strictly():
    problems = {e.field for e in eventsv1.validate_create({"metadata": {"name": "e"}, "type": "Normal",
                                                          "deprecatedCount": 2})}
    assert problems == {"eventTime", "reportingController", "reportingInstance", "action", "reason",
                        "deprecatedCount"}


# -- unserved kinds and /metrics -------------------------------------------------------------------
def test_unserved_kinds_are_discovered_without_verbs_and_named_in_the_refusal():
    registry = Registry()
    rt = registry.lookup_unserved("node.k8s.io", "v1", "runtimeclasses")
    assert rt is not None and rt.verbs == ()
    assert registry.lookup("node.k8s.io", "v1", "runtimeclasses") is None
    assert "node.k8s.io" in registry.groups()
    assert not_served_message(rt) == "labctl does not serve RuntimeClass (node.k8s.io/v1)"
    assert registry.by_kind("node.k8s.io/v1", "RuntimeClass") is None  # never served


def test_metrics_labels_name_the_resource_and_bound_unknown_paths():
    registry = Registry()
    assert request_labels(registry, "GET", "/api/v1/namespaces/default/pods", False) == (
        "LIST", "", "v1", "pods", "", "namespace")
    assert request_labels(registry, "GET", "/apis/apps/v1/deployments", True)[0] == "WATCH"
    assert request_labels(registry, "GET", "/api/v1/namespaces/default/pods/web/log", False)[0] == "CONNECT"
    assert request_labels(registry, "GET", "/api/v1/namespaces/default/nosuch/x", False) == (
        "GET", "", "", "", "", "")


def test_a_resource_served_later_gets_its_labels_and_wins_over_an_unserved_row(tmp_path):
    registry = Registry()
    metrics = Metrics(SQLiteStore(tmp_path / "store.db"), registry)
    path = "/apis/node.k8s.io/v1/runtimeclasses"
    assert metrics.labels_of("GET", path, False) == ("GET", "", "", "", "", "")
    registry.serve(ResourceType("node.k8s.io", "v1", "RuntimeClass", "runtimeclasses", "runtimeclass", False))
    assert registry.lookup_unserved("node.k8s.io", "v1", "runtimeclasses") is None
    assert metrics.labels_of("GET", path, False) == ("LIST", "node.k8s.io", "v1", "runtimeclasses", "", "cluster")
