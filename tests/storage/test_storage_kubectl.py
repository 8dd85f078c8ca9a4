"""The real kubectl (v1.37) with StorageClasses, PersistentVolumes and claims against labctl's API server.

No controllers run here: what the API server alone answers — discovery, printer columns,
the ``(default)`` class, the DefaultStorageClass admission, upstream's validation errors.
Binding and mounting are the lab's (``tests/storage/test_storage_lab.py``).
"""

from __future__ import annotations

import pytest

from labctl.cluster.kubectl import Kubectl

pytestmark = pytest.mark.kubectl

CLASSES = """\
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations:
    storageclass.kubernetes.io/is-default-class: "true"
provisioner: rancher.io/local-path
volumeBindingMode: WaitForFirstConsumer
---
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: slow
provisioner: example.com/slow
reclaimPolicy: Retain
"""
CLAIM = """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: data
spec:
  accessModes: [ReadWriteOnce]
  resources:
    requests:
      storage: 1Gi
"""
VOLUME = """\
apiVersion: v1
kind: PersistentVolume
metadata:
  name: manual
spec:
  capacity:
    storage: 2Gi
  accessModes: [ReadWriteOnce, ReadOnlyMany]
  hostPath:
    path: /mnt/data
"""


def test_classes_volumes_and_claims_as_kubectl_shows_them(kubectl: Kubectl, tmp_path):
    (tmp_path / "sc.yaml").write_text(CLASSES)
    out = kubectl.run("apply", "-f", str(tmp_path / "sc.yaml")).stdout
    assert "storageclass.storage.k8s.io/standard created" in out

    header, *rows = kubectl.run("get", "sc").stdout.splitlines()
    assert header.split() == ["NAME", "PROVISIONER", "RECLAIMPOLICY", "VOLUMEBINDINGMODE", "ALLOWVOLUMEEXPANSION",
                              "AGE"]
    assert sorted(r.split()[:6] for r in rows) == [
        ["slow", "example.com/slow", "Retain", "Immediate", "false", rows[0].split()[-1]],
        ["standard", "(default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", "false"]]

    (tmp_path / "pvc.yaml").write_text(CLAIM)
    kubectl.run("apply", "-f", str(tmp_path / "pvc.yaml"))
    claim = kubectl.json("get", "pvc", "data")
    assert claim["spec"]["storageClassName"] == "standard"  # the DefaultStorageClass admission
    assert claim["status"]["phase"] == "Pending"
    assert claim["metadata"]["finalizers"] == ["kubernetes.io/pvc-protection"]  # StorageObjectInUseProtection
    header, row = kubectl.run("get", "pvc").stdout.splitlines()
    assert header.split() == ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS", "MODES", "STORAGECLASS",
                              "VOLUMEATTRIBUTESCLASS", "AGE"]
    assert row.split()[:4] == ["data", "Pending", "standard", "<unset>"]
    described = kubectl.run("describe", "pvc", "data").stdout
    assert "StorageClass:  standard" in described and "Status:        Pending" in described
    described = kubectl.run("describe", "sc", "standard").stdout
    assert "IsDefaultClass:  Yes" in described and "VolumeBindingMode:     WaitForFirstConsumer" in described

    (tmp_path / "pv.yaml").write_text(VOLUME)
    kubectl.run("apply", "-f", str(tmp_path / "pv.yaml"))
    header, row = kubectl.run("get", "pv").stdout.splitlines()
    assert header.split()[:8] == ["NAME", "CAPACITY", "ACCESS", "MODES", "RECLAIM", "POLICY", "STATUS", "CLAIM"]
    assert row.split()[:5] == ["manual", "2Gi", "RWO,ROX", "Retain", "Pending"]
    assert "persistentVolumeReclaimPolicy" in kubectl.run("explain", "pv.spec").stdout


def test_invalid_storage_objects_are_refused_with_upstream_field_paths(kubectl: Kubectl, tmp_path):
    (tmp_path / "bad.yaml").write_text(CLAIM.replace("[ReadWriteOnce]", "[ReadWriteSometimes]")
                                       .replace("1Gi", "0"))
    proc = kubectl.run("apply", "-f", str(tmp_path / "bad.yaml"), check=False)
    assert proc.returncode != 0
    assert 'The PersistentVolumeClaim "data" is invalid' in proc.stderr
    assert 'spec.accessModes: Unsupported value: "ReadWriteSometimes"' in proc.stderr
    assert "spec.resources[storage]: Invalid value: \"0\": must be greater than zero" in proc.stderr

    (tmp_path / "sc.yaml").write_text(CLASSES.split("---")[1].replace("Retain", "Recycle"))
    proc = kubectl.run("apply", "-f", str(tmp_path / "sc.yaml"), check=False)
    assert 'reclaimPolicy: Unsupported value: "Recycle"' in proc.stderr
