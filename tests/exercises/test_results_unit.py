"""Results other tools import: the JSON against its shipped schema, the JUnit XML against a JUnit
XSD (fail → <failure>, error → <error>); and the grader's rule that its own trouble is an error."""

from __future__ import annotations

import asyncio
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import xmlschema

from labctl.errors import LabctlError
from labctl.exercises.grader import grade
from labctl.exercises.loader import load_definition
from labctl.exercises.model import CheckResult, Grade, Status
from labctl.exercises.results import to_json, to_junit
from labctl.exercises.schema import SCHEMA_PATH
from labctl.exercises.state import ExerciseState

JUNIT_XSD = Path(__file__).with_name("junit.xsd")
RESULT_SCHEMA = json.loads(SCHEMA_PATH.with_name("result.schema.json").read_text())


def sample_grade() -> Grade:
    return Grade("class-rolling-update", "Roll out", "lab", "rollout", "2026-12-07T10:00:00Z", "2026-12-07T10:05:00Z",
                 [CheckResult("deployment", "A Deployment", "workload", 1, Status.PASS, "ok", {"readyPods": ["a"]},
                              0.01),
                  CheckResult("service", "A Service <&>", "service", 1, Status.FAIL,
                              'the selector of Service web ("app=wbe") matches no pod', {"service": "web"}, 0.02),
                  CheckResult("no-failed-request", "Zero failures", "during", 4, Status.ERROR,
                              "the grader could not judge: the probe stopped", {}, 0.0)],
                 {"service": 2}, 0.2)


def test_the_json_result_matches_its_schema_and_adds_up():
    result = to_json(sample_grade())
    jsonschema.validate(result, RESULT_SCHEMA)
    assert (result["score"], result["maxScore"], result["passed"]) == (1, 6, False)
    assert result["counts"] == {"pass": 1, "fail": 1, "error": 1}
    assert result["hintsUsed"] == {"service": 2}
    assert [c["status"] for c in result["checks"]] == ["pass", "fail", "error"]


def test_the_junit_report_is_valid_and_tells_failures_from_errors():
    xml = to_junit(sample_grade())
    xmlschema.XMLSchema(JUNIT_XSD).validate(xml)
    suite = ET.fromstring(xml).find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    cases = {c.get("name").split(":")[0]: c for c in suite.iter("testcase")}
    assert cases["deployment"].find("failure") is None and cases["deployment"].find("error") is None
    assert "matches no pod" in cases["service"].find("failure").get("message")
    assert cases["no-failed-request"].find("error") is not None
    props = {p.get("name"): p.get("value") for p in suite.iter("property")}
    assert props["score"] == "1" and props["maxScore"] == "6"


class StoppedLab:
    """A lab whose control plane is stopped: the facade refuses an API client."""

    name = "stopped"

    def api(self):
        raise LabctlError("the control plane of lab 'stopped' is not running")


def test_a_lab_that_cannot_be_reached_grades_as_errors_never_as_failures():
    definition = load_definition("class-rolling-update")
    exercise = definition.build({})
    state = ExerciseState.new(exercise.id, exercise.namespace, {})
    result = asyncio.run(grade(StoppedLab(), None, exercise, state))  # type: ignore[arg-type]
    assert {c.status for c in result.checks} == {Status.ERROR}
    assert all("not running" in c.message for c in result.checks)
    assert result.score == 0 and not result.passed
