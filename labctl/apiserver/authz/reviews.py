"""The review APIs: "may I?" (``kubectl auth can-i``) and "who am I?" (``kubectl auth whoami``).

``authorization.k8s.io/v1`` SelfSubjectAccessReview, SubjectAccessReview,
LocalSubjectAccessReview and SelfSubjectRulesReview, and ``authentication.k8s.io/v1``
SelfSubjectReview, as kube-apiserver's ``pkg/registry/authorization`` and
``authentication/selfsubjectreview`` REST handlers: the body names a question, the answer is
the same object with ``status`` filled in; nothing is stored. A SubjectAccessReview asks
about any user, so only who may ``create subjectaccessreviews`` (cluster admins) can send one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labctl.apiserver import errors
from labctl.apiserver._validate_common import as_dict
from labctl.apiserver.errors import FieldError, invalid, required
from labctl.apiserver.users import User
from labctl.kube.resources import ResourceType

from .attributes import Attributes
from .rules import strings

if TYPE_CHECKING:
    from .authorizer import Authorizer

AUTHORIZATION_GROUP = "authorization.k8s.io"
AUTHENTICATION_GROUP = "authentication.k8s.io"


def answer(authz: Authorizer, user: User, rt: ResourceType, namespace: str | None, body: dict[str, Any]) -> dict:
    """The review ``body`` of kind ``rt`` sent by ``user``, answered."""
    _check_type_meta(rt, body)
    review = {**body, "kind": rt.kind, "apiVersion": rt.api_version,
              "metadata": {**(body.get("metadata") or {}), "creationTimestamp": None}}
    if rt.kind == "SelfSubjectReview":
        return {**review, "status": {"userInfo": _user_info(user)}}
    spec = as_dict(body.get("spec"))
    if rt.kind == "SelfSubjectRulesReview":
        return {**review, "status": _rules_status(authz, user, str(spec.get("namespace") or ""))}
    subject = user
    if rt.kind in ("SubjectAccessReview", "LocalSubjectAccessReview"):
        subject = _subject_of(rt, spec, namespace, review)
    elif problems := _attribute_problems(spec):
        raise errors.invalid_object(rt.kind, rt.group, "", problems)
    attrs = _attributes(subject, spec)
    allowed, reason = authz.decide(attrs)
    status: dict[str, Any] = {"allowed": allowed}
    if reason:
        status["reason"] = reason
    return {**review, "status": status}


def _check_type_meta(rt: ResourceType, body: dict[str, Any]) -> None:
    if body.get("kind") and body["kind"] != rt.kind:
        raise errors.bad_request(f"the kind in the data ({body['kind']}) does not match the expected kind ({rt.kind})")
    if body.get("apiVersion") and body["apiVersion"] != rt.api_version:
        raise errors.bad_request(f"the API version in the data ({body['apiVersion']}) does not match the expected "
                                 f"API version ({rt.api_version})")


def _subject_of(rt: ResourceType, spec: dict[str, Any], namespace: str | None, review: dict[str, Any]) -> User:
    """The user a (Local)SubjectAccessReview asks about, after kube's validation."""
    problems = _attribute_problems(spec)
    name, groups = spec.get("user") or "", strings(spec.get("groups"))
    if not name and not groups:
        problems.append(invalid("spec.user", name, "at least one of user or group must be specified"))
    if rt.kind == "LocalSubjectAccessReview":
        meta_ns = review["metadata"].get("namespace") or namespace
        if meta_ns != namespace:
            raise errors.bad_request("the namespace of the provided object does not match the namespace sent on "
                                     "the request")
        review["metadata"]["namespace"] = meta_ns
        attrs = spec.get("resourceAttributes")
        if isinstance(attrs, dict) and (attrs.get("namespace") or "") != meta_ns:
            problems.append(invalid("spec.resourceAttributes.namespace", attrs.get("namespace") or "",
                                    "must match metadata.namespace"))
        if spec.get("nonResourceAttributes") is not None:
            problems.append(invalid("spec.nonResourceAttributes", spec["nonResourceAttributes"],
                                    "disallowed on this kind of request"))
    if problems:
        raise errors.invalid_object(rt.kind, rt.group, "", problems)
    extra = {str(k): strings(v) for k, v in as_dict(spec.get("extra")).items()}
    return User(str(name), groups, str(spec.get("uid") or ""), extra)


def _attribute_problems(spec: dict[str, Any]) -> list[FieldError]:
    """``ValidateSelfSubjectAccessReviewSpec``: exactly one of the two attribute kinds."""
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if resource is not None and non_resource is not None:
        return [invalid("spec.nonResourceAttributes", non_resource,
                        "cannot be specified in combination with resourceAttributes")]
    if resource is None and non_resource is None:
        return [invalid("spec.resourceAttributes", None,
                        "exactly one of nonResourceAttributes or resourceAttributes must be specified")]
    if not isinstance(resource if resource is not None else non_resource, dict):
        return [required("spec.resourceAttributes" if resource is not None else "spec.nonResourceAttributes")]
    return []


def _attributes(user: User, spec: dict[str, Any]) -> Attributes:
    """``ResourceAttributesFrom`` / ``NonResourceAttributesFrom``."""
    if isinstance(spec.get("resourceAttributes"), dict):
        ra = spec["resourceAttributes"]
        return Attributes(user, str(ra.get("verb") or ""), True, namespace=str(ra.get("namespace") or ""),
                          api_group=str(ra.get("group") or ""), api_version=str(ra.get("version") or "*"),
                          resource=str(ra.get("resource") or ""), subresource=str(ra.get("subresource") or ""),
                          name=str(ra.get("name") or ""))
    na = spec["nonResourceAttributes"]
    return Attributes(user, str(na.get("verb") or ""), False, path=str(na.get("path") or ""))


def _rules_status(authz: Authorizer, user: User, namespace: str) -> dict[str, Any]:
    """SelfSubjectRulesReview's status: the rules RBAC grants, ``incomplete`` for node identities."""
    rules, problems, incomplete = authz.rules(user, namespace)
    resource_rules = [{k: v for k, v in (("verbs", strings(r.get("verbs"))), ("apiGroups", strings(r.get("apiGroups"))),
                                         ("resources", strings(r.get("resources"))),
                                         ("resourceNames", strings(r.get("resourceNames")))) if v or k == "verbs"}
                      for r in rules if strings(r.get("resources"))]
    non_resource_rules = [{"verbs": list(strings(r.get("verbs"))),
                           "nonResourceURLs": list(strings(r.get("nonResourceURLs")))}
                          for r in rules if strings(r.get("nonResourceURLs"))]
    status: dict[str, Any] = {"resourceRules": [{k: list(v) for k, v in r.items()} for r in resource_rules],
                              "nonResourceRules": non_resource_rules, "incomplete": incomplete}
    if problems:
        status["evaluationError"] = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
    return status


def _user_info(user: User) -> dict[str, Any]:
    info: dict[str, Any] = {"username": user.name}
    if user.uid:
        info["uid"] = user.uid
    if user.groups:
        info["groups"] = list(user.groups)
    if user.extra:
        info["extra"] = {k: list(v) for k, v in user.extra.items()}
    return info
