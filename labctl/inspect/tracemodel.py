"""What ``labctl trace`` answers: the path hop by hop, the endpoints it could take, the verdict.

The same types serve the live trace (hops are rules the kernel reported) and ``--explain``
(hops computed from the rules and routes). :func:`~.model.to_jsonable` of a :class:`Trace`
is the ``--json`` document described in ``docs/trace.md`` (schema ``labctl.dev/trace/v1``),
which the TUI and the grader read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .conntrack import ConntrackEntry

__all__ = ["SCHEMA", "Candidate", "Hop", "ObjectRef", "Peer", "Probe", "Trace", "Verdict"]

SCHEMA = "labctl.dev/trace/v1"


@dataclass(frozen=True)
class ObjectRef:
    """The Kubernetes object (or lab part) a hop belongs to: ``Pod``, ``Service``, ``Node`` or ``Host``."""

    kind: str
    name: str
    namespace: str = ""
    port: str = ""  # a Service port's name
    ip: str = ""

    def __str__(self) -> str:
        base = f"{self.namespace}/{self.name}" if self.namespace else self.name
        return f"{base}:{self.port}" if self.port else base


@dataclass(frozen=True)
class Peer:
    """One end of the trace: what the user named and what it resolved to."""

    spec: str  # as given: "default/client", "ex1-svc", "127.0.0.1:30000"
    kind: str  # pod | node | host | service | cluster-ip | node-port | host-port | load-balancer | external-ip | ip
    ip: str
    port: int = 0
    node: str = ""  # the node holding it (a pod's, a NodePort's, an announced LoadBalancer IP's)
    object: ObjectRef | None = None


@dataclass(frozen=True)
class Hop:
    """One step of the path.

    ``kind`` is ``route`` (a routing decision), ``link`` (a veth pair or the lab network),
    ``bridge`` (``cni0`` forwarding a frame), ``netfilter`` (a rule or a chain's policy),
    ``conntrack`` (the kernel's entry for the flow) or ``mapping`` (Docker's port mapping on
    the host). ``src``/``dst`` are the packet's addresses after the hop, so NAT shows.
    """

    kind: str
    node: str  # "" on the host
    netns: str  # "node", "pod <ns>/<name>" or "host"
    summary: str
    table: str = ""
    chain: str = ""
    rule: str = ""  # the rule as iptables-save prints it
    comment: str = ""
    verdict: str = ""  # ACCEPT, DROP, REJECT, DNAT, MASQUERADE, MARK, RETURN, or the chain jumped to
    object: ObjectRef | None = None
    src: str = ""
    dst: str = ""


@dataclass(frozen=True)
class Verdict:
    """How it ends: ``delivered`` (to ``object``), ``rejected``/``dropped`` (at ``hop``), ``refused``,
    ``unreachable``, ``no-answer`` (a live probe nobody answered)."""

    result: str
    reason: str
    node: str = ""
    hop: int | None = None  # index in the hops list it belongs to
    object: ObjectRef | None = None


@dataclass(frozen=True)
class Candidate:
    """An endpoint the Service's rules may choose, with the probability the ``KUBE-SVC-`` rule gives it.

    In ``--explain`` mode ``hops`` and ``verdict`` are the rest of the path to this endpoint;
    in a live trace they are empty and :attr:`Trace.chosen` is the one the kernel took.
    """

    endpoint: str  # ip:port
    probability: float  # on the rule: 1/n, 1/(n-1), …, 1/2, and 1 for the last (unconditional) rule
    written: str
    share: float  # of new connections: 1/n each
    chain: str  # KUBE-SEP-…
    node: str
    pod: ObjectRef | None
    hops: list[Hop] = field(default_factory=list)
    verdict: Verdict | None = None


@dataclass(frozen=True)
class Probe:
    """The live probe: a TCP SYN (a connect) or a UDP datagram (a DNS query to port 53), and what came back."""

    protocol: str
    src: str
    sport: int
    dst: str
    dport: int
    result: str  # connected | refused | answered | timeout | unreachable | error
    seconds: float
    detail: str = ""


@dataclass
class Trace:
    """A whole trace; ``hops`` are common to every candidate (all of them when live)."""

    mode: str  # live | explain
    lab: str
    protocol: str
    source: Peer
    destination: Peer
    hops: list[Hop]
    verdict: Verdict
    candidates: list[Candidate] = field(default_factory=list)
    chosen: Candidate | None = None
    probe: Probe | None = None
    conntrack: list[ConntrackEntry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    trace_rules_left: int = 0  # live: trace rules found on the nodes afterwards (always 0 unless cleanup failed)
    seconds: float = 0.0
    schema: str = SCHEMA
