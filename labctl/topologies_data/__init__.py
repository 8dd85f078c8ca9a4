"""The shipped topologies (``default``, ``single``, ``large``): the one copy of them.

They live inside the package so every install has them — the editable checkout, a wheel,
the node image — and :func:`labctl.topology.default_topology_path` reads them only here.
The checkout's ``topologies/*.yaml``, where the course and the docs point students, are
symlinks to these files, so there is nothing to keep in step.
"""
