"""RBAC, the Node authorizer and the review APIs end to end: a real API server process, the real kubectl.

Each identity is what the lab hands out: the admin kubeconfig (``system:masters``), a
ServiceAccount token (``kubectl create token``, what a pod gets), and a node's client
certificate (``system:node:<name>`` in ``system:nodes``) issued from the server's own CA.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from labctl.cluster.kubectl import Kubectl
from labctl.pki import CertKey, issue_certificate

SA_DEFAULT = "system:serviceaccount:default:default"


@pytest.fixture(scope="module")
def admin(shared_apiserver, kubectl_binary) -> Kubectl:
    return Kubectl(kubectl_binary, shared_apiserver.kubeconfig)


def identity(admin: Kubectl, path: Path, user: dict) -> Kubectl:
    """kubectl with the admin kubeconfig's cluster and CA but another user section (token or certificate)."""
    config = yaml.safe_load(admin.kubeconfig.read_text())
    config["users"][0]["user"] = user
    path.write_text(yaml.safe_dump(config))
    return Kubectl(admin.binary, path)


def with_token(admin: Kubectl, tmp_path: Path, token: str, name: str = "sa") -> Kubectl:
    return identity(admin, tmp_path / f"{name}.kubeconfig", {"token": token})


def node_certificate(server, tmp_path: Path, node: str) -> Path:
    """A node agent's credentials: a client certificate for ``system:node:<node>`` from the cluster CA."""
    cert = issue_certificate(CertKey.read(server.data_dir / "pki", "ca"), f"system:node:{node}",
                             orgs=("system:nodes",), client=True)
    cert.write(tmp_path, node)
    return tmp_path / node


def as_node(admin: Kubectl, server, tmp_path: Path, node: str) -> Kubectl:
    stem = node_certificate(server, tmp_path, node)
    return identity(admin, tmp_path / f"{node}.kubeconfig", {"client-certificate": f"{stem}.crt",
                                                             "client-key": f"{stem}.key"})


