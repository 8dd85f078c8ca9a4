"""Nodes: registered by the node agent with their status, podCIDRs fixed once set."""

from __future__ import annotations

from labctl.apiserver.defaults import default_node
from labctl.apiserver.errors import FieldError
from labctl.apiserver.validation import validate_node, validate_node_update
from labctl.kube.printers import NODE_TABLE

from .base import Obj, Strategy


class NodeStrategy(Strategy):
    """kube's ``nodeStrategy`` and ``nodeStatusStrategy``."""

    tracks_generation = True
    printer = NODE_TABLE

    def prepare_for_create(self, obj: Obj) -> None:
        """Nodes may set every field on create, status included: the agent registers with its addresses."""
        self.default(obj)

    def default(self, obj: Obj) -> None:
        default_node(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_node(obj)

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_node_update(old, new)

    def validate_status_update(self, old: Obj, new: Obj) -> list[FieldError]:
        """A node's status holds its addresses: a status write is validated like any update."""
        return self.validate_update(old, new)
