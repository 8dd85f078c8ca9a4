"""The shipped pack against the lesson (exercises/lesson.yaml): every point of the lesson is covered
by some exercise, every exercise speaks the lesson's topics, and each gives a student hints and a
reference solution."""

from __future__ import annotations

import yaml

from labctl.exercises.loader import exercises_root, list_definitions

LESSON = yaml.safe_load((exercises_root() / "lesson.yaml").read_text())


def test_every_point_of_the_lesson_is_covered_by_an_exercise():
    packs = {d.id: set(d.raw["topics"]) for d in list_definitions()}
    uncovered = [p["point"] for p in LESSON["points"]
                 if not any(set(p["topics"]) <= topics for topics in packs.values())]
    assert not uncovered, f"no exercise covers: {uncovered}"


def test_exercises_name_only_the_lessons_topics():
    known = set(LESSON["topics"])
    assert {t for p in LESSON["points"] for t in p["topics"]} <= known
    unknown = {d.id: sorted(set(d.raw["topics"]) - known) for d in list_definitions()}
    assert not {k: v for k, v in unknown.items() if v}, f"topics not in exercises/lesson.yaml: {unknown}"


def test_the_pack_has_twelve_exercises_each_with_hints_and_a_solution():
    definitions = list_definitions()
    assert len(definitions) >= 12
    for d in definitions:
        assert d.raw["solution"], d.id
        # every question says where to look: a student who is stuck gets somewhere with `hint`
        questions = [c for c in d.raw["checks"] if c["kind"] == "question"]
        assert all(c.get("hints") for c in questions), d.id
        assert any(c.get("hints") for c in d.raw["checks"]), d.id
