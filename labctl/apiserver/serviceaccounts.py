"""ServiceAccount tokens: the JWTs the API server signs for TokenRequest and accepts as bearer tokens.

This is what lets a pod call the API through the ``kubernetes`` Service (10.96.0.1:443):
the kubelet asks ``POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token`` for a token
bound to the pod, mounts it at ``/var/run/secrets/kubernetes.io/serviceaccount/token`` and
the pod sends it as ``Authorization: Bearer <token>``.

It follows kube-apiserver (``pkg/serviceaccount``, ``registry/core/serviceaccount/storage/token.go``):

* tokens are compact JWS (``header.claims.signature``), ES256 -- ECDSA P-256 like the rest of
  labctl's PKI -- signed with ``sa.key`` in the API server's PKI dir (``sa.pub`` beside it is
  what a student verifies a token with); the header's ``kid`` is kube's key id, the
  unpadded base64url SHA-256 of the public key's DER;
* claims are Kubernetes': ``iss``/``aud`` ``https://kubernetes.default.svc.cluster.local``,
  ``sub`` ``system:serviceaccount:<ns>:<name>``, ``kubernetes.io`` {namespace,
  serviceaccount, pod|secret|node, node for pod-bound tokens}, ``iat``/``nbf``/``exp``, ``jti``;
* a token authenticates only while it verifies, is within ``nbf``..``exp`` (a minute of
  leeway, as go-jose's default), names one of the API's audiences, and the objects it is
  bound to still exist *with the same uid* -- deleting the ServiceAccount (or the pod) revokes
  it at once, which is why the check reads the store on every request.

The module is HTTP-free: ``server.py`` calls :meth:`ServiceAccountTokens.authenticate` for a
bearer token and :meth:`ServiceAccountTokens.create_token` for the ``token`` subresource;
both read objects through anything with the store's ``get((key, namespace, name))``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from labctl.clusterconfig import MIN_SERVICE_ACCOUNT_TOKEN_SECONDS
from labctl.kube.meta import parse_time, timestamp

from . import errors
from .users import User, authenticated, service_account_groups, service_account_username

log = logging.getLogger("labctl.apiserver.serviceaccounts")

ISSUER = "https://kubernetes.default.svc.cluster.local"
#: kube-apiserver's ``--api-audiences`` default to the issuer
API_AUDIENCES = (ISSUER,)
SIGNING_KEY_FILE = "sa.key"
PUBLIC_KEY_FILE = "sa.pub"
ALGORITHM = "ES256"

DEFAULT_EXPIRATION_SECONDS = 3600  # TokenRequestSpec's default
MIN_EXPIRATION_SECONDS = MIN_SERVICE_ACCOUNT_TOKEN_SECONDS  # "may not specify a duration less than 10 minutes"
MAX_EXPIRATION_SECONDS = 1 << 32
LEEWAY_SECONDS = 60  # go-jose's DefaultLeeway: clock skew allowed on nbf/exp
#: a pod-bound token outlives its pod's deletionTimestamp by this much (kube's grace for in-flight work)
POD_DELETION_GRACE_SECONDS = 60
#: tokens whose signature was verified, remembered so a pod's every request skips the ES256 verify
VERIFIED_CACHE_SIZE = 4096

TOKEN_REQUEST_API_VERSION = "authentication.k8s.io/v1"
BINDABLE_KINDS = {"Pod": "pods", "Secret": "secrets", "Node": "nodes"}


class ObjectGetter(Protocol):
    """The store's read side: ``get(("core/pods", namespace, name))`` -> object or None."""

    def get(self, key: tuple[str, str, str]) -> dict | None: ...


class InvalidToken(Exception):
    """A bearer token that must be answered with 401; the message says why (for the log)."""


# -- the signing key ------------------------------------------------------------------------
@dataclass(frozen=True)
class SigningKey:
    """The service-account key pair (``sa.key`` / ``sa.pub``)."""

    private_key: ec.EllipticCurvePrivateKey

    @cached_property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    @cached_property
    def key_id(self) -> str:
        """kube's ``keyIDFromPublicKey``: unpadded base64url of SHA-256 over the public key's DER."""
        der = self.public_key.public_bytes(serialization.Encoding.DER,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
        return _b64encode(hashlib.sha256(der).digest())

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ec.generate_private_key(ec.SECP256R1()))

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(serialization.Encoding.PEM,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)


