"""Copies of ``topologies/*.yaml`` shipped inside the package, for installs without a checkout.

``labctl.topology.default_topology_path`` prefers the checkout's ``topologies/``; a unit test
keeps these files byte-identical to it (copy them over after editing ``topologies/``).
"""
