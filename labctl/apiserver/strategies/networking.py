"""NetworkPolicies: rules the node agents enforce in every node's iptables (``labctl/netpol``)."""

from __future__ import annotations

from labctl.apiserver._validate_networking import validate_network_policy
from labctl.apiserver.defaults import default_network_policy
from labctl.apiserver.errors import FieldError
from labctl.kube.printers import NETWORKPOLICY_TABLE

from .base import Obj, Strategy


class NetworkPolicyStrategy(Strategy):
    """kube's ``networkPolicyStrategy``: a spec change bumps ``metadata.generation``; no status."""

    tracks_generation = True
    printer = NETWORKPOLICY_TABLE

    def default(self, obj: Obj) -> None:
        default_network_policy(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_network_policy(obj)
