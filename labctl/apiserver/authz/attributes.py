"""What a request asks to do, as the authorizers see it: kube's ``RequestInfoFactory`` and ``Attributes``.

Every request is authorized from its URL alone, before its body is read, exactly as
kube-apiserver does it: ``GET /api/v1/namespaces/default/pods`` is ``list`` of ``pods`` in
``default``, ``PATCH .../services/web/status`` is ``patch`` of ``services/status`` named
``web``, ``GET /version`` is ``get`` of the non-resource path ``/version``. The wording of a
403 comes from the same attributes (:func:`forbidden`), so a student sees kube's message
to the letter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from labctl.apiserver import errors
from labctl.apiserver.selectors import field_selector_exact_match
from labctl.apiserver.users import User
from labctl.kube.validators import is_valid_path_segment_name

_API_PREFIXES = ("api", "apis")
#: ``/api/v1/namespaces/<ns>/status`` is the namespace's status, not a resource named "status"
_NAMESPACE_SUBRESOURCES = ("status", "finalize")
_SPECIAL_VERBS = ("proxy", "watch")
_VERB_OF_METHOD = {"POST": "create", "GET": "get", "HEAD": "get", "PUT": "update", "PATCH": "patch",
                   "DELETE": "delete"}
#: the verbs RBAC rules name for resources (``kubectl create role --verb=…``)
RESOURCE_VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")


@dataclass(frozen=True, slots=True)
class Attributes:
    """kube's ``authorizer.AttributesRecord``: who asks to do what to which object (or path)."""

    user: User
    verb: str
    resource_request: bool
    path: str = ""
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    @property
    def key(self) -> tuple[str, ...]:
        """Everything but the user a decision depends on (the per-user decision cache's key)."""
        if not self.resource_request:
            return (self.verb, self.path)
        return (self.verb, self.namespace, self.api_group, self.resource, self.subresource, self.name)


def request_attributes(user: User, method: str, path: str, query: Mapping[str, str]) -> Attributes:
    """``RequestInfoFactory.NewRequestInfo``: the attributes of one HTTP request."""
    parts = path.strip("/").split("/") if path.strip("/") else []
    verb = method.lower()
    if len(parts) < 3 or parts[0] not in _API_PREFIXES:
        return Attributes(user, verb, False, path=path)
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if len(parts) < 3:
            return Attributes(user, verb, False, path=path)
        group, parts = parts[0], parts[1:]
    version, parts = parts[0], parts[1:]
    if parts[0] in _SPECIAL_VERBS:
        if len(parts) < 2:
            raise errors.APIError(500, "InternalError", "Internal error occurred: failed to create RequestInfo: "
                                  f"unable to determine kind and namespace from url {path}")
        verb, parts = parts[0], parts[1:]
    else:
        verb = _VERB_OF_METHOD.get(method, "")
    namespace = ""
    if parts[0] == "namespaces" and len(parts) > 1:
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = parts[0]
    name = parts[1] if len(parts) > 1 else ""
    subresource = parts[2] if len(parts) > 2 and verb != "proxy" else ""
    if not name and verb == "get":
        verb = "watch" if query.get("watch") in ("true", "1") else "list"
        selected = field_selector_exact_match(query.get("fieldSelector", ""), "metadata.name")
        if selected and not is_valid_path_segment_name(selected):
            name = selected
    elif not name and verb == "delete":
        verb = "deletecollection"
    return Attributes(user, verb, True, path, namespace, group, version, resource, subresource, name)


def forbidden(attrs: Attributes, reason: str = "") -> errors.APIError:
    """The 403 kube-apiserver answers (``responsewriters.Forbidden`` + ``NewForbidden``), word for word.

    ``pods is forbidden: User "system:serviceaccount:default:default" cannot list resource
    "pods" in API group "" in the namespace "default"``, then ``: <reason>`` when the
    authorizers gave one (the Node authorizer's "no relationship found…", RBAC's missing roles).
    """
    message = f'User "{attrs.user.name}" cannot {attrs.verb} '
    if not attrs.resource_request:
        message += f'path "{attrs.path}"'
    else:
        resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        message += f'resource "{resource}" in API group "{attrs.api_group}" '
        message += f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    if reason:
        message += f": {reason}"
    return forbidden_object(attrs.api_group, attrs.resource, attrs.name, message)


def forbidden_object(group: str, resource: str, name: str, detail: str) -> errors.APIError:
    """``apierrors.NewForbidden(groupResource, name, err)``: ``<resource>[.<group>] ["<name>"] is forbidden: …``."""
    if not resource:
        return errors.APIError(403, "Forbidden", f"forbidden: {detail}", {})
    qualified = f"{resource}.{group}" if group else resource
    subject = f'{qualified} "{name}"' if name else qualified
    details = {k: v for k, v in (("name", name), ("group", group), ("kind", resource)) if v}
    return errors.APIError(403, "Forbidden", f"{subject} is forbidden: {detail}", details)
