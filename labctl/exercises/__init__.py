"""Graded exercises: definitions, typed checks, during probes, the grader and its results.

Layout (one owner per module): :mod:`.schema` (the format, ``exercise.schema.json``) and
:mod:`.loader` (``exercises/<id>/`` → :class:`~.model.Exercise`), :mod:`.params` (values per
lab), :mod:`.relations` (objects found by relation), :mod:`.checks` (one module per family of
kinds), :mod:`.traffic` (requests the grader sends), :mod:`.recorder` and :mod:`.probe` (the
during probe, a process in the control-plane node), :mod:`.supervisor` (starting and stopping
probes from the host), :mod:`.state` (the lab's exercise state, on the control plane),
:mod:`.steps` (setup and solution steps), :mod:`.grader` → :class:`~.model.Grade`,
:mod:`.results` (JSON, JUnit), :mod:`.session` (what the CLI's commands do).

This package file imports nothing: the probe runs ``python -m labctl.exercises.probe`` in a
node and should load only what it uses. The design is in docs/exercises.md.
"""
