"""The generic REST flow asks each kind's strategy where kinds differ; these are those differences.

Driven in process (``RestAPI`` over a throwaway SQLite store), so each rule is checked
without a server, a socket or kubectl.
"""

from __future__ import annotations

import copy
import json

import pytest

from labctl.apiserver.decode import Patch, decode_patch_body
from labctl.apiserver.errors import APIError
from labctl.apiserver.rest import RequestScope
from labctl.apiserver.strategies import Strategy, strategy_for
from labctl.kube.resources import CREATE_ONLY, METRICS_GROUP, RESOURCES, resource_for


def scope(plural: str, name: str | None = None, namespace: str | None = "default",
          subresource: str | None = None) -> RequestScope:
    rt = resource_for(plural)
    return RequestScope(rt, namespace if rt.namespaced else None, name, subresource)


def pod(name: str = "web", node: str | None = None) -> dict:
    spec: dict = {"containers": [{"name": "web", "image": "nginx:1.25"}]}
    if node:
        spec["nodeName"] = node
    return {"metadata": {"name": name}, "spec": spec}


def test_every_served_kind_has_a_strategy_of_its_own():
    # the reviews (verbs: create only) are answered by the authorizer, never stored
    # metrics.k8s.io's figures are computed per request (resourcemetrics.py), never stored
    generic = [rt.plural for rt in RESOURCES if type(strategy_for(rt)) is Strategy and rt.verbs != CREATE_ONLY
               and rt.group != METRICS_GROUP]
    assert generic == []


def test_status_is_dropped_on_create_unless_the_kind_registers_with_it(api):
    created = api.create(scope("pods"), {**pod(), "status": {"phase": "Running", "podIP": "10.244.1.5"}})
    assert created["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    node = api.create(scope("nodes"), {"metadata": {"name": "worker"},
                                       "status": {"addresses": [{"type": "InternalIP", "address": "172.30.0.3"}]}})
    assert node["status"]["addresses"] == [{"type": "InternalIP", "address": "172.30.0.3"}]


def test_a_status_write_changes_status_only_and_a_main_write_keeps_status(api):
    created = api.create(scope("pods"), pod())
    body = {**created, "metadata": {**created["metadata"], "labels": {"tier": "x"}},
            "status": {"phase": "Running"}}
    after_status = api.update(scope("pods", "web", subresource="status"), body)
    assert after_status["status"]["phase"] == "Running"
    assert "labels" not in after_status["metadata"]
    after_main = api.update(scope("pods", "web"), {**after_status, "status": {"phase": "Failed"},
                                                    "metadata": {**after_status["metadata"], "labels": {"a": "b"}}})
    assert after_main["status"]["phase"] == "Running"
    assert after_main["metadata"]["labels"] == {"a": "b"}


