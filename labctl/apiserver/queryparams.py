"""Query parameters, parsed and validated as kube-apiserver does before it looks at anything else.

kube converts the query into ``ListOptions``/``CreateOptions``/``DeleteOptions``... with
apimachinery's conversion functions (``strconv.ParseInt`` for integers, anything but
``0``/``f``/``false`` is true for booleans): a value that does not parse is a 400 carrying
Go's error (``strconv.ParseInt: parsing "x": invalid syntax``). The options are then
validated (``ValidateListOptions``, ``ValidateCreateOptions``, ``ValidateDeleteOptions``...)
and a bad combination is a 422 on the options kind (``ListOptions.meta.k8s.io "" is
invalid: ...``). A resourceVersion that is not a ``uint64`` is refused by the storage layer
(422 on the resource), and one ahead of the store is "Too large resource version" (504).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from labctl.kube import validators
from labctl.kube.labels import go_value
from labctl.kube.resources import ResourceType

from . import errors
from .decode import FIELD_VALIDATION

META_GROUP = "meta.k8s.io"
FIELD_MANAGER_MAX_LENGTH = 128
_UINT64_MAX = 2**64 - 1
_UNSIGNED = re.compile(r"[0-9]+\Z")


# -- Go's scalar conversions ---------------------------------------------------------------
def parse_int64(text: str) -> int:
    """``strconv.ParseInt(text, 10, 64)``, failing with Go's message as a 400."""
    try:
        return validators.parse_int64(text)
    except ValueError as err:
        raise errors.bad_request(str(err)) from None


def parse_bool(text: str) -> bool:
    """apimachinery's ``Convert_Slice_string_To_bool``: only ``0``, ``f`` and ``false`` are false."""
    return not (text == "0" or text.lower() in ("f", "false"))


def int_param(q: Mapping[str, str], name: str) -> int | None:
    return parse_int64(q[name]) if name in q else None


def bool_param(q: Mapping[str, str], name: str) -> bool | None:
    return parse_bool(q[name]) if name in q else None


def parse_resource_version(text: str, resource: ResourceType, name: str = "") -> int | None:
    """The storage layer's ``ParseResourceVersion``: ``""``/``"0"`` mean "any", else a ``uint64``.

    A value that is not one is answered as kube's ``InterpretWatchError`` answers it, a 422
    on the resource: ``pods "" is invalid: resourceVersion: Invalid value: "x": ...``.
    """
    if text in ("", "0"):
        return None
    if not _UNSIGNED.match(text):
        detail = f'strconv.ParseUint: parsing "{text}": invalid syntax'
    elif int(text) > _UINT64_MAX:
        detail = f'strconv.ParseUint: parsing "{text}": value out of range'
    else:
        return int(text)
    kind = f"{resource.plural}.{resource.group}" if resource.group else resource.plural
    raise errors.invalid_object(kind, "", name, [errors.invalid("resourceVersion", text, detail)])


# -- list and watch ------------------------------------------------------------------------
@dataclass
class ListOptions:
    """``metav1.ListOptions``: what a list, watch or deletecollection asks for."""

    label_selector: str = ""
    field_selector: str = ""
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    watch: bool = False
    timeout_seconds: int | None = None
    allow_watch_bookmarks: bool = False
    send_initial_events: bool | None = None


def is_watch(q: Mapping[str, str]) -> bool:
    return bool(bool_param(q, "watch"))


def list_options(q: Mapping[str, str], resource: ResourceType) -> ListOptions:
    """``ListOptions`` from the query, checked by ``ValidateListOptions`` (422) and the storage's RV parse."""
    watch = is_watch(q)
    opts = ListOptions(
        label_selector=q.get("labelSelector", ""), field_selector=q.get("fieldSelector", ""),
        limit=max(int_param(q, "limit") or 0, 0),  # kube pages only for limit > 0
        continue_token=q.get("continue", ""), resource_version=q.get("resourceVersion", ""),
        resource_version_match=q.get("resourceVersionMatch", ""), watch=watch,
        timeout_seconds=int_param(q, "timeoutSeconds"),
        allow_watch_bookmarks=bool(bool_param(q, "allowWatchBookmarks")),
        send_initial_events=bool_param(q, "sendInitialEvents"))
    parse_resource_version(opts.resource_version, resource)
    field_errors = _validate_watch(opts) if watch else _validate_list(opts)
    if field_errors:
        raise errors.invalid_object("ListOptions", META_GROUP, "", field_errors)
    if opts.continue_token and opts.resource_version:
        raise errors.bad_request("specifying resource version is not allowed when using continue")
    return opts


