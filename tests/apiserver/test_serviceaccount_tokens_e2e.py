"""Service-account tokens end to end: a real API server process, the real kubectl, the official client.

What a pod does through the ``kubernetes`` Service is what these tests do from the host:
ask for a token (``kubectl create token``, or TokenRequest like the kubelet), then call the
API with only that token and the cluster CA -- no client certificate.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config

from labctl.cluster.kubectl import Kubectl

#: what kubectl prints when the server answers its request with 401 and Status "Unauthorized".
#: With a cold discovery cache kubectl's first request is discovery, whose 401 it words as "the
#: server has asked for the client to provide credentials": a test that asserts this message
#: runs kubectl with a discovered API first (each test has a kubectl cache of its own).
UNAUTHORIZED = "error: You must be logged in to the server (Unauthorized)"


@pytest.fixture(scope="module")
def admin(shared_apiserver, kubectl_binary) -> Kubectl:
    return Kubectl(kubectl_binary, shared_apiserver.kubeconfig)


@pytest.fixture(scope="module", autouse=True)
def default_sa_may_read(admin) -> None:
    """ServiceAccounts have no rights until bound (docs/rbac.md): the default one here may read ``default``."""
    admin.run("create", "rolebinding", "default-sa-view", "--clusterrole=view", "--serviceaccount=default:default")


def claims_of(token: str) -> dict:
    body = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


def token_kubeconfig(server, token: str, path: Path) -> Path:
    """A kubeconfig holding only the CA and a bearer token: what a pod has."""
    ca = base64.b64encode((server.data_dir / "pki" / "ca.crt").read_bytes()).decode()
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "sa",
        "clusters": [{"name": "lab", "cluster": {"server": server.url, "certificate-authority-data": ca}}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "lab", "user": "sa", "namespace": "default"}}],
    }))
    return path


def as_token(admin: Kubectl, server, token: str, tmp_path: Path, user: str = "sa") -> Kubectl:
    return Kubectl(admin.binary, token_kubeconfig(server, token, tmp_path / f"{user}.kubeconfig"))


def raw_status(server, path: str, token: str) -> int:
    ctx = ssl.create_default_context(cafile=str(server.data_dir / "pki" / "ca.crt"))
    req = urllib.request.Request(server.url + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def test_kubectl_create_token_then_use_it(admin, shared_apiserver, tmp_path):
    token = admin.run("create", "token", "default").stdout.strip()
    claims = claims_of(token)
    assert claims["sub"] == "system:serviceaccount:default:default"
    assert claims["aud"] == ["https://kubernetes.default.svc.cluster.local"]
    assert claims["exp"] - claims["iat"] == 3600

    admin.run("run", "tok-pod", "--image=nginx")
    sa_kubectl = as_token(admin, shared_apiserver, token, tmp_path)
    listed = sa_kubectl.run("get", "pods", "-o", "name").stdout.split()
    assert "pod/tok-pod" in listed
    # it reads through its view binding, and may not write: a token carries no more than RBAC grants
    denied = sa_kubectl.run("create", "configmap", "written-by-sa", "--from-literal=k=v", check=False)
    assert 'User "system:serviceaccount:default:default" cannot create resource "configmaps"' in denied.stderr


def test_token_subresource_is_discovered(admin):
    resources = json.loads(admin.run("get", "--raw", "/api/v1").stdout)["resources"]
    token = next(r for r in resources if r["name"] == "serviceaccounts/token")
    assert (token["group"], token["version"], token["kind"], token["verbs"]) == (
        "authentication.k8s.io", "v1", "TokenRequest", ["create"])


def test_tampered_and_foreign_tokens_are_unauthorized(admin, shared_apiserver, tmp_path):
    token = admin.run("create", "token", "default").stdout.strip()
    # the token as issued works (and kubectl has discovered the API: the 401 below is the GET's)
    assert as_token(admin, shared_apiserver, token, tmp_path).run("get", "pods").returncode == 0
    head, _body, sig = token.split(".")
    claims = claims_of(token)
    claims["sub"] = "system:serviceaccount:kube-system:default"
    claims["kubernetes.io"]["namespace"] = "kube-system"
    forged_body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    proc = as_token(admin, shared_apiserver, f"{head}.{forged_body}.{sig}", tmp_path, "forged").run(
        "get", "pods", check=False)
    assert proc.returncode == 1 and UNAUTHORIZED in proc.stderr

    vault_token = admin.run("create", "token", "default", "--audience=vault").stdout.strip()
    assert raw_status(shared_apiserver, "/api/v1/namespaces/default/pods", vault_token) == 401


def test_token_of_a_deleted_service_account_is_rejected(admin, shared_apiserver, tmp_path):
    admin.run("create", "serviceaccount", "short-lived")
    token = admin.run("create", "token", "short-lived").stdout.strip()
    path = "/api"  # discovery: what every authenticated identity may read
    assert raw_status(shared_apiserver, path, token) == 200
    admin.run("delete", "serviceaccount", "short-lived")
    assert raw_status(shared_apiserver, path, token) == 401
    admin.run("create", "serviceaccount", "short-lived")  # same name, new uid: still revoked
    proc = as_token(admin, shared_apiserver, token, tmp_path).run("get", "pods", check=False)
    assert UNAUTHORIZED in proc.stderr


def test_kubectl_token_request_errors(admin):
    too_short = admin.run("create", "token", "default", "--duration=5m", check=False)
    assert too_short.stderr.strip() == (
        'error: failed to create token: TokenRequest.authentication.k8s.io "default" is invalid: '
        "spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes")
    missing = admin.run("create", "token", "nobody", check=False)
    assert missing.stderr.strip() == 'error: failed to create token: serviceaccounts "nobody" not found'


def test_kubectl_bound_token_dies_with_its_pod(admin, shared_apiserver):
    admin.run("run", "bound-pod", "--image=nginx")
    uid = admin.json("get", "pod", "bound-pod")["metadata"]["uid"]
    token = admin.run("create", "token", "default", "--bound-object-kind=Pod", "--bound-object-name=bound-pod",
                      f"--bound-object-uid={uid}", "--duration=20m").stdout.strip()
    assert claims_of(token)["kubernetes.io"]["pod"] == {"name": "bound-pod", "uid": uid}
    assert claims_of(token)["exp"] - claims_of(token)["iat"] == 1200
    assert raw_status(shared_apiserver, "/api/v1/namespaces/default/pods", token) == 200
    admin.run("delete", "pod", "bound-pod")  # unscheduled: removed at once
    assert raw_status(shared_apiserver, "/api/v1/namespaces/default/pods", token) == 401


def test_official_client_requests_and_uses_a_pod_token(shared_apiserver, admin):
    """The kubelet's call (TokenRequest bound to a pod, 3607 s), then the pod's calls with it."""
    admin.run("create", "namespace", "client-ns")
    admin.run("create", "serviceaccount", "app", "-n", "client-ns")
    admin.run("create", "rolebinding", "app-view", "-n", "client-ns", "--clusterrole=view",
              "--serviceaccount=client-ns:app")
    admin.run("run", "app-pod", "-n", "client-ns", "--image=nginx", "--overrides",
              json.dumps({"spec": {"serviceAccountName": "app"}}))
    pod_uid = admin.json("get", "pod", "app-pod", "-n", "client-ns")["metadata"]["uid"]
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(
        audiences=[], expiration_seconds=3607,
        bound_object_ref=client.V1BoundObjectReference(kind="Pod", api_version="v1", name="app-pod", uid=pod_uid)))
    with config.new_client_from_config(config_file=str(shared_apiserver.kubeconfig)) as api:
        answer = client.CoreV1Api(api).create_namespaced_service_account_token("app", "client-ns", request)
    assert answer.spec.audiences == ["https://kubernetes.default.svc.cluster.local"]
    assert answer.status.expiration_timestamp is not None

    cfg = client.Configuration()
    cfg.host = shared_apiserver.url
    cfg.ssl_ca_cert = str(shared_apiserver.data_dir / "pki" / "ca.crt")
    cfg.api_key = {"authorization": f"Bearer {answer.status.token}"}
    with client.ApiClient(cfg) as api:
        pods = client.CoreV1Api(api).list_namespaced_pod("client-ns").items
        assert [p.metadata.name for p in pods] == ["app-pod"]
    cfg.api_key = {"authorization": "Bearer " + answer.status.token[:-4] + "AAAA"}
    with client.ApiClient(cfg) as api, pytest.raises(client.ApiException) as err:
        client.CoreV1Api(api).list_namespaced_pod("client-ns")
    assert err.value.status == 401


def test_signing_key_survives_a_restart(apiserver, kubectl):
    token = kubectl.run("create", "token", "default").stdout.strip()
    apiserver.restart()
    assert raw_status(apiserver, "/api/v1/namespaces/default/serviceaccounts/default", token) == 403  # known, no rights
    assert raw_status(apiserver, "/api", token) == 200
    issuer = json.loads(kubectl.run("get", "--raw", "/.well-known/openid-configuration").stdout)
    assert issuer["issuer"] == "https://kubernetes.default.svc.cluster.local"
    jwks = json.loads(kubectl.run("get", "--raw", "/openid/v1/jwks").stdout)
    assert jwks["keys"][0]["kid"] == json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))["kid"]
