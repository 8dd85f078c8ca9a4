"""CustomResourceDefinition validation, with apiextensions' field paths and words.

The subset of ``apiextensions-apiserver/pkg/apis/apiextensions/validation`` an operator
tutorial meets: the name is ``<plural>.<group>``, the names are DNS labels, one storage
version, a structural schema per version (:mod:`labctl.apiserver.structural`), printer
columns and the status/scale subresources. What labctl does not serve (a second served
version, conversion webhooks) is refused here rather than accepted and ignored.
"""

from __future__ import annotations

import re
from typing import Any

from labctl.apiserver._validate_common import as_dict, as_list, is_int
from labctl.apiserver.errors import FieldError, duplicate, forbidden, invalid, not_supported, required
from labctl.kube import validators as v
from labctl.kube.printers import PRINTER_COLUMN_TYPES, parse_column_path
from labctl.kube.resources import RESOURCES

from .structural import check_structural

__all__ = ["served_version", "validate_crd", "validate_crd_update"]

Obj = dict[str, Any]
SCOPES = ["Cluster", "Namespaced"]
COLUMN_FORMATS = ["byte", "date", "date-time", "double", "float", "int32", "int64", "password"]
APPROVAL_ANNOTATION = "api-approved.kubernetes.io"
_KIND = re.compile(r"[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?\Z")
_KIND_WORDS = "may have mixed case, but should otherwise match: [a-z]([-a-z0-9]*[a-z0-9])?"


def served_version(crd: Obj) -> Obj | None:
    """The version labctl serves a CRD's objects at: the storage version, when it is served."""
    for version in as_list(as_dict(crd.get("spec")).get("versions")):
        if isinstance(version, dict) and version.get("storage") and version.get("served"):
            return version
    return None


def validate_crd(crd: Obj) -> list[FieldError]:
    """ValidateCustomResourceDefinition (after defaulting)."""
    meta, spec = as_dict(crd.get("metadata")), as_dict(crd.get("spec"))
    names = as_dict(spec.get("names"))
    group = spec.get("group")
    errs: list[FieldError] = []
    if meta.get("name") != f"{names.get('plural')}.{group}":
        errs.append(invalid("metadata.name", meta.get("name"), 'must be spec.names.plural+"."+spec.group'))
    errs += _group(group, as_dict(meta.get("annotations")))
    errs += _names(names)
    scope = spec.get("scope")
    if not scope:
        errs.append(required("spec.scope", ""))
    elif scope not in SCOPES:
        errs.append(not_supported("spec.scope", scope, SCOPES))
    errs += _versions(spec.get("versions"))
    strategy = as_dict(spec.get("conversion")).get("strategy", "None")
    if strategy != "None":
        errs.append(not_supported("spec.conversion.strategy", strategy, ["None"]))
    builtin = {(rt.group, rt.plural) for rt in RESOURCES}
    if isinstance(group, str) and isinstance(names.get("plural"), str) and (group, names["plural"]) in builtin:
        errs.append(invalid("spec.names.plural", names.get("plural"), f"is a built-in resource of group {group!r}"))
    return errs


def validate_crd_update(old: Obj, new: Obj) -> list[FieldError]:
    """ValidateCustomResourceDefinitionUpdate: the scope of stored objects cannot change.

    Nor, in labctl, the served version: its objects are stored at it and never converted.
    """
    errs: list[FieldError] = []
    old_scope, new_scope = as_dict(old.get("spec")).get("scope"), as_dict(new.get("spec")).get("scope")
    if old_scope != new_scope:
        errs.append(invalid("spec.scope", new_scope, "field is immutable"))
    before, after = served_version(old), served_version(new)
    if before is not None and after is not None and before.get("name") != after.get("name"):
        errs.append(forbidden("spec.versions", f"labctl stores custom objects at {before.get('name')} and does not "
                                               "convert them: the served storage version cannot change"))
    return errs


def _group(group: Any, annotations: Obj) -> list[FieldError]:
    if not group:
        return [required("spec.group", "")]
    if not isinstance(group, str) or v.is_dns1123_subdomain(group):
        return [invalid("spec.group", group, "; ".join(v.is_dns1123_subdomain(str(group))) or "must be a string")]
    if "." not in group:
        return [invalid("spec.group", group, "should be a domain with at least one dot")]
    protected = group.endswith((".k8s.io", ".kubernetes.io")) or group in ("k8s.io", "kubernetes.io")
    if protected and not annotations.get(APPROVAL_ANNOTATION):
        return [required(f"metadata.annotations[{APPROVAL_ANNOTATION}]",
                         f'protected groups must have approval annotation "{APPROVAL_ANNOTATION}", '
                         "see https://github.com/kubernetes/enhancements/pull/1111")]
    return []


def _names(names: Obj) -> list[FieldError]:
    errs: list[FieldError] = []
    for field in ("plural", "singular"):
        value = names.get(field)
        if not value and field == "plural":
            errs.append(required("spec.names.plural", ""))
        elif value and (not isinstance(value, str) or v.is_dns1035_label(value)):
            errs.append(invalid(f"spec.names.{field}", value, "; ".join(v.is_dns1035_label(str(value)))))
    for field in ("kind", "listKind"):
        value = names.get(field)
        if not value:
            errs.append(required(f"spec.names.{field}", ""))
        elif not isinstance(value, str) or not _KIND.match(value):
            errs.append(invalid(f"spec.names.{field}", value, _KIND_WORDS))
    if names.get("kind") and names.get("kind") == names.get("listKind"):
        errs.append(invalid("spec.names.listKind", names.get("listKind"), "kind and listKind may not be the same"))
    categories = names.get("categories")
    if categories is not None and not (isinstance(categories, list) and all(isinstance(c, str) for c in categories)):
        errs.append(invalid("spec.names.categories", categories, "must be a list of names"))
    short = names.get("shortNames")
    if short is not None and not isinstance(short, list):
        errs.append(invalid("spec.names.shortNames", short, "must be a list of names"))
    for i, name in enumerate(as_list(short)):
        if not isinstance(name, str) or v.is_dns1035_label(name):
            errs.append(invalid(f"spec.names.shortNames[{i}]", name, "; ".join(v.is_dns1035_label(str(name)))))
    return errs


