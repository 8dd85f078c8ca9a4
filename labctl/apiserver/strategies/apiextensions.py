"""CustomResourceDefinitions, and the custom resources they serve while they exist.

kube-apiserver's apiextensions server does this with controllers: the naming controller
accepts a CRD's names (``NamesAccepted``), the establishing controller marks it
``Established``, and the CRD handler then serves ``/apis/<group>/<version>/<plural>``
with a storage built from the definition. A lab's API server does all of it inside the
request that writes the CRD: by the time kubectl gets its answer the custom resource is
in discovery and routable, so ``kubectl wait --for condition=established`` returns at once.

A custom resource is served by the generic REST flow like any kind: a row in the
server's :class:`~labctl.kube.resources.Registry` and a :class:`CustomResourceStrategy`
built from the CRD's served version (schema validation, printer columns). Deleting the
CRD deletes its objects, as the ``customresourcecleanup`` finalizer does.
"""

from __future__ import annotations

from typing import Any

from labctl.apiserver import openapi, structural, typecheck
from labctl.apiserver._validate_apiextensions import served_version, validate_crd, validate_crd_update
from labctl.apiserver.errors import FieldError
from labctl.kube.meta import timestamp
from labctl.kube.printers import custom_resource_printer, parse_column_path
from labctl.kube.resources import Registry, ResourceType

from .base import Obj, Storage, Strategy, make_scale

__all__ = ["CustomResourceDefinitionStrategy", "CustomResourceStrategy", "custom_openapi", "custom_strategy"]

#: the custom resources served now, by store key (``stable.example.com/crontabs``)
_SERVED: dict[str, CustomResourceStrategy] = {}


def custom_strategy(rt: ResourceType) -> Strategy | None:
    """The strategy of a custom resource served now (the one of ``rt``'s definition), or None."""
    strategy = _SERVED.get(rt.key)
    return strategy if strategy is not None and strategy.resource == rt else None


def custom_openapi(registry: Registry) -> dict[str, bytes]:
    """The OpenAPI v3 documents of the custom group-versions served now, by path (``apis/<group>/<version>``)."""
    kinds: dict[str, list] = {}
    for rt in registry.resources:
        strategy = custom_strategy(rt)
        if isinstance(strategy, CustomResourceStrategy):
            kinds.setdefault(f"apis/{rt.group}/{rt.version}", []).append(
                (rt.group, rt.version, rt.kind, rt.list_kind, rt.namespaced, rt.plural, strategy.schema))
    return {path: openapi.custom_v3_document(entries) for path, entries in kinds.items()}


class CustomResourceStrategy(Strategy):
    """A custom resource: its CRD version's structural schema validates it, its printer columns print it."""

    tracks_generation = True
    strategic_merge = False

    def __init__(self, resource: ResourceType, version: Obj) -> None:
        super().__init__(resource)
        self.schema: Obj = version["schema"]["openAPIV3Schema"]
        self.printer = custom_resource_printer(version.get("additionalPrinterColumns") or [])
        scale = (version.get("subresources") or {}).get("scale") or {}
        # validation allowed field names only (no indices) in these paths
        self._spec_replicas = [str(step) for step in parse_column_path(scale.get("specReplicasPath", "")) or []]
        self._status_replicas = [str(step) for step in parse_column_path(scale.get("statusReplicasPath", "")) or []]
        self._selector = [str(step) for step in parse_column_path(scale.get("labelSelectorPath", "")) or []]

    def scale_of(self, obj: Obj) -> Obj:
        """The Scale by the CRD's ``subresources.scale`` paths (upstream's scale for custom resources)."""
        selector = _follow(obj, self._selector) if self._selector else ""
        return make_scale(obj, _follow(obj, self._spec_replicas) or 0, _follow(obj, self._status_replicas) or 0,
                          selector if isinstance(selector, str) else "")

    def set_replicas(self, obj: Obj, replicas: int) -> None:
        *parents, last = self._spec_replicas
        node = obj
        for step in parents:
            node = node.setdefault(step, {})
        node[last] = replicas

    def default(self, obj: Obj) -> None:
        """The schema's defaults (structural defaulting), before validation."""
        structural.apply_defaults(obj, self.schema)

    def prune(self, obj: dict) -> list[str]:
        """Drop the fields the schema does not declare (the decoder's step, see :mod:`typecheck`)."""
        return structural.prune(obj, self.schema)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        body = {k: v for k, v in obj.items() if k != "metadata"}
        return structural.validate_value(body, {**self.schema, "properties": {
            k: v for k, v in (self.schema.get("properties") or {}).items() if k != "metadata"}}, "")

    def validate_status_update(self, old: Obj, new: Obj) -> list[FieldError]:
        """A status write is validated against the schema too (the status is the schema's as well)."""
        return super().validate_status_update(old, new) + self.validate_kind(new)


