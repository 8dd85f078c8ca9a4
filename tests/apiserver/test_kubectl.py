"""The real kubectl (v1.37) against labctl's API server process, with the course's manifests.

No controllers run here: objects just sit, as the issue says. What is checked is what a
student sees: kubectl's own output, columns and error messages.
"""

from __future__ import annotations

import codecs
import json
import os
import select
import stat
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from labctl.cluster.kubectl import Kubectl

pytestmark = pytest.mark.kubectl

COURSE = Path(__file__).resolve().parents[2] / "exercises" / "course"


@pytest.fixture
def k(apiserver, kubectl_binary) -> Kubectl:
    """kubectl against an API server of the test's own: the course's manifests have fixed names
    and NodePort 30000, so what one test applies must not be there for another (a server starts
    in under a second)."""
    return Kubectl(kubectl_binary, apiserver.kubeconfig)


def test_apply_course_manifests_created_unchanged_configured(k: Kubectl, tmp_path):
    out = k.run("apply", "-f", str(COURSE / "replicaset-example-1.yaml"), "-f", str(COURSE / "services-ex1.yaml")).stdout
    assert "replicaset.apps/example-1 created" in out
    assert "service/ex1-svc created" in out
    assert "service/ex1-svc-external created" in out

    again = k.run("apply", "-f", str(COURSE / "replicaset-example-1.yaml"), "-f", str(COURSE / "services-ex1.yaml")).stdout
    assert "replicaset.apps/example-1 unchanged" in again
    assert "service/ex1-svc unchanged" in again

    changed = (COURSE / "replicaset-example-1.yaml").read_text().replace("nginx:1.14.2", "nginx:1.16.1")
    (tmp_path / "rs.yaml").write_text(changed)
    assert "replicaset.apps/example-1 configured" in k.run("apply", "-f", str(tmp_path / "rs.yaml")).stdout
    rs = k.json("get", "rs", "example-1")
    assert rs["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.16.1"
    assert rs["metadata"]["generation"] == 2
    assert "kubectl.kubernetes.io/last-applied-configuration" in rs["metadata"]["annotations"]


def test_taken_node_port_rejects_second_service_and_keeps_the_first(k: Kubectl):
    k.run("apply", "-f", str(COURSE / "services-ex1.yaml"))
    proc = k.run("apply", "-f", str(COURSE / "rolling-update-example-2.yaml"), check=False)
    assert proc.returncode != 0
    assert "deployment.apps/example-2" in proc.stdout
    assert 'The Service "ex2-svc-external" is invalid' in proc.stderr
    assert "spec.ports[0].nodePort: Invalid value: 30000: provided port is already allocated" in proc.stderr
    assert k.run("get", "svc", "ex2-svc-external", check=False).returncode != 0
    assert k.json("get", "svc", "ex1-svc-external")["spec"]["ports"][0]["nodePort"] == 30000


def test_get_columns_like_a_real_cluster(k: Kubectl):
    k.run("apply", "-f", str(COURSE / "replicaset-example-1.yaml"), "-f", str(COURSE / "services-ex1.yaml"))
    rs = k.run("get", "rs").stdout.splitlines()
    assert rs[0].split() == ["NAME", "DESIRED", "CURRENT", "READY", "AGE"]
    assert rs[1].split()[:4] == ["example-1", "4", "0", "0"]
    wide = k.run("get", "rs", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-3:] == ["CONTAINERS", "IMAGES", "SELECTOR"]
    assert "app=web" in wide[1]

    svc = k.run("get", "svc").stdout
    header, *rows = svc.splitlines()
    assert header.split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    by_name = {r.split()[0]: r.split() for r in rows}
    assert by_name["kubernetes"][1:5] == ["ClusterIP", "10.96.0.1", "<none>", "443/TCP"]
    assert by_name["ex1-svc-external"][1] == "NodePort"
    assert by_name["ex1-svc-external"][4] == "80:30000/TCP"
    assert by_name["ex1-svc"][2].startswith("10.")

    assert k.run("get", "rs", "example-1", "-o", "jsonpath={.spec.replicas}").stdout == "4"
    assert yaml.safe_load(k.run("get", "svc", "ex1-svc", "-o", "yaml").stdout)["spec"]["ports"][0]["targetPort"] == 80
    assert k.run("get", "rs", "-l", "purpose=learning", "-o", "name").stdout.strip() == "replicaset.apps/example-1"
    assert k.run("get", "rs", "-l", "purpose in (other)", "-o", "name").stdout.strip() == ""

    ns = k.run("get", "namespaces", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system", "namespace/kube-public", "namespace/kube-node-lease"} <= set(ns)
    assert "serviceaccount/default" in k.run("get", "serviceaccounts", "-o", "name").stdout


class JSONStream:
    """The objects a running ``kubectl … -o json`` prints, read as they come."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.fd = proc.stdout.fileno()
        self.utf8 = codecs.getincrementaldecoder("utf-8")()
        self.text = ""
        self.objects: list[dict] = []

    def wait_for(self, count: int, timeout: float = 10) -> list[dict]:
        """The first ``count`` objects; fail after ``timeout`` seconds with what came."""
        decoder, deadline = json.JSONDecoder(), time.monotonic() + timeout
        while len(self.objects) < count:
            ready, _, _ = select.select([self.fd], [], [], max(deadline - time.monotonic(), 0))
            chunk = os.read(self.fd, 65536) if ready else b""
            if not chunk:
                raise AssertionError(f"expected {count} objects from kubectl, got {self.objects} and {self.text!r}")
            self.text = (self.text + self.utf8.decode(chunk)).lstrip()
            while self.text:
                try:
                    obj, end = decoder.raw_decode(self.text)
                except json.JSONDecodeError:
                    break  # the rest of this object is still to come
                self.objects.append(obj)
                self.text = self.text[end:].lstrip()
        return self.objects[:count]


def test_watch_receives_a_change(k: Kubectl):
    k.run("create", "configmap", "watched", "--from-literal=a=1")
    watch = k.popen("get", "configmap", "watched", "--watch", "-o", "json")
    try:
        stream = JSONStream(watch)
        # the object as listed first; kubectl then watches from the list's resourceVersion
        assert [o["data"]["a"] for o in stream.wait_for(1)] == ["1"]
        k.run("patch", "configmap", "watched", "--type=merge", "-p", '{"data":{"a":"2"}}')
        assert [o["data"]["a"] for o in stream.wait_for(2)] == ["1", "2"]
    finally:
        watch.kill()
        watch.wait()
        watch.stdout.close()
        watch.stderr.close()


def test_describe_label_annotate_scale_set_image(k: Kubectl):
    k.run("apply", "-f", str(COURSE / "replicaset-example-1.yaml"), "-f", str(COURSE / "services-ex1.yaml"))
    described = k.run("describe", "rs", "example-1").stdout
    assert "Replicas:" in described and "Pod Template:" in described and "nginx" in described
    assert "NodePort:" in k.run("describe", "svc", "ex1-svc-external").stdout

    assert "labeled" in k.run("label", "rs", "example-1", "tier=frontend").stdout
    assert k.json("get", "rs", "example-1")["metadata"]["labels"]["tier"] == "frontend"
    k.run("label", "rs", "example-1", "tier-")
    assert "tier" not in k.json("get", "rs", "example-1")["metadata"]["labels"]
    assert "annotated" in k.run("annotate", "rs", "example-1", "owner=class-3").stdout

    assert "scaled" in k.run("scale", "rs", "example-1", "--replicas=6").stdout
    assert k.json("get", "rs", "example-1")["spec"]["replicas"] == 6
    k.run("scale", "rs", "example-1", "--replicas=4")

    k.run("apply", "-f", str(COURSE / "rolling-update-example-2.yaml"), check=False)
    assert "image updated" in k.run("set", "image", "deployment/example-2", "web=nginx:1.16.1").stdout
    deploy = k.json("get", "deployment", "example-2")
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.16.1"
    assert deploy["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    assert deploy["spec"]["progressDeadlineSeconds"] == 600


def test_edit_with_editor_script(k: Kubectl, tmp_path):
    k.run("create", "configmap", "editme", "--from-literal=color=blue")
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nsed -i 's/color: blue/color: green/' \"$1\"\n")
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    out = k.run("edit", "configmap", "editme", env={"EDITOR": str(editor), "KUBE_EDITOR": str(editor)}).stdout
    assert "configmap/editme edited" in out
    assert k.json("get", "configmap", "editme")["data"]["color"] == "green"


def test_delete_by_label_and_all(k: Kubectl):
    for i in range(3):
        k.run("create", "configmap", f"del-{i}", "--from-literal=x=1")
    k.run("label", "configmap", "del-0", "del-1", "doomed=yes")
    out = k.run("delete", "configmap", "-l", "doomed=yes").stdout
    assert 'configmap "del-0" deleted' in out and 'configmap "del-1" deleted' in out
    assert k.run("get", "configmap", "del-2", "-o", "name").stdout.strip() == "configmap/del-2"
    k.run("create", "namespace", "scratch")
    k.run("create", "configmap", "a", "-n", "scratch")
    k.run("create", "configmap", "b", "-n", "scratch")
    k.run("delete", "configmap", "--all", "-n", "scratch")
    assert k.run("get", "configmap", "-n", "scratch", "-o", "name").stdout.strip() == ""


def test_explain(k: Kubectl):
    out = k.run("explain", "pods.spec.containers.ports").stdout
    assert "containerPort" in out and "FIELDS:" in out
    assert "maxSurge" in k.run("explain", "deployment.spec.strategy.rollingUpdate").stdout


def test_bad_input_gets_kubernetes_errors_and_changes_nothing(k: Kubectl, tmp_path):
    def store_revision() -> str:
        return k.json("get", "namespaces")["metadata"]["resourceVersion"]

    k.run("apply", "-f", str(COURSE / "replicaset-example-1.yaml"))
    before = store_revision()

    (tmp_path / "broken.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [oops\n")
    proc = k.run("apply", "-f", str(tmp_path / "broken.yaml"), check=False)
    assert proc.returncode != 0 and "yaml" in proc.stderr.lower()

    (tmp_path / "unknown.yaml").write_text("apiVersion: v1\nkind: Gizmo\nmetadata:\n  name: g\n")
    proc = k.run("apply", "-f", str(tmp_path / "unknown.yaml"), check=False)
    assert proc.returncode != 0 and 'no matches for kind "Gizmo" in version "v1"' in proc.stderr

    proc = k.run("create", "configmap", "Bad_Name", check=False)
    assert proc.returncode != 0
    assert 'ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name"' in proc.stderr

    mismatch = yaml.safe_load((COURSE / "replicaset-example-1.yaml").read_text())
    mismatch["metadata"]["name"] = "mismatch"
    mismatch["spec"]["template"]["metadata"]["labels"] = {"app": "other"}
    (tmp_path / "mismatch.yaml").write_text(yaml.safe_dump(mismatch))
    proc = k.run("apply", "-f", str(tmp_path / "mismatch.yaml"), check=False)
    assert proc.returncode != 0
    assert "spec.template.metadata.labels: Invalid value" in proc.stderr
    assert "`selector` does not match template `labels`" in proc.stderr

    typo = yaml.safe_load((COURSE / "replicaset-example-1.yaml").read_text())
    typo["metadata"]["name"] = "typo"
    typo["spec"]["replica"] = 3
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(typo))
    proc = k.run("apply", "-f", str(tmp_path / "typo.yaml"), check=False)
    assert proc.returncode != 0 and 'unknown field "spec.replica"' in proc.stderr

    stale = k.json("get", "rs", "example-1")
    k.run("label", "rs", "example-1", "bump=1")
    before = store_revision()
    stale["metadata"]["labels"]["stale"] = "yes"
    (tmp_path / "stale.json").write_text(json.dumps(stale))
    proc = k.run("replace", "-f", str(tmp_path / "stale.json"), check=False)
    assert proc.returncode != 0
    assert "Operation cannot be fulfilled on replicasets.apps \"example-1\": the object has been modified" in proc.stderr

    big = tmp_path / "big.txt"
    big.write_text("x" * (4 * 1024 * 1024))
    proc = k.run("create", "configmap", "huge", f"--from-file={big}", check=False)
    assert proc.returncode != 0 and "too large" in proc.stderr.lower()

    assert store_revision() == before
    assert k.run("get", "configmap", "huge", check=False).returncode != 0
    assert "stale" not in k.json("get", "rs", "example-1")["metadata"]["labels"]


def test_a_failed_json_patch_test_reads_as_kubes_422(k: Kubectl):
    k.run("create", "configmap", "settings", "--from-literal=mode=a")
    proc = k.run("patch", "configmap", "settings", "--type=json",
                 "-p", '[{"op":"test","path":"/data/mode","value":"b"},{"op":"replace","path":"/data/mode","value":"c"}]',
                 check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip() == "The request is invalid: : testing value /data/mode failed: test failed"
    assert k.json("get", "configmap", "settings")["data"] == {"mode": "a"}


def test_a_patch_that_changes_nothing_is_no_change_and_keeps_the_resource_version(k: Kubectl):
    """kube writes nothing for an update that changes nothing; kubectl then says "(no change)"."""
    k.run("create", "configmap", "settings", "--from-literal=mode=a")
    before = k.json("get", "configmap", "settings")["metadata"]["resourceVersion"]
    assert k.run("patch", "configmap", "settings", "-p", '{"data":{"mode":"a"}}').stdout.strip() == \
        "configmap/settings patched (no change)"
    assert k.run("label", "configmap", "settings", "tier=web").stdout.strip() == "configmap/settings labeled"
    after = k.json("get", "configmap", "settings")["metadata"]["resourceVersion"]
    assert after != before
    assert k.run("patch", "configmap", "settings", "--type=merge", "-p", '{"metadata":{"labels":{"tier":"web"}}}'
                 ).stdout.strip() == "configmap/settings patched (no change)"
    assert k.json("get", "configmap", "settings")["metadata"]["resourceVersion"] == after


def test_no_credentials_is_unauthorized(k: Kubectl, apiserver, tmp_path):
    config = yaml.safe_load(apiserver.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": "not-a-valid-token"}
    anon = tmp_path / "anon.kubeconfig"
    anon.write_text(yaml.safe_dump(config))
    proc = Kubectl(k.binary, anon).run("get", "pods", check=False)
    assert proc.returncode != 0
    assert "You must be logged in to the server" in proc.stderr or "Unauthorized" in proc.stderr
