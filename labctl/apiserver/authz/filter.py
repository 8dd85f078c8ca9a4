"""The authorization filter: impersonation, then authorization, then the node restriction, on every request.

It runs after authentication (``server.py`` puts the :class:`~labctl.apiserver.users.User`
in ``request["user"]``; None on the public health paths, which become ``system:anonymous``)
and before any handler, as kube-apiserver's ``WithImpersonation`` and ``WithAuthorization``
filters do. A denied request never reaches the REST layer: the client gets kube's 403.
Members of ``system:masters`` — the admin kubeconfig, the controllers — pass on the fast
path, without the URL being parsed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from labctl.apiserver import errors, protobuf
from labctl.apiserver.users import (
    ALL_AUTHENTICATED,
    ALL_UNAUTHENTICATED,
    ANONYMOUS,
    ANONYMOUS_USER,
    SYSTEM_PRIVILEGED_GROUP,
    User,
    node_name,
    service_account_groups,
    service_account_username,
    split_service_account,
)

from . import escalation
from .attributes import Attributes, forbidden, request_attributes
from .authorizer import Authorizer

IMPERSONATE_USER = "Impersonate-User"
IMPERSONATE_GROUP = "Impersonate-Group"
IMPERSONATE_UID = "Impersonate-Uid"
IMPERSONATE_EXTRA = "Impersonate-Extra-"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def authorization_filter(authz: Authorizer) -> Middleware:
    """The aiohttp middleware enforcing ``authz`` on every request."""

    @web.middleware
    async def authorize(request: web.Request, handler: Handler) -> web.StreamResponse:
        user: User = request.get("user") or ANONYMOUS_USER
        if any(h.startswith("Impersonate-") for h in request.headers):
            user = impersonate(authz, user, request)
        request["user"] = user
        if SYSTEM_PRIVILEGED_GROUP in user.groups:
            return await handler(request)
        attrs = request_attributes(user, request.method, request.path, request.query)
        allowed, reason = authz.decide(attrs)
        if not allowed:
            raise forbidden(attrs, reason)
        if node_name(user) is not None:
            body = await _object_of(request) if authz.restriction.needs_body(attrs) else None
            authz.restriction.admit(user, attrs, body)
        token = escalation.REQUESTER.set(escalation.Requester(user, authz.allowed, authz.rules_for,
                                                              authz.rbac.role_rules))
        try:
            return await handler(request)
        finally:
            escalation.REQUESTER.reset(token)

    return authorize


def impersonate(authz: Authorizer, requester: User, request: web.Request) -> User:
    """``WithImpersonation``: act as another user when the requester may ``impersonate`` each part of it."""
    headers = request.headers
    wanted_user = headers.get(IMPERSONATE_USER, "")
    groups = list(headers.getall(IMPERSONATE_GROUP, []))
    uid = headers.get(IMPERSONATE_UID, "")
    extra: dict[str, list[str]] = {}
    for header, value in headers.items():
        if header.lower().startswith(IMPERSONATE_EXTRA.lower()):
            extra.setdefault(unquote(header[len(IMPERSONATE_EXTRA):].lower()), []).append(value)
    if not wanted_user:
        if groups or extra or uid:
            raise errors.APIError(500, "InternalError", "Internal error occurred: requested impersonation of "
                                  "groups, extra or uid without impersonating a user")
        return requester
    checks: list[Attributes] = []
    service_account = split_service_account(wanted_user)
    if service_account is not None:
        namespace, name = service_account
        checks.append(Attributes(requester, "impersonate", True, namespace=namespace, resource="serviceaccounts",
                                 name=name))
        username = service_account_username(namespace, name)
        if not groups:
            groups = list(service_account_groups(namespace))
    else:
        checks.append(Attributes(requester, "impersonate", True, resource="users", name=wanted_user))
        username = wanted_user
    checks += [Attributes(requester, "impersonate", True, resource="groups", name=g)
               for g in headers.getall(IMPERSONATE_GROUP, [])]
    checks += [Attributes(requester, "impersonate", True, api_group="authentication.k8s.io", resource="userextras",
                          subresource=key, name=v) for key, values in extra.items() for v in values]
    if uid:
        checks.append(Attributes(requester, "impersonate", True, api_group="authentication.k8s.io", resource="uids",
                                 name=uid))
    for attrs in checks:
        allowed, reason = authz.decide(attrs)
        if not allowed:
            raise forbidden(attrs, reason)
    if username != ANONYMOUS:
        if ALL_AUTHENTICATED not in groups and ALL_UNAUTHENTICATED not in groups:
            groups.append(ALL_AUTHENTICATED)
    elif ALL_UNAUTHENTICATED not in groups:
        groups.append(ALL_UNAUTHENTICATED)
    return User(username, tuple(groups), uid, {k: tuple(v) for k, v in extra.items()})


async def _object_of(request: web.Request) -> dict[str, Any]:
    """The object a node creates, for the node restriction's name checks (read once; aiohttp keeps the body).

    JSON (what labctl's agent sends) or protobuf (kubectl with a node's credentials); a body
    this cannot read is refused rather than admitted unchecked.
    """
    body = await request.read()
    ctype = request.headers.get("Content-Type", "application/json").split(";")[0].strip()
    try:
        obj = protobuf.decode_object(body) if protobuf.is_protobuf(ctype) else orjson.loads(body)
    except (errors.APIError, orjson.JSONDecodeError):
        obj = None
    if not isinstance(obj, dict):
        raise errors.bad_request("the body of the request must be a JSON object")
    return obj
