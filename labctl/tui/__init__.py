"""``labctl tui``: a live dashboard of a lab, its network and the exercise at hand (Textual).

Layout (one owner per module):

- :mod:`.app` — the :class:`~.app.LabApp`: it only wires the views (Textual modes), the
  global keys and the state source to the state model; ``app.tcss`` holds every style.
- :mod:`.state` — the **state model**, kept on the UI thread: the cluster's objects, the
  network snapshot, node health, the exercise's grade, the traffic run, the rollout history.
- :mod:`.source` — the **state source** protocol that feeds it, with two implementations:
  :mod:`.live` (informers and node inspection on a thread of their own) and :mod:`.recorded`
  (a JSON snapshot replayed at a fixed clock: snapshot tests, docs, benchmarks).
- :mod:`.messages` — what a source posts to the app; :mod:`.actions` — the changes a student
  makes from the UI, each with its ``kubectl``/``labctl`` equivalent.
- pure helpers the views draw from: :mod:`.rows` (table rows, kubectl's cells),
  :mod:`.rollout` (old/new pods over time), :mod:`.traffic` (request statistics),
  :mod:`.describe` (describe and YAML text); :mod:`.pump` sends the traffic (standard library
  only: it also runs inside a pod's network namespace).
- ``screens/`` — one module per view and the dialogs; ``widgets/`` — reusable widgets.

It imports the shared base, :mod:`labctl.inspect` and :mod:`labctl.exercises`; nothing
imports it (the CLI loads it lazily). See docs/tui.md.
"""

from __future__ import annotations

__all__ = ["VIEWS"]

#: the views, in the order of their number keys (``1`` … ``8``) and of ``--view``
VIEWS = ("overview", "pods", "workloads", "services", "network", "traffic", "events", "exercise")