def raw(server, method: str, path: str, token: str = "", body: dict | None = None,
        content_type: str = "application/json", cert: Path | None = None) -> tuple[int, dict]:
    """One HTTPS request with a bearer token (as a pod makes it) or a client certificate; (status, body)."""
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "pki" / "ca.crt"))
    if cert is not None:
        ctx.load_cert_chain(f"{cert}.crt", f"{cert}.key")
    headers = {"Content-Type": content_type, **({"Authorization": f"Bearer {token}"} if token else {})}
    req = urllib.request.Request(server.url + path, method=method, data=json.dumps(body).encode() if body else None,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")


def can_i(kubectl: Kubectl, *args: str) -> str:
    return kubectl.run("auth", "can-i", *args, check=False).stdout.strip()


# -- who am I, may I ------------------------------------------------------------------------------
def test_admin_is_cluster_admin(admin):
    assert admin.run("auth", "whoami").stdout.split() == [
        "ATTRIBUTE", "VALUE", "Username", "kubernetes-admin", "Groups", "[system:masters", "system:authenticated]"]
    assert can_i(admin, "*", "*", "--all-namespaces") == "yes"
    assert can_i(admin, "get", "/healthz") == "yes"


def test_a_service_account_has_no_rights_unless_bound(admin, shared_apiserver, tmp_path):
    # as the admin, impersonating the default ServiceAccount (the issue's acceptance line)
    proc = admin.run("auth", "can-i", "list", "secrets", f"--as={SA_DEFAULT}", check=False)
    assert (proc.returncode, proc.stdout.strip()) == (1, "no")
    assert can_i(admin, "create", "selfsubjectaccessreviews.authorization.k8s.io", f"--as={SA_DEFAULT}") == "yes"
    # with the token itself, as a pod holds it
    token = admin.run("create", "token", "default").stdout.strip()
    sa = with_token(admin, tmp_path, token)
    whoami = [line.split(None, 1) for line in sa.run("auth", "whoami").stdout.splitlines()]
    assert ["Username", SA_DEFAULT] in whoami
    assert ["Groups", "[system:serviceaccounts system:serviceaccounts:default system:authenticated]"] in whoami
    assert [row[0] for row in whoami] == ["ATTRIBUTE", "Username", "UID", "Groups", "Extra:"]  # credential-id
    assert can_i(sa, "list", "pods") == "no"
    denied = sa.run("get", "secrets", "-n", "kube-system", check=False)
    assert denied.stderr.strip() == (
        f'Error from server (Forbidden): secrets is forbidden: User "{SA_DEFAULT}" cannot list resource "secrets" '
        'in API group "" in the namespace "kube-system"')
    status, body = raw(shared_apiserver, "GET", "/api/v1/secrets", token)
    assert (status, body["reason"], body["message"]) == (403, "Forbidden", (
        f'secrets is forbidden: User "{SA_DEFAULT}" cannot list resource "secrets" in API group "" at the '
        "cluster scope"))
    assert raw(shared_apiserver, "DELETE", "/api/v1/nodes/worker?dryRun=All", token)[0] == 403
    assert raw(shared_apiserver, "GET", "/api", token)[0] == 200
    assert raw(shared_apiserver, "GET", "/version", token)[0] == 200


def test_can_i_list_shows_the_rules(admin, shared_apiserver, tmp_path):
    admin.run("create", "namespace", "listing")
    admin.run("create", "role", "cm-reader", "-n", "listing", "--verb=get,list", "--resource=configmaps")
    admin.run("create", "rolebinding", "cm-reader", "-n", "listing", "--role=cm-reader",
              "--serviceaccount=listing:default")
    listed = admin.run("auth", "can-i", "--list", "-n", "listing", "--as=system:serviceaccount:listing:default").stdout
    rows = [line.split() for line in listed.splitlines()]
    assert ["configmaps", "[]", "[]", "[get", "list]"] in rows
    assert ["selfsubjectaccessreviews.authorization.k8s.io", "[]", "[]", "[create]"] in rows
    assert ["[/api]", "[]", "[get]"] in rows
    assert not any(r and r[0] == "secrets" for r in rows)


# -- granting, revoking, aggregating -----------------------------------------------------------------
def test_a_binding_grants_and_its_removal_revokes_at_once(admin, shared_apiserver, tmp_path):
    admin.run("create", "namespace", "class")
    admin.run("create", "serviceaccount", "student", "-n", "class")
    token = admin.run("create", "token", "student", "-n", "class").stdout.strip()
    student = with_token(admin, tmp_path, token, "student")
    assert can_i(student, "create", "deployments", "-n", "class") == "no"
    admin.run("create", "rolebinding", "student-edit", "-n", "class", "--clusterrole=edit",
              "--serviceaccount=class:student")
    assert can_i(student, "create", "deployments", "-n", "class") == "yes"
    assert can_i(student, "create", "deployments", "-n", "default") == "no"  # a RoleBinding grants in its namespace
    student.run("create", "deployment", "web", "-n", "class", "--image=nginx")
    admin.run("delete", "rolebinding", "student-edit", "-n", "class")
    status, _ = raw(shared_apiserver, "GET", "/apis/apps/v1/namespaces/class/deployments/web", token)
    assert status == 403  # the very next request


def test_a_binding_to_a_missing_role_says_so(admin, shared_apiserver):
    admin.run("create", "namespace", "dangling")
    admin.run("create", "rolebinding", "to-nowhere", "-n", "dangling", "--role=nowhere",
              "--serviceaccount=dangling:default")
    token = admin.run("create", "token", "default", "-n", "dangling").stdout.strip()
    status, body = raw(shared_apiserver, "GET", "/api/v1/namespaces/dangling/pods", token)
    assert status == 403
    assert body["message"].endswith(': RBAC: role.rbac.authorization.k8s.io "nowhere" not found')


def test_a_clusterrole_labelled_aggregate_to_view_extends_view_edit_and_admin(admin):
    def view_rules() -> list:
        return admin.json("get", "clusterrole", "view")["rules"]

    user = "--as=teacher-assistant"
    admin.run("create", "clusterrolebinding", "ta-view", "--clusterrole=view", "--user=teacher-assistant")
    assert can_i(admin, "get", "secrets", user) == "no"  # view never reads secrets by default
    admin.run("create", "clusterrole", "secret-peeker", "--verb=get", "--resource=secrets")
    admin.run("label", "clusterrole", "secret-peeker", "rbac.authorization.k8s.io/aggregate-to-view=true")
    wanted = {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
    assert wanted in view_rules()
    assert wanted in admin.json("get", "clusterrole", "admin")["rules"]  # view → edit → admin
    assert can_i(admin, "get", "secrets", user) == "yes"
    admin.run("label", "clusterrole", "secret-peeker", "rbac.authorization.k8s.io/aggregate-to-view-")
    assert wanted not in view_rules()
    assert can_i(admin, "get", "secrets", user) == "no"


def test_kubectl_create_and_print_the_rbac_kinds(admin):
    admin.run("create", "namespace", "printing")
    admin.run("create", "role", "pod-reader", "-n", "printing", "--verb=get,list,watch", "--resource=pods")
    admin.run("create", "rolebinding", "readers", "-n", "printing", "--role=pod-reader", "--user=alice",
              "--group=devs", "--serviceaccount=printing:bot")
    admin.run("create", "clusterrole", "node-viewer", "--verb=get", "--resource=nodes", "--non-resource-url=/logs")
    admin.run("create", "clusterrolebinding", "node-viewers", "--clusterrole=node-viewer", "--group=ops")
    role = admin.json("get", "role", "pod-reader", "-n", "printing")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]
    header, row = admin.run("get", "rolebinding", "readers", "-n", "printing", "-o", "wide").stdout.splitlines()
    assert header.split() == ["NAME", "ROLE", "AGE", "USERS", "GROUPS", "SERVICEACCOUNTS"]
    assert row.split()[:2] == ["readers", "Role/pod-reader"] and row.split()[3:] == ["alice", "devs", "printing/bot"]
    assert admin.run("get", "clusterroles", "node-viewer").stdout.split()[:3] == ["NAME", "CREATED", "AT"]
    crb = admin.json("get", "clusterrolebinding", "node-viewers")
    assert crb["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops"}]


