"""Issue 11's acceptance in a real lab, with the real kubectl and the CLI as a student runs it.

One lab for the module. The class exercise is attempted as a student would, with names and
labels the exercise never suggested: a rollout with ``maxUnavailable: 0`` passes with the
probe's counts in the evidence; a ``Recreate`` rollout fails with the failed requests and
their time window; a Service whose selector matches nothing fails saying so. Deleting or
bending an exercise's own setup objects never turns a failing attempt into a pass, and with
the control plane stopped ``check`` reports *error*. Each test starts its exercise afresh.
"""

from __future__ import annotations

import json
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest
import xmlschema

from labctl.client.waiting import wait_for
from labctl.exercises.schema import SCHEMA_PATH
from support.lab import labctl

pytestmark = [pytest.mark.docker, pytest.mark.kubectl, pytest.mark.timeout(600)]

RESULT_SCHEMA = json.loads(SCHEMA_PATH.with_name("result.schema.json").read_text())
JUNIT = xmlschema.XMLSchema(Path(__file__).with_name("junit.xsd"))


def exercise(lab, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = labctl("exercise", *args, "--name", lab.name, env=lab.env, timeout=600)
    if check and proc.returncode != 0:
        raise AssertionError(f"labctl exercise {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def graded(lab, junit: Path | None = None) -> dict:
    """``labctl exercise check --json`` (and ``--junit``), validated against their schemas."""
    args = ("check", "--json") + (("--junit", str(junit)) if junit else ())
    proc = exercise(lab, *args, check=False)
    assert proc.returncode in (0, 1), proc.stderr
    result = json.loads(proc.stdout)
    jsonschema.validate(result, RESULT_SCHEMA)
    assert (proc.returncode == 0) == result["passed"]
    if junit:
        JUNIT.validate(str(junit))
    return result


def by_id(result: dict) -> dict[str, dict]:
    return {c["id"]: c for c in result["checks"]}


def apply(lab, *objs: dict) -> None:
    lab.kubectl.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def storefront(strategy: dict, selector: dict | None = None) -> list[dict]:
    """A student's own Deployment and NodePort Service: names and labels nobody suggested."""
    labels = {"tier": "storefront", "team": "blue"}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop-frontend"},
        "spec": {"replicas": 3, "strategy": strategy, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"terminationGracePeriodSeconds": 5, "containers": [
                                  {"name": "app", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}}
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "front-door"},
               "spec": {"type": "NodePort", "selector": selector or {"tier": "storefront"},
                        "ports": [{"port": 8080, "targetPort": 80}]}}
    return [deployment, service]


def probe_answering(lab) -> dict:
    """Wait until the during probe has had only answers for two whole seconds; the last result."""
    def answering():
        during = by_id(graded(lab))["no-failed-request"]["evidence"]
        recent = during.get("seconds", [])[-3:-1]
        return len(recent) == 2 and all(s[1] > 0 and s[2] == 0 for s in recent) and during
    return wait_for(answering, timeout=120, interval=1, what="the probe answered through the NodePort")


def roll_out(lab) -> dict:
    """``kubectl set image`` as the course does, wait for the rollout and for the probe's verdict."""
    lab.kubectl.run("set", "image", "deployment/shop-frontend", "app=nginx:1.16.1")
    lab.kubectl.run("rollout", "status", "deployment/shop-frontend", "--timeout=240s", timeout=260)

    def verdict():
        result = graded(lab)
        events = by_id(result)["no-failed-request"]["evidence"].get("events") or []
        return events and events[-1].get("closed") and result
    return wait_for(verdict, timeout=60, interval=1, what="the probe closed the rollout")


def test_rolling_update_with_max_unavailable_zero_passes_with_the_probes_counts(lab, tmp_path):
    exercise(lab, "start", "class-rolling-update")
    apply(lab, *storefront({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}))
    lab.kubectl.run("rollout", "status", "deployment/shop-frontend", "--timeout=120s", timeout=140)
    probe_answering(lab)
    result = roll_out(lab)
    checks = by_id(result)
    during = checks["no-failed-request"]
    assert result["passed"], json.dumps({k: (c["status"], c["message"]) for k, c in checks.items()}, indent=1)
    (event,) = [e for e in during["evidence"]["events"] if e["outcome"] == "passed"]
    seconds = event["summary"]["to"] - event["summary"]["from"]
    assert event["summary"]["failed"] == 0 and event["summary"]["requests"] >= 20 * seconds * 0.9
    assert f"0 of {event['summary']['requests']} requests failed" in during["message"]
    assert "switched from v1 to v2" in during["message"]
    # checking twice gives the same result; the JUnit report is valid and has no failure
    again = graded(lab, junit=tmp_path / "junit.xml")
    assert [(c["id"], c["status"], c["message"]) for c in again["checks"]] == \
        [(c["id"], c["status"], c["message"]) for c in result["checks"]]
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert (suite.get("failures"), suite.get("errors")) == ("0", "0")


def test_a_recreate_rollout_fails_with_the_failed_requests_and_their_window(lab, tmp_path):
    exercise(lab, "start", "class-rolling-update")
    apply(lab, *storefront({"type": "Recreate"}))
    lab.kubectl.run("rollout", "status", "deployment/shop-frontend", "--timeout=120s", timeout=140)
    probe_answering(lab)
    result = roll_out(lab)
    during = by_id(result)["no-failed-request"]
    assert during["status"] == "fail" and not result["passed"]
    event = during["evidence"]["events"][-1]
    assert event["watched"] and event["summary"]["failed"] > 0
    assert f"{event['summary']['failed']} of {event['summary']['requests']} requests failed between " \
           in during["message"]
    assert event["summary"]["firstFailure"] <= event["summary"]["lastFailure"]
    assert "no ready endpoint" in during["message"]
    assert by_id(result)["new-revision"]["status"] == "pass"  # the rollout itself happened
    graded(lab, junit=tmp_path / "junit.xml")
    failures = ET.parse(tmp_path / "junit.xml").getroot().iter("failure")
    assert any("requests failed" in (f.get("message") or "") for f in failures)


def test_a_service_whose_selector_matches_nothing_fails_saying_so_and_a_rollout_nobody_watched_fails(lab):
    exercise(lab, "start", "class-rolling-update")
    apply(lab, *storefront({"type": "RollingUpdate"}, selector={"tier": "store-front"}))
    lab.kubectl.run("rollout", "status", "deployment/shop-frontend", "--timeout=120s", timeout=140)
    checks = by_id(graded(lab))
    assert checks["deployment"]["status"] == "pass"
    assert checks["service"]["status"] == "fail"
    assert "the selector of Service front-door (tier=store-front) matches no pod" in checks["service"]["message"]
    assert "tier=storefront" in checks["service"]["message"]  # what the pods are labelled
    assert checks["no-failed-request"]["status"] == "fail"
    assert "found no NodePort Service whose selector matches" in checks["no-failed-request"]["message"]
    # roll out while the Service selects nothing, then fix it: that rollout was watched by nobody
    lab.kubectl.run("set", "image", "deployment/shop-frontend", "app=nginx:1.16.1")
    lab.kubectl.run("rollout", "status", "deployment/shop-frontend", "--timeout=120s", timeout=140)
    apply(lab, storefront({"type": "RollingUpdate"})[1])

    def closed():
        result = graded(lab)
        events = by_id(result)["no-failed-request"]["evidence"].get("events") or []
        return events and events[-1].get("closed") and by_id(result)
    checks = wait_for(closed, timeout=60, interval=1, what="the unwatched rollout closed")
    assert checks["service"]["status"] == "pass" and checks["new-revision"]["status"] == "pass"
    assert checks["no-failed-request"]["status"] == "fail"
    assert "it was not watched: no Service of the expected type selected the pods" in \
        checks["no-failed-request"]["message"]


def _not_passed(lab) -> dict:
    result = graded(lab)
    assert not result["passed"], json.dumps([(c["id"], c["status"], c["message"]) for c in result["checks"]])
    return result


def test_deleting_or_bending_the_setup_objects_never_turns_a_failing_attempt_into_a_pass(lab):
    exercise(lab, "start", "fix-broken-service")
    (app,) = [name.split("/")[1] for name in lab.kubectl.run("get", "deployments", "-o", "name").stdout.split()]
    assert not graded(lab)["passed"]
    # bend the pods to fit the broken Service instead of fixing it: its labels and its port
    bent = json.loads(lab.kubectl.run("get", "deployment", app, "-o", "json").stdout)
    labels = {"app": app, "tier": "wbe"}
    bent["spec"]["selector"]["matchLabels"] = bent["spec"]["template"]["metadata"]["labels"] = labels
    container = bent["spec"]["template"]["spec"]["containers"][0]
    container["env"], container["ports"] = [{"name": "PORT", "value": "8080"}], [{"containerPort": 8080}]
    for key in ("resourceVersion", "uid", "creationTimestamp", "generation", "annotations", "managedFields"):
        bent["metadata"].pop(key, None)
    bent.pop("status", None)
    lab.kubectl.run("delete", "deployment", app)
    apply(lab, bent)
    lab.kubectl.run("rollout", "status", f"deployment/{app}", "--timeout=120s", timeout=140)
    result = _not_passed(lab)
    assert by_id(result)["deployment-untouched"]["status"] == "fail"
    assert "was changed" in by_id(result)["deployment-untouched"]["message"]
    for undo in (["delete", "service", app], ["delete", "deployment", app], ["scale", "deployment", app,
                                                                             "--replicas=0"]):
        exercise(lab, "reset")
        lab.kubectl.run(*undo)
        _not_passed(lab)


def test_answers_hints_and_status_then_with_the_control_plane_stopped_check_reports_error_not_fail(lab):
    exercise(lab, "start", "replicaset-clusterip")
    listed = json.loads(exercise(lab, "list", "--json").stdout)
    assert {"class-rolling-update", "replicaset-clusterip"} <= {e["id"] for e in listed}
    assert [e["id"] for e in listed if e["active"]] == ["replicaset-clusterip"]
    exercise(lab, "answer", "cluster-ip", "10.96.0.99")
    assert "hint 1/" in exercise(lab, "hint", "cluster-ip").stdout
    result = graded(lab)
    assert result["hintsUsed"] == {"cluster-ip": 1}
    question = by_id(result)["cluster-ip"]
    assert question["status"] == "fail" and "10.96.0.99 is not right" in question["message"]
    assert "A ReplicaSet runs four Ready pods" in exercise(lab, "status", "--once", check=False).stdout
    container = f"{lab.name}-control-plane"
    subprocess.run(["docker", "stop", "-t", "2", container], check=True, capture_output=True)
    try:
        proc = exercise(lab, "check", "--json", check=False)
        result = json.loads(proc.stdout)
        jsonschema.validate(result, RESULT_SCHEMA)
        assert proc.returncode == 1 and {c["status"] for c in result["checks"]} == {"error"}
        assert all("not running" in c["message"] for c in result["checks"])
        assert result["counts"] == {"pass": 0, "fail": 0, "error": len(result["checks"])}
    finally:
        subprocess.run(["docker", "start", container], check=True, capture_output=True)
        wait_for(lambda: lab.kubectl.run("get", "--raw", "/readyz", check=False).returncode == 0, timeout=120,
                 what="the API server back")


def test_reset_restarts_the_probe_and_leaves_no_old_one_running(lab):
    exercise(lab, "start", "never-depend-on-pod-ip")

    def probes() -> list[str]:
        out = lab.exec("control-plane", "ps", "-eo", "pid,args").stdout
        return [line.split()[0] for line in out.splitlines() if "labctl.exercises.probe run" in line]

    (before,) = probes()
    exercise(lab, "reset")
    (after,) = probes()
    assert after != before
    files = lab.exec("control-plane", "ls", "/var/lib/labctl/exercises/probes").stdout.split()
    assert sorted(files) == ["replacement.json", "replacement.log", "replacement.pid", "replacement.spec.json"]
