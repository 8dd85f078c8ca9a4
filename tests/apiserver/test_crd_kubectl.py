"""CustomResourceDefinitions with the real kubectl: the first steps of an operator tutorial.

kubernetes.io's "Extend the Kubernetes API with CustomResourceDefinitions" page, as a learner
types it: the CronTab CRD applied and waited for (``condition=established``), a CronTab
applied, ``kubectl get crontab`` with the CRD's printer columns and ``kubectl get ct`` by its
short name, an object of the wrong type refused with the field's path, ``kubectl explain``;
then a cluster-scoped CRD whose deletion takes its objects with it. CRDs need no node, so a
real API server process serves them (a lab would add two minutes to the suite for nothing).
"""

from __future__ import annotations

import json

import pytest

from labctl.cluster.kubectl import Kubectl

pytestmark = [pytest.mark.kubectl]


@pytest.fixture(scope="module")
def k(shared_apiserver, kubectl_binary) -> Kubectl:
    return Kubectl(kubectl_binary, shared_apiserver.kubeconfig)

#: kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/
CRONTAB_CRD = """\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  # name must match the spec fields below, and be in the form: <plural>.<group>
  name: crontabs.stable.example.com
spec:
  # group name to use for REST API: /apis/<group>/<version>
  group: stable.example.com
  # list of versions supported by this CustomResourceDefinition
  versions:
    - name: v1
      # Each version can be enabled/disabled by Served flag.
      served: true
      # One and only one version must be marked as the storage version.
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                cronSpec:
                  type: string
                image:
                  type: string
                replicas:
                  type: integer
      additionalPrinterColumns:
      - name: Spec
        type: string
        description: The cron spec defining the interval a CronJob is run
        jsonPath: .spec.cronSpec
      - name: Replicas
        type: integer
        description: The number of jobs launched by the CronJob
        jsonPath: .spec.replicas
      - name: Age
        type: date
        jsonPath: .metadata.creationTimestamp
  # either Namespaced or Cluster
  scope: Namespaced
  names:
    # plural name to be used in the URL: /apis/<group>/<version>/<plural>
    plural: crontabs
    # singular name to be used as an alias on the CLI and for display
    singular: crontab
    # kind is normally the CamelCased singular type. Your resource manifests use this.
    kind: CronTab
    # shortNames allow shorter string to match your resource on the CLI
    shortNames:
    - ct
"""

MY_CRONTAB = """\
apiVersion: "stable.example.com/v1"
kind: CronTab
metadata:
  name: my-new-cron-object
spec:
  cronSpec: "* * * * */5"
  image: my-awesome-cron-image
  replicas: 2
"""


def backup_crd() -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "backups.lab.example.org"},
        "spec": {"group": "lab.example.org", "scope": "Cluster",
                 "names": {"plural": "backups", "kind": "Backup"},
                 "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                                   "type": "object", "required": ["target"],
                                   "properties": {"target": {"type": "string"},
                                                  "keep": {"type": "integer", "minimum": 1}}}}}}}]},
    }


def test_the_crontab_tutorial(k):
    # kubectl caches discovery before the CRD exists: the new group must still be found
    missing = k.run("get", "crontab", check=False)
    assert 'the server doesn\'t have a resource type "crontab"' in missing.stderr

    assert "customresourcedefinition.apiextensions.k8s.io/crontabs.stable.example.com created" in k.run(
        "apply", "-f", "-", input=CRONTAB_CRD).stdout
    waited = k.run("wait", "--for", "condition=established", "crd/crontabs.stable.example.com", "--timeout=60s")
    assert "condition met" in waited.stdout
    assert "crontab.stable.example.com/my-new-cron-object created" in k.run(
        "apply", "-f", "-", input=MY_CRONTAB).stdout

    header, *rows = k.run("get", "crontab").stdout.splitlines()
    assert header.split() == ["NAME", "SPEC", "REPLICAS", "AGE"]
    assert [r.split()[:7] for r in rows] == [["my-new-cron-object", "*", "*", "*", "*", "*/5", "2"]]
    assert k.json("get", "ct", "my-new-cron-object")["spec"] == {
        "cronSpec": "* * * * */5", "image": "my-awesome-cron-image", "replicas": 2}
    assert "unchanged" in k.run("apply", "-f", "-", input=MY_CRONTAB).stdout

    wrong = k.run("apply", "-f", "-", input=MY_CRONTAB.replace("my-new-cron-object", "bad").replace(
        "replicas: 2", "replicas: two"), check=False)
    assert wrong.returncode != 0
    assert ('spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"'
            in wrong.stderr)
    unknown = k.run("apply", "-f", "-", input=MY_CRONTAB.replace("replicas: 2", "replicas: 2\n  colour: blue"),
                    check=False)
    assert 'strict decoding error: unknown field "spec.colour"' in unknown.stderr

    explained = k.run("explain", "crontab.spec").stdout
    assert "replicas\t<integer>" in explained and "cronSpec\t<string>" in explained


def test_deleting_a_crd_deletes_its_objects(k):
    k.run("apply", "-f", "-", input=json.dumps(backup_crd()))
    k.run("wait", "--for", "condition=established", "crd/backups.lab.example.org", "--timeout=60s")
    for name in ("nightly", "weekly"):
        k.run("apply", "-f", "-", input=json.dumps({
            "apiVersion": "lab.example.org/v1alpha1", "kind": "Backup",
            "metadata": {"name": name, "labels": {"every": name}}, "spec": {"target": "db", "keep": 3}}))
    assert k.run("get", "backups", "-l", "every=nightly", "-o", "name").stdout.split() == [
        "backup.lab.example.org/nightly"]
    assert "namespace" not in k.json("get", "backup", "weekly")["metadata"]
    refused = k.run("apply", "-f", "-", check=False, input=json.dumps({
        "apiVersion": "lab.example.org/v1alpha1", "kind": "Backup", "metadata": {"name": "x"},
        "spec": {"keep": 0}}))
    assert "spec.target: Required value" in refused.stderr
    assert "spec.keep: Invalid value: 0: spec.keep in body should be greater than or equal to 1" in refused.stderr

    k.run("delete", "crd", "backups.lab.example.org")
    gone = k.run("get", "--raw", "/apis/lab.example.org/v1alpha1/backups", check=False)
    assert gone.returncode != 0 and "NotFound" in gone.stderr
    k.run("apply", "-f", "-", input=json.dumps(backup_crd()))
    k.run("wait", "--for", "condition=established", "crd/backups.lab.example.org", "--timeout=60s")
    assert k.json("get", "backups")["items"] == []
