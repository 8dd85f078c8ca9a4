"""``events.k8s.io/v1`` Events: a second view of the core/v1 events, as kube serves both from one storage.

Kube stores one internal Event and converts it for each group version
(``pkg/apis/events/v1/conversion.go``): ``note`` is core's ``message``, ``regarding`` its
``involvedObject``, ``deprecatedSource``/``deprecatedFirstTimestamp``/``deprecatedLastTimestamp``/
``deprecatedCount`` its ``source``/``firstTimestamp``/``lastTimestamp``/``count``, and
``reportingController`` its ``reportingComponent``; ``series`` keeps ``count`` and
``lastObservedTime``. Labctl's store keeps core/v1 objects, so this view converts on the
way out (get, list, watch) and on the way in (create, update, patch), and a write through it
meets the strict validation kube applies to events.k8s.io/v1 creates.
"""

from __future__ import annotations

from typing import Any

from labctl.kube.validators import is_qualified_name

from ._validate_common import as_dict
from .errors import FieldError, invalid, required

Obj = dict[str, Any]
API_VERSION = "events.k8s.io/v1"
#: events.k8s.io/v1 field -> core/v1 field, for the fields that only change name
_RENAMED = (("note", "message"), ("regarding", "involvedObject"), ("deprecatedSource", "source"),
            ("deprecatedFirstTimestamp", "firstTimestamp"), ("deprecatedLastTimestamp", "lastTimestamp"),
            ("deprecatedCount", "count"), ("reportingController", "reportingComponent"))
_SAME = ("metadata", "eventTime", "related", "action", "reason", "reportingInstance", "type")
_SERIES = ("count", "lastObservedTime")


def to_view(core: Obj) -> Obj:
    """The events.k8s.io/v1 Event of a stored core/v1 Event."""
    out: Obj = {"kind": "Event", "apiVersion": API_VERSION}
    for name in _SAME:
        if core.get(name) is not None:
            out[name] = core[name]
    for view, stored in _RENAMED:
        if core.get(stored) not in (None, "", {}):
            out[view] = core[stored]
    out.setdefault("eventTime", None)  # required in events.k8s.io/v1: kube prints it even when empty
    series = as_dict(core.get("series"))
    if series:
        out["series"] = {k: series[k] for k in _SERIES if k in series}
    return out


def from_view(view: Obj) -> Obj:
    """The core/v1 Event to store for an events.k8s.io/v1 one."""
    out: Obj = {"kind": "Event", "apiVersion": "v1"}
    for name in _SAME:
        if view.get(name) is not None:
            out[name] = view[name]
    for view_name, stored in _RENAMED:
        if view.get(view_name) is not None:
            out[stored] = view[view_name]
    series = as_dict(view.get("series"))
    if series:
        out["series"] = {k: series[k] for k in _SERIES if k in series}
    out.setdefault("involvedObject", {})
    return out


def validate_create(view: Obj) -> list[FieldError]:
    """``ValidateEventCreate`` for events.k8s.io/v1: what a new-style event must say, the deprecated fields unset."""
    errs: list[FieldError] = []
    if not view.get("eventTime"):
        errs.append(required("eventTime"))
    if view.get("type") not in ("Normal", "Warning"):
        errs.append(invalid("type", "", f"has invalid value: {view.get('type') or ''}"))
    controller = view.get("reportingController")
    if not controller:
        errs.append(required("reportingController"))
    else:
        errs += [invalid("reportingController", controller, m) for m in is_qualified_name(str(controller))]
    for name in ("reportingInstance", "action", "reason"):
        if not view.get(name):
            errs.append(required(name))
        elif len(str(view[name])) > 128:
            errs.append(invalid(name, "", "can have at most 128 characters"))
    if len(str(view.get("note") or "")) > 1024:
        errs.append(invalid("note", "", "can have at most 1024 characters"))
    for name in ("deprecatedFirstTimestamp", "deprecatedLastTimestamp", "deprecatedCount"):
        if view.get(name):
            errs.append(invalid(name, "", "needs to be unset"))
    if as_dict(view.get("deprecatedSource")):
        errs.append(invalid("deprecatedSource", "", "needs to be unset"))
    series = view.get("series")
    if series is not None:
        series = as_dict(series)
        if not isinstance(series.get("count"), int) or series["count"] < 2:
            errs.append(invalid("series.count", "", "should be at least 2"))
        if not series.get("lastObservedTime"):
            errs.append(required("series.lastObservedTime"))
    return errs