def ensure_signing_key(pki_dir: Path) -> SigningKey:
    """Load ``sa.key`` from ``pki_dir``, creating ``sa.key`` + ``sa.pub`` on first start.

    Kept across restarts like the CA: a new key would invalidate every token pods hold.
    """
    key_path = pki_dir / SIGNING_KEY_FILE
    if key_path.exists():
        try:
            loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except ValueError as err:
            raise ValueError(f"failed to load the service-account key {str(key_path)!r}: {err}") from err
        if not isinstance(loaded, ec.EllipticCurvePrivateKey) or loaded.curve.name != "secp256r1":
            raise ValueError(f"failed to load the service-account key {str(key_path)!r}: not an ECDSA P-256 key")
        key = SigningKey(loaded)
    else:
        key = SigningKey.generate()
        pki_dir.mkdir(parents=True, exist_ok=True)
        key_path.write_bytes(key.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        key_path.chmod(0o600)
    pub_path = pki_dir / PUBLIC_KEY_FILE
    if not pub_path.exists() or pub_path.read_bytes() != key.public_pem():
        pub_path.write_bytes(key.public_pem())
    return key


# -- compact JWS (RFC 7515) with ES256 ---------------------------------------------------------
def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_jwt(claims: dict[str, Any], key: SigningKey) -> str:
    """Sign ``claims``; ES256's signature is r || s, 32 bytes each (RFC 7518 3.4), not DER."""
    header = {"alg": ALGORITHM, "kid": key.key_id}
    signing_input = f"{_b64encode(orjson.dumps(header))}.{_b64encode(orjson.dumps(claims))}"
    r, s = decode_dss_signature(key.private_key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return f"{signing_input}.{_b64encode(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def decode_jwt(token: str, public_key: ec.EllipticCurvePublicKey) -> dict[str, Any]:
    """Verify a token's signature and return its claims (times and audiences unchecked)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not a JWT (expected header.claims.signature)")
    try:
        header = orjson.loads(_b64decode(parts[0]))
        signature = _b64decode(parts[2])
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as err:
        raise InvalidToken(f"malformed JWT: {err}") from None
    if not isinstance(header, dict) or header.get("alg") != ALGORITHM:
        alg = header.get("alg") if isinstance(header, dict) else None
        raise InvalidToken(f"unsupported signing algorithm {alg!r} (want {ALGORITHM})")
    if len(signature) != 64:
        raise InvalidToken("malformed ES256 signature")
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    try:
        public_key.verify(der, f"{parts[0]}.{parts[1]}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise InvalidToken("signature does not verify with the service-account key") from None
    try:
        claims = orjson.loads(_b64decode(parts[1]))
    except (binascii.Error, ValueError, orjson.JSONDecodeError) as err:
        raise InvalidToken(f"malformed JWT claims: {err}") from None
    if not isinstance(claims, dict):
        raise InvalidToken("JWT claims are not an object")
    return claims


def looks_like_jwt(token: str) -> bool:
    """Cheap pre-check so static tokens never reach signature verification."""
    return token.count(".") == 2 and token.startswith("eyJ")


# -- claims -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectRef:
    """The name and uid a token names (its ServiceAccount, or the object it is bound to)."""

    name: str
    uid: str


@dataclass(frozen=True)
class TokenClaims:
    """The Kubernetes-specific part of a service-account token, parsed."""

    namespace: str
    service_account: ObjectRef
    audiences: tuple[str, ...]
    issued_at: int
    expires_at: int
    token_id: str = ""
    pod: ObjectRef | None = None
    secret: ObjectRef | None = None
    node: ObjectRef | None = None

    @property
    def subject(self) -> str:
        return service_account_username(self.namespace, self.service_account.name)

    def to_jwt_claims(self, issuer: str = ISSUER) -> dict[str, Any]:
        private: dict[str, Any] = {"namespace": self.namespace,
                                   "serviceaccount": {"name": self.service_account.name,
                                                      "uid": self.service_account.uid}}
        for kind, ref in (("pod", self.pod), ("secret", self.secret), ("node", self.node)):
            if ref is not None:
                private[kind] = {"name": ref.name, "uid": ref.uid}
        return {"aud": list(self.audiences), "exp": self.expires_at, "iat": self.issued_at,
                "iss": issuer, "jti": self.token_id, "kubernetes.io": private, "nbf": self.issued_at,
                "sub": self.subject}


def parse_claims(claims: dict[str, Any], now: float, issuer: str = ISSUER,
                 api_audiences: tuple[str, ...] = API_AUDIENCES) -> TokenClaims:
    """Check ``iss``, ``aud``, ``nbf``/``exp`` and the ``kubernetes.io`` claim; raise InvalidToken."""
    if claims.get("iss") != issuer:
        raise InvalidToken(f"issuer {claims.get('iss')!r} is not {issuer!r}")
    aud = claims.get("aud")
    audiences = tuple([aud] if isinstance(aud, str) else aud if isinstance(aud, list) else [])
    if not set(audiences) & set(api_audiences):
        raise InvalidToken(f"audiences {list(audiences)} do not include the API's {list(api_audiences)}")
    try:
        exp, nbf, iat = int(claims["exp"]), int(claims.get("nbf", 0)), int(claims.get("iat", 0))
    except (KeyError, TypeError, ValueError):
        raise InvalidToken("missing or malformed exp/nbf/iat") from None
    if now > exp + LEEWAY_SECONDS:
        raise InvalidToken(f"expired at {timestamp(_utc(exp))}")
    if now < nbf - LEEWAY_SECONDS:
        raise InvalidToken(f"not valid before {timestamp(_utc(nbf))}")
    private = claims.get("kubernetes.io")
    if not isinstance(private, dict):
        raise InvalidToken("no kubernetes.io claim (not a Kubernetes service-account token)")
    namespace = private.get("namespace")
    sa = _ref(private.get("serviceaccount"))
    if not namespace or sa is None or claims.get("sub") != service_account_username(namespace, sa.name):
        raise InvalidToken("kubernetes.io claim does not name the token's subject")
    return TokenClaims(namespace, sa, audiences, iat, exp, str(claims.get("jti", "")),
                       _ref(private.get("pod")), _ref(private.get("secret")), _ref(private.get("node")))


def _ref(value: Any) -> ObjectRef | None:
    if isinstance(value, dict) and isinstance(value.get("name"), str) and value["name"]:
        return ObjectRef(value["name"], str(value.get("uid", "")))
    return None


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


# -- who a token is -----------------------------------------------------------------------------
def user_for(claims: TokenClaims) -> User:
    """kube's ``serviceaccount.UserInfo``: the account's name and uid, its groups, the bound objects as extra."""
    extra: dict[str, tuple[str, ...]] = {}
    if claims.pod is not None:
        extra["authentication.kubernetes.io/pod-name"] = (claims.pod.name,)
        extra["authentication.kubernetes.io/pod-uid"] = (claims.pod.uid,)
    if claims.node is not None:
        extra["authentication.kubernetes.io/node-name"] = (claims.node.name,)
        extra["authentication.kubernetes.io/node-uid"] = (claims.node.uid,)
    if claims.token_id:
        extra["authentication.kubernetes.io/credential-id"] = (f"JTI={claims.token_id}",)
    return authenticated(claims.subject, service_account_groups(claims.namespace), claims.service_account.uid, extra)


# -- the authority: issue (TokenRequest) and authenticate -------------------------------------
class ServiceAccountTokens:
    """Issues and authenticates service-account tokens against the objects in the store."""

    def __init__(self, key: SigningKey, store: ObjectGetter, issuer: str = ISSUER,
                 api_audiences: tuple[str, ...] = API_AUDIENCES,
                 clock: Callable[[], float] = time.time,
                 min_expiration_seconds: int = MIN_EXPIRATION_SECONDS) -> None:
        self.key = key
        self.store = store
        self.issuer = issuer
        self.api_audiences = api_audiences
        self.clock = clock
        #: kube's 10 minutes; only a test lab lowers it (``--service-account-min-token-seconds``)
        self.min_expiration_seconds = min_expiration_seconds
        self._verified: OrderedDict[str, dict[str, Any]] = OrderedDict()

    def _get(self, plural: str, namespace: str, name: str) -> dict | None:
        return self.store.get((f"core/{plural}", namespace, name))

    # -- authentication --------------------------------------------------------------------
    def authenticate(self, token: str) -> User | None:
        """The user a bearer token stands for, or None (answer 401) with the reason logged."""
        if not looks_like_jwt(token):
            return None
        try:
            claims = self.validate(token)
        except InvalidToken as err:
            log.info("failed to authenticate a service-account token: %s", err)
            return None
        return user_for(claims)

    def validate(self, token: str) -> TokenClaims:
        """Signature, claims, then the bound objects: raise InvalidToken when any check fails."""
        now = self.clock()
        claims = parse_claims(self._verified_claims(token), now, self.issuer, self.api_audiences)
        self._check_bound("serviceaccounts", claims.namespace, claims.service_account)
        if claims.secret is not None:
            self._check_bound("secrets", claims.namespace, claims.secret)
        if claims.pod is not None:
            pod = self._check_bound("pods", claims.namespace, claims.pod)
            deleted = pod["metadata"].get("deletionTimestamp")
            deleted_at = parse_time(deleted)
            if deleted_at and deleted_at.timestamp() + POD_DELETION_GRACE_SECONDS < now:
                raise InvalidToken(f"pod {claims.namespace}/{claims.pod.name} was deleted at {deleted}")
        elif claims.node is not None:
            # only a node-bound token depends on its node; a pod-bound one names it as information
            self._check_bound("nodes", "", claims.node)
        return claims

    def _verified_claims(self, token: str) -> dict[str, Any]:
        """The signed claims, verified once per token: expiry and revocation are still checked
        on every request by the caller, so the cache never lets a dead token in."""
        claims = self._verified.get(token)
        if claims is not None:
            self._verified.move_to_end(token)
            return claims
        claims = decode_jwt(token, self.key.public_key)
        self._verified[token] = claims
        if len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return claims

    def _check_bound(self, plural: str, namespace: str, ref: ObjectRef) -> dict:
        obj = self._get(plural, namespace, ref.name)
        where = f"{namespace}/{ref.name}" if namespace else ref.name
        if obj is None:
            raise InvalidToken(f"{plural[:-1]} {where!r} no longer exists")
        if obj["metadata"].get("uid") != ref.uid:
            raise InvalidToken(f"{plural[:-1]} {where!r} was recreated (uid {obj['metadata'].get('uid')}, "
                               f"token names {ref.uid})")
        return obj

    # -- TokenRequest ----------------------------------------------------------------------
    def create_token(self, namespace: str, name: str, body: dict) -> dict:
        """``POST .../serviceaccounts/<name>/token``: answer the TokenRequest with status filled in."""
        request = _check_token_request(namespace, name, body, self.api_audiences, self.min_expiration_seconds)
        spec = request["spec"]
        sa = self._get("serviceaccounts", namespace, name)
        if sa is None:
            raise errors.not_found("serviceaccounts", "", name)
        bound = self._bind(namespace, name, spec.get("boundObjectRef"))
        now = int(self.clock())
        claims = TokenClaims(namespace, ObjectRef(name, sa["metadata"]["uid"]), tuple(spec["audiences"]),
                             now, now + spec["expirationSeconds"], str(uuid.uuid4()), **bound)
        request["metadata"] = {**request.get("metadata", {}), "name": name, "namespace": namespace,
                               "creationTimestamp": None}
        request["status"] = {"token": encode_jwt(claims.to_jwt_claims(self.issuer), self.key),
                             "expirationTimestamp": timestamp(_utc(claims.expires_at))}
        return request

    def _bind(self, namespace: str, sa_name: str, ref: dict | None) -> dict[str, ObjectRef]:
        """Resolve ``boundObjectRef`` to the claims it adds, with kube's checks and messages."""
        if not ref:
            return {}
        kind, name = ref.get("kind", ""), ref.get("name", "")
        plural = BINDABLE_KINDS.get(kind)
        if plural is None or ref.get("apiVersion", "v1") not in ("v1", ""):
            raise errors.bad_request(f"cannot bind token to object of type {ref.get('apiVersion', '')}, Kind={kind}")
        obj = self._get(plural, "" if kind == "Node" else namespace, name)
        if obj is None:
            raise errors.not_found(plural, "", name)
        uid = obj["metadata"]["uid"]
        if ref.get("uid") and ref["uid"] != uid:
            raise errors.conflict(kind, "", name, f"the UID in the bound object reference ({ref['uid']}) does not "
                                  "match the UID in record. The object might have been deleted and then recreated")
        bound = {kind.lower(): ObjectRef(name, uid)}
        if kind == "Pod":
            if (obj.get("spec") or {}).get("serviceAccountName", "default") != sa_name:
                raise errors.bad_request(f"cannot bind token for serviceaccount {sa_name!r} to pod running with "
                                         "different serviceaccount name.")
            node_name = (obj.get("spec") or {}).get("nodeName")
            node = self._get("nodes", "", node_name) if node_name else None
            if node_name and node is not None:  # informational, as kube's ServiceAccountTokenPodNodeInfo
                bound["node"] = ObjectRef(node_name, node["metadata"]["uid"])
        return bound

    # -- issuer discovery (served unauthenticated by kube: /.well-known/openid-configuration) ------
    def openid_configuration(self) -> dict:
        return {"issuer": self.issuer, "jwks_uri": f"{self.issuer}/openid/v1/jwks",
                "response_types_supported": ["id_token"], "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": [ALGORITHM]}

    def jwks(self) -> dict:
        """The public key as a JSON Web Key Set (``/openid/v1/jwks``), to verify tokens offline."""
        numbers = self.key.public_key.public_numbers()
        return {"keys": [{"use": "sig", "kty": "EC", "kid": self.key.key_id, "crv": "P-256", "alg": ALGORITHM,
                          "x": _b64encode(numbers.x.to_bytes(32, "big")),
                          "y": _b64encode(numbers.y.to_bytes(32, "big"))}]}


def _check_token_request(namespace: str, name: str, body: dict, api_audiences: tuple[str, ...],
                         min_seconds: int = MIN_EXPIRATION_SECONDS) -> dict:
    """Type meta, name/namespace agreement, defaults and validation of a TokenRequest body."""
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if kind and kind != "TokenRequest":
        raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind (TokenRequest)")
    if api_version and api_version != TOKEN_REQUEST_API_VERSION:
        raise errors.bad_request(f"the API version in the data ({api_version}) does not match the expected "
                                 f"API version ({TOKEN_REQUEST_API_VERSION})")
    meta = body.get("metadata") or {}
    spec = dict(body.get("spec") or {})
    problems: list[errors.FieldError] = []
    if meta.get("name") and meta["name"] != name:
        problems.append(errors.invalid("metadata.name", meta["name"],
                                       "must match the service account name if specified"))
    if meta.get("namespace") and meta["namespace"] != namespace:
        problems.append(errors.invalid("metadata.namespace", meta["namespace"],
                                       "must match the service account namespace if specified"))
    seconds = spec.get("expirationSeconds")
    if seconds is None:
        seconds = DEFAULT_EXPIRATION_SECONDS
    if not isinstance(seconds, int) or isinstance(seconds, bool):
        problems.append(errors.invalid("spec.expirationSeconds", seconds, "must be an integer"))
    elif seconds < min_seconds:
        floor = "10 minutes" if min_seconds == MIN_EXPIRATION_SECONDS else f"{min_seconds} seconds"
        problems.append(errors.invalid("spec.expirationSeconds", seconds,
                                       f"may not specify a duration less than {floor}"))
    elif seconds > MAX_EXPIRATION_SECONDS:
        problems.append(errors.invalid("spec.expirationSeconds", seconds,
                                       "may not specify a duration larger than 2^32 seconds"))
    audiences = spec.get("audiences") or list(api_audiences)
    if not isinstance(audiences, list) or not all(isinstance(a, str) and a for a in audiences):
        problems.append(errors.invalid("spec.audiences", audiences, "must be a list of non-empty strings"))
    if problems:
        raise errors.invalid_object("TokenRequest", "authentication.k8s.io", name, problems)
    spec.update(expirationSeconds=seconds, audiences=audiences)
    return {"kind": "TokenRequest", "apiVersion": TOKEN_REQUEST_API_VERSION, "metadata": dict(meta), "spec": spec}
