"""Questions: the student answers (``labctl exercise answer KEY VALUE``) and the grader checks the
answer against the live cluster at check time — so the answer is nowhere in the exercise files,
and a pod that was replaced since changes what is right. Node questions ("which interface is pod
X's veth?", "which KUBE-SEP chain leads to a pod of Y?", "which probability is written for the second
endpoint?") are answered from the nodes themselves; what the CNI plugin returned for a pod (its
address, its gateway) from inside the pod."""

from __future__ import annotations

from ...kube.meta import parse_time
from ..model import CheckSpec
from ..relations import pods_of, serving_pods
from . import Context, Unmet, Verdict, kind
from .nodes import expected_chain_answers
from .objects import service, workload
from .podnet import POD_ASKS, expected_pod_answers
from .proxyrules import RULE_ASKS, expected_rule_answers

__all__ = ["expected_answers"]


async def expected_answers(ctx: Context, params: dict) -> set[str]:
    """Every answer that is right now (several pods can each be a right answer)."""
    ask = params["ask"]
    if ask in ("pod-veth", "sep-chain", "svc-chain"):
        return await expected_chain_answers(ctx, params)
    if ask in RULE_ASKS:
        return await expected_rule_answers(ctx, params)
    if ask in POD_ASKS:
        return await expected_pod_answers(ctx, params)
    if ask in ("cluster-ip", "node-port"):
        svc, _, _ = service(ctx, params)
        if ask == "cluster-ip":
            return {svc["spec"].get("clusterIP", "")}
        return {str(p["nodePort"]) for p in svc["spec"].get("ports") or [] if p.get("nodePort")}
    found, ref = workload(ctx, params)
    pods = serving_pods(pods_of(ctx.snapshot, found, ref.kind))
    if ask == "replacement-pod-ip":
        started = ctx.state.started_at
        pods = [p for p in pods if (t := parse_time(p["metadata"].get("creationTimestamp"))) and
                t.timestamp() > started]
        if not pods:
            raise Unmet(f"no pod of {ref.kind} {found['metadata']['name']} was created since the exercise started")
    if ask == "node-of-pod":
        return {p["spec"].get("nodeName", "") for p in pods}
    return {p["status"]["podIP"] for p in pods}


@kind("question")
async def check_question(ctx: Context, spec: CheckSpec) -> Verdict:
    key = spec.params["key"]
    given = ctx.state.answers.get(key)
    if given is None:
        return Verdict.failed(f"not answered yet: `labctl exercise answer {key} VALUE`", key=key)
    evidence = {"key": key, "answer": given}
    try:
        right = await expected_answers(ctx, spec.params)
    except Unmet as unmet:
        return Verdict.failed(f"{key}: {given} is not right: {unmet.message}", **evidence)
    if given.strip() in right:
        return Verdict.passed(f"{key}: {given} is right", **evidence)
    # the right answer is not in the evidence: the result may be shared
    return Verdict.failed(f"{key}: {given} is not right (checked against the cluster as it is now)", **evidence)
