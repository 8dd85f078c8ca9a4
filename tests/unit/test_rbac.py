"""The authorizers on their own: request attributes, rule matching, RBAC resolution, the Node authorizer, escalation."""

from __future__ import annotations

import pytest

from labctl.apiserver.authz import escalation
from labctl.apiserver.authz.aggregation import aggregate, aggregated_rules
from labctl.apiserver.authz.attributes import Attributes, forbidden, request_attributes
from labctl.apiserver.authz.authorizer import Authorizer
from labctl.apiserver.authz.bootstrap import reconcile, served_only
from labctl.apiserver.authz.node import NodeAuthorizer
from labctl.apiserver.authz.rules import Rule, compact, compact_string, covers
from labctl.apiserver.errors import APIError
from labctl.apiserver.rest import RequestScope, RestAPI
from labctl.apiserver.storage import SQLiteStore
from labctl.apiserver.users import User, authenticated
from labctl.kube.resources import Registry, resource_for

ALICE = authenticated("alice")
RBAC = "rbac.authorization.k8s.io"


@pytest.fixture
def api(tmp_path):
    store = SQLiteStore(tmp_path / "store.db")
    api = RestAPI(store)
    for ns in ("default", "team", "kube-node-lease"):
        api.create(RequestScope(resource_for("namespaces")), {"metadata": {"name": ns}})
    yield api
    store.close()


def create(api: RestAPI, plural: str, obj: dict, namespace: str | None = None) -> dict:
    rt = resource_for(plural)
    return api.create(RequestScope(rt, namespace if rt.namespaced else None), obj)


def attrs(user: User, method: str, path: str, **query: str) -> Attributes:
    return request_attributes(user, method, path, query)


# -- RequestInfoFactory -------------------------------------------------------------------------------
@pytest.mark.parametrize("method,path,query,expected", [
    ("GET", "/api/v1/namespaces/default/pods", {}, ("list", "default", "", "pods", "", "")),
    ("GET", "/api/v1/namespaces/default/pods", {"watch": "true"}, ("watch", "default", "", "pods", "", "")),
    ("GET", "/api/v1/pods", {}, ("list", "", "", "pods", "", "")),
    ("GET", "/api/v1/nodes", {"fieldSelector": "metadata.name=worker"}, ("list", "", "", "nodes", "", "worker")),
    ("GET", "/api/v1/namespaces/default/pods/web/log", {}, ("get", "default", "", "pods", "log", "web")),
    ("PATCH", "/api/v1/namespaces/default/services/web/status", {},
     ("patch", "default", "", "services", "status", "web")),
    ("POST", "/api/v1/namespaces/default/serviceaccounts/default/token", {},
     ("create", "default", "", "serviceaccounts", "token", "default")),
    ("DELETE", "/apis/apps/v1/namespaces/team/deployments", {}, ("deletecollection", "team", "apps", "deployments",
                                                                 "", "")),
    ("PUT", "/api/v1/namespaces/team/finalize", {}, ("update", "team", "", "namespaces", "finalize", "team")),
    ("GET", "/api/v1/namespaces/team", {}, ("get", "team", "", "namespaces", "", "team")),
    ("GET", "/api/v1/watch/namespaces/team/pods", {}, ("watch", "team", "", "pods", "", "")),
    ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {},
     ("create", "", "authorization.k8s.io", "selfsubjectaccessreviews", "", "")),
])
def test_request_attributes_are_kubes(method, path, query, expected):
    a = attrs(ALICE, method, path, **query)
    assert a.resource_request
    assert (a.verb, a.namespace, a.api_group, a.resource, a.subresource, a.name) == expected


@pytest.mark.parametrize("path", ["/", "/api", "/api/v1", "/apis", "/apis/apps", "/apis/apps/v1", "/version",
                                  "/openapi/v3/apis/apps/v1", "/healthz"])
def test_discovery_and_health_are_non_resource_paths(path):
    a = attrs(ALICE, "GET", path)
    assert (a.resource_request, a.verb, a.path) == (False, "get", path)


