"""The exercise format: every shipped exercise loads; broken ones are refused with file, field
path and what is wrong; the shipped JSON schema is valid and agrees with labctl's validator."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
import yaml

from labctl.exercises import params
from labctl.exercises.loader import ExerciseError, exercises_root, list_definitions, load_definition
from labctl.exercises.schema import SCHEMA_PATH, load_schema, validate

ROOT = Path(__file__).resolve().parents[2]


def test_every_shipped_exercise_loads_and_builds_with_its_parameters():
    definitions = list_definitions()
    assert {"class-rolling-update", "fix-broken-service", "never-depend-on-pod-ip", "replicaset-clusterip",
            "nodeport-from-host"} <= {d.id for d in definitions}
    for d in definitions:
        exercise = d.build(d.choose_parameters())
        assert "${" not in json.dumps([c.params for c in exercise.checks]) + exercise.task, d.id
        assert exercise.checks and exercise.solution and exercise.max_score > 0


def test_the_editors_schema_is_the_packaged_one_and_is_a_valid_json_schema():
    assert (ROOT / "exercises" / "exercise.schema.json").resolve() == SCHEMA_PATH.resolve()
    jsonschema.Draft202012Validator.check_schema(load_schema())
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.with_name("result.schema.json").read_text()))


def _raw(exercise_id: str) -> dict:
    return yaml.safe_load((exercises_root() / exercise_id / "exercise.yaml").read_text())


BROKEN = {
    "unknown top-level field": (lambda d: d.update(colour="blue"), "colour"),
    "wrong difficulty": (lambda d: d.update(difficulty="tricky"), "difficulty"),
    "check kind unknown": (lambda d: d["checks"][0].update(kind="vibes"), "checks[0].kind"),
    "check param of another kind": (lambda d: d["checks"][1]["with"].update(spread=True), "checks[1].with.spread"),
    "service type misspelt": (lambda d: d["checks"][1]["with"]["service"].update(type="Nodeport"),
                              "checks[1].with.service.type"),
    "weight zero": (lambda d: d["checks"][0].update(weight=0), "checks[0].weight"),
    "step with two actions": (lambda d: d["solution"][0].update(kubectl=["get", "pods"]), "solution[0]"),
    "probe rate too low": (lambda d: d["probes"][0].update(rate=5), "probes[0].rate"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_labctl_and_jsonschema_agree_on_broken_documents(case):
    doc = _raw("class-rolling-update")
    assert not validate(doc)
    jsonschema.validate(doc, load_schema())
    change, path = BROKEN[case]
    change(doc)
    problems = validate(doc)
    assert problems, case
    assert any(where.startswith(path) for where, _ in problems), problems
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, load_schema())


@pytest.fixture
def scratch_root(tmp_path) -> Path:
    """A copy of the exercises folder to break."""
    root = tmp_path / "exercises"
    shutil.copytree(exercises_root(), root, symlinks=True)
    return root


def _rewrite(root: Path, exercise_id: str, change) -> None:
    path = root / exercise_id / "exercise.yaml"
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def _problems(root: Path, exercise_id: str) -> list[tuple[str, str, str]]:
    with pytest.raises(ExerciseError) as caught:
        load_definition(exercise_id, root)
    return caught.value.problems


def test_what_the_schema_cannot_say_is_reported_with_its_field_path(scratch_root):
    def break_it(doc: dict) -> None:
        doc["id"] = "other-name"
        doc["task"] = "missing.md"
        doc["checks"][4]["with"]["probe"] = "nope"
        doc["checks"].append(dict(doc["checks"][0]))  # a duplicate id
        doc["solution"][0]["apply"] = "../../../etc/passwd"
        doc["solution"][2]["wait"]["probe"] = "nope"
        doc["checks"][0]["title"] = "uses ${unknown}"

    _rewrite(scratch_root, "class-rolling-update", break_it)
    problems = _problems(scratch_root, "class-rolling-update")
    files = {f for f, _, _ in problems}
    assert files == {"exercises/class-rolling-update/exercise.yaml"}
    text = {(where, what) for _, where, what in problems}
    assert ("id", "'other-name' must be the folder's name, 'class-rolling-update'") in text
    assert ("task", "file missing.md not found beside exercise.yaml") in text
    assert any(w == "checks[4].with.probe" and "no probe 'nope'" in m for w, m in text)
    assert any(w == "checks" and "'deployment' is used more than once" in m for w, m in text)
    assert any(w == "solution[0].apply" and "outside the exercises folder" in m for w, m in text)
    assert any(w == "solution[2].wait.probe" for w, _ in text)
    assert any(w == "checks" and "${unknown} is not a parameter" in m for w, m in text)


def test_yaml_errors_and_duplicate_keys_name_the_file(scratch_root):
    path = scratch_root / "fix-broken-service" / "exercise.yaml"
    path.write_text(path.read_text() + "\ntitle: twice\n")
    (problem,) = _problems(scratch_root, "fix-broken-service")
    assert problem[0] == "exercises/fix-broken-service/exercise.yaml" and "duplicate key 'title'" in problem[2]


def test_a_broken_manifest_is_reported_as_the_step_that_applies_it(scratch_root):
    (scratch_root / "fix-broken-service" / "setup.yaml").write_text("kind: [unclosed\n")
    problems = _problems(scratch_root, "fix-broken-service")
    assert [(w, m.split(":")[0]) for _, w, m in problems] == [("setup[0].apply", "setup.yaml is not valid YAML")]


def test_an_unknown_exercise_lists_the_known_ones():
    with pytest.raises(Exception) as caught:
        load_definition("no-such-exercise")
    assert "class-rolling-update" in (caught.value.hint or "")


def test_parameters_are_chosen_once_and_substituted_with_their_type():
    import random

    values = params.choose({"app": {"choices": ["a", "b"]}, "port": {"range": [30100, 30200]}, "n": {"value": 3}},
                           random.Random(7))
    assert values["app"] in ("a", "b") and 30100 <= values["port"] <= 30200 and values["n"] == 3
    doc = params.substitute({"nodePort": "${port}", "name": "svc-${app}", "list": ["${n}"], "other": "${nope}"},
                            values)
    assert doc == {"nodePort": values["port"], "name": f"svc-{values['app']}", "list": [3], "other": "${nope}"}
