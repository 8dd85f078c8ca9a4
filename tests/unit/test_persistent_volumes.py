"""Storage (PersistentVolumes): the default class, the scheduler's VolumeBinding, binding and provisioning choices."""

from __future__ import annotations

import pytest

from labctl.controllers._volumebinding import UnschedulableClaims, volume_nodes
from labctl.controllers.persistentvolume import delete_helper_pod, matching_volume, provisioned_volume
from labctl.kube.storage import access_modes, default_class, volume_node, volume_path

STANDARD = {"metadata": {"name": "standard", "creationTimestamp": "2026-01-01T00:00:00Z",
                         "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
            "provisioner": "rancher.io/local-path", "reclaimPolicy": "Delete",
            "volumeBindingMode": "WaitForFirstConsumer"}
FAST = {"metadata": {"name": "fast"}, "provisioner": "example.com/fast", "volumeBindingMode": "Immediate"}
CLAIM = {"metadata": {"name": "data", "namespace": "shop", "uid": "u1"},
         "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                  "storageClassName": "standard"}}


def pod(*claims: str) -> dict:
    return {"spec": {"volumes": [{"name": c, "persistentVolumeClaim": {"claimName": c}} for c in claims]}}


def test_the_default_class_is_the_annotated_one_the_newest_of_several():
    assert default_class([FAST, STANDARD]) is STANDARD
    assert default_class([FAST]) is None
    newer = {**STANDARD, "metadata": {**STANDARD["metadata"], "name": "newer",
                                      "creationTimestamp": "2026-02-01T00:00:00Z"}}
    assert default_class([STANDARD, newer]) is newer
    assert default_class([{**STANDARD, "metadata": {"name": "x", "annotations": {
        "storageclass.kubernetes.io/is-default-class": "True"}}}]) is None


def test_a_provisioned_volume_is_a_directory_of_the_consumers_node_bound_to_the_claim():
    pv = provisioned_volume(CLAIM, STANDARD, "worker2")
    assert pv["metadata"]["name"] == "pvc-u1"
    assert volume_path(pv) == "/var/local-path-provisioner/pvc-u1_shop_data"
    assert volume_node(pv) == "worker2"
    assert pv["spec"]["claimRef"] == {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": "shop",
                                      "name": "data", "uid": "u1"}
    assert (pv["spec"]["capacity"], pv["spec"]["persistentVolumeReclaimPolicy"]) == ({"storage": "1Gi"}, "Delete")
    helper = delete_helper_pod(pv, {"spec": {"containers": [{"image": "labctl/node:abc"}]}})
    assert helper["spec"]["nodeName"] == "worker2"
    assert helper["spec"]["containers"][0]["command"] == ["rm", "-rf", "/var/local-path-provisioner/pvc-u1_shop_data"]
    assert helper["spec"]["containers"][0]["image"] == "labctl/node:abc"


def test_a_claim_binds_the_smallest_available_volume_of_its_class_that_fits():
    def pv(name: str, size: str, modes: list[str], **spec) -> dict:
        return {"metadata": {"name": name}, "spec": {"capacity": {"storage": size}, "accessModes": modes,
                                                     "storageClassName": "manual", **spec}}
    claim = {**CLAIM, "spec": {**CLAIM["spec"], "storageClassName": "manual"}}
    volumes = [pv("big", "10Gi", ["ReadWriteOnce"]), pv("small", "500Mi", ["ReadWriteOnce"]),
               pv("fits", "2Gi", ["ReadWriteOnce", "ReadOnlyMany"]), pv("ro", "1Gi", ["ReadOnlyMany"]),
               pv("taken", "1Gi", ["ReadWriteOnce"], claimRef={"name": "other"})]
    assert matching_volume(claim, volumes)["metadata"]["name"] == "fits"
    assert matching_volume({**claim, "spec": {**claim["spec"], "storageClassName": "other"}}, volumes) is None


def test_volume_binding_pins_a_pod_to_its_bound_volumes_node_and_waits_for_what_is_missing():
    bound = {**CLAIM, "spec": {**CLAIM["spec"], "volumeName": "pvc-u1"}}
    pv = provisioned_volume(CLAIM, STANDARD, "worker2")
    claims = {"data": bound, "new": CLAIM, "fast": {**CLAIM, "spec": {"storageClassName": "fast"}}}
    classes = {"standard": STANDARD, "fast": FAST}

    def nodes(*names: str) -> frozenset[str] | None:
        return volume_nodes(pod(*names), claims.get, {"pvc-u1": pv}.get, classes.get)

    assert nodes() is None
    assert nodes("new") is None  # WaitForFirstConsumer: the pod's node will be the volume's
    assert nodes("data", "new") == {"worker2"}
    with pytest.raises(UnschedulableClaims, match='persistentvolumeclaim "gone" not found'):
        nodes("gone")
    with pytest.raises(UnschedulableClaims, match="pod has unbound immediate PersistentVolumeClaims"):
        nodes("fast")


def test_access_modes_print_in_kubes_order():
    assert access_modes(["ReadOnlyMany", "ReadWriteOnce"]) == "RWO,ROX"
    assert access_modes(None) == ""
