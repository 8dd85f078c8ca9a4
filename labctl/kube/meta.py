"""Object metadata as kube-apiserver manages it: names, uids, timestamps, generation."""

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
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def timestamp(when: dt.datetime | None = None) -> str:
    """RFC 3339 at second precision, the format of ``metav1.Time``."""
    return (when or now()).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)


def generate_name(prefix: str) -> str:
    return prefix + "".join(random.choice(_NAME_ALPHABET) for _ in range(5))


def new_uid() -> str:
    return str(uuid.uuid4())


def spec_of(obj: dict) -> dict:
    """Everything but metadata and status: what ``metadata.generation`` tracks."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "kind", "apiVersion")}
