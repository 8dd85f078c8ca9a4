"""Events and Leases: records the components write about the cluster and about themselves."""

from __future__ import annotations

from labctl.apiserver.errors import FieldError
from labctl.apiserver.validation import validate_event, validate_lease
from labctl.kube.printers import EVENT_TABLE, LEASE_TABLE

from .base import Obj, Strategy


class EventStrategy(Strategy):
    """kube's core/v1 ``eventStrategy``."""

    printer = EVENT_TABLE

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_event(obj)


class LeaseStrategy(Strategy):
    """kube's ``leaseStrategy``: the node agent renews its Lease, the heartbeat the node lifecycle controller reads."""

    tracks_generation = True
    printer = LEASE_TABLE

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_lease(obj)