def test_rbac_objects_are_validated_like_kube(admin):
    bad_role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "bad", "namespace": "default"},
                "rules": [{"verbs": ["get"], "nonResourceURLs": ["/x"]}, {"apiGroups": [""], "verbs": ["get"]}]}
    proc = admin.run("create", "-f", "-", input=json.dumps(bad_role), check=False)
    assert proc.stderr.strip() == (
        'The Role "bad" is invalid: \n* rules[0].nonResourceURLs: Invalid value: ["/x"]: namespaced rules cannot '
        "apply to non-resource URLs\n* rules[1].resources: Required value: resource rules must supply at least one "
        "resource")
    admin.run("create", "rolebinding", "fixed", "--clusterrole=view", "--user=bob")
    proc = admin.run("patch", "rolebinding", "fixed", "--type=merge", "-p", '{"roleRef":{"name":"edit"}}',
                     check=False)
    assert "roleRef: Invalid value" in proc.stderr and "cannot change roleRef" in proc.stderr


def test_nobody_grants_what_they_do_not_hold(admin, shared_apiserver, tmp_path):
    admin.run("create", "namespace", "team")
    admin.run("create", "serviceaccount", "lead", "-n", "team")
    admin.run("create", "rolebinding", "lead-admin", "-n", "team", "--clusterrole=admin",
              "--serviceaccount=team:lead")
    lead = with_token(admin, tmp_path, admin.run("create", "token", "lead", "-n", "team").stdout.strip(), "lead")
    lead.run("create", "role", "cm-writer", "-n", "team", "--verb=create", "--resource=configmaps")  # held: fine
    proc = lead.run("create", "role", "node-admin", "-n", "team", "--verb=*", "--resource=nodes", check=False)
    assert ('roles.rbac.authorization.k8s.io "node-admin" is forbidden: user "system:serviceaccount:team:lead" '
            '(groups=["system:serviceaccounts" "system:serviceaccounts:team" "system:authenticated"]) is attempting '
            'to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["nodes"], Verbs:["*"]}'
            ) in proc.stderr
    proc = lead.run("create", "rolebinding", "root", "-n", "team", "--clusterrole=cluster-admin",
                    "--serviceaccount=team:lead", check=False)
    assert "is attempting to grant RBAC permissions not currently held" in proc.stderr
    lead.run("create", "rolebinding", "viewers", "-n", "team", "--clusterrole=view", "--group=students")
    proc = lead.run("auth", "can-i", "get", "pods", "--as=alice", check=False)
    assert ('users "alice" is forbidden: User "system:serviceaccount:team:lead" cannot impersonate resource "users" '
            'in API group "" at the cluster scope') in proc.stderr


