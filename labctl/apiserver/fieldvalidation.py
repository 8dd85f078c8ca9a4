"""Server-side field validation: finding fields the schema does not declare.

kubectl 1.37 sends ``fieldValidation=Strict`` with ``apply``/``create``, so a typo such as
``spec.replica: 3`` is rejected with kube-apiserver's ``strict decoding error: unknown
field "spec.replica"`` instead of being silently dropped. The schemas are the OpenAPI
documents the server already publishes for ``kubectl explain``.
"""

from __future__ import annotations

import functools
from typing import Any

from . import openapi


@functools.lru_cache(maxsize=None)
def _schema(api_version: str, kind: str) -> dict[str, Any] | None:
    """The resolved schema of a kind; resolving takes milliseconds, so once per process."""
    return openapi.schema_for(api_version, kind)


def unknown_fields(api_version: str, kind: str, obj: dict) -> list[str]:
    """Paths (``spec.template.spec.containers[0].imagee``) of fields not in the kind's schema."""
    schema = _schema(api_version, kind)
    out: list[str] = []
    if schema is not None:
        _walk(schema, obj, "", out)
    return out


def _walk(node: dict[str, Any] | None, value: Any, path: str, out: list[str]) -> None:
    if not isinstance(node, dict) or node.get("x-kubernetes-preserve-unknown-fields"):
        return
    if "allOf" in node and len(node["allOf"]) == 1:
        node = node["allOf"][0]
    if isinstance(value, dict):
        props = node.get("properties")
        extra = node.get("additionalProperties")
        for key, child in value.items():
            child_path = f"{path}.{key}" if path else key
            if props is not None and key in props:
                _walk(props[key], child, child_path, out)
            elif isinstance(extra, dict):
                _walk(extra, child, child_path, out)
            elif props is not None and extra is None:
                out.append(child_path)
    elif isinstance(value, list) and isinstance(node.get("items"), dict):
        for i, item in enumerate(value):
            _walk(node["items"], item, f"{path}[{i}]", out)
