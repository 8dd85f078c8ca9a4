"""Real outputs captured on lab nodes, as the inspection library's unit tests read them.

``capture/`` holds one worker's raw tool outputs (``ip -j -d link``, ``ip -j addr``, ``ip -j
route``, ``bridge -j link``, ``iptables-save``, ``conntrack -L -o extended``) and the API's
pods, Services and Endpoints, from a 3-node lab running the course's ``example-1`` with
``ex1-svc`` and ``ex1-svc-external``. ``example1-lab.json`` is a whole lab as
:func:`labctl.inspect.gather.snapshot` reads it — each node's snapshot script output, the pod
sandboxes' labels, the lab network's gateway and the port mappings — from a lab running the
same objects plus ``nobody`` (a Service without endpoints) and ``web-lb`` (a LoadBalancer).
``trace-*.json`` are the tracers' outputs of live traces in that lab.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

from labctl.cluster import NodeInfo
from labctl.inspect.gather import NodeOutput, build_network, split_sections
from labctl.inspect.links import SandboxLabels
from labctl.inspect.model import LabNetwork, PortMapping

FIXTURES = Path(__file__).parent / "fixtures"
CAPTURE = FIXTURES / "capture"


def capture(name: str) -> str:
    return (CAPTURE / name).read_text()


@cache
def _lab_document() -> dict:
    return json.loads((FIXTURES / "example1-lab.json").read_text())


def example_network() -> LabNetwork:
    """The captured lab, parsed afresh (tests may change what they get)."""
    doc = _lab_document()
    outputs = [NodeOutput(NodeInfo(n["name"], n["role"], n["container"], n["internalIP"], "running"),
                          split_sections(n["output"])) for n in doc["nodes"]]
    sandboxes = {k: SandboxLabels(v["containerId"], v["namespace"], v["name"], v["uid"])
                 for k, v in doc["sandboxes"].items()}
    mappings = [PortMapping(m["hostIP"], m["hostPort"], m["node"], m["nodePort"], m["protocol"])
                for m in doc["portMappings"]]
    return build_network(doc["lab"], outputs, sandboxes, doc["gateway"], mappings)


def trace_capture(name: str) -> dict:
    return json.loads((FIXTURES / f"trace-{name}.json").read_text())
