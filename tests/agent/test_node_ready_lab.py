"""Node health in a real lab: node lifecycle writes only Unknown, the kubelet owns Ready.

A 1 control-plane + 1 worker lab with short lifecycle timings. ``docker pause`` freezes the
worker's node agent without restarting it (a partition, as far as the control plane can
tell): node lifecycle marks the Node Unknown and taints it; on ``docker unpause`` the
agent's watch on its own Node sees that Unknown and posts Ready=True at once. A deleted
Node is registered again by its agent.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import time

import pytest

from labctl.client.waiting import wait_for
from labctl.cluster.scratch import unique_name
from labctl.controllers.context import NODE_MONITOR_PERIOD_SECONDS as MONITOR
from labctl.kube.meta import parse_time
from labctl.kube.objects import NODE_CONDITION_TYPES, get_condition
from support.lab import Lab

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

GRACE, RENEW = 6.0, 1.0
TIMINGS = {"nodeMonitorGracePeriod": f"{GRACE:.0f}s", "leaseDurationSeconds": int(GRACE),
           "leaseRenewInterval": f"{RENEW:.0f}s", "podEvictionTimeout": "300s"}
#: "a couple of seconds": a watch event and one PATCH, with room for a busy test machine
REASSERT_SECONDS = 5.0
UNREACHABLE = "node.kubernetes.io/unreachable"


@pytest.fixture(scope="module")
def node_lab(docker_engine, kubectl_binary, tmp_path_factory):
    lab = Lab(unique_name("nr"), tmp_path_factory.mktemp("nodelab"), kubectl_binary, workers=1,
              extra={"nodeLifecycle": TIMINGS})
    created = lab.up()
    try:
        assert created.returncode == 0, f"labctl up failed:\n{created.stderr}"
        yield lab
    finally:
        lab.down()


def node(lab) -> dict:
    return lab.kubectl.json("get", "node", "worker")


def ready(n: dict) -> dict:
    return get_condition(n, "Ready") or {}


def node_when(lab, status: str) -> dict | None:
    """The worker's Node while its Ready condition says ``status``, else None."""
    n = node(lab)
    return n if ready(n).get("status") == status else None


def unreachable_taints(n: dict) -> set[str]:
    return {t["effect"] for t in (n.get("spec") or {}).get("taints") or [] if t["key"] == UNREACHABLE}


def node_events(lab, reason: str, since: dt.datetime) -> list[dict]:
    """Events about Node worker with ``reason`` last seen at or after ``since``."""
    events = lab.kubectl.json("get", "events", "-A")["items"]
    return [e for e in events
            if (e["involvedObject"].get("kind"), e["involvedObject"].get("name")) == ("Node", "worker")
            and e["reason"] == reason and parse_time(e["lastTimestamp"]) >= since]


def test_paused_worker_goes_unknown_by_node_lifecycle_and_its_kubelet_reasserts_ready(node_lab):
    lab = node_lab
    wait_for(lambda: ready(node(lab)).get("status") == "True" and not unreachable_taints(node(lab)),
             timeout=30, what="worker Ready without taints")
    since = dt.datetime.now(dt.UTC).replace(microsecond=0)
    subprocess.run(["docker", "pause", f"{lab.name}-worker"], check=True, capture_output=True)
    paused = time.monotonic()
    try:
        marked = wait_for(lambda: node_when(lab, "Unknown"), timeout=GRACE + 2 * MONITOR + 10,
                          what="worker Ready=Unknown")
        went_unknown = time.monotonic() - paused
        # only node lifecycle's Unknown is there: every kubelet condition, with its reason
        conditions = {c["type"]: c for c in marked["status"]["conditions"]}
        assert set(conditions) == set(NODE_CONDITION_TYPES)
        assert {(c["status"], c["reason"], c["message"]) for c in conditions.values()} == {
            ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")}
        # not before the grace period since the last renewal (at most RENEW before the pause)
        assert went_unknown >= GRACE - RENEW, f"Unknown after only {went_unknown:.1f}s"
        wait_for(lambda: unreachable_taints(node(lab)) == {"NoSchedule", "NoExecute"}, timeout=3 * MONITOR,
                 what="the unreachable taints")
        assert ready(node(lab))["status"] == "Unknown", "nobody but the kubelet may say otherwise"
    finally:
        subprocess.run(["docker", "unpause", f"{lab.name}-worker"], check=True, capture_output=True)
    resumed = time.monotonic()
    back = wait_for(lambda: node_when(lab, "True"), timeout=REASSERT_SECONDS, interval=0.2,
                    what="the kubelet's Ready=True")
    back_after = time.monotonic() - resumed
    assert (ready(back)["reason"], ready(back)["message"]) == ("KubeletReady", "kubelet is posting ready status")
    assert ready(back)["lastTransitionTime"] >= ready(marked)["lastTransitionTime"]
    wait_for(lambda: not unreachable_taints(node(lab)), timeout=REASSERT_SECONDS, interval=0.2,
             what="node lifecycle to remove the taints")
    # who wrote what: NodeNotReady from node lifecycle, NodeReady from the kubelet only
    not_ready = node_events(lab, "NodeNotReady", since)
    assert {e["source"]["component"] for e in not_ready} == {"node-lifecycle-controller"}
    back_ready = wait_for(lambda: node_events(lab, "NodeReady", since), timeout=10, what="a NodeReady event")
    assert {e["source"]["component"] for e in back_ready} == {"kubelet"}
    print(f"worker Unknown {went_unknown:.1f}s after the pause; Ready again {back_after:.1f}s after unpause")


def test_deleted_node_is_registered_again_by_its_kubelet(node_lab):
    lab = node_lab
    before = wait_for(lambda: node_when(lab, "True"), timeout=30, what="worker Ready")
    lab.kubectl.run("delete", "node", "worker", "--wait=false")
    deleted = time.monotonic()

    def registered_again():
        found = lab.kubectl.run("get", "node", "worker", "-o", "json", check=False)
        n = json.loads(found.stdout) if found.returncode == 0 else {"metadata": before["metadata"]}
        return n if n["metadata"]["uid"] != before["metadata"]["uid"] and ready(n).get("status") == "True" else None

    again = wait_for(registered_again, timeout=REASSERT_SECONDS, interval=0.2, what="worker registered again")
    print(f"worker registered again {time.monotonic() - deleted:.1f}s after its deletion")
    assert again["spec"]["podCIDR"] == before["spec"]["podCIDR"]
    assert again["metadata"]["labels"] == before["metadata"]["labels"]
