"""ConfigMaps, Secrets and ServiceAccounts: data and identities pods consume."""

from __future__ import annotations

from labctl.apiserver.defaults import default_secret
from labctl.apiserver.errors import FieldError
from labctl.apiserver.validation import (
    validate_configmap,
    validate_immutable_data,
    validate_secret,
    validate_service_account,
)
from labctl.kube.printers import CONFIGMAP_TABLE, SECRET_TABLE, SERVICEACCOUNT_TABLE

from .base import Obj, Strategy


class ConfigMapStrategy(Strategy):
    """kube's ``configMapStrategy``: ``immutable: true`` freezes the data."""

    printer = CONFIGMAP_TABLE

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_configmap(obj)

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_immutable_data(old, new)


class SecretStrategy(Strategy):
    """kube's ``secretStrategy``: a Secret's type never changes; ``immutable: true`` freezes the data."""

    printer = SECRET_TABLE

    def default(self, obj: Obj) -> None:
        default_secret(obj)

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_secret(obj)

    def validate_kind_update(self, old: Obj, new: Obj) -> list[FieldError]:
        return validate_immutable_data(old, new)


class ServiceAccountStrategy(Strategy):
    """kube's ``serviceAccountStrategy``."""

    printer = SERVICEACCOUNT_TABLE

    def validate_kind(self, obj: Obj) -> list[FieldError]:
        return validate_service_account(obj)
