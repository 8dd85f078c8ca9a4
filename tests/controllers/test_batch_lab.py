"""Issue 16 in a real lab: Jobs, CronJobs and DaemonSets as a learner meets them with kubectl 1.37.

One lab (1 control plane + 2 workers) for the module; every test works in a namespace of its
own, so they pass in any order. Pods run ``labctl/web:v1`` (busybox: ``sh``).
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from labctl.client.waiting import wait_for
from labctl.cluster.scratch import unique_name

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

IMAGE = "labctl/web:v1"


def apply(lab, obj: dict, namespace: str) -> None:
    lab.kubectl.run("apply", "-n", namespace, "-f", "-", input=json.dumps(obj))


def job(name: str, script: str, **spec) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {**spec, "template": {"spec": {
                "restartPolicy": "Never",
                "containers": [{"name": "work", "image": IMAGE, "command": ["sh", "-c", script]}]}}}}


def table(lab, *args: str) -> list[list[str]]:
    """``kubectl get`` output split into columns (two or more spaces apart)."""
    lines = lab.kubectl.run("get", *args).stdout.strip().splitlines()
    return [re.split(r"\s{2,}", line.strip()) for line in lines]


# -- Job -----------------------------------------------------------------------------------

def test_job_with_completions_and_parallelism_completes(lab, namespace):
    apply(lab, job("pi", "sleep 1; echo done", completions=3, parallelism=2), namespace)

    def running_at_most_two():
        active = [p for p in lab.kubectl.json("get", "pods", "-n", namespace, "-l", "job-name=pi")["items"]
                  if p.get("status", {}).get("phase") in ("Pending", "Running")]
        assert len(active) <= 2, [p["metadata"]["name"] for p in active]
        return lab.kubectl.json("get", "job", "pi", "-n", namespace).get("status", {}).get("succeeded") == 3

    wait_for(running_at_most_two, timeout=120, what="job pi: 3 succeeded, never more than 2 at once")
    done = lab.kubectl.run("wait", "-n", namespace, "--for=condition=complete", "job/pi", "--timeout=60s")
    assert done.stdout.strip() == "job.batch/pi condition met"

    rows = table(lab, "job", "pi", "-n", namespace)
    assert rows[0] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    assert rows[1][:3] == ["pi", "Complete", "3/3"]
    obj = lab.kubectl.json("get", "job", "pi", "-n", namespace)
    types = [c["type"] for c in obj["status"]["conditions"] if c["status"] == "True"]
    assert types == ["SuccessCriteriaMet", "Complete"]
    assert obj["status"]["completionTime"] and obj["status"]["ready"] == 0 and "active" not in obj["status"]
    pods = lab.kubectl.json("get", "pods", "-n", namespace, "-l", f"controller-uid={obj['metadata']['uid']}")["items"]
    assert len(pods) == 3 and {p["status"]["phase"] for p in pods} == {"Succeeded"}
    assert all(p["metadata"]["labels"]["batch.kubernetes.io/job-name"] == "pi" for p in pods)
    assert all("batch.kubernetes.io/job-tracking" not in p["metadata"].get("finalizers", []) for p in pods)
    assert all(p["metadata"]["name"].startswith("pi-") for p in pods)
    logs = lab.kubectl.run("logs", "-n", namespace, "job/pi").stdout
    assert logs.strip() == "done"


def test_failing_job_stops_at_its_backoff_limit(lab, namespace):
    apply(lab, job("broken", "echo failing; exit 3", backoffLimit=1), namespace)
    done = lab.kubectl.run("wait", "-n", namespace, "--for=condition=failed", "job/broken", "--timeout=90s")
    assert done.stdout.strip() == "job.batch/broken condition met"
    obj = lab.kubectl.json("get", "job", "broken", "-n", namespace)
    failed = next(c for c in obj["status"]["conditions"] if c["type"] == "Failed")
    assert (failed["reason"], failed["message"]) == ("BackoffLimitExceeded", "Job has reached the specified backoff limit")
    assert obj["status"]["failed"] == 2 and not obj["status"].get("succeeded")
    assert table(lab, "job", "broken", "-n", namespace)[1][:3] == ["broken", "Failed", "0/1"]
    events = lab.kubectl.run("describe", "job", "broken", "-n", namespace).stdout
    assert "BackoffLimitExceeded" in events


def test_kubectl_create_job_and_ttl_after_finished(lab, namespace):
    lab.kubectl.run("create", "job", "once", "-n", namespace, f"--image={IMAGE}", "--", "sh", "-c", "echo hi")
    lab.kubectl.run("wait", "-n", namespace, "--for=condition=complete", "job/once", "--timeout=60s")
    lab.kubectl.run("patch", "job", "once", "-n", namespace, "--type=merge", "-p",
                    '{"spec": {"ttlSecondsAfterFinished": 1}}')

    def gone():
        return not lab.kubectl.json("get", "jobs,pods", "-n", namespace)["items"]

    wait_for(gone, timeout=30, what="the finished job and its pod deleted after its TTL")


# -- CronJob -------------------------------------------------------------------------------

def test_cronjob_fires_within_a_minute_and_create_job_from_it(lab, namespace):
    lab.kubectl.run("create", "cronjob", "tick", "-n", namespace, f"--image={IMAGE}", "--schedule=*/1 * * * *",
                    "--", "sh", "-c", "echo tick")
    lab.kubectl.run("create", "job", "by-hand", "-n", namespace, "--from=cronjob/tick")
    manual = lab.kubectl.json("get", "job", "by-hand", "-n", namespace)
    assert manual["metadata"]["annotations"] == {"cronjob.kubernetes.io/instantiate": "manual"}
    lab.kubectl.run("wait", "-n", namespace, "--for=condition=complete", "job/by-hand", "--timeout=60s")

    def scheduled_job():
        jobs = lab.kubectl.json("get", "jobs", "-n", namespace)["items"]
        return [j for j in jobs if j["metadata"]["name"] != "by-hand"]

    fired = wait_for(scheduled_job, timeout=75, what="the CronJob's first Job (schedule */1 * * * *)")
    name = fired[0]["metadata"]["name"]
    scheduled = fired[0]["metadata"]["annotations"]["batch.kubernetes.io/cronjob-scheduled-timestamp"]
    assert name == f"tick-{int(dt.datetime.fromisoformat(scheduled).timestamp()) // 60}"
    lab.kubectl.run("wait", "-n", namespace, "--for=condition=complete", f"job/{name}", "--timeout=60s")

    def last_successful():
        return lab.kubectl.json("get", "cronjob", "tick", "-n", namespace).get("status", {}).get("lastSuccessfulTime")

    wait_for(last_successful, timeout=30, what="the CronJob's lastSuccessfulTime")
    rows = table(lab, "cronjob", "tick", "-n", namespace)
    assert rows[0] == ["NAME", "SCHEDULE", "TIMEZONE", "SUSPEND", "ACTIVE", "LAST SCHEDULE", "AGE"]
    assert rows[1][:5] == ["tick", "*/1 * * * *", "<none>", "False", "0"] and rows[1][5] != "<none>"
    assert lab.kubectl.run("logs", "-n", namespace, f"job/{name}").stdout.strip() == "tick"


# -- DaemonSet -----------------------------------------------------------------------------

def daemonset(name: str, image: str = IMAGE, **pod_spec) -> dict:
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {**pod_spec, "containers": [{"name": "web", "image": image}]}}}}


def nodes_of(lab, namespace: str, app: str) -> list[str]:
    pods = lab.kubectl.json("get", "pods", "-n", namespace, "-l", f"app={app}")["items"]
    return sorted(p["spec"].get("nodeName", "") for p in pods if not p["metadata"].get("deletionTimestamp"))


def test_daemonset_runs_one_pod_per_worker_and_rolls_out_a_new_image(lab, namespace):
    apply(lab, daemonset("agent"), namespace)
    status = lab.kubectl.run("rollout", "status", "-n", namespace, "ds/agent", "--timeout=90s").stdout
    assert status.strip().endswith('daemon set "agent" successfully rolled out')
    assert nodes_of(lab, namespace, "agent") == ["worker", "worker2"]  # the control plane's taint keeps it off
    rows = table(lab, "ds", "agent", "-n", namespace)
    assert rows[0] == ["NAME", "DESIRED", "CURRENT", "READY", "UP-TO-DATE", "AVAILABLE", "NODE SELECTOR", "AGE"]
    assert rows[1][:7] == ["agent", "2", "2", "2", "2", "2", "<none>"]

    lab.kubectl.run("set", "image", "-n", namespace, "ds/agent", "web=labctl/web:v2")
    status = lab.kubectl.run("rollout", "status", "-n", namespace, "ds/agent", "--timeout=120s").stdout
    assert status.strip().endswith('daemon set "agent" successfully rolled out')
    pods = lab.kubectl.json("get", "pods", "-n", namespace, "-l", "app=agent")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    assert sorted(p["spec"]["nodeName"] for p in live) == ["worker", "worker2"]
    assert {p["spec"]["containers"][0]["image"] for p in live} == {"labctl/web:v2"}
    history = lab.kubectl.run("rollout", "history", "-n", namespace, "ds/agent").stdout
    assert [line.split()[0] for line in history.strip().splitlines()[2:]] == ["1", "2"]


def test_daemonset_tolerating_the_control_plane_and_following_node_labels(lab, namespace):
    toleration = {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
    apply(lab, daemonset("everywhere", tolerations=[toleration]), namespace)
    lab.kubectl.run("rollout", "status", "-n", namespace, "ds/everywhere", "--timeout=90s")
    assert nodes_of(lab, namespace, "everywhere") == ["control-plane", "worker", "worker2"]

    label = unique_name("disk")
    apply(lab, daemonset("picky", nodeSelector={label: "ssd"}), namespace)
    try:
        lab.kubectl.run("label", "node", "worker2", f"{label}=ssd")
        wait_for(lambda: nodes_of(lab, namespace, "picky") == ["worker2"], timeout=60,
                 what="a daemon pod on the node that gained the label")
        assert table(lab, "ds", "picky", "-n", namespace)[1][6] == f"{label}=ssd"
        lab.kubectl.run("label", "node", "worker2", f"{label}-")
        wait_for(lambda: nodes_of(lab, namespace, "picky") == [], timeout=60,
                 what="the daemon pod gone from the node that lost the label")
    finally:
        lab.kubectl.run("label", "node", "worker2", f"{label}-", check=False)
