"""PriorityClasses and the Priority admission, driven in process (``RestAPI`` over a throwaway store)."""

from __future__ import annotations

import pytest

from labctl.apiserver.errors import APIError
from labctl.apiserver.rest import RequestScope, RestAPI
from labctl.kube.printers import PRIORITYCLASS_TABLE, build_table
from labctl.kube.resources import resource_for


def pcs(name: str | None = None) -> RequestScope:
    return RequestScope(resource_for("priorityclasses"), None, name)


def pods() -> RequestScope:
    return RequestScope(resource_for("pods"), "default")


def pod(name: str = "web", **spec) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c", "image": "nginx"}], **spec}}


def create_class(api: RestAPI, name: str, value: int, **fields) -> dict:
    return api.create(pcs(), {"metadata": {"name": name}, "value": value, **fields})


def test_the_system_classes_exist_from_the_start_and_cannot_be_deleted(api):
    node = api.get(pcs("system-node-critical"))
    assert (node["value"], node["preemptionPolicy"], node.get("globalDefault")) == (2000001000, "PreemptLowerPriority",
                                                                                      False)
    assert api.get(pcs("system-cluster-critical"))["value"] == 2000000000
    with pytest.raises(APIError) as err:
        api.delete(pcs("system-node-critical"), {})
    assert err.value.code == 403
    assert err.value.message == ('priorityclasses.scheduling.k8s.io "system-node-critical" is forbidden: '
                                 "this is a system priority class and cannot be deleted")


def test_a_class_name_resolves_into_priority_and_preemption_policy(api):
    create_class(api, "batch-low", -10, preemptionPolicy="Never")
    created = api.create(pods(), pod(priorityClassName="batch-low"))
    assert (created["spec"]["priority"], created["spec"]["preemptionPolicy"]) == (-10, "Never")


def test_an_unknown_class_is_refused_with_upstreams_message(api):
    with pytest.raises(APIError) as err:
        api.create(pods(), pod(priorityClassName="x"))
    assert (err.value.code, err.value.message) == (403, 'pods "web" is forbidden: no PriorityClass with name x was found')


def test_without_a_class_the_global_default_applies_else_zero(api):
    assert api.create(pods(), pod("a"))["spec"]["priority"] == 0
    create_class(api, "normal", 1000, globalDefault=True)
    spec = api.create(pods(), pod("b"))["spec"]
    assert (spec["priority"], spec["priorityClassName"], spec["preemptionPolicy"]) == (1000, "normal",
                                                                                       "PreemptLowerPriority")


def test_a_hand_written_priority_that_differs_from_the_class_is_refused(api):
    create_class(api, "high", 100)
    assert api.create(pods(), pod("same", priorityClassName="high", priority=100))["spec"]["priority"] == 100
    with pytest.raises(APIError) as err:
        api.create(pods(), pod("other", priority=5))
    assert err.value.message.endswith("the integer value of priority (5) must not be provided in pod spec; priority "
                                      "admission controller computed 0 from the given PriorityClass name")


def test_only_one_global_default_may_exist(api):
    create_class(api, "first", 1, globalDefault=True)
    with pytest.raises(APIError) as err:
        create_class(api, "second", 2, globalDefault=True)
    assert err.value.message.endswith("PriorityClass first is already marked as default. Only one default can exist")


@pytest.mark.parametrize("name,value,message", [
    ("system-mine", 5, "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system "
                       "use only. error: system-mine is not a known system priority class"),
    ("huge", 1_000_000_001, "value: Forbidden: maximum allowed value of a user defined priority is 1000000000"),
])
def test_reserved_names_and_values_are_refused(api, name, value, message):
    with pytest.raises(APIError) as err:
        create_class(api, name, value)
    assert err.value.code == 422 and message in err.value.message


def test_value_cannot_change(api):
    created = create_class(api, "c", 1)
    with pytest.raises(APIError) as err:
        api.update(pcs("c"), {**created, "value": 2})
    assert "value: Forbidden: may not be changed in an update." in err.value.message


def test_kubectl_get_columns(api):
    created = create_class(api, "high", 100)
    names = [c["name"] for c in PRIORITYCLASS_TABLE.columns]
    assert names == ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"]
    row = build_table(PRIORITYCLASS_TABLE, [created])["rows"][0]["cells"]
    assert row[:3] == ["high", 100, False] and row[4] == "PreemptLowerPriority"
