"""Objects found by relation, on hand-made snapshots: the student's Deployment by kind, the Service
whose selector matches its pods, why none does, the current ReplicaSet, a completed rollout."""

from __future__ import annotations

from labctl.exercises.model import ServiceRef, WorkloadRef
from labctl.exercises.relations import (
    Snapshot,
    current_replicaset,
    endpoint_ips,
    entry_points,
    explain_no_service,
    find_services,
    find_workload,
    pods_of,
    rollout_complete,
    serving_pods,
)

LABELS = {"tier": "storefront", "team": "blue"}


def meta(name: str, uid: str, **extra) -> dict:
    return {"name": name, "namespace": "rollout", "uid": uid, **extra}


def owner(uid: str, kind: str) -> list[dict]:
    return [{"apiVersion": "apps/v1", "kind": kind, "name": uid, "uid": uid, "controller": True}]


def snapshot(selector: dict | None = None, svc_type: str = "NodePort") -> Snapshot:
    deploy = {"metadata": meta("shop", "d1", generation=2, annotations={"deployment.kubernetes.io/revision": "2"}),
              "spec": {"replicas": 2, "template": {"metadata": {"labels": LABELS}}},
              "status": {"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 2}}
    rs1 = {"metadata": meta("shop-a", "r1", ownerReferences=owner("d1", "Deployment"),
                            annotations={"deployment.kubernetes.io/revision": "1"})}
    rs2 = {"metadata": meta("shop-b", "r2", ownerReferences=owner("d1", "Deployment"),
                            annotations={"deployment.kubernetes.io/revision": "2"})}
    ready = {"conditions": [{"type": "Ready", "status": "True"}]}
    pods = [{"metadata": meta(f"shop-b-{i}", f"p{i}", labels=LABELS, ownerReferences=owner("r2", "ReplicaSet")),
             "spec": {"nodeName": "worker"}, "status": {**ready, "podIP": f"10.244.1.{i}"}} for i in (1, 2)]
    pods.append({"metadata": meta("shop-a-0", "p0", labels=LABELS, ownerReferences=owner("r1", "ReplicaSet"),
                                  deletionTimestamp="2026-12-07T10:00:00Z"),
                 "status": {**ready, "podIP": "10.244.2.9"}})
    service = {"metadata": meta("front-door", "s1"),
               "spec": {"type": svc_type, "clusterIP": "10.96.4.4", "selector": selector or {"tier": "storefront"},
                        "ports": [{"port": 8080, "targetPort": 80, "nodePort": 30123}]}}
    endpoints = {"metadata": meta("front-door", "e1"),
                 "subsets": [{"addresses": [{"ip": "10.244.1.1"}, {"ip": "10.244.1.2"}]}]}
    nodes = [{"metadata": {"name": n}, "status": {"addresses": [{"type": "InternalIP", "address": ip}]}}
             for n, ip in (("control-plane", "172.30.0.2"), ("worker", "172.30.0.3"))]
    return Snapshot("rollout", [deploy], [rs1, rs2], pods, [service], [endpoints], nodes)


def test_the_workload_and_its_service_are_found_by_relation_whatever_their_names():
    snap = snapshot()
    deploy, why = find_workload(snap, WorkloadRef("Deployment"))
    assert deploy is not None and not why
    (svc,) = find_services(snap, deploy, "Deployment", ServiceRef(type="NodePort"))
    assert svc["metadata"]["name"] == "front-door"
    assert not find_services(snap, deploy, "Deployment", ServiceRef(type="ClusterIP"))
    assert find_services(snapshot(svc_type="LoadBalancer"), deploy, "Deployment", ServiceRef(type="NodePort"))
    assert current_replicaset(snap, deploy)["metadata"]["name"] == "shop-b"
    assert {p["metadata"]["name"] for p in serving_pods(pods_of(snap, deploy, "Deployment"))} == {"shop-b-1",
                                                                                                  "shop-b-2"}
    assert len(pods_of(snap, deploy, "Deployment", current_only=True)) == 2
    assert endpoint_ips(snap, svc) == ({"10.244.1.1", "10.244.1.2"}, set())
    assert entry_points(snap, svc, "NodePort") == [("172.30.0.2", 30123), ("172.30.0.3", 30123)]
    assert entry_points(snap, svc, "ClusterIP") == [("10.96.4.4", 8080)]
    assert rollout_complete(snap, deploy)


def test_why_no_service_fits_is_said_in_the_lesson_s_words():
    snap = snapshot(selector={"tier": "store-front"})
    deploy, _ = find_workload(snap, WorkloadRef("Deployment"))
    assert not find_services(snap, deploy, "Deployment", ServiceRef(type="NodePort"))
    text = explain_no_service(snap, deploy, "Deployment", ServiceRef(type="NodePort"))
    assert text == ("the selector of Service front-door (tier=store-front) matches no pod "
                    "(the pods of Deployment shop are labelled team=blue,tier=storefront)")
    assert explain_no_service(snap, deploy, "Deployment", ServiceRef(type="ClusterIP")) == \
        "there is no ClusterIP Service in namespace rollout"


def test_a_named_workload_that_is_missing_is_named_in_the_message():
    found, why = find_workload(snapshot(), WorkloadRef("ReplicaSet", "web"))
    assert found is None and why == "there is no ReplicaSet web in namespace rollout"
