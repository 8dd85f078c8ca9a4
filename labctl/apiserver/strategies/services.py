"""Services and their endpoints: ClusterIP and NodePort allocation, what an update keeps.

kube-apiserver allocates a Service's ClusterIP and node ports itself, before the object is
stored, so two Services can never share them (``pkg/registry/core/service/storage``).
"""

from __future__ import annotations

from labctl.apiserver._validate_services import normalize_cluster_ips, validate_service, validate_service_update
from labctl.apiserver.allocators import allocate_service
from labctl.apiserver.defaults import default_endpoints, default_endpointslice, default_service, prepare_service_update
from labctl.apiserver.errors import FieldError
from labctl.apiserver.validation import validate_endpoints, validate_endpointslice
from labctl.kube.printers import ENDPOINTS_TABLE, ENDPOINTSLICE_TABLE, SERVICE_TABLE

from .base import Obj, Storage, Strategy


class ServiceStrategy(Strategy):
    """kube's ``svcStrategy`` and the Service REST storage's allocation."""

    tracks_generation = True
    printer = SERVICE_TABLE

    def default(self, obj: Obj) -> None:
        default_service(obj)

    def prepare_for_update(self, new: Obj, old: Obj, subresource: str | None) -> Obj:
        new = super().prepare_for_update(new, old, subresource)
        prepare_service_update(old, new)
        return new

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_service(obj)

    def validate_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return super().validate_update(old, normalize_cluster_ips(old, new))

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_service_update(old, new)

    def allocate(self, api: Storage, obj: Obj, old: Obj | None) -> list[FieldError]:
        """Fill ``spec.clusterIP(s)`` and node ports from what no other Service holds."""
        meta = obj["metadata"]
        others = [s for s in api.store.list(self.resource.key)
                  if (s["metadata"]["namespace"], s["metadata"]["name"]) != (meta["namespace"], meta["name"])]
        return allocate_service(obj.setdefault("spec", {}), (old or {}).get("spec"), others,
                                api.service_ips, api.node_ports)


class EndpointsStrategy(Strategy):
    """kube's ``endpointsStrategy``: written by the Endpoints controller."""

    printer = ENDPOINTS_TABLE

    def default(self, obj: Obj) -> None:
        default_endpoints(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_endpoints(obj)


class EndpointSliceStrategy(Strategy):
    """kube's ``endpointSliceStrategy``: written by the EndpointSlice controller."""

    printer = ENDPOINTSLICE_TABLE

    def default(self, obj: Obj) -> None:
        default_endpointslice(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_endpointslice(obj)
