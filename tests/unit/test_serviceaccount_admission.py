"""kube's ServiceAccount admission: the token volume a new pod gets, and when it does not."""

from __future__ import annotations

import pytest

from labctl.apiserver.errors import APIError
from labctl.apiserver.scope import RequestScope
from labctl.kube.resources import resource_for
from labctl.kube.serviceaccount import MOUNT_PATH, VOLUME_PREFIX, token_volume, token_volume_source

PODS = RequestScope(resource_for("pods"), "default", None)


def pod(name: str = "web", **spec) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "nginx"}], **spec}}


def test_a_new_pod_gets_the_token_volume_mounted_read_only_in_every_container(api):
    created = api.create(PODS, pod(initContainers=[{"name": "init", "image": "busybox"}]))
    [volume] = created["spec"]["volumes"]
    assert volume["name"].startswith(VOLUME_PREFIX) and len(volume["name"]) == len(VOLUME_PREFIX) + 5
    assert volume["projected"] == token_volume_source() and token_volume(created) == volume["name"]
    sources = volume["projected"]["sources"]
    assert sources[1]["configMap"]["name"] == "kube-root-ca.crt"
    assert sources[2]["downwardAPI"]["items"][0]["fieldRef"]["fieldPath"] == "metadata.namespace"
    for c in created["spec"]["initContainers"] + created["spec"]["containers"]:
        assert c["volumeMounts"] == [{"name": volume["name"], "readOnly": True, "mountPath": MOUNT_PATH}]
    other = api.create(PODS, pod("web2"))
    assert other["spec"]["volumes"][0]["name"] != volume["name"]  # a random suffix per pod


def test_automount_false_on_the_pod_or_its_service_account_adds_nothing(api):
    created = api.create(PODS, pod(automountServiceAccountToken=False))
    assert "volumes" not in created["spec"] and "volumeMounts" not in created["spec"]["containers"][0]
    api.create(RequestScope(resource_for("serviceaccounts"), "default", None),
               {"metadata": {"name": "quiet"}, "automountServiceAccountToken": False})
    created = api.create(PODS, pod("quiet", serviceAccountName="quiet"))
    assert token_volume(created) is None and "volumes" not in created["spec"]
    created = api.create(PODS, pod("loud", serviceAccountName="quiet", automountServiceAccountToken=True))
    assert token_volume(created) is not None  # the pod's own setting wins


def test_a_container_with_its_own_mount_there_keeps_it(api):
    own = {"name": "mine", "mountPath": MOUNT_PATH}
    created = api.create(PODS, pod(volumes=[{"name": "mine", "emptyDir": {}}],
                                   containers=[{"name": "a", "image": "nginx", "volumeMounts": [own]},
                                               {"name": "b", "image": "nginx"}]))
    a, b = created["spec"]["containers"]
    assert a["volumeMounts"] == [own] and b["volumeMounts"][0]["mountPath"] == MOUNT_PATH
    assert created["spec"]["volumes"][0]["name"] == "mine" and token_volume(created)


def test_a_pod_written_back_from_get_is_accepted_and_keeps_its_volume(api):
    # kubectl get pod -o yaml > p.yaml; kubectl delete pod; kubectl apply -f p.yaml
    first = api.create(PODS, pod())
    again = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "again"}, "spec": first["spec"]}
    created = api.create(PODS, again)
    assert created["spec"]["volumes"] == first["spec"]["volumes"]
    assert created["spec"]["containers"][0]["volumeMounts"] == first["spec"]["containers"][0]["volumeMounts"]


def test_a_pod_of_a_service_account_that_does_not_exist_is_refused_naming_it(api):
    with pytest.raises(APIError) as err:
        api.create(PODS, pod("robot-pod", serviceAccountName="robot"))
    assert err.value.code == 403 and str(err.value.message) == (
        'pods "robot-pod" is forbidden: error looking up service account default/robot: serviceaccount "robot" '
        'not found')
    assert api.store.get(("core/pods", "default", "robot-pod")) is None
