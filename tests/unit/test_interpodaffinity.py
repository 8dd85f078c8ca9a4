"""Pod affinity and anti-affinity (InterPodAffinity) and preferred node affinity, on plain dicts."""

from __future__ import annotations

import pytest

from labctl.controllers._interpodaffinity import PodAffinity, normalized_scores, parse_term
from labctl.controllers._scheduling import FitError, NodeInfo, PodInfo, schedule, score_node_affinity

CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
HOST = "kubernetes.io/hostname"


def node(name: str, **labels: str) -> dict:
    return {"metadata": {"name": name, "labels": {HOST: name, **labels}},
            "spec": {"taints": [CP_TAINT] if name == "control-plane" else []},
            "status": {"allocatable": {"cpu": "2", "memory": "4Gi", "pods": "110"},
                       "conditions": [{"type": "Ready", "status": "True"}]}}


def pod(name: str, labels: dict | None = None, namespace: str = "default", affinity: dict | None = None) -> dict:
    spec: dict = {"containers": [{"name": "c", "image": "nginx"}]}
    if affinity:
        spec["affinity"] = affinity
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "spec": spec}


def term(key: str = HOST, **match_labels: str) -> dict:
    return {"labelSelector": {"matchLabels": match_labels}, "topologyKey": key}


def required(kind: str, *terms: dict) -> dict:
    return {kind: {"requiredDuringSchedulingIgnoredDuringExecution": list(terms)}}