def test_generation_tracks_the_spec_of_kinds_with_one(api):
    created = api.create(scope("pods"), pod())
    assert created["metadata"]["generation"] == 1
    containers = [{**created["spec"]["containers"][0], "image": "nginx:2"}]
    updated = api.update(scope("pods", "web"), {**created, "spec": {**created["spec"], "containers": containers}})
    assert updated["metadata"]["generation"] == 2
    cm = api.create(scope("configmaps"), {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    assert "generation" not in cm["metadata"]
    assert "generation" not in api.update(scope("configmaps", "cfg"), {**cm, "data": {"a": "2"}})["metadata"]


def test_a_pod_on_a_node_is_deleted_gracefully_and_goes_when_the_node_confirms(api):
    api.create(scope("pods"), pod(node="worker"))
    terminating = api.delete(scope("pods", "web"), {})
    assert terminating["metadata"]["deletionGracePeriodSeconds"] == 30
    assert api.store.get(scope("pods", "web").key()) is not None
    api.delete(scope("pods", "web"), {"gracePeriodSeconds": 0})
    assert api.store.get(scope("pods", "web").key()) is None
    api.create(scope("pods"), pod("unscheduled"))
    api.delete(scope("pods", "unscheduled"), {})
    assert api.store.get(scope("pods", "unscheduled").key()) is None


def test_namespaces_get_a_service_account_lose_their_content_and_some_stay(api):
    api.create(scope("namespaces"), {"metadata": {"name": "team"}})
    assert api.get(scope("serviceaccounts", "default", "team"))
    api.create(scope("configmaps", namespace="team"), {"metadata": {"name": "cfg"}})
    api.delete(scope("namespaces", "team"), {})
    assert api.store.list(resource_for("configmaps").key, "team") == []
    assert api.store.get(scope("namespaces", "team").key()) is None
    with pytest.raises(APIError) as err:
        api.delete(scope("namespaces", "kube-system"), {})
    assert err.value.code == 403


def test_services_get_a_cluster_ip_and_keep_it_when_an_update_omits_it(api):
    created = api.create(scope("services"), {"metadata": {"name": "web"},
                                             "spec": {"type": "NodePort", "ports": [{"port": 80}]}})
    ip, node_port = created["spec"]["clusterIP"], created["spec"]["ports"][0]["nodePort"]
    assert created["spec"]["clusterIPs"] == [ip]
    replaced = api.update(scope("services", "web"), {"metadata": {"name": "web"},
                                                     "spec": {"type": "NodePort", "ports": [{"port": 80}]}})
    assert (replaced["spec"]["clusterIP"], replaced["spec"]["ports"][0]["nodePort"]) == (ip, node_port)
    assert api.get(scope("services", "kubernetes"))["spec"]["clusterIP"] == "10.96.0.1"


# -- pods/ephemeralcontainers (kubectl debug) -------------------------------------------------------
DEBUGGER = {"name": "debugger-x1", "image": "busybox", "stdin": True, "tty": True, "targetContainerName": "web",
            "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}


def _add_ephemeral(api, *containers: dict) -> dict:
    """kubectl debug's strategic merge patch through the subresource."""
    body = decode_patch_body(json.dumps({"spec": {"ephemeralContainers": list(containers)}}).encode(),
                             "strategic", True)
    return api.patch(scope("pods", "web", subresource="ephemeralcontainers"), Patch("strategic", body))[1]


def test_ephemeral_containers_are_added_through_their_subresource_only(api):
    api.create(scope("pods"), pod(node="worker"))
    with pytest.raises(APIError) as refused:
        api.create(scope("pods"), {**pod("born-with-one"), "spec": {**pod()["spec"], "ephemeralContainers": [DEBUGGER]}})
    assert refused.value.code == 422 and "spec.ephemeralContainers: Forbidden: cannot be set on create" in \
        refused.value.message
    added = _add_ephemeral(api, DEBUGGER)
    assert added["spec"]["ephemeralContainers"][0]["name"] == "debugger-x1"
    # defaulted like any container; the rest of the pod is untouched
    assert added["spec"]["ephemeralContainers"][0]["terminationMessagePolicy"] == "File"
    assert added["spec"]["containers"] == api.get(scope("pods", "web"))["spec"]["containers"]
    # an ordinary update may not change them
    changed = copy.deepcopy(api.get(scope("pods", "web")))  # the store's own copy must stay as it is
    changed["spec"]["ephemeralContainers"] = []
    with pytest.raises(APIError, match="spec: Forbidden: pod updates may not change fields"):
        api.update(scope("pods", "web"), changed)


def test_ephemeral_containers_only_grow_and_refuse_long_lived_fields(api):
    api.create(scope("pods"), pod(node="worker"))
    _add_ephemeral(api, DEBUGGER)
    with pytest.raises(APIError) as removed:
        api.update(scope("pods", "web", subresource="ephemeralcontainers"),
                   {**api.get(scope("pods", "web")), "spec": {**pod()["spec"], "ephemeralContainers": []}})
    assert 'existing ephemeral containers "debugger-x1" may not be removed' in removed.value.message
    with pytest.raises(APIError) as bad:
        _add_ephemeral(api, DEBUGGER, {"name": "web", "image": "busybox", "ports": [{"containerPort": 80}],
                                       "targetContainerName": "nope"})
    message = bad.value.message
    assert 'spec.ephemeralContainers[1].name: Duplicate value: "web"' in message
    assert "spec.ephemeralContainers[1].ports: Forbidden: cannot be set for an Ephemeral Container" in message
    assert 'spec.ephemeralContainers[1].targetContainerName: Not found: "nope"' in message
