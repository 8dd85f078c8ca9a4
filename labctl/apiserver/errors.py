"""Kubernetes-style API errors.

Every failure the API server reports leaves as a ``meta.k8s.io/v1 Status`` object with
the HTTP code and ``reason`` kube-apiserver would use, because kubectl and the official
clients key their messages (``Error from server (NotFound): pods "x" not found``) off
exactly these fields.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar


@dataclass(frozen=True)
class FieldError:
    """One invalid field, as Kubernetes' ``field.Error``.

    ``type`` is the ``CauseType`` (``FieldValueInvalid``, ``FieldValueRequired``,
    ``FieldValueNotSupported``, ``FieldValueDuplicate``, ``FieldValueForbidden``,
    ``FieldValueTooLong``); ``field`` is the path (``spec.template.metadata.labels``).
    """

    type: str
    field: str
    bad_value: Any = None
    detail: str = ""

    _TYPE_TEXT: ClassVar[dict[str, str]] = {
        "FieldValueInvalid": "Invalid value",
        "FieldValueRequired": "Required value",
        "FieldValueNotSupported": "Unsupported value",
        "FieldValueDuplicate": "Duplicate value",
        "FieldValueForbidden": "Forbidden",
        "FieldValueTooLong": "Too long",
        "FieldValueTooMany": "Too many",
        "FieldValueNotFound": "Not found",
        "FieldValueTypeInvalid": "Invalid value",
    }

    @property
    def message(self) -> str:
        """The text Kubernetes prints for this error, without the field path."""
        text = self._TYPE_TEXT.get(self.type, "Invalid value")
        if self.type in ("FieldValueRequired", "FieldValueForbidden", "FieldValueTooMany", "FieldValueTooLong"):
            return f"{text}: {self.detail}" if self.detail else text
        value = _render_value(self.bad_value)
        return f"{text}: {value}: {self.detail}" if self.detail else f"{text}: {value}"

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"

    def cause(self) -> dict[str, str]:
        return {"reason": self.type, "message": self.message, "field": self.field}


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", path, value, detail)


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, None, detail)


def not_supported(path: str, value: Any, allowed: list[str]) -> FieldError:
    return FieldError(
        "FieldValueNotSupported", path, value, "supported values: " + ", ".join(f'"{a}"' for a in allowed)
    )


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", path, None, detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", path, value, "")


class GoLiteral(str):
    """A bad value already printed as Go's ``%#v`` prints it (``[]string{"x"}``), shown verbatim."""


def _render_value(value: Any) -> str:
    if isinstance(value, GoLiteral):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


@dataclass
class APIError(Exception):
    """An error answered as a ``Status`` object."""

    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details:
            body["details"] = self.details
        return body


def _qualified(resource: str, group: str) -> str:
    return f"{resource}.{group}" if group else resource


def not_found(resource: str, group: str, name: str) -> APIError:
    return APIError(404, "NotFound", f'{_qualified(resource, group)} "{name}" not found',
                    {"name": name, "group": group, "kind": resource})


def already_exists(resource: str, group: str, name: str) -> APIError:
    return APIError(409, "AlreadyExists", f'{_qualified(resource, group)} "{name}" already exists',
                    {"name": name, "group": group, "kind": resource})


def conflict(resource: str, group: str, name: str, detail: str) -> APIError:
    return APIError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {_qualified(resource, group)} "{name}": {detail}',
        {"name": name, "group": group, "kind": resource},
    )


def invalid_object(kind: str, group: str, name: str, errors: list[FieldError]) -> APIError:
    """422 Invalid, worded like kube-apiserver's ``NewInvalid``."""
    qualified = f"{kind}.{group}" if group else kind
    if len(errors) == 1:
        joined = str(errors[0])
    else:
        joined = "[" + ", ".join(str(e) for e in errors) + "]"
    return APIError(
        422, "Invalid", f'{qualified} "{name}" is invalid: {joined}',
        {"name": name, "group": group, "kind": kind, "causes": [e.cause() for e in errors]},
    )


def bad_request(message: str) -> APIError:
    return APIError(400, "BadRequest", message)


def timeout(message: str, retry_after_seconds: int, causes: list[dict[str, str]] | None = None) -> APIError:
    """504 Timeout, kube's ``NewTimeoutError`` (``Timeout: Too large resource version: ...``)."""
    details: dict[str, Any] = {"retryAfterSeconds": retry_after_seconds}
    if causes:
        details["causes"] = causes
    return APIError(504, "Timeout", f"Timeout: {message}", details)


def gone(message: str) -> APIError:
    return APIError(410, "Expired", message)


def unauthorized() -> APIError:
    return APIError(401, "Unauthorized", "Unauthorized")


def forbidden_error(message: str) -> APIError:
    return APIError(403, "Forbidden", message)


def method_not_allowed(message: str) -> APIError:
    return APIError(405, "MethodNotAllowed", message)


def unsupported_media_type(content_type: str) -> APIError:
    return APIError(415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format ({content_type}) - accepted media types "
                    "include: application/json, application/yaml, application/vnd.kubernetes.protobuf")


def too_large(limit: int) -> APIError:
    return APIError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")
