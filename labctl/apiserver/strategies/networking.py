"""NetworkPolicies (rules the node agents enforce in every node's iptables, ``labctl/netpol``), and
Ingresses and IngressClasses (served by the ingress add-on's nginx, ``labctl/ingress``)."""

from __future__ import annotations

from labctl.apiserver._validate_ingress import (
    validate_ingress,
    validate_ingress_class,
    validate_ingress_class_update,
    validate_ingress_status,
)
from labctl.apiserver._validate_networking import validate_network_policy
from labctl.apiserver.defaults import default_network_policy
from labctl.apiserver.errors import FieldError
from labctl.kube.objects import DEFAULT_INGRESS_CLASS_ANNOTATION
from labctl.kube.printers import INGRESS_TABLE, INGRESSCLASS_TABLE, NETWORKPOLICY_TABLE

from .base import Obj, Storage, Strategy


class NetworkPolicyStrategy(Strategy):
    """kube's ``networkPolicyStrategy``: a spec change bumps ``metadata.generation``; no status."""

    tracks_generation = True
    printer = NETWORKPOLICY_TABLE

    def default(self, obj: Obj) -> None:
        default_network_policy(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_network_policy(obj)


class IngressStrategy(Strategy):
    """kube's ``ingressStrategy`` plus the ``DefaultIngressClass`` admission plugin."""

    tracks_generation = True
    printer = INGRESS_TABLE

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_ingress(obj)

    def validate_status_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return super().validate_status_update(old, new) + validate_ingress_status(new)

    def allocate(self, api: Storage, obj: Obj, old: Obj | None) -> list[FieldError]:
        """On create, an Ingress without a class gets the one class marked default (``DefaultIngressClass``);
        none or several defaults leave it without a class, as upstream's plugin does."""
        spec = obj.setdefault("spec", {})
        if old is None and not spec.get("ingressClassName") and \
                "kubernetes.io/ingress.class" not in (obj["metadata"].get("annotations") or {}):
            defaults = [c["metadata"]["name"] for c in api.store.list("networking.k8s.io/ingressclasses")
                        if (c["metadata"].get("annotations") or {}).get(DEFAULT_INGRESS_CLASS_ANNOTATION) == "true"]
            if len(defaults) == 1:
                spec["ingressClassName"] = defaults[0]
        return []


class IngressClassStrategy(Strategy):
    """kube's ``ingressClassStrategy``: cluster-scoped, the controller fixed at creation."""

    tracks_generation = True
    printer = INGRESSCLASS_TABLE

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_ingress_class(obj)

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_ingress_class_update(old, new)