class CustomResourceDefinitionStrategy(Strategy):
    """apiextensions' CRD strategy plus its naming and establishing controllers."""

    tracks_generation = True
    #: deleting a CRD ends at once, its objects deleted first (the customresourcecleanup finalizer's job)
    finalizes_on_delete = True

    def default(self, obj: Obj) -> None:
        """SetDefaults_CustomResourceDefinition: singular, listKind and the conversion strategy."""
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        names = spec.get("names")
        if isinstance(names, dict) and isinstance(names.get("kind"), str):
            names.setdefault("singular", names["kind"].lower())
            names.setdefault("listKind", names["kind"] + "List")
        spec.setdefault("conversion", {"strategy": "None"})

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_crd(obj)

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_crd_update(old, new)

    def allocate(self, api: Storage, obj: Obj, old: Obj | None) -> list[FieldError]:
        """The naming and establishing controllers' verdict, written as the CRD's status.

        Only for a valid CRD: an invalid one is refused with its field errors anyway.
        """
        if not validate_crd(obj):
            obj["status"] = _status(obj, old, _conflict(api.registry, obj))
        return []

    def after_create(self, api: Storage, obj: Obj) -> None:
        serve(api.registry, obj)

    def after_update(self, api: Storage, obj: Obj) -> None:
        serve(api.registry, obj)

    def finalize(self, api: Storage, obj: Obj) -> None:
        rt = _resource_of(obj)
        for item in api.store.list(rt.key):
            key = (rt.key, item["metadata"].get("namespace") or "", item["metadata"]["name"])
            if api.store.get(key) is not None:
                api.store.delete(key)
        unserve(api.registry, rt)


def serve(registry: Registry, crd: Obj) -> None:
    """Serve the custom resource of an established CRD (again, with its current definition)."""
    rt = _resource_of(crd)
    if not _condition(crd, "Established"):
        unserve(registry, rt)
        return
    version = served_version(crd)
    if version is None:
        return
    strategy = CustomResourceStrategy(rt, version)
    old = _SERVED.get(rt.key)
    if old is not None:
        typecheck.forget_custom(old.resource.api_version, old.resource.kind)
    _SERVED[rt.key] = strategy
    typecheck.serve_custom(rt.api_version, rt.kind, strategy.prune)
    registry.serve(rt)


def unserve(registry: Registry, rt: ResourceType) -> None:
    """Stop serving a custom resource: gone from routing, discovery and decoding."""
    old = _SERVED.pop(rt.key, None)
    if old is not None:
        typecheck.forget_custom(old.resource.api_version, old.resource.kind)
    registry.unserve(rt.key)


def _follow(obj: Any, steps: list[str]) -> Any:
    for step in steps:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(step)
    return obj


def _resource_of(crd: Obj) -> ResourceType:
    spec = crd["spec"]
    names = spec["names"]
    version = served_version(crd) or {}
    subresources = tuple(sub for sub in ("status", "scale") if (version.get("subresources") or {}).get(sub) is not None)
    return ResourceType(spec["group"], version.get("name", ""), names["kind"], names["plural"], names["singular"],
                        spec["scope"] == "Namespaced", tuple(names.get("shortNames") or ()),
                        tuple(names.get("categories") or ()), subresources,
                        custom_list_kind=names["listKind"])


def _conflict(registry: Registry, crd: Obj) -> tuple[str, str] | None:
    """(reason, message) when another resource of the group already uses one of the CRD's names."""
    spec = crd["spec"]
    names = spec["names"]
    key = f"{spec['group']}/{names['plural']}"
    others = [rt for rt in registry.resources if rt.group == spec["group"] and rt.key != key]
    for rt in others:
        if names["kind"] == rt.kind:
            return "KindConflict", f"{names['kind']!r} is already in use"
        if names["singular"] in (rt.plural, rt.singular):
            return "SingularConflict", f"{names['singular']!r} is already in use"
        clash = set(names.get("shortNames") or ()) & set(rt.short_names)
        if clash:
            return "ShortNamesConflict", f"{sorted(clash)[0]!r} is already in use"
    return None


def _status(crd: Obj, old: Obj | None, conflict: tuple[str, str] | None) -> Obj:
    """status: acceptedNames, the NamesAccepted and Established conditions, storedVersions."""
    previous = (old or {}).get("status") or {}
    names = crd["spec"]["names"]
    conditions: list[Obj] = []
    if conflict is None:
        accepted = {k: names[k] for k in ("plural", "singular", "kind", "listKind") if names.get(k)}
        for key in ("shortNames", "categories"):
            if names.get(key):
                accepted[key] = list(names[key])
        conditions.append(_make_condition(previous, "NamesAccepted", "True", "NoConflicts", "no conflicts found"))
        conditions.append(_make_condition(previous, "Established", "True", "InitialNamesAccepted",
                                          "the initial names have been accepted"))
    else:
        accepted = previous.get("acceptedNames") or {"plural": "", "kind": ""}
        conditions.append(_make_condition(previous, "NamesAccepted", "False", *conflict))
        conditions.append(_make_condition(previous, "Established", "False", "NotAccepted",
                                          "not all names are accepted"))
    stored = list(previous.get("storedVersions") or [])
    version = served_version(crd)
    if version is not None and version["name"] not in stored:
        stored.append(version["name"])
    return {"acceptedNames": accepted, "conditions": conditions, "storedVersions": stored}


def _make_condition(previous: Obj, type_: str, status: str, reason: str, message: str) -> Obj:
    """A condition whose lastTransitionTime moves only when its status does."""
    before = next((c for c in previous.get("conditions") or [] if c.get("type") == type_), None)
    since = before["lastTransitionTime"] if before and before.get("status") == status else timestamp()
    return {"type": type_, "status": status, "lastTransitionTime": since, "reason": reason, "message": message}


def _condition(crd: Obj, type_: str) -> bool:
    return any(c.get("type") == type_ and c.get("status") == "True"
               for c in (crd.get("status") or {}).get("conditions") or [])

