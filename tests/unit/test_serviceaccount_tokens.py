"""Service-account tokens as pure logic: signing, verification, expiry, forgery, TokenRequest rules.

The store is a dict behind the same ``get((key, namespace, name))`` the API server's store has.
"""

from __future__ import annotations

import base64
import json
import stat

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from labctl.apiserver import errors
from labctl.apiserver.serviceaccounts import (
    ISSUER,
    LEEWAY_SECONDS,
    InvalidToken,
    ServiceAccountTokens,
    SigningKey,
    decode_jwt,
    ensure_signing_key,
)

NOW = 1_800_000_000.0


class DictStore:
    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict] = {}

    def get(self, key):
        return self.objects.get(key)

    def put(self, plural: str, namespace: str, name: str, uid: str, **extra) -> dict:
        obj = {"metadata": {"name": name, "namespace": namespace, "uid": uid}, **extra}
        self.objects[(f"core/{plural}", namespace, name)] = obj
        return obj

    def remove(self, plural: str, namespace: str, name: str) -> None:
        del self.objects[(f"core/{plural}", namespace, name)]


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store() -> DictStore:
    s = DictStore()
    s.put("serviceaccounts", "default", "default", "sa-uid-1")
    s.put("serviceaccounts", "team", "robot", "sa-uid-2")
    s.put("nodes", "", "worker", "node-uid-1")
    s.put("pods", "team", "web", "pod-uid-1", spec={"serviceAccountName": "robot", "nodeName": "worker"})
    return s


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tokens(store, clock) -> ServiceAccountTokens:
    return ServiceAccountTokens(SigningKey.generate(), store, clock=clock)


def b64json(part: str) -> dict:
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def issue(tokens: ServiceAccountTokens, namespace: str = "default", name: str = "default", **spec) -> str:
    return tokens.create_token(namespace, name, {"spec": spec})["status"]["token"]


# -- the key -------------------------------------------------------------------------------------
def test_signing_key_is_created_once_and_kept(tmp_path):
    first = ensure_signing_key(tmp_path / "pki")
    key_file = tmp_path / "pki" / "sa.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert (tmp_path / "pki" / "sa.pub").read_bytes() == first.public_pem()
    again = ensure_signing_key(tmp_path / "pki")
    assert again.key_id == first.key_id  # a restart must not invalidate the tokens pods hold


def test_a_broken_key_file_is_reported_by_path(tmp_path):
    (tmp_path / "sa.key").write_text("not a key")
    with pytest.raises(ValueError, match="failed to load the service-account key .*sa.key"):
        ensure_signing_key(tmp_path)


# -- signing and verification ------------------------------------------------------------------------
def test_token_is_es256_jwt_with_kubernetes_claims(tokens):
    token = issue(tokens, "team", "robot")
    header, claims, signature = token.split(".")
    assert b64json(header) == {"alg": "ES256", "kid": tokens.key.key_id}
    body = b64json(claims)
    assert body["iss"] == ISSUER and body["aud"] == [ISSUER]
    assert body["sub"] == "system:serviceaccount:team:robot"
    assert body["kubernetes.io"] == {"namespace": "team", "serviceaccount": {"name": "robot", "uid": "sa-uid-2"}}
    assert body["iat"] == body["nbf"] == int(NOW) and body["exp"] == int(NOW) + 3600
    assert body["jti"]
    assert len(base64.urlsafe_b64decode(signature + "==")) == 64  # r || s, not DER


def test_signature_verifies_with_the_public_key_only(tokens):
    token = issue(tokens)
    assert decode_jwt(token, tokens.key.public_key)["sub"] == "system:serviceaccount:default:default"
    with pytest.raises(InvalidToken, match="signature does not verify"):
        decode_jwt(token, SigningKey.generate().public_key)


