"""The real kubectl against labctl's API server process: LimitRange and ResourceQuota as kubectl shows them,
kubectl's typed (protobuf) `create quota`, events.k8s.io/v1, and the kinds labctl does not serve.

No controllers run here; the lab test (test_quota_admission_lab.py) covers what needs them.
"""

from __future__ import annotations

import asyncio
import json
import ssl

import aiohttp
import pytest

from labctl.cluster.kubectl import Kubectl

pytestmark = pytest.mark.kubectl


def apply(kubectl: Kubectl, doc: dict, check: bool = True):
    return kubectl.run("apply", "-f", "-", input=json.dumps(doc), check=check)


def test_create_quota_and_get_and_describe_it(kubectl: Kubectl):
    assert "resourcequota/q created" in kubectl.run("create", "quota", "q", "--hard=pods=2,services.nodeports=1").stdout
    kubectl.run("create", "quota", "best", "--hard=pods=1", "--scopes=BestEffort")
    kubectl.run("run", "web", "--image=nginx")
    header, *rows = kubectl.run("get", "quota").stdout.splitlines()
    assert header.split() == ["NAME", "AGE", "REQUEST", "LIMIT"]
    q = next(r for r in rows if r.startswith("q "))
    assert "pods: 1/2" in q and "services.nodeports: 0/1" in q
    described = kubectl.run("describe", "quota", "best").stdout
    assert "Scopes:     BestEffort" in described and "pods      1     1" in described
    refused = kubectl.run("run", "more", "--image=nginx", check=False)
    assert 'pods "more" is forbidden: exceeded quota: best, requested: pods=1, used: pods=1, limited: pods=1' \
        in refused.stderr


def test_describe_limitrange_shows_the_defaulted_items(kubectl: Kubectl):
    apply(kubectl, {"apiVersion": "v1", "kind": "LimitRange", "metadata": {"name": "mem"}, "spec": {"limits": [
        {"type": "Container", "max": {"memory": "512Mi"}, "min": {"memory": "64Mi"}}]}})
    described = kubectl.run("describe", "limits", "mem").stdout
    row = next(line.split() for line in described.splitlines() if line.startswith("Container"))
    # kube's defaulting: the default limit is the max, the default request the default limit (before the min)
    assert row == ["Container", "memory", "64Mi", "512Mi", "512Mi", "512Mi", "-"]


def test_events_k8s_io_reads_and_writes_the_core_events(kubectl: Kubectl):
    event = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "web.1"},
             "eventTime": "2026-12-07T12:00:00.000000Z", "type": "Normal", "reason": "Started", "action": "Start",
             "note": "started it", "reportingController": "example.com/ctl", "reportingInstance": "ctl-0",
             "regarding": {"apiVersion": "v1", "kind": "Pod", "name": "web", "namespace": "default"}}
    assert "event.events.k8s.io/web.1 created" in apply(kubectl, event).stdout
    core = kubectl.json("get", "events", "web.1")
    assert core["message"] == "started it" and core["involvedObject"]["name"] == "web"
    assert core["reportingComponent"] == "example.com/ctl"
    assert "started it" in kubectl.run("events").stdout
    bad = apply(kubectl, {**event, "metadata": {"name": "bad"}, "reportingController": None}, check=False)
    assert 'The Event "bad" is invalid: reportingController: Required value' in bad.stderr


@pytest.mark.parametrize(("doc", "kind"), [
    ({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": "gvisor"}, "handler": "runsc"},
     "RuntimeClass (node.k8s.io/v1)"),
    ({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": "x.example.com"}, "spec": {}},
     "CSIDriver (storage.k8s.io/v1)"),
    ({"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "rc"}, "spec": {}},
     "ReplicationController (v1)"),
])
def test_unserved_kinds_are_named_in_the_refusal(kubectl: Kubectl, doc: dict, kind: str):
    proc = apply(kubectl, doc, check=False)
    assert proc.returncode != 0
    assert f"labctl does not serve {kind}" in proc.stderr
    assert "ensure CRDs are installed first" not in proc.stderr


def test_unserved_kinds_answer_get_and_list_too(kubectl: Kubectl):
    listed = kubectl.run("get", "csr", check=False)
    assert "Error from server (MethodNotAllowed): labctl does not serve CertificateSigningRequest " \
           "(certificates.k8s.io/v1)" in listed.stderr
    got = kubectl.run("get", "runtimeclass", "gvisor", check=False)
    assert "Error from server (NotFound): labctl does not serve RuntimeClass (node.k8s.io/v1)" in got.stderr
    # the served kinds' listing is unchanged: no verbs, so they are not listed for `get`
    assert "runtimeclasses" not in kubectl.run("api-resources", "--verbs=list").stdout


def test_racing_creates_never_overshoot_the_quota(apiserver, kubectl: Kubectl):
    """Twenty creates sent at once against a quota of 3 pods: exactly 3 are stored, the rest are kube's 403."""
    kubectl.run("create", "quota", "three", "--hard=pods=3")
    pki = apiserver.data_dir / "pki"
    tls = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    tls.load_cert_chain(pki / "admin.crt", pki / "admin.key")

    async def race() -> list[int]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=tls, limit=20)) as http:
            async def create(i: int) -> int:
                body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"p{i}"},
                        "spec": {"containers": [{"name": "app", "image": "nginx"}]}}
                async with http.post(f"{apiserver.url}/api/v1/namespaces/default/pods", json=body) as resp:
                    return resp.status
            return await asyncio.gather(*(create(i) for i in range(20)))

    codes = asyncio.run(race())
    assert sorted(codes) == [201] * 3 + [403] * 17
    assert len(kubectl.json("get", "pods")["items"]) == 3
    assert kubectl.json("get", "quota", "three")["status"]["used"] == {"pods": "3"}
