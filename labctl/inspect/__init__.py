"""Node introspection: a lab's network as typed data, tied to pods and Services.

Used by ``labctl net``, ``labctl trace``, the grader and the terminal UI::

    net = await snapshot(lab)          # every node: cni0 and its veths with their pods, routes with
                                       # the node each leads to, each Service's kube-proxy chains,
                                       # the pods NetworkPolicies isolate and the rules that apply
    t = await trace(lab, "default/client", "ex1-svc")                     # live: a real probe, kernel-traced
    t = await trace(lab, "host", "127.0.0.1:30000", explain_only=True)    # computed from rules and routes
    to_jsonable(net), to_jsonable(t)   # the documented --json forms (docs/net.md, docs/trace.md)

Everything is read through the nodes' own tools (``ip -j``, ``bridge -j``, ``iptables-save``,
``conntrack``, ``xtables-monitor --trace``), one ``docker exec`` per node, and parsed by pure
functions (:mod:`.ruleset`, :mod:`.links`, :mod:`.routes`, :mod:`.services`, :mod:`.conntrack`,
:mod:`.xtrace`, :mod:`.policies`); no API server is needed. :mod:`.probe` is also run as a script inside nodes,
so it uses only the standard library.
"""

from .gather import read_lab, snapshot
from .live import remove_trace_rules
from .model import LabNetwork, NodeNetwork, PodRef, to_jsonable
from .policies import IsolatedPod, PolicyRule
from .services import ServiceEndpoint, ServicePort
from .tracemodel import Candidate, Hop, ObjectRef, Peer, Trace, Verdict
from .tracing import run_trace, trace

__all__ = ["Candidate", "Hop", "IsolatedPod", "LabNetwork", "NodeNetwork", "ObjectRef", "Peer", "PodRef",
           "PolicyRule", "ServiceEndpoint", "ServicePort", "Trace", "Verdict", "read_lab", "remove_trace_rules",
           "run_trace", "snapshot", "to_jsonable", "trace"]