def preferred(kind: str, weight: int, t: dict) -> dict:
    return {kind: {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": weight, "podAffinityTerm": t}]}}


def lab(**placed: list[dict]) -> list[NodeInfo]:
    """A tainted control plane and two workers, with pods placed by node name."""
    infos = [NodeInfo(node("control-plane")), NodeInfo(node("worker")), NodeInfo(node("worker2"))]
    for ni in infos:
        for p in placed.get(ni.name.replace("-", "_"), []):
            ni.add_pod(f"default/{p['metadata']['name']}", p)
    return infos


ANTI_WEB = required("podAntiAffinity", term(app="web"))


def test_required_anti_affinity_leaves_the_third_replica_pending_with_upstreams_message():
    infos = lab(worker=[pod("web-1", {"app": "web"}, affinity=ANTI_WEB)],
                worker2=[pod("web-2", {"app": "web"}, affinity=ANTI_WEB)])
    with pytest.raises(FitError) as err:
        schedule(pod("web-3", {"app": "web"}, affinity=ANTI_WEB), infos)
    assert str(err.value) == (
        "0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, "
        "2 node(s) didn't match pod anti-affinity rules. preemption: 0/3 nodes are available: "
        "1 Preemption is not helpful for scheduling, 2 No preemption victims found for incoming pod.")


def test_anti_affinity_picks_the_worker_without_a_matching_pod():
    infos = lab(worker=[pod("web-1", {"app": "web"}, affinity=ANTI_WEB)])
    assert schedule(pod("web-2", {"app": "web"}, affinity=ANTI_WEB), infos) == "worker2"


def test_an_existing_pods_anti_affinity_keeps_a_matching_newcomer_away():
    infos = lab(worker=[pod("db", {"app": "db"}, affinity=required("podAntiAffinity", term(app="web")))],
                worker2=[pod("other", {"app": "x"})])
    assert schedule(pod("web", {"app": "web"}), infos) == "worker2"
    infos = lab(worker=[pod("db", {"app": "db"}, affinity=required("podAntiAffinity", term(app="web")))],
                worker2=[pod("db2", {"app": "db"}, affinity=required("podAntiAffinity", term(app="web")))])
    with pytest.raises(FitError, match="2 node\\(s\\) didn't satisfy existing pods anti-affinity rules"):
        schedule(pod("web", {"app": "web"}), infos)


def test_required_affinity_co_locates_and_waits_when_no_pod_matches():
    wants_cache = required("podAffinity", term(app="cache"))
    infos = lab(worker2=[pod("cache", {"app": "cache"})], worker=[pod("x", {"app": "x"})])
    assert schedule(pod("web", {"app": "web"}, affinity=wants_cache), infos) == "worker2"
    with pytest.raises(FitError) as err:
        schedule(pod("web", {"app": "web"}, affinity=wants_cache), lab())
    assert "2 node(s) didn't match pod affinity rules" in str(err.value)
    assert "3 Preemption is not helpful for scheduling" in str(err.value)  # unresolvable, as upstream


def test_the_first_pod_of_a_self_affine_group_may_go_anywhere():
    together = required("podAffinity", term(app="web"))
    assert schedule(pod("web-1", {"app": "web"}, affinity=together), lab()) in ("worker", "worker2")


def test_a_node_without_the_topology_label_fails_affinity_but_not_anti_affinity():
    infos = lab(worker=[pod("cache", {"app": "cache"})])
    with pytest.raises(FitError, match="didn't match pod affinity rules"):
        schedule(pod("web", affinity=required("podAffinity", term("zone", app="cache"))), infos)
    assert schedule(pod("web", affinity=required("podAntiAffinity", term("zone", app="cache"))), infos) in (
        "worker", "worker2")


def test_terms_look_in_the_pods_own_namespace_unless_told_otherwise():
    def in_prod() -> list[NodeInfo]:
        return lab(worker=[pod("web-1", {"app": "web"}, namespace="prod")],
                   worker2=[pod("web-2", {"app": "web"}, namespace="prod")])

    assert schedule(pod("web", {"app": "web"}, affinity=ANTI_WEB), in_prod()) in ("worker", "worker2")
    everywhere = required("podAntiAffinity", {**term(app="web"), "namespaceSelector": {}})
    with pytest.raises(FitError):
        schedule(pod("web", {"app": "web"}, affinity=everywhere), in_prod())
    by_label = required("podAntiAffinity", {**term(app="web"), "namespaceSelector": {"matchLabels": {"env": "prod"}}})
    assert schedule(pod("web", {"app": "web"}, affinity=by_label), in_prod()) in ("worker", "worker2")
    with pytest.raises(FitError):
        schedule(pod("web", {"app": "web"}, affinity=by_label), in_prod(), {"prod": {"env": "prod"}}.get)


def test_match_label_keys_add_the_pods_own_value_to_the_selector():
    t = parse_term(pod("p", {"app": "web", "pod-template-hash": "abc"}),
                   {**term(app="web"), "matchLabelKeys": ["pod-template-hash"]})
    assert t.matches(pod("same", {"app": "web", "pod-template-hash": "abc"}), lambda _: {})
    assert not t.matches(pod("older", {"app": "web", "pod-template-hash": "old"}), lambda _: {})


def test_preferred_anti_affinity_scores_the_other_worker_higher():
    avoid = preferred("podAntiAffinity", 100, term(app="cache"))
    infos = lab(worker2=[pod("cache", {"app": "cache"})], worker=[pod("a", {"app": "a"}), pod("b", {"app": "b"})])
    assert schedule(pod("web", affinity=avoid), infos) == "worker"


def test_preferred_affinity_beats_balance():
    near = preferred("podAffinity", 50, term(app="cache"))
    infos = lab(worker=[pod("cache", {"app": "cache"}), pod("a", {"app": "a"}), pod("b", {"app": "b"})])
    assert schedule(pod("web", affinity=near), infos) == "worker"


def test_scores_are_normalised_between_the_lowest_and_the_highest():
    nodes = {"a": {HOST: "a"}, "b": {HOST: "b"}, "c": {HOST: "c"}}
    assert normalized_scores({(HOST, "a"): 30, (HOST, "b"): -10}, nodes) == {"a": 100, "b": 0, "c": 25}
    assert normalized_scores({}, nodes) == {"a": 0, "b": 0, "c": 0}


def test_no_pod_affinity_parses_to_the_shared_empty_value():
    assert PodAffinity.of(pod("p")).empty and PodAffinity.of(pod("p", affinity={"nodeAffinity": {}})).empty


def test_preferred_node_affinity_scores_matching_nodes_by_weight():
    spec_affinity = {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 80, "preference": {"matchExpressions": [{"key": "disk", "operator": "In", "values": ["ssd"]}]}},
        {"weight": 20, "preference": {"matchExpressions": [{"key": HOST, "operator": "In", "values": ["worker"]}]}}]}}
    infos = [NodeInfo(node("worker")), NodeInfo(node("worker2", disk="ssd"))]
    assert score_node_affinity(PodInfo.of(pod("p", affinity=spec_affinity)), infos) == {"worker": 25, "worker2": 100}
    assert schedule(pod("p", affinity=spec_affinity), infos) == "worker2"
