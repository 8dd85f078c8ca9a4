"""A question about kube-proxy's rules read from the nodes: the probability written for a Service's
second endpoint in its ``KUBE-SVC-…`` chain.

kube-proxy writes one rule per endpoint with ``-m statistic --mode random --probability``
1/n, 1/(n-1), …, 1/2, and the last rule without a probability (it takes what is left), so
that every endpoint gets 1/n of new connections. The second rule's number — 0.5 for three
endpoints, not 1/3 — is what shows a student understood the chain is walked in order. The
answer is compared with what the nodes hold now (:mod:`labctl.inspect` reads it), in any of
the usual spellings.
"""

from __future__ import annotations

from typing import Any

from . import Context, Unmet
from .objects import service

__all__ = ["RULE_ASKS", "expected_rule_answers", "probability_spellings"]

RULE_ASKS = ("second-probability",)


def probability_spellings(written: str, probability: float) -> set[str]:
    """The ways a student may write one rule's probability (pure): as iptables-save prints it
    (``0.50000000000``), as a decimal of any precision (``0.5``), as a fraction (``1/2``); the last
    rule, with no ``statistic`` match, is ``1``."""
    if not written:
        return {"1", "1.0", "1/1"}
    out = {written, repr(probability), f"{probability:g}"}
    out |= {f"{probability:.{digits}f}" for digits in range(1, 12)}
    denominator = round(1 / probability) if probability else 0
    if denominator and abs(1 / denominator - probability) < 1e-6:
        out.add(f"1/{denominator}")
    return out


async def expected_rule_answers(ctx: Context, params: dict[str, Any]) -> set[str]:
    """The probability of the second endpoint's rule in the Service's ``KUBE-SVC-`` chain, on every node."""
    svc, _, _ = service(ctx, params)
    name = f"{svc['metadata']['namespace']}/{svc['metadata']['name']}"
    net = await ctx.network()
    ports = [p for node in net.nodes for p in node.services if f"{p.namespace}/{p.service}" == name]
    if not ports:
        raise Unmet(f"no node has rules for Service {name} yet")
    right: set[str] = set()
    for port in ports:
        if len(port.endpoints) < 2:
            raise Unmet(f"Service {name} has {len(port.endpoints)} endpoint(s) in {port.svc_chain}; "
                        f"the question is about the second one")
        second = port.endpoints[1]
        right |= probability_spellings(second.written, second.probability)
    return right
