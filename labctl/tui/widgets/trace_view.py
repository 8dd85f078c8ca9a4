"""A trace (:class:`labctl.inspect.Trace`) drawn hop by hop, as ``labctl trace`` prints it, for the Network view."""

from __future__ import annotations

from typing import Any

__all__ = ["draw_trace"]

_KIND = {"route": "route", "link": "link", "bridge": "bridge", "netfilter": "rule", "conntrack": "conntrack",
         "mapping": "mapping"}
_VERDICT = {"delivered": "✓", "partly-delivered": "≈", "rejected": "✗", "dropped": "✗", "unreachable": "✗",
            "no-answer": "?", "refused": "✗"}


def _hop(n: int, hop: Any, indent: str = "") -> str:
    where = hop.node or "host"
    verdict = f" → {hop.verdict}" if hop.verdict and hop.verdict not in hop.summary else ""
    packet = f"  [{hop.src} → {hop.dst}]" if hop.src and hop.dst else ""
    return f"{indent}{n:>2} {_KIND.get(hop.kind, hop.kind):<9} {where:<13} {hop.summary}{verdict}{packet}"


def draw_trace(trace: Any) -> list[str]:
    """The lines: FROM → TO, each common hop, each candidate endpoint with its share and path, the verdict."""
    lines = [f"{trace.mode} trace {trace.source.spec} ({trace.source.ip}) → {trace.destination.spec} "
             f"({trace.destination.ip}:{trace.destination.port}/{trace.protocol})"]
    lines += [_hop(i, hop) for i, hop in enumerate(trace.hops, 1)]
    start = len(trace.hops) + 1
    for candidate in trace.candidates:
        chosen = trace.chosen is not None and trace.chosen.endpoint == candidate.endpoint
        pod = f" pod {candidate.pod}" if candidate.pod else ""
        mark = "▶" if chosen else "◇"
        lines.append(f" {mark} {candidate.share:4.0%} {candidate.chain} → {candidate.endpoint}{pod} on {candidate.node}"
                     f" (rule p={candidate.probability:.4f})" if candidate.written else " (the last rule)")
        lines += [_hop(i, hop, "   ") for i, hop in enumerate(candidate.hops, start)]
        if candidate.verdict is not None:
            lines.append(f"     {_VERDICT.get(candidate.verdict.result, '•')} {candidate.verdict.result}: "
                         f"{candidate.verdict.reason}")
    v = trace.verdict
    lines.append(f"{_VERDICT.get(v.result, '•')} {v.result.upper()}: {v.reason}")
    lines += [f"  note: {note}" for note in trace.notes]
    if trace.probe is not None:
        lines.append(f"  probe: {trace.probe.result} in {trace.probe.seconds * 1000:.1f} ms {trace.probe.detail}")
    return lines
