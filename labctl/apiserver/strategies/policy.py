"""PodDisruptionBudgets: a budget the disruption controller keeps in status, read by ``pods/eviction``."""

from __future__ import annotations

from labctl.apiserver._validate_policy import validate_pdb, validate_pdb_status
from labctl.apiserver.errors import FieldError
from labctl.apiserver.validation import validate_object_meta_update
from labctl.kube.printers import PODDISRUPTIONBUDGET_TABLE

from .base import Obj, Strategy


class PodDisruptionBudgetStrategy(Strategy):
    """kube's ``podDisruptionBudgetStrategy``: a spec change bumps ``metadata.generation``.

    The eviction subresource refuses evictions (429) while ``status.observedGeneration`` lags
    ``metadata.generation``: the budget has not been computed for the new spec yet.
    """

    tracks_generation = True
    printer = PODDISRUPTIONBUDGET_TABLE

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_pdb(obj)

    def validate_status_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_object_meta_update(old.get("metadata"), new.get("metadata")) + validate_pdb_status(new)
