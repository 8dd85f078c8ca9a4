"""StatefulSets in a real lab with kubectl 1.37, as the kubernetes.io StatefulSet tutorial shows them.

A headless Service ``db`` and a StatefulSet ``db`` of two pods, each with a claim from a
``volumeClaimTemplates`` entry: pods ``db-0`` then ``db-1`` (the second only once the first
is Ready), ``kubectl rollout status`` and ``get sts``, ``db-0.db`` resolving to db-0's IP, data
kept on the claim across the pod's deletion, scale-down keeping the claim, a partitioned image
update. One lab for the module; each test has a namespace of its own, so any order passes.
"""

from __future__ import annotations

import json
import re

import pytest

from labctl.client.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

IMAGE = "labctl/web:v1"


def manifest(replicas: int = 2, image: str = IMAGE, **spec) -> str:
    """The tutorial's two documents (Service then StatefulSet), as ``kubectl apply -f`` gets them."""
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "labels": {"app": "db"}},
               "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"name": "web", "port": 80}]}}
    sts = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
           "spec": {"serviceName": "db", "replicas": replicas, "selector": {"matchLabels": {"app": "db"}},
                    "template": {"metadata": {"labels": {"app": "db"}},
                                 "spec": {"terminationGracePeriodSeconds": 1,
                                          "containers": [{"name": "web", "image": image,
                                                          "ports": [{"containerPort": 80, "name": "web"}],
                                                          "readinessProbe": {"httpGet": {"path": "/healthz",
                                                                                         "port": 80},
                                                                             "periodSeconds": 1},
                                                          "volumeMounts": [{"name": "data",
                                                                            "mountPath": "/data"}]}]}},
                    "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                              "spec": {"accessModes": ["ReadWriteOnce"],
                                                       "resources": {"requests": {"storage": "1Gi"}}}}],
                    **spec}}
    return "\n---\n".join(json.dumps(doc) for doc in (service, sts))


def rollout(lab, namespace: str) -> str:
    return lab.kubectl.run("rollout", "status", "-n", namespace, "sts/db", "--timeout=180s", timeout=200).stdout


def pods(lab, namespace: str) -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in lab.kubectl.json("get", "pods", "-n", namespace)["items"]}


def ready_since(pod: dict) -> str:
    return next(c["lastTransitionTime"] for c in pod["status"]["conditions"] if c["type"] == "Ready")