def _validate_list(opts: ListOptions) -> list[errors.FieldError]:
    errs: list[errors.FieldError] = []
    match = opts.resource_version_match
    if match:
        if not opts.resource_version:
            errs.append(errors.forbidden("resourceVersionMatch",
                                         "resourceVersionMatch is forbidden unless resourceVersion is provided"))
        if opts.continue_token:
            errs.append(errors.forbidden("resourceVersionMatch",
                                         "resourceVersionMatch is forbidden when continue is provided"))
        if match not in ("Exact", "NotOlderThan"):
            errs.append(errors.not_supported("resourceVersionMatch", match, ["Exact", "NotOlderThan", ""]))
        if match == "Exact" and opts.resource_version == "0":
            errs.append(errors.forbidden("resourceVersionMatch",
                                         'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'))
    if opts.send_initial_events is not None:
        errs.append(errors.forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"))
    return errs


def _validate_watch(opts: ListOptions) -> list[errors.FieldError]:
    errs: list[errors.FieldError] = []
    match = opts.resource_version_match
    if opts.send_initial_events is not None and match != "NotOlderThan":
        errs.append(errors.forbidden("resourceVersionMatch",
                                     "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
    if match:
        if opts.send_initial_events is None:
            errs.append(errors.forbidden("resourceVersionMatch",
                                         "resourceVersionMatch is forbidden for watch unless sendInitialEvents is "
                                         "provided"))
        if match != "NotOlderThan":
            errs.append(errors.not_supported("resourceVersionMatch", match, ["NotOlderThan"]))
        if opts.continue_token:
            errs.append(errors.forbidden("resourceVersionMatch",
                                         "resourceVersionMatch is forbidden when continue is provided"))
    return errs


# -- writes --------------------------------------------------------------------------------
@dataclass(frozen=True)
class WriteOptions:
    """``CreateOptions``/``UpdateOptions``/``PatchOptions`` as the REST flow needs them."""

    dry_run: bool = False
    field_manager: str = ""
    field_validation: str = "Warn"  # kube's default when the client sends none


def write_options(q, options_kind: str, patch_type: str | None = None) -> WriteOptions:
    """Parse and validate the options of a create, update or patch (``options_kind``: "CreateOptions"...)."""
    dry_run = q.getall("dryRun", [])
    field_manager = q.get("fieldManager", "")
    field_validation = q.get("fieldValidation", "")
    force = bool_param(q, "force")
    errs = _dry_run_errors(dry_run) + _field_manager_errors(field_manager)
    if field_validation not in ("", *FIELD_VALIDATION):
        errs.append(errors.not_supported("fieldValidation", field_validation, ["", "Ignore", "Strict", "Warn"]))
    if options_kind == "PatchOptions":
        if patch_type != "apply" and force is not None:
            errs.insert(0, errors.forbidden("force", "may not be specified for non-apply patch"))
        if patch_type == "apply" and not field_manager:
            errs.insert(0, errors.required("fieldManager", "is required for apply patch"))
    if errs:
        raise errors.invalid_object(options_kind, META_GROUP, "", errs)
    return WriteOptions(bool(dry_run), field_manager, field_validation or "Warn")


def _dry_run_errors(values: list[str]) -> list[errors.FieldError]:
    """``ValidateDryRun``: every value must be ``All``."""
    if all(v == "All" for v in values):
        return []
    shown = errors.GoLiteral(go_value(values))
    return [errors.FieldError("FieldValueNotSupported", "dryRun", shown, 'supported values: "All"')]


def _field_manager_errors(manager: str) -> list[errors.FieldError]:
    """``ValidateFieldManager``: at most 128 characters, all printable."""
    if len(manager) > FIELD_MANAGER_MAX_LENGTH:
        return [errors.FieldError("FieldValueTooLong", "fieldManager", manager,
                                  f"may not be more than {FIELD_MANAGER_MAX_LENGTH} bytes")]
    for i, ch in enumerate(manager):
        if not _printable(ch):
            return [errors.invalid("fieldManager", manager,
                                   f"invalid character U+{ord(ch):04X} (at position {i})")]
    return []


def _printable(ch: str) -> bool:
    """Go's ``unicode.IsPrint``: letters, marks, numbers, punctuation, symbols and the ASCII space."""
    return ch == " " or unicodedata.category(ch)[0] in "LMNPS"


# -- deletes -------------------------------------------------------------------------------
def delete_options(q: Mapping[str, str], body: dict) -> dict:
    """The ``DeleteOptions`` of a delete: the body's, overridden by the query, validated (422).

    A negative ``gracePeriodSeconds`` means one second, as kube's ``BeforeDelete`` makes it.
    """
    options = dict(body)
    grace = int_param(q, "gracePeriodSeconds")
    if grace is not None:
        options["gracePeriodSeconds"] = grace
    if "propagationPolicy" in q:
        options["propagationPolicy"] = q["propagationPolicy"]
    orphan = bool_param(q, "orphanDependents")
    if orphan is not None:
        options["orphanDependents"] = orphan
    if "dryRun" in q:
        options["dryRun"] = q.getall("dryRun")  # type: ignore[attr-defined]
    errs: list[errors.FieldError] = []
    policy = options.get("propagationPolicy")
    if options.get("orphanDependents") is not None and policy is not None:
        errs.append(errors.invalid("propagationPolicy", policy,
                                   "orphanDependents and deletionPropagation cannot be both set"))
    if policy is not None and policy not in ("Foreground", "Background", "Orphan"):
        errs.append(errors.not_supported("propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"]))
    errs += _dry_run_errors(list(options.get("dryRun") or []))
    if errs:
        raise errors.invalid_object("DeleteOptions", META_GROUP, "", errs)
    if isinstance(options.get("gracePeriodSeconds"), int) and options["gracePeriodSeconds"] < 0:
        options["gracePeriodSeconds"] = 1
    return options


# -- pods/log ------------------------------------------------------------------------------
def check_pod_log_query(q: Mapping[str, str]) -> None:
    """The integer ``PodLogOptions`` must parse as Go's ``int64`` (``tailLines=99999999999999999999`` is a 400)."""
    for name in ("tailLines", "sinceSeconds", "limitBytes"):
        int_param(q, name)
