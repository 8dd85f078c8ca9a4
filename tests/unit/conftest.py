"""Fixtures the unit tests share."""

from __future__ import annotations

import pytest

from labctl.apiserver.rest import RestAPI
from labctl.apiserver.storage import SQLiteStore


@pytest.fixture
def api(tmp_path):
    """The API server's REST layer in process over a fresh store, bootstrapped as at a lab's start
    (namespaces, the system PriorityClasses, RBAC's defaults): no HTTP, no process."""
    store = SQLiteStore(tmp_path / "store.db")
    rest = RestAPI(store)
    rest.bootstrap("127.0.0.1", 6443)
    yield rest
    store.close()