def test_jwks_publishes_a_key_that_verifies_tokens(tokens):
    """What a relying party (or a student) does with /openid/v1/jwks."""
    jwk = tokens.jwks()["keys"][0]
    assert jwk["kid"] == tokens.key.key_id and jwk["alg"] == "ES256" and jwk["crv"] == "P-256"
    numbers = ec.EllipticCurvePublicNumbers(int.from_bytes(base64.urlsafe_b64decode(jwk["x"] + "="), "big"),
                                            int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "="), "big"),
                                            ec.SECP256R1())
    token = issue(tokens)
    head, body, sig = token.split(".")
    raw = base64.urlsafe_b64decode(sig + "==")
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    numbers.public_key().verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    assert tokens.openid_configuration()["issuer"] == ISSUER


# -- authentication --------------------------------------------------------------------------------
def test_valid_token_authenticates_as_the_service_account(tokens):
    user = tokens.authenticate(issue(tokens, "team", "robot"))
    assert user is not None
    assert user.name == "system:serviceaccount:team:robot"
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:team", "system:authenticated")
    assert user.uid == "sa-uid-2"


def test_expired_token_is_rejected_after_the_leeway(tokens, clock):
    token = issue(tokens, expirationSeconds=600)
    clock.now = NOW + 600 + LEEWAY_SECONDS - 1
    assert tokens.authenticate(token) is not None
    clock.now = NOW + 600 + LEEWAY_SECONDS + 1
    assert tokens.authenticate(token) is None
    with pytest.raises(InvalidToken, match="expired at"):
        tokens.validate(token)


def test_token_from_the_future_is_rejected(tokens, clock):
    token = issue(tokens)
    clock.now = NOW - LEEWAY_SECONDS - 5
    with pytest.raises(InvalidToken, match="not valid before"):
        tokens.validate(token)


def test_forged_claims_with_a_copied_signature_are_rejected(tokens):
    """Turning a default token into kube-system's: the signature no longer matches."""
    head, body, sig = issue(tokens).split(".")
    claims = b64json(body)
    claims["sub"] = "system:serviceaccount:kube-system:default"
    claims["kubernetes.io"]["namespace"] = "kube-system"
    assert tokens.authenticate(f"{head}.{b64(claims)}.{sig}") is None


def test_token_signed_by_another_key_is_rejected(tokens, store, clock):
    other = ServiceAccountTokens(SigningKey.generate(), store, clock=clock)
    assert tokens.authenticate(issue(other)) is None


def test_alg_none_and_garbage_are_rejected(tokens):
    _, body, _ = issue(tokens).split(".")
    assert tokens.authenticate(f"{b64({'alg': 'none'})}.{body}.") is None
    with pytest.raises(InvalidToken, match="unsupported signing algorithm 'none'"):
        tokens.validate(f"{b64({'alg': 'none'})}.{body}.")
    for junk in ("", "abc", "eyJ.eyJ.x", "eyJhbGciOiJFUzI1NiJ9.!!!.???"):
        assert tokens.authenticate(junk) is None


def test_token_for_another_audience_does_not_authenticate_to_the_api(tokens):
    token = issue(tokens, audiences=["vault"])
    with pytest.raises(InvalidToken, match="do not include the API's"):
        tokens.validate(token)


def test_deleting_the_service_account_revokes_its_tokens(tokens, store):
    token = issue(tokens, "team", "robot")
    assert tokens.authenticate(token) is not None  # now in the verified-signature cache
    store.remove("serviceaccounts", "team", "robot")
    assert tokens.authenticate(token) is None
    store.put("serviceaccounts", "team", "robot", "sa-uid-new")  # same name, new object
    with pytest.raises(InvalidToken, match="was recreated"):
        tokens.validate(token)


# -- TokenRequest ------------------------------------------------------------------------------------
def test_token_request_answer_has_status_and_defaults(tokens):
    answer = tokens.create_token("team", "robot", {"apiVersion": "authentication.k8s.io/v1",
                                                   "kind": "TokenRequest", "metadata": {}, "spec": {}})
    assert answer["kind"] == "TokenRequest" and answer["apiVersion"] == "authentication.k8s.io/v1"
    assert answer["metadata"]["name"] == "robot" and answer["metadata"]["namespace"] == "team"
    assert answer["spec"]["expirationSeconds"] == 3600 and answer["spec"]["audiences"] == [ISSUER]
    assert answer["status"]["expirationTimestamp"] == "2027-01-15T09:00:00Z"  # NOW + 1h
    assert answer["status"]["token"].startswith("eyJ")


