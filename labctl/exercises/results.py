"""A grade as files other tools import: JSON (labctl's own shape) and JUnit XML (LMSs and CIs).

JUnit maps one exercise to one ``<testsuite>`` and each check to a ``<testcase>``; a failed
check is a ``<failure>``, a check the grader could not judge an ``<error>`` — the distinction
CI systems already draw between a test that failed and one that broke. The weights and the
score go into the suite's ``<properties>``.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

from .model import Grade, Status

__all__ = ["RESULT_VERSION", "to_json", "to_junit"]

#: the version of the JSON result's shape
RESULT_VERSION = "labctl.dev/exercise-result/v1"


def to_json(grade: Grade) -> dict[str, Any]:
    return {
        "apiVersion": RESULT_VERSION,
        "exercise": grade.exercise, "title": grade.title, "lab": grade.lab, "namespace": grade.namespace,
        "startedAt": grade.started_at, "checkedAt": grade.checked_at, "seconds": grade.seconds,
        "score": grade.score, "maxScore": grade.max_score, "passed": grade.passed,
        "counts": {s.value: grade.count(s) for s in Status},
        "hintsUsed": grade.hints_used,
        "checks": [{"id": c.id, "title": c.title, "kind": c.kind, "weight": c.weight, "score": c.score,
                    "status": c.status.value, "message": c.message, "evidence": c.evidence, "seconds": c.seconds}
                   for c in grade.checks],
    }


def to_junit(grade: Grade) -> str:
    suites = ET.Element("testsuites", name="labctl exercises", tests=str(len(grade.checks)),
                        failures=str(grade.count(Status.FAIL)), errors=str(grade.count(Status.ERROR)),
                        time=f"{grade.seconds:.3f}")
    suite = ET.SubElement(suites, "testsuite", name=grade.exercise, tests=str(len(grade.checks)),
                          failures=str(grade.count(Status.FAIL)), errors=str(grade.count(Status.ERROR)),
                          skipped="0", time=f"{grade.seconds:.3f}", timestamp=grade.checked_at.rstrip("Z"),
                          hostname=grade.lab)
    props = ET.SubElement(suite, "properties")
    for name, value in (("lab", grade.lab), ("namespace", grade.namespace), ("score", grade.score),
                        ("maxScore", grade.max_score), ("startedAt", grade.started_at or ""),
                        ("hintsUsed", json.dumps(grade.hints_used, sort_keys=True))):
        ET.SubElement(props, "property", name=name, value=str(value))
    for check in grade.checks:
        case = ET.SubElement(suite, "testcase", name=f"{check.id}: {check.title}", classname=grade.exercise,
                             time=f"{check.seconds:.3f}")
        if check.status is not Status.PASS:
            tag = "failure" if check.status is Status.FAIL else "error"
            element = ET.SubElement(case, tag, message=check.message, type=check.kind)
            element.text = json.dumps(check.evidence, indent=1, sort_keys=True, default=str)
        out = ET.SubElement(case, "system-out")
        out.text = f"{check.status.value} (weight {check.weight}): {check.message}"
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"