def test_forbidden_messages_are_kubes_word_for_word():
    sa = authenticated("system:serviceaccount:default:default")
    err = forbidden(attrs(sa, "GET", "/api/v1/namespaces/default/pods"))
    assert (err.code, err.reason) == (403, "Forbidden")
    assert err.message == ('pods is forbidden: User "system:serviceaccount:default:default" cannot list resource '
                           '"pods" in API group "" in the namespace "default"')
    err = forbidden(attrs(sa, "DELETE", "/api/v1/nodes/worker"), "some reason")
    assert err.message == ('nodes "worker" is forbidden: User "system:serviceaccount:default:default" cannot delete '
                           'resource "nodes" in API group "" at the cluster scope: some reason')
    assert err.details == {"name": "worker", "kind": "nodes"}
    err = forbidden(attrs(sa, "GET", "/apis/apps/v1/namespaces/x/deployments/web/scale"))
    assert err.message.startswith('deployments.apps "web" is forbidden: User')
    assert 'cannot get resource "deployments/scale" in API group "apps"' in err.message
    assert forbidden(attrs(sa, "GET", "/logs")).message == (
        'forbidden: User "system:serviceaccount:default:default" cannot get path "/logs"')


# -- rules ------------------------------------------------------------------------------------------
def test_rule_matching():
    reader = Rule.of({"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "pods/log"]})
    assert reader.allows(attrs(ALICE, "GET", "/api/v1/namespaces/x/pods"))
    assert reader.allows(attrs(ALICE, "GET", "/api/v1/namespaces/x/pods/p/log"))
    assert not reader.allows(attrs(ALICE, "GET", "/api/v1/namespaces/x/pods/p/status"))
    assert not reader.allows(attrs(ALICE, "DELETE", "/api/v1/namespaces/x/pods/p"))
    assert not reader.allows(attrs(ALICE, "GET", "/apis/apps/v1/namespaces/x/deployments"))
    status = Rule.of({"verbs": ["*"], "apiGroups": ["*"], "resources": ["*/status"]})
    assert status.allows(attrs(ALICE, "PATCH", "/api/v1/namespaces/x/services/s/status"))
    assert not status.allows(attrs(ALICE, "PATCH", "/api/v1/namespaces/x/services/s"))
    named = Rule.of({"verbs": ["get"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["cfg"]})
    assert named.allows(attrs(ALICE, "GET", "/api/v1/namespaces/x/configmaps/cfg"))
    assert not named.allows(attrs(ALICE, "GET", "/api/v1/namespaces/x/configmaps"))  # a list names nothing
    urls = Rule.of({"verbs": ["get"], "nonResourceURLs": ["/apis/*", "/version"]})
    assert urls.allows(attrs(ALICE, "GET", "/apis/apps")) and urls.allows(attrs(ALICE, "GET", "/version"))
    assert not urls.allows(attrs(ALICE, "GET", "/api")) and not urls.allows(attrs(ALICE, "POST", "/version"))
    assert not Rule.of({"verbs": "get", "resources": None}).allows(attrs(ALICE, "GET", "/api/v1/pods"))


def test_covers_reports_what_is_missing_as_kube_words_it():
    owner = [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods", "*/status"]}]
    assert covers(owner, [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods", "services/status"]}]) == []
    missing = covers(owner, [{"verbs": ["get", "delete", "patch"], "apiGroups": [""], "resources": ["pods"]}])
    assert [compact_string(r) for r in compact(missing)] == ['{APIGroups:[""], Resources:["pods"], '
                                                             'Verbs:["delete" "patch"]}']
    assert covers([{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
                  [{"verbs": ["get"], "nonResourceURLs": ["/metrics"]}]) != []
    assert covers([{"verbs": ["get"], "nonResourceURLs": ["/apis/*"]}],
                  [{"verbs": ["get"], "nonResourceURLs": ["/apis/apps"]}]) == []


def test_default_roles_list_only_what_labctl_serves():
    rules = served_only([{"verbs": ["get"], "apiGroups": ["", "apps"], "resources": ["pods", "pods/resize",
                                                                                     "daemonsets/scale", "deployments"]},
                         {"verbs": ["get"], "apiGroups": ["certificates.k8s.io"], "resources": ["certificatesigningrequests"]},
                         {"verbs": ["get"], "nonResourceURLs": ["/x"]}], Registry())
    assert rules == [{"verbs": ["get"], "apiGroups": ["", "apps"], "resources": ["pods", "deployments"]},
                     {"verbs": ["get"], "nonResourceURLs": ["/x"]}]


# -- RBAC resolution -------------------------------------------------------------------------------------
def test_bindings_resolve_by_user_group_and_service_account(api):
    authz = Authorizer(api)
    create(api, "roles", {"metadata": {"name": "reader"},
                          "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]}, "team")
    # a RoleBinding's ServiceAccount subject without a namespace is the binding's namespace's
    create(api, "rolebindings", {"metadata": {"name": "readers"}, "roleRef": {"kind": "Role", "name": "reader"},
                                 "subjects": [{"kind": "ServiceAccount", "name": "bot"},
                                              {"kind": "Group", "name": "devs"}]}, "team")
    bot = authenticated("system:serviceaccount:team:bot")
    pods = "/api/v1/namespaces/team/pods"
    assert authz.decide(attrs(bot, "GET", pods)) == (True, 'RBAC: allowed by RoleBinding "readers/team" of Role '
                                                           '"reader" to ServiceAccount "bot/team"')
    assert authz.decide(attrs(authenticated("carol", ("devs",)), "GET", pods))[0]
    assert not authz.decide(attrs(ALICE, "GET", pods))[0]
    assert not authz.decide(attrs(bot, "GET", "/api/v1/namespaces/default/pods"))[0]
    assert not authz.decide(attrs(bot, "DELETE", pods + "/p"))[0]


def test_rbac_changes_apply_to_the_next_decision(api):
    authz = Authorizer(api)
    pods = attrs(ALICE, "GET", "/api/v1/namespaces/team/pods")
    assert not authz.decide(pods)[0]
    create(api, "clusterrolebindings", {"metadata": {"name": "alice-view"},
                                        "roleRef": {"kind": "ClusterRole", "name": "pod-viewer"},
                                        "subjects": [{"kind": "User", "name": "alice"}]})
    authz.rbac.invalidate()  # what the store's change stream does in the server
    assert authz.decide(pods) == (False, 'RBAC: clusterrole.rbac.authorization.k8s.io "pod-viewer" not found')
    create(api, "clusterroles", {"metadata": {"name": "pod-viewer"},
                                 "rules": [{"verbs": ["list"], "apiGroups": [""], "resources": ["pods"]}]})
    authz.rbac.invalidate()
    assert authz.decide(pods)[0]
    assert authz.decide(attrs(authenticated("root", ("system:masters",)), "DELETE", "/api/v1/nodes/x")) == (True, "")


def test_the_default_policy_and_its_aggregation(api):
    assert reconcile(api) > 10 and reconcile(api) == 0  # the second start finds everything in place
    aggregate(api)
    authz = Authorizer(api)
    create(api, "rolebindings", {"metadata": {"name": "alice-edit"}, "roleRef": {"kind": "ClusterRole", "name": "edit"},
                                 "subjects": [{"kind": "User", "name": "alice"}]}, "team")
    assert authz.decide(attrs(ALICE, "POST", "/apis/apps/v1/namespaces/team/deployments"))[0]
    assert authz.decide(attrs(ALICE, "GET", "/api/v1/namespaces/team/secrets/s"))[0]
    assert not authz.decide(attrs(ALICE, "PATCH", "/api/v1/namespaces/team/services/s/status"))[0]
    assert not authz.decide(attrs(ALICE, "POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/team/roles"))[0]
    assert authz.decide(attrs(ALICE, "GET", "/apis"))[0]  # system:discovery
    anonymous = User("system:anonymous", ("system:unauthenticated",))
    assert authz.decide(attrs(anonymous, "GET", "/healthz"))[0] and not authz.decide(attrs(anonymous, "GET", "/api"))[0]


def test_aggregation_takes_other_roles_rules_in_name_order_without_duplicates():
    rule_a, rule_b = {"verbs": ["get"], "apiGroups": [""], "resources": ["a"]}, {"verbs": ["get"], "resources": ["b"]}
    role = {"metadata": {"name": "agg"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"x": "1"}}]}}
    roles = [{"metadata": {"name": "a", "labels": {"x": "1"}}, "rules": [rule_a, rule_b]},
             {"metadata": {"name": "b", "labels": {"x": "1"}}, "rules": [rule_b]},
             {"metadata": {"name": "c", "labels": {"x": "2"}}, "rules": [{"verbs": ["*"]}]}, role]
    assert aggregated_rules(role, roles) == [rule_a, rule_b]
    assert aggregated_rules({"metadata": {"name": "plain"}, "rules": []}, roles) is None


# -- nodes ------------------------------------------------------------------------------------------------
def test_node_authorizer(api):
    node = NodeAuthorizer(api.store)
    worker = authenticated("system:node:worker", ("system:nodes",))
    # stored directly: the graph is the authorizer's, whatever admission honours (envFrom: not yet)
    api.store.create((resource_for("pods").key, "team", "p"), {"metadata": {"name": "p", "namespace": "team"}, "spec": {
        "nodeName": "worker", "serviceAccountName": "builder",
        "containers": [{"name": "c", "image": "x", "envFrom": [{"secretRef": {"name": "creds"}}]}]}})
    assert node.authorize(attrs(worker, "GET", "/api/v1/namespaces/team/secrets/creds")) == (True, "")
    assert node.authorize(attrs(worker, "GET", "/api/v1/namespaces/team/secrets/other")) == (
        None, "no relationship found between node 'worker' and this object")
    assert node.authorize(attrs(worker, "POST", "/api/v1/namespaces/team/serviceaccounts/builder/token")) == (True, "")
    assert node.authorize(attrs(worker, "GET", "/api/v1/namespaces/team/serviceaccounts/builder"))[0] is None
    assert node.authorize(attrs(worker, "PATCH", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/"
                                                 "leases/worker")) == (True, "")
    assert node.authorize(attrs(worker, "PATCH", "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/"
                                                 "leases/worker2"))[1] == (
        "can only access node lease with the same name as the requesting node")
    assert node.authorize(attrs(worker, "GET", "/apis/discovery.k8s.io/v1/endpointslices", watch="true")) == (True, "")
    assert node.authorize(attrs(worker, "POST", "/api/v1/namespaces/team/configmaps"))[0] is None
    assert node.authorize(attrs(ALICE, "GET", "/api/v1/nodes")) == (None, "")  # not a node: no opinion


# -- escalation --------------------------------------------------------------------------------------------
def test_escalation_is_checked_against_the_requesters_own_rules(api):
    reconcile(api)
    aggregate(api)
    authz = Authorizer(api)
    create(api, "rolebindings", {"metadata": {"name": "alice-admin"},
                                 "roleRef": {"kind": "ClusterRole", "name": "admin"},
                                 "subjects": [{"kind": "User", "name": "alice"}]}, "team")
    token = escalation.REQUESTER.set(escalation.Requester(ALICE, authz.allowed, authz.rules_for, authz.rbac.role_rules))
    try:
        create(api, "roles", {"metadata": {"name": "ok"},
                              "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]}, "team")
        with pytest.raises(APIError) as err:
            create(api, "roles", {"metadata": {"name": "too-much"},
                                  "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["nodes"]}]}, "team")
        assert err.value.code == 403 and err.value.message == (
            'roles.rbac.authorization.k8s.io "too-much" is forbidden: user "alice" (groups=["system:authenticated"]) '
            'is attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["nodes"], '
            'Verbs:["get"]}')
        with pytest.raises(APIError) as err:
            create(api, "rolebindings", {"metadata": {"name": "root"},
                                         "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                                         "subjects": [{"kind": "User", "name": "alice"}]}, "team")
        assert err.value.code == 403
        create(api, "rolebindings", {"metadata": {"name": "viewers"},
                                     "roleRef": {"kind": "ClusterRole", "name": "view"},
                                     "subjects": [{"kind": "Group", "name": "students"}]}, "team")
        with pytest.raises(APIError) as err:
            create(api, "rolebindings", {"metadata": {"name": "ghost"}, "roleRef": {"kind": "Role", "name": "ghost"},
                                         "subjects": [{"kind": "Group", "name": "students"}]}, "team")
        assert err.value.code == 404
    finally:
        escalation.REQUESTER.reset(token)
    assert api.store.get((f"{RBAC}/roles", "team", "too-much")) is None
