"""A typo in a manifest, with the real kubectl (v1.37): refused under Strict, dropped under Warn, never stored.

kubectl sends ``fieldValidation=Strict`` by default (``--validate=strict``) on create,
replace and apply; ``kubectl patch`` sends none, so the server's default, Warn, applies.
Every test checks what ``kubectl get`` shows afterwards: nothing, or the object without
the unknown field.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from labctl.cluster.kubectl import Kubectl

pytestmark = pytest.mark.kubectl

GOOD = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
             "template": {"metadata": {"labels": {"app": "web"}},
                          "spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
}
STRICT_ERROR = 'strict decoding error: unknown field "spec.replica"'
WARNING = 'Warning: unknown field "spec.replica"'


@pytest.fixture
def k(apiserver, kubectl_binary) -> Kubectl:
    return Kubectl(kubectl_binary, apiserver.kubeconfig)


def manifest(tmp_path: Path, name: str, spec_extra: dict) -> str:
    doc = json.loads(json.dumps(GOOD))
    doc["spec"].update(spec_extra)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def typo(tmp_path: Path) -> str:
    return manifest(tmp_path, "typo", {"replica": 3})


def nothing_stored(k: Kubectl) -> bool:
    return k.json("get", "deployments")["items"] == []


@pytest.mark.parametrize("verb", [("create",), ("apply",)])
def test_strict_create_of_a_typo_is_a_400_and_stores_nothing(k: Kubectl, tmp_path, verb):
    proc = k.run(*verb, "-f", typo(tmp_path), check=False)
    assert proc.returncode != 0
    assert f"Error from server (BadRequest): error when creating \"{typo(tmp_path)}\": Deployment in version " \
           f'"v1" cannot be handled as a Deployment: {STRICT_ERROR}' in proc.stderr
    assert nothing_stored(k)


def test_server_side_apply_refuses_a_typo_in_every_mode(k: Kubectl, tmp_path):
    for validate in ("strict", "warn", "ignore"):
        proc = k.run("apply", "--server-side", f"--validate={validate}", "-f", typo(tmp_path), check=False)
        assert proc.returncode != 0
        assert ("failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
                ".spec.replica: field not declared in schema") in proc.stderr
        assert nothing_stored(k)


def test_a_typo_changes_nothing_stored_by_apply_replace_or_server_side_apply(k: Kubectl, tmp_path):
    assert "deployment.apps/web created" in k.run("apply", "-f", manifest(tmp_path, "good", {})).stdout
    before = k.json("get", "deployment", "web")
    proc = k.run("apply", "-f", typo(tmp_path), check=False)
    assert proc.returncode != 0 and STRICT_ERROR in proc.stderr and "configured" not in proc.stdout
    proc = k.run("replace", "-f", typo(tmp_path), check=False)
    assert proc.returncode != 0 and STRICT_ERROR in proc.stderr
    proc = k.run("apply", "--server-side", "--force-conflicts", "-f", typo(tmp_path), check=False)
    assert proc.returncode != 0 and "field not declared in schema" in proc.stderr
    after = k.json("get", "deployment", "web")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_warn_stores_without_the_unknown_field_and_kubectl_prints_the_warning(k: Kubectl, tmp_path):
    proc = k.run("create", "--validate=warn", "-f", typo(tmp_path))
    assert WARNING in proc.stderr and "deployment.apps/web created" in proc.stdout
    spec = k.json("get", "deployment", "web")["spec"]
    assert "replica" not in spec and spec["replicas"] == 2

    proc = k.run("replace", "--validate=warn", "-f", manifest(tmp_path, "replaced", {"replica": 5, "replicas": 3}))
    assert WARNING in proc.stderr
    proc = k.run("apply", "--validate=warn", "-f", manifest(tmp_path, "applied", {"replica": 6, "replicas": 4}))
    assert WARNING in proc.stderr and "deployment.apps/web configured" in proc.stdout
    spec = k.json("get", "deployment", "web")["spec"]
    assert "replica" not in spec and spec["replicas"] == 4


@pytest.mark.parametrize("patch", [("--type=strategic", '{"spec":{"replica":4}}'),
                                   ("--type=merge", '{"spec":{"replica":4}}'),
                                   ("--type=json", '[{"op":"add","path":"/spec/replica","value":4}]')])
def test_kubectl_patch_with_a_typo_warns_and_stores_nothing_of_it(k: Kubectl, tmp_path, patch):
    """kubectl patch sends no fieldValidation: the server's default, Warn, as kube-apiserver's."""
    k.run("apply", "-f", manifest(tmp_path, "good", {}))
    proc = k.run("patch", "deployment", "web", *patch[:1], "-p", patch[1])
    assert WARNING in proc.stderr
    assert "replica" not in k.json("get", "deployment", "web")["spec"]
