"""Storage in a real lab with the real kubectl: kind's ``standard`` class, a claim bound on first use, data kept.

What the "Configure a Pod to Use a PersistentVolume" lesson shows on kind: the default class,
a claim Pending until a pod uses it (``WaitForFirstConsumer``), then Bound to a provisioned
volume of the pod's node; a file written by one pod read back by its replacement (pinned to
the same node by the volume's node affinity); a claim deleted while in use stays Terminating
until its pod is gone, then the volume and its directory in the node go (``docker exec <node> ls``).
"""

from __future__ import annotations

import json

import pytest

from labctl.client.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

TOOLBOX = "labctl/toolbox:latest"
CLAIM = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data"},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}


def user(name: str, claim: str = "data") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "app", "image": TOOLBOX, "command": ["sh", "-c", "sleep 3600"],
                                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                     "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}}


def apply(lab, obj: dict) -> None:
    lab.kubectl.run("apply", "-f", "-", input=json.dumps(obj))


def running(lab, name: str) -> dict:
    def check() -> dict | None:
        got = lab.kubectl.json("get", "pod", name)
        statuses = got.get("status", {}).get("containerStatuses") or []
        return got if statuses and all("running" in s["state"] for s in statuses) else None
    return wait_for(check, timeout=120, what=f"pod {name} running")


def events(lab, name: str, reason: str) -> list[str]:
    items = lab.kubectl.json("get", "events", "--field-selector", f"involvedObject.name={name}")["items"]
    return [e["message"] for e in items if e["reason"] == reason]


def test_the_default_class_is_kinds_standard(lab):
    header, *rows = lab.kubectl.run("get", "sc").stdout.splitlines()
    assert header.split()[:5] == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION"]
    assert [r.split()[:6] for r in rows] == [["standard", "(default)", "rancher.io/local-path", "Delete",
                                              "WaitForFirstConsumer", "false"]]


def test_a_pod_of_a_missing_claim_stays_pending(lab):
    apply(lab, user("orphan", claim="nope"))
    message = wait_for(lambda: events(lab, "orphan", "FailedScheduling"), what="FailedScheduling of orphan")[0]
    assert 'persistentvolumeclaim "nope" not found' in message
    assert lab.kubectl.json("get", "pod", "orphan")["status"]["phase"] == "Pending"


def test_a_claim_is_bound_on_first_use_and_its_data_outlives_the_pod(lab):
    apply(lab, CLAIM)
    wait_for(lambda: events(lab, "data", "WaitForFirstConsumer"), what="WaitForFirstConsumer event")
    assert lab.kubectl.run("get", "pvc", "data").stdout.splitlines()[1].split()[:2] == ["data", "Pending"]

    apply(lab, user("writer"))
    node = running(lab, "writer")["spec"]["nodeName"]
    claim = wait_for(lambda: (c := lab.kubectl.json("get", "pvc", "data"))["status"]["phase"] == "Bound" and c,
                     what="claim data Bound")
    volume = claim["spec"]["volumeName"]
    assert volume == f"pvc-{claim['metadata']['uid']}"
    assert claim["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node
    row = lab.kubectl.run("get", "pvc", "data").stdout.splitlines()[1].split()
    assert row[:6] == ["data", "Bound", volume, "1Gi", "RWO", "standard"]
    row = lab.kubectl.run("get", "pv", volume).stdout.splitlines()[1].split()
    assert row[:7] == [volume, "1Gi", "RWO", "Delete", "Bound", "default/data", "standard"]
    lab.kubectl.run("exec", "writer", "--", "sh", "-c", "echo kept > /data/greeting")

    directory = f"pvc-{claim['metadata']['uid']}_default_data"
    assert directory in lab.exec(node, "ls", "/var/local-path-provisioner").stdout.split()
    lab.kubectl.run("delete", "pod", "writer", "--wait=true")
    apply(lab, user("reader"))
    reader = running(lab, "reader")
    assert reader["spec"]["nodeName"] == node  # the volume's node affinity
    assert lab.kubectl.run("exec", "reader", "--", "cat", "/data/greeting").stdout == "kept\n"

    lab.kubectl.run("delete", "pvc", "data", "--wait=false")  # in use: kept Terminating (pvc-protection)
    assert lab.kubectl.run("get", "pvc", "data").stdout.splitlines()[1].split()[:2] == ["data", "Terminating"]
    assert lab.kubectl.run("exec", "reader", "--", "cat", "/data/greeting").stdout == "kept\n"
    lab.kubectl.run("delete", "pod", "reader", "--wait=true")
    lab.kubectl.run("wait", "--for=delete", "pvc/data", "--timeout=60s")
    wait_for(lambda: volume not in lab.kubectl.run("get", "pv", "-o", "name").stdout, timeout=120,
             what=f"volume {volume} deleted")
    assert directory not in lab.exec(node, "ls", "/var/local-path-provisioner").stdout.split()


def test_a_claim_of_a_manual_class_binds_a_matching_volume_and_releases_it(lab):
    apply(lab, {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "task-pv-volume"},
                "spec": {"storageClassName": "manual", "capacity": {"storage": "10Gi"},
                         "accessModes": ["ReadWriteOnce"], "hostPath": {"path": "/mnt/data"}}})
    wait_for(lambda: lab.kubectl.json("get", "pv", "task-pv-volume")["status"]["phase"] == "Available",
             what="task-pv-volume Available")
    apply(lab, {**CLAIM, "metadata": {"name": "task-pv-claim"},
                "spec": {**CLAIM["spec"], "storageClassName": "manual", "resources": {"requests": {"storage": "3Gi"}}}})
    wait_for(lambda: lab.kubectl.json("get", "pvc", "task-pv-claim")["status"]["phase"] == "Bound",
             what="task-pv-claim Bound")
    row = lab.kubectl.run("get", "pvc", "task-pv-claim").stdout.splitlines()[1].split()
    assert row[:6] == ["task-pv-claim", "Bound", "task-pv-volume", "10Gi", "RWO", "manual"]
    lab.kubectl.run("delete", "pvc", "task-pv-claim")
    wait_for(lambda: lab.kubectl.json("get", "pv", "task-pv-volume")["status"]["phase"] == "Released",
             what="task-pv-volume Released (Retain)")