# -- the hijack from issue 10 ------------------------------------------------------------------------
def test_a_pods_token_cannot_write_service_status(admin, shared_apiserver):
    admin.run("create", "namespace", "hijack")
    admin.run("create", "rolebinding", "dev", "-n", "hijack", "--clusterrole=edit", "--serviceaccount=hijack:default")
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hijack", "namespace": "hijack"},
           "spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/none",
                    "ports": [{"port": 80}], "selector": {"app": "x"}}}
    admin.run("create", "-f", "-", input=json.dumps(svc))
    token = admin.run("create", "token", "default", "-n", "hijack").stdout.strip()
    status, body = raw(shared_apiserver, "PATCH", "/api/v1/namespaces/hijack/services/hijack/status", token,
                       {"status": {"loadBalancer": {"ingress": [{"ip": "172.30.0.2"}]}}},
                       "application/merge-patch+json")
    assert (status, body["message"]) == (403, (
        'services "hijack" is forbidden: User "system:serviceaccount:hijack:default" cannot patch resource '
        '"services/status" in API group "" in the namespace "hijack"'))
    stored = admin.json("get", "service", "hijack", "-n", "hijack")
    assert not stored.get("status", {}).get("loadBalancer", {}).get("ingress")


# -- nodes -----------------------------------------------------------------------------------------
def test_a_node_writes_only_its_own_objects(admin, shared_apiserver, tmp_path):
    for name in ("node-a", "node-b"):
        admin.run("create", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "Node",
                                                         "metadata": {"name": name}}))
    admin.run("create", "namespace", "nodes")
    for pod, node in (("on-a", "node-a"), ("on-b", "node-b")):
        admin.run("create", "-n", "nodes", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}}))
    node_a = as_node(admin, shared_apiserver, tmp_path, "node-a")
    assert "Username    system:node:node-a" in node_a.run("auth", "whoami").stdout
    node_a.run("get", "nodes")
    node_a.run("get", "pods", "-A")
    node_a.run("label", "node", "node-a", "lab=yes")
    proc = node_a.run("label", "node", "node-b", "lab=yes", check=False)
    assert proc.stderr.strip() == ('Error from server (Forbidden): nodes "node-b" is forbidden: node "node-a" is not '
                                   'allowed to modify node "node-b"')
    # the kubelet's status write (kubectl patch would GET pods/status first, which a node may not)
    cert = tmp_path / "node-a"
    status = {"status": {"phase": "Running"}}
    merge = "application/merge-patch+json"
    assert raw(shared_apiserver, "PATCH", "/api/v1/namespaces/nodes/pods/on-a/status", body=status,
               content_type=merge, cert=cert)[0] == 200
    code, body = raw(shared_apiserver, "PATCH", "/api/v1/namespaces/nodes/pods/on-b/status", body=status,
                     content_type=merge, cert=cert)
    assert (code, body["message"]) == (403, 'pods "on-b" is forbidden: node "node-a" can only update pod status '
                                             "for pods with spec.nodeName set to itself")
    proc = node_a.run("delete", "pod", "on-b", "-n", "nodes", check=False)
    assert 'node "node-a" can only delete pods with spec.nodeName set to itself' in proc.stderr
    proc = node_a.run("get", "secrets", "-n", "nodes", check=False)
    assert 'cannot list resource "secrets" in API group "" in the namespace "nodes": No Object name found' in (
        proc.stderr)
    proc = node_a.run("create", "configmap", "x", "-n", "nodes", check=False)
    assert 'User "system:node:node-a" cannot create resource "configmaps"' in proc.stderr
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "node-b"}}
    proc = node_a.run("create", "-n", "kube-node-lease", "-f", "-", input=json.dumps(lease), check=False)
    assert "can only access node lease with the same name as the requesting node" in proc.stderr
    own = {**lease, "metadata": {"name": "node-a"}}
    node_a.run("create", "-n", "kube-node-lease", "-f", "-", input=json.dumps(own))