@pytest.mark.parametrize("seconds, detail", [
    (599, "may not specify a duration less than 10 minutes"),
    ((1 << 32) + 1, "may not specify a duration larger than 2^32 seconds"),
])
def test_token_request_expiration_is_validated(tokens, seconds, detail):
    with pytest.raises(errors.APIError) as err:
        tokens.create_token("default", "default", {"spec": {"expirationSeconds": seconds}})
    assert err.value.code == 422
    assert err.value.message == (f'TokenRequest.authentication.k8s.io "default" is invalid: '
                                 f"spec.expirationSeconds: Invalid value: {seconds}: {detail}")


def test_token_request_for_a_missing_service_account_is_404(tokens):
    with pytest.raises(errors.APIError) as err:
        tokens.create_token("default", "nobody", {})
    assert (err.value.code, err.value.message) == (404, 'serviceaccounts "nobody" not found')


def test_pod_bound_token_names_pod_and_node_and_dies_with_the_pod(tokens, store, clock):
    ref = {"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "pod-uid-1"}
    token = issue(tokens, "team", "robot", boundObjectRef=ref, expirationSeconds=3607)
    private = b64json(token.split(".")[1])["kubernetes.io"]
    assert private["pod"] == {"name": "web", "uid": "pod-uid-1"}
    assert private["node"] == {"name": "worker", "uid": "node-uid-1"}
    user = tokens.authenticate(token)
    assert user.extra["authentication.kubernetes.io/pod-name"] == ("web",)

    pod = store.get(("core/pods", "team", "web"))
    pod["metadata"]["deletionTimestamp"] = "2027-01-15T08:00:00Z"  # == NOW: terminating, still valid
    assert tokens.authenticate(token) is not None
    clock.now = NOW + 61
    with pytest.raises(InvalidToken, match="was deleted at"):
        tokens.validate(token)
    store.remove("pods", "team", "web")
    with pytest.raises(InvalidToken, match="pod 'team/web' no longer exists"):
        tokens.validate(token)


def test_bound_object_checks_match_kube(tokens, store):
    store.put("pods", "team", "other", "pod-uid-2", spec={"serviceAccountName": "default"})
    cases = [
        ({"kind": "Pod", "apiVersion": "v1", "name": "other"}, 400,
         "cannot bind token for serviceaccount 'robot' to pod running with different serviceaccount name."),
        ({"kind": "Pod", "apiVersion": "v1", "name": "web", "uid": "stale"}, 409,
         'Operation cannot be fulfilled on Pod "web": the UID in the bound object reference (stale) does not '
         "match the UID in record. The object might have been deleted and then recreated"),
        ({"kind": "Pod", "apiVersion": "v1", "name": "gone"}, 404, 'pods "gone" not found'),
        ({"kind": "ConfigMap", "apiVersion": "v1", "name": "x"}, 400,
         "cannot bind token to object of type v1, Kind=ConfigMap"),
    ]
    for ref, code, message in cases:
        with pytest.raises(errors.APIError) as err:
            tokens.create_token("team", "robot", {"spec": {"boundObjectRef": ref}})
        assert (err.value.code, err.value.message) == (code, message)


def test_secret_bound_token_dies_with_the_secret(tokens, store):
    store.put("secrets", "team", "robot-token", "secret-uid-1")
    token = issue(tokens, "team", "robot", boundObjectRef={"kind": "Secret", "apiVersion": "v1", "name": "robot-token"})
    assert tokens.authenticate(token) is not None
    store.remove("secrets", "team", "robot-token")
    assert tokens.authenticate(token) is None


def test_request_name_must_match_the_url(tokens):
    with pytest.raises(errors.APIError) as err:
        tokens.create_token("default", "default", {"metadata": {"name": "other"}})
    assert err.value.code == 422 and "must match the service account name if specified" in err.value.message
    with pytest.raises(errors.APIError) as err:
        tokens.create_token("default", "default", {"kind": "Pod"})
    assert err.value.code == 400
