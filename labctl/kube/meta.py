"""Object metadata as kube-apiserver manages it: names, uids, timestamps, generation.

This is the one home of ``metav1.Time`` and ``metav1.MicroTime`` for every labctl
component: :func:`now` is the clock, :func:`timestamp` and :func:`micro_timestamp` write
the two wire forms, :func:`parse_time` reads either back.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid

# the alphabet Kubernetes uses for generateName suffixes (no vowels, no confusable characters)
_NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

#: fields of ObjectMeta the server owns; a client's values are ignored on create
SERVER_OWNED_ON_CREATE = ("uid", "resourceVersion", "creationTimestamp", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "generation", "selfLink", "managedFields")
#: fields an update cannot change (copied from the stored object)
IMMUTABLE_ON_UPDATE = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                       "generation", "namespace")


def now() -> dt.datetime:
    """The current instant in UTC (``metav1.Now()``); the wire form decides the precision."""
    return dt.datetime.now(dt.UTC)


def timestamp(when: dt.datetime | None = None) -> str:
    """``metav1.Time``: RFC 3339 at second precision (``2026-11-30T10:00:00Z``) of a UTC instant, default now."""
    return (when or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro_timestamp(when: dt.datetime | None = None) -> str:
    """``metav1.MicroTime`` (a Lease's ``renewTime``, an Event's ``eventTime``): RFC 3339 with microseconds."""
    return (when or now()).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str | None) -> dt.datetime | None:
    """A ``Time``/``MicroTime`` (any RFC 3339 text) as an aware datetime; None when empty or unreadable.

    None stands for Go's zero time, which every caller treats as "never" (an age of
    ``<unknown>``, a condition without a transition); a text without an offset is UTC.
    """
    if not text:
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def generate_name(prefix: str) -> str:
    return prefix + "".join(random.choice(_NAME_ALPHABET) for _ in range(5))


def new_uid() -> str:
    return str(uuid.uuid4())


def spec_of(obj: dict) -> dict:
    """Everything but metadata and status: what ``metadata.generation`` tracks."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}