def test_a_node_gets_tokens_only_for_its_own_pods(admin, shared_apiserver, tmp_path):
    admin.run("create", "namespace", "tokens")
    for pod, node in (("mine", "node-t"), ("theirs", "node-u")):
        admin.run("create", "-n", "tokens", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod},
            "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]}}))
    node = as_node(admin, shared_apiserver, tmp_path, "node-t")

    def token_for(pod: str) -> str:
        uid = admin.json("get", "pod", pod, "-n", "tokens")["metadata"]["uid"]
        return node.run("create", "token", "default", "-n", "tokens", "--bound-object-kind=Pod",
                        f"--bound-object-name={pod}", f"--bound-object-uid={uid}", check=False).stderr

    assert token_for("mine") == ""
    assert "node requested token bound to a pod scheduled on a different node" in token_for("theirs")
    proc = node.run("create", "token", "builder", "-n", "tokens", check=False)  # no pod of node-t runs as it
    assert "no relationship found between node 'node-t' and this object" in proc.stderr


# -- the default policy ----------------------------------------------------------------------------
def test_the_default_policy_is_reconciled_at_start(apiserver, kubectl):
    role = kubectl.json("get", "clusterrole", "system:basic-user")
    assert role["metadata"]["labels"] == {"kubernetes.io/bootstrapping": "rbac-defaults"}
    assert role["metadata"]["annotations"] == {"rbac.authorization.kubernetes.io/autoupdate": "true"}
    kubectl.run("patch", "clusterrole", "system:basic-user", "--type=json", "-p",
                '[{"op": "replace", "path": "/rules", "value": []}]')
    kubectl.run("annotate", "clusterrole", "system:public-info-viewer", "--overwrite",
                "rbac.authorization.kubernetes.io/autoupdate=false")
    kubectl.run("patch", "clusterrole", "system:public-info-viewer", "--type=json", "-p",
                '[{"op": "replace", "path": "/rules", "value": []}]')
    # without system:basic-user's rules a user cannot even ask (kubectl --as sends the review as them)
    denied = kubectl.run("auth", "can-i", "get", "pods", "--as=nobody", check=False)
    assert 'User "nobody" cannot create resource "selfsubjectaccessreviews"' in denied.stderr
    apiserver.restart()
    assert can_i(kubectl, "get", "pods", "--as=nobody") == "no"  # answered again
    assert kubectl.json("get", "clusterrole", "system:basic-user")["rules"]  # what was missing is back
    assert kubectl.json("get", "clusterrole", "system:public-info-viewer")["rules"] == []  # its owner's choice
    crb = kubectl.json("get", "clusterrolebinding", "cluster-admin")
    assert crb["subjects"] == [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:masters"}]
