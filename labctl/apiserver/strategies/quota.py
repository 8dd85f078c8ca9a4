"""LimitRanges and ResourceQuotas: a namespace's resource policy, enforced by admission (limitranger.py, resourcequota.py)."""

from __future__ import annotations

from labctl.apiserver import resourcequota
from labctl.apiserver._validate_quota import default_limit_range, validate_limit_range, validate_resource_quota
from labctl.apiserver.errors import FieldError
from labctl.kube.printers import RESOURCEQUOTA_TABLE

from .base import Obj, Storage, Strategy


class LimitRangeStrategy(Strategy):
    """kube's ``limitrangeStrategy``: Container items get their default limits and requests filled in."""

    def default(self, obj: Obj) -> None:
        default_limit_range(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_limit_range(obj)


class ResourceQuotaStrategy(Strategy):
    """kube's ``resourcequotaStrategy``; ``status`` (hard and used) is written by the API server after each write."""

    printer = RESOURCEQUOTA_TABLE

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_resource_quota(obj)

    def allocate(self, api: Storage, obj: Obj, old: Obj | None) -> list[FieldError]:
        """The quota's status is counted before it is stored, so ``describe quota`` never shows it empty."""
        obj["status"] = resourcequota.quota_status(api, obj)
        return []