def _versions(versions: Any) -> list[FieldError]:
    if not as_list(versions):
        return [invalid("spec.versions", versions if versions is not None else [], "must have exactly one version "
                        "marked as storage version")]
    errs: list[FieldError] = []
    seen: set[str] = set()
    for i, version in enumerate(versions):
        errs += _version(version, f"spec.versions[{i}]", seen)
    storage = [ver for ver in versions if isinstance(ver, dict) and ver.get("storage") is True]
    if len(storage) != 1:
        errs.append(invalid("spec.versions", [as_dict(ver).get("name") for ver in versions],
                            "must have exactly one version marked as storage version"))
    served = [ver for ver in versions if isinstance(ver, dict) and ver.get("served") is True]
    if not served:
        errs.append(invalid("spec.versions", [as_dict(ver).get("name") for ver in versions],
                            "must have at least one served version"))
    elif len(served) > 1 or (storage and not storage[0].get("served")):
        errs.append(forbidden("spec.versions", "labctl serves custom resources at their storage version only "
                                               "(no conversion): mark exactly that version served"))
    return errs


def _version(version: Any, path: str, seen: set[str]) -> list[FieldError]:
    if not isinstance(version, dict):
        return [invalid(path, version, "must be an object")]
    errs: list[FieldError] = []
    name = version.get("name")
    if not name:
        errs.append(required(f"{path}.name", ""))
    elif not isinstance(name, str) or v.is_dns1035_label(name):
        errs.append(invalid(f"{path}.name", name, "; ".join(v.is_dns1035_label(str(name)))))
    elif name in seen:
        errs.append(duplicate(f"{path}.name", name))
    else:
        seen.add(name)
    for flag in ("served", "storage"):
        if not isinstance(version.get(flag), bool):
            errs.append(required(f"{path}.{flag}", "") if flag not in version
                        else invalid(f"{path}.{flag}", version.get(flag), "must be a boolean"))
    schema = as_dict(version.get("schema")).get("openAPIV3Schema")
    if schema is None:
        errs.append(required(f"{path}.schema.openAPIV3Schema", "schemas are required"))
    else:
        errs += check_structural(schema, f"{path}.schema.openAPIV3Schema")
    columns = version.get("additionalPrinterColumns")
    if columns is not None and not isinstance(columns, list):
        errs.append(invalid(f"{path}.additionalPrinterColumns", columns, "must be a list"))
    for j, column in enumerate(as_list(columns)):
        errs += _column(column, f"{path}.additionalPrinterColumns[{j}]")
    subs = version.get("subresources")
    if subs is not None and not isinstance(subs, dict):
        errs.append(invalid(f"{path}.subresources", subs, "must be an object"))
    errs += _subresources(as_dict(subs), f"{path}.subresources")
    return errs


def _column(column: Any, path: str) -> list[FieldError]:
    if not isinstance(column, dict):
        return [invalid(path, column, "must be an object")]
    errs: list[FieldError] = []
    if not column.get("name"):
        errs.append(required(f"{path}.name", ""))
    for field in ("name", "description"):
        if column.get(field) is not None and not isinstance(column[field], str):
            errs.append(invalid(f"{path}.{field}", column[field], "must be a string"))
    typ = column.get("type")
    if not typ:
        errs.append(required(f"{path}.type", ""))
    elif typ not in PRINTER_COLUMN_TYPES:
        errs.append(not_supported(f"{path}.type", typ, list(PRINTER_COLUMN_TYPES)))
    fmt = column.get("format")
    if fmt and fmt not in COLUMN_FORMATS:
        errs.append(not_supported(f"{path}.format", fmt, COLUMN_FORMATS))
    if "priority" in column and (not is_int(column["priority"]) or column["priority"] < 0):
        errs.append(invalid(f"{path}.priority", column["priority"], "must be greater than or equal to 0"))
    json_path = column.get("jsonPath")
    if not json_path:
        errs.append(required(f"{path}.jsonPath", ""))
    elif not isinstance(json_path, str) or parse_column_path(json_path) is None:
        errs.append(invalid(f"{path}.jsonPath", json_path, "labctl evaluates simple JSON paths only: "
                                                           ".field.sub, [0] and ['key'] steps"))
    return errs


def _subresources(subs: Obj, path: str) -> list[FieldError]:
    errs: list[FieldError] = []
    status = subs.get("status")
    if status is not None and not isinstance(status, dict):
        errs.append(invalid(f"{path}.status", status, "must be an object"))
    scale = subs.get("scale")
    if scale is None:
        return errs
    scale = as_dict(scale)
    for field, under in (("specReplicasPath", (".spec.",)), ("statusReplicasPath", (".status.",)),
                         ("labelSelectorPath", (".spec.", ".status."))):
        value = scale.get(field)
        if not value:
            if field != "labelSelectorPath":
                errs.append(required(f"{path}.scale.{field}", ""))
        elif not (isinstance(value, str) and value.startswith(under) and parse_column_path(value)
                  and all(isinstance(step, str) for step in parse_column_path(value) or [])):
            where = " or ".join(u.rstrip(".") for u in under)
            errs.append(invalid(f"{path}.scale.{field}", value,
                                f"should be a json path under {where}, without array indices"))
    return errs
