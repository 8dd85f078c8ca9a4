"""What a request addresses: a resource type, maybe a namespace, a name and a subresource.

Its own module because both the generic REST layer (``rest.py``) and the kinds'
strategies (``strategies/``) speak in scopes, and the strategies must not import the
layer that calls them.
"""

from __future__ import annotations

from dataclasses import dataclass

from labctl.kube.resources import ResourceType


@dataclass(frozen=True)
class RequestScope:
    """``/api/v1/namespaces/<namespace>/<resource>/<name>/<subresource>``, resolved against the table of kinds."""

    resource: ResourceType
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None

    def key(self, name: str | None = None) -> tuple[str, str, str]:
        """The store key of the object named here (or of ``name`` in the same collection)."""
        return (self.resource.key, self.namespace or "", name or self.name or "")