def test_pods_come_in_order_with_stable_names_dns_and_storage(lab, namespace):
    lab.kubectl.run("apply", "-n", namespace, "-f", "-", input=manifest())
    # the defaulted partition 0 makes kubectl speak of a partitioned roll out, as on any cluster
    assert rollout(lab, namespace).splitlines()[-1] == "partitioned roll out complete: 2 new pods have been updated..."
    got = pods(lab, namespace)
    assert sorted(got) == ["db-0", "db-1"]
    db0, db1 = got["db-0"], got["db-1"]
    assert db1["metadata"]["creationTimestamp"] >= ready_since(db0)  # OrderedReady: db-1 after db-0 was Ready
    assert db0["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == "db-0"
    assert db1["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "1"
    assert (db0["spec"]["hostname"], db0["spec"]["subdomain"]) == ("db-0", "db")
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in db0["spec"]["volumes"]
              if "persistentVolumeClaim" in v}
    assert claims == {"data": "data-db-0"}

    header, row = lab.kubectl.run("get", "sts", "db", "-n", namespace).stdout.splitlines()
    assert header.split() == ["NAME", "READY", "AGE"] and row.split()[:2] == ["db", "2/2"]
    status = lab.kubectl.json("get", "sts", "db", "-n", namespace)["status"]
    assert status["currentRevision"] == status["updateRevision"] == db0["metadata"]["labels"]["controller-revision-hash"]
    assert (status["replicas"], status["readyReplicas"], status["updatedReplicas"]) == (2, 2, 2)
    described = lab.kubectl.run("describe", "sts", "db", "-n", namespace).stdout
    assert re.search(r"Pods Status:\s+2 Running", described) and "Volume Claims:" in described, described
    pvcs = lab.kubectl.json("get", "pvc", "-n", namespace)["items"]
    assert {(c["metadata"]["name"], c["status"]["phase"]) for c in pvcs} == {("data-db-0", "Bound"),
                                                                             ("data-db-1", "Bound")}

    fqdn = f"db-0.db.{namespace}.svc.cluster.local"
    lookup = wait_for(lambda: (out := lab.kubectl.run("exec", "-n", namespace, "db-1", "--", "nslookup", fqdn,
                                                      check=False)).returncode == 0 and out.stdout,
                      timeout=60, what=f"nslookup {fqdn} from db-1")
    assert re.search(rf"Address:\s*{re.escape(db0['status']['podIP'])}\b", lookup), lookup
    hosts = lab.kubectl.run("exec", "-n", namespace, "db-0", "--", "cat", "/etc/hosts").stdout
    assert f"{db0['status']['podIP']}\t{fqdn}\tdb-0" in hosts.splitlines()

    lab.kubectl.run("exec", "-n", namespace, "db-0", "--", "sh", "-c", "echo kept > /data/file")
    lab.kubectl.run("delete", "pod", "-n", namespace, "db-0")

    def recreated() -> dict | None:
        pod = pods(lab, namespace).get("db-0")
        fresh = pod is not None and pod["metadata"]["uid"] != db0["metadata"]["uid"]
        return pod if fresh and any(c["type"] == "Ready" and c["status"] == "True"
                                    for c in pod["status"].get("conditions", [])) else None
    again = wait_for(recreated, timeout=120, what="db-0 recreated and Ready")
    assert [v["persistentVolumeClaim"]["claimName"] for v in again["spec"]["volumes"]
            if "persistentVolumeClaim" in v] == ["data-db-0"]
    assert lab.kubectl.run("exec", "-n", namespace, "db-0", "--", "cat", "/data/file").stdout == "kept\n"


def test_partitioned_update_then_scale_down_keeps_the_claim(lab, namespace):
    lab.kubectl.run("apply", "-n", namespace, "-f", "-", input=manifest(replicas=3))
    rollout(lab, namespace)
    lab.kubectl.run("patch", "sts", "db", "-n", namespace, "-p",
                    '{"spec":{"updateStrategy":{"type":"RollingUpdate","rollingUpdate":{"partition":1}}}}')
    lab.kubectl.run("set", "image", "-n", namespace, "sts/db", "web=labctl/web:v2")
    assert "partitioned roll out complete: 2 new pods have been updated" in rollout(lab, namespace)
    images = {n: p["spec"]["containers"][0]["image"] for n, p in pods(lab, namespace).items()}
    assert images == {"db-0": "labctl/web:v1", "db-1": "labctl/web:v2", "db-2": "labctl/web:v2"}
    history = lab.kubectl.run("rollout", "history", "-n", namespace, "sts/db").stdout
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    lab.kubectl.run("rollout", "undo", "-n", namespace, "sts/db")
    rollout(lab, namespace)
    wait_for(lambda: {p["spec"]["containers"][0]["image"] for p in pods(lab, namespace).values()} == {IMAGE},
             timeout=120, what="every pod back on labctl/web:v1")

    refused = lab.kubectl.run("patch", "sts", "db", "-n", namespace, "-p", '{"spec":{"serviceName":"other"}}',
                              check=False)
    assert refused.returncode != 0 and "updates to statefulset spec for fields other than" in refused.stderr

    lab.kubectl.run("scale", "sts", "db", "-n", namespace, "--replicas=1")
    wait_for(lambda: sorted(pods(lab, namespace)) == ["db-0"], timeout=120, what="db-2 and db-1 gone")
    claims = sorted(c["metadata"]["name"] for c in lab.kubectl.json("get", "pvc", "-n", namespace)["items"])
    assert claims == ["data-db-0", "data-db-1", "data-db-2"]
    _, row = lab.kubectl.run("get", "sts", "db", "-n", namespace).stdout.splitlines()
    assert row.split()[:2] == ["db", "1/1"]


def claim_names(lab, namespace: str) -> list[str]:
    return sorted(c["metadata"]["name"] for c in lab.kubectl.json("get", "pvc", "-n", namespace)["items"])


def test_delete_retention_policies_delete_claims_with_their_pod_and_set(lab, namespace):
    policy = {"whenDeleted": "Delete", "whenScaled": "Delete"}
    lab.kubectl.run("apply", "-n", namespace, "-f", "-", input=manifest(persistentVolumeClaimRetentionPolicy=policy))
    rollout(lab, namespace)
    assert claim_names(lab, namespace) == ["data-db-0", "data-db-1"]
    lab.kubectl.run("scale", "sts", "db", "-n", namespace, "--replicas=1")
    wait_for(lambda: claim_names(lab, namespace) == ["data-db-0"], timeout=120, what="data-db-1 deleted with db-1")
    assert sorted(pods(lab, namespace)) == ["db-0"]
    lab.kubectl.run("delete", "sts", "db", "-n", namespace)
    wait_for(lambda: claim_names(lab, namespace) == [], timeout=120, what="data-db-0 deleted with the StatefulSet")
