"""Node health has one owner per field: the kubelet posts the conditions, node lifecycle writes only Unknown.

The pure halves of both sides (the conditions the node agent posts, when they have drifted,
what node lifecycle writes) and the agent's reporter against a fake API client: a drifted
Node is answered at once, a deleted one is registered again.
"""

from __future__ import annotations

import asyncio

from labctl.agent.heartbeat import NodeStatusReporter
from labctl.agent.node_status import HEALTHY_CONDITIONS, build_node, conditions_drifted, node_conditions
from labctl.client.rest import APIStatusError
from labctl.clusterconfig import ClusterConfig, NodeConfig
from labctl.controllers.nodelifecycle import UNKNOWN_MESSAGE, UNKNOWN_REASON, conditions_to_write
from labctl.kube.objects import NODE_CONDITION_TYPES, get_condition

EARLIER, NOW = "2026-11-30T11:00:00Z", "2026-11-30T12:00:00Z"
CFG = NodeConfig(ClusterConfig(name="lab"), "worker", "worker", "172.30.0.3", "10.244.1.0/24")


def node(conditions: list[dict] | None) -> dict:
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker", "uid": "u1", "resourceVersion": "7"},
            "status": {"conditions": conditions} if conditions is not None else {}}


def unknown(conditions: list[dict]) -> list[dict]:
    return [{**c, "status": "Unknown", "reason": UNKNOWN_REASON, "message": UNKNOWN_MESSAGE} for c in conditions]


# -- what the kubelet posts --------------------------------------------------------------

def test_a_fresh_node_reports_every_condition_the_kubelet_owns_in_its_order():
    conds = node_conditions(None, NOW)
    assert [c["type"] for c in conds] == list(NODE_CONDITION_TYPES) == list(HEALTHY_CONDITIONS)
    ready = conds[-1]
    assert (ready["status"], ready["reason"]) == ("True", "KubeletReady")
    assert ready["message"] == "kubelet is posting ready status"
    assert all(c["lastHeartbeatTime"] == c["lastTransitionTime"] == NOW for c in conds)
    registered = build_node(CFG, cpus=2, memory_kib=1024)["status"]["conditions"]
    assert [{**c, "lastHeartbeatTime": NOW, "lastTransitionTime": NOW} for c in registered] == conds


def test_a_report_refreshes_heartbeats_and_keeps_transition_times_while_the_status_holds():
    healthy = node_conditions(None, EARLIER)
    again = node_conditions(healthy, NOW)
    assert all(c["lastHeartbeatTime"] == NOW and c["lastTransitionTime"] == EARLIER for c in again)
    back = node_conditions(unknown(healthy), NOW)
    assert all(c["lastTransitionTime"] == NOW for c in back), "Unknown → True is a transition"


def test_conditions_drift_when_anything_but_the_kubelets_view_is_there():
    healthy = node_conditions(None, NOW)
    assert not conditions_drifted(node(healthy))
    assert conditions_drifted(node(unknown(healthy)))
    assert conditions_drifted(node([c for c in healthy if c["type"] != "PIDPressure"]))
    assert conditions_drifted(node(None))


# -- what node lifecycle writes --------------------------------------------------------------

def test_node_lifecycle_writes_only_unknown_and_only_once_the_heartbeat_is_stale():
    healthy = node(node_conditions(None, EARLIER))
    written = conditions_to_write(healthy, stale=True, now=NOW)
    assert {c["type"]: c["status"] for c in written} == dict.fromkeys(NODE_CONDITION_TYPES, "Unknown")
    ready = get_condition({"status": {"conditions": written}}, "Ready")
    assert (ready["reason"], ready["lastHeartbeatTime"], ready["lastTransitionTime"]) == (UNKNOWN_REASON, EARLIER, NOW)
    assert conditions_to_write(healthy, stale=False, now=NOW) is None
    marked = node(written)
    assert conditions_to_write(marked, stale=True, now=NOW) is None, "already Unknown: nothing to write"
    assert conditions_to_write(marked, stale=False, now=NOW) is None, "never Ready=True: that is the kubelet's"


# -- the agent's reporter ------------------------------------------------------------------------

class FakeAPI:
    """Just enough of APIClient for the reporter: a Node store, and every call recorded."""

    def __init__(self, stored: dict | None) -> None:
        self.stored = stored
        self.calls: list[tuple[str, str]] = []

    async def patch(self, path: str, patch: dict, patch_type: str = "merge") -> dict:
        self.calls.append(("patch", path))
        if self.stored is None:
            raise APIStatusError(404, {"reason": "NotFound"})
        self.stored = {**self.stored, "status": {**self.stored["status"], **patch["status"]}}
        return self.stored

    async def create(self, path: str, obj: dict) -> dict:
        self.calls.append(("create", path))
        if path.endswith("/nodes"):
            self.stored = {**obj, "metadata": {**obj["metadata"], "uid": "u2", "resourceVersion": "1"}}
            return self.stored
        return {**obj, "metadata": {**obj["metadata"], "name": "event-1"}}


def reporter(api: FakeAPI, seen: dict | None) -> NodeStatusReporter:
    rep = NodeStatusReporter(api, CFG)  # type: ignore[arg-type]
    if seen is not None:
        rep.node.cache[("", "worker")] = seen
    return rep


def test_the_reporter_is_due_at_once_when_its_node_drifts_or_goes():
    rep = reporter(FakeAPI(None), None)
    rep._seen(node(node_conditions(None, NOW)))
    assert not rep._due.is_set(), "its own report is no reason to report again"
    rep._seen(node(unknown(node_conditions(None, NOW))))
    assert rep._due.is_set()
    rep._due.clear()
    rep._gone(node(None))
    assert rep._due.is_set()


def test_the_reporter_answers_unknown_with_its_own_ready_and_a_kubelet_event():
    marked = node(unknown(node_conditions(None, EARLIER)))
    api = FakeAPI(marked)
    posted = asyncio.run(reporter(api, marked).report())
    assert get_condition(posted, "Ready")["status"] == "True" and not conditions_drifted(posted)
    assert api.calls == [("patch", "/api/v1/nodes/worker/status"), ("create", "/api/v1/namespaces/default/events")]


def test_a_deleted_node_is_registered_again():
    api = FakeAPI(None)
    registered = asyncio.run(reporter(api, None).report())
    assert registered["metadata"]["uid"] == "u2" and get_condition(registered, "Ready")["status"] == "True"
    assert [c for c, _ in api.calls] == ["patch", "create", "create"]  # 404, the Node, the NodeReady event
