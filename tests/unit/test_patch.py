"""Patch engines: strategic merge patch (apimachinery's cases + what kubectl sends), merge patch, JSON patch."""

from __future__ import annotations

import json

import pytest
import yaml

from labctl.apiserver.errors import APIError
from labctl.apiserver.openapi import PatchMeta
from labctl.apiserver.patch import apply_strategic_merge, json_patch, merge_patch, strategic_merge_patch

# The schema of apimachinery's test type ``MergeItem`` (patch_test.go), as OpenAPI.
_LIST = {"type": "array", "items": {"$ref": "#/components/schemas/mergeItem"}}
_INTS = {"type": "array", "items": {"type": "integer"}}
_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_MERGING = {**_LIST, "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"}
TEST_SCHEMAS = {
    "mergeItem": {"type": "object", "properties": {
        "name": {"type": "string"}, "value": {"type": "string"}, "other": {"type": "string"},
        "mergingList": _MERGING,
        "nonMergingList": _LIST,
        "mergingIntList": {**_INTS, "x-kubernetes-patch-strategy": "merge"},
        "nonMergingIntList": _INTS,
        "mergeItemPtr": {"allOf": [{"$ref": "#/components/schemas/mergeItem"}],
                         "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name"},
        "simpleMap": _MAP,
        "replacingItem": {"type": "object", "x-kubernetes-patch-strategy": "replace"},
        "retainKeysMap": {"allOf": [{"$ref": "#/components/schemas/retainKeysMergeItem"}],
                          "x-kubernetes-patch-strategy": "retainKeys"},
        "retainKeysMergingList": {**_MERGING, "x-kubernetes-patch-strategy": "merge,retainKeys"},
    }},
    "retainKeysMergeItem": {"type": "object", "properties": {
        "name": {"type": "string"}, "value": {"type": "string"}, "other": {"type": "string"},
        "simpleMap": _MAP, "mergingList": _MERGING, "nonMergingList": _LIST,
        "mergingIntList": {**_INTS, "x-kubernetes-patch-strategy": "merge"},
    }},
}
MERGE_ITEM = PatchMeta(TEST_SCHEMAS["mergeItem"], TEST_SCHEMAS)

# (description, original, patch, expected) ported from apimachinery's patch_test.go
# (customStrategicMergePatchTestCaseData, createStrategicMergePatchTestCaseData and the raw
# cases: the two-way patch applied to the original must give the modified object).
APIMACHINERY_CASES = yaml.safe_load(r"""
- [unique scalars when merging lists, {mergingIntList: [1, 2]}, {mergingIntList: [2, 3]}, {mergingIntList: [1, 2, 3]}]
- [delete map from nested map, {simpleMap: {key1: "1", key2: "1"}}, {simpleMap: {$patch: delete}}, {simpleMap: {}}]
- [delete all items from merging list, {mergingList: [{name: 1}, {name: 2}]}, {mergingList: [{$patch: replace}]}, {mergingList: []}]
- [merge empty merging lists, {mergingList: []}, {mergingList: []}, {mergingList: []}]
- [delete all keys from map, {name: 1, value: 1}, {$patch: replace}, {}]
- [add key and delete all keys from map, {name: 1, value: 1}, {other: a, $patch: replace}, {other: a}]
- - delete all duplicate entries in a merging list
  - {mergingList: [{name: 1}, {name: 1}, {name: 2, value: a}, {name: 3}, {name: 3}]}
  - {mergingList: [{name: 1, $patch: delete}, {name: 3, $patch: delete}]}
  - {mergingList: [{name: 2, value: a}]}
- [retainKeys map can add a field without directive, {retainKeysMap: {name: foo}}, {retainKeysMap: {value: bar}}, {retainKeysMap: {name: foo, value: bar}}]
- [retainKeys map can delete a field without directive, {retainKeysMap: {name: foo, value: a}}, {retainKeysMap: {value: null}}, {retainKeysMap: {name: foo}}]
- [retainKeys map merges an empty map, {retainKeysMap: {name: foo, value: a}}, {retainKeysMap: {}}, {retainKeysMap: {name: foo, value: a}}]
- - retainKeys list can change a field without directive
  - {retainKeysMergingList: [{name: bar}, {name: foo, value: a}]}
  - {retainKeysMergingList: [{name: foo, value: b}]}
  - {retainKeysMergingList: [{name: bar}, {name: foo, value: b}]}
- - preserve the order from the patch in a merging list
  - {mergingList: [{name: 1}, {name: 2, value: b}, {name: 3}]}
  - {mergingList: [{name: 3, value: c}, {name: 1, value: a}, {name: 2, other: x}]}
  - {mergingList: [{name: 3, value: c}, {name: 1, value: a}, {name: 2, value: b, other: x}]}
- - preserve the order from the patch in a merging list 2
  - {mergingList: [{name: 1}, {name: 2, value: b}, {name: 3}]}
  - {mergingList: [{name: 3, value: c}, {name: 1, value: a}]}
  - {mergingList: [{name: 2, value: b}, {name: 3, value: c}, {name: 1, value: a}]}
- [preserve the order from the patch in a merging int list, {mergingIntList: [1, 2, 3]}, {mergingIntList: [3, 1, 2]}, {mergingIntList: [3, 1, 2]}]
- [preserve the order from the patch in a merging int list 2, {mergingIntList: [1, 2, 3]}, {mergingIntList: [3, 1]}, {mergingIntList: [2, 3, 1]}]
- - $setElementOrder contains an item not present in the list to be merged
  - {mergingList: [{name: 1}, {name: 3}]}
  - {$setElementOrder/mergingList: [{name: 3}, {name: 2}, {name: 1}], mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]}
  - {mergingList: [{name: 3, value: 3}, {name: 1, value: 1}]}
- [$setElementOrder contains an item not present in the int list, {mergingIntList: [1, 3]}, {$setElementOrder/mergingIntList: [3, 2, 1]}, {mergingIntList: [3, 1]}]
- [$deleteFromPrimitiveList of a missing item adds nothing, {mergingIntList: [1, 2]}, {$deleteFromPrimitiveList/mergingIntList: [3]}, {mergingIntList: [1, 2]}]
- [$deleteFromPrimitiveList on a missing list adds no list, {foo: [bar]}, {$deleteFromPrimitiveList/mergingIntList: [3]}, {foo: [bar]}]
- [$deleteFromPrimitiveList deletes from a merge list, {mergingIntList: [1, 2, 3]}, {$deleteFromPrimitiveList/mergingIntList: [2]}, {mergingIntList: [1, 3]}]
- [nil original, {}, {name: 1, value: 1}, {name: 1, value: 1}]
- [add field and delete field from map, {name: 1}, {name: null, value: 1}, {value: 1}]
- [delete field from nested map, {simpleMap: {key1: "1", key2: "1"}}, {simpleMap: {key2: null}}, {simpleMap: {key1: "1"}}]
- [replace list of scalars, {nonMergingIntList: [1, 2]}, {nonMergingIntList: [2, 3]}, {nonMergingIntList: [2, 3]}]
- [delete all maps from merging list, {mergingList: [{name: 1}, {name: 2}]}, {mergingList: [{name: 1, $patch: delete}, {name: 2, $patch: delete}]}, {mergingList: []}]
- [null for an absent key is dropped, {name: 2}, {name: 1, value: 1, other: null}, {name: 1, value: 1}]
- - nested patch merge with empty list (three-way patch on current)
  - {name: hi, mergingList: [{name: hello2}]}
  - {$setElementOrder/mergingList: [{name: hello}, {name: doesntexist}], mergingList: [{name: hello}, {$patch: delete, name: doesntexist}]}
  - {name: hi, mergingList: [{name: hello}, {name: hello2}]}
- - delete items in lists of scalars (three-way)
  - {mergingIntList: [1, 2, 3, 4]}
  - {$setElementOrder/mergingIntList: [1, 2], $deleteFromPrimitiveList/mergingIntList: [3]}
  - {mergingIntList: [1, 2, 4]}
- - delete all duplicate items in lists of scalars
  - {mergingIntList: [1, 2, 3, 3, 4]}
  - {$setElementOrder/mergingIntList: [1, 2], $deleteFromPrimitiveList/mergingIntList: [3]}
  - {mergingIntList: [1, 2, 4]}
- - add and delete items in lists of scalars
  - {mergingIntList: [1, 2, 3]}
  - {$setElementOrder/mergingIntList: [1, 2, 4], $deleteFromPrimitiveList/mergingIntList: [3], mergingIntList: [4]}
  - {mergingIntList: [1, 2, 4]}
- - merge lists of maps (three-way on current)
  - {mergingList: [{name: 1, other: a}, {name: 2, value: 2, other: b}]}
  - {$setElementOrder/mergingList: [{name: 4}, {name: 1}, {name: 2}, {name: 3}], mergingList: [{name: 4, value: 4}, {name: 3, value: 3}]}
  - {mergingList: [{name: 4, value: 4}, {name: 1, other: a}, {name: 2, value: 2, other: b}, {name: 3, value: 3}]}
- - retainKeys directive clears keys not listed
  - {retainKeysMap: {name: foo, value: a, other: b}}
  - {retainKeysMap: {$retainKeys: [name, value], value: c}}
  - {retainKeysMap: {name: foo, value: c}}
- - replace strategy replaces a map
  - {replacingItem: {a: 1, b: 2}}
  - {replacingItem: {c: 3}}
  - {replacingItem: {c: 3}}
- - non-merging list of maps is replaced
  - {nonMergingList: [{name: 1, value: a}]}
  - {nonMergingList: [{name: 2}]}
  - {nonMergingList: [{name: 2}]}
- - merge key on a single map field (mergeItemPtr) merges the map
  - {mergeItemPtr: {name: a, value: 1}}
  - {mergeItemPtr: {other: x}}
  - {mergeItemPtr: {name: a, value: 1, other: x}}
""")


@pytest.mark.parametrize("description,original,patch,expected", APIMACHINERY_CASES, ids=[c[0] for c in APIMACHINERY_CASES])
def test_apimachinery_cases(description: str, original: dict, patch: dict, expected: dict) -> None:
    assert apply_strategic_merge(original, patch, MERGE_ITEM) == expected


@pytest.mark.parametrize("original,patch,code,text", [
    ({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]},
     {"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
      "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]}, 422, "doesn't match"),
    ({"mergingIntList": [1, 3, 2]},
     {"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]}, 422, "doesn't match"),
    ({"mergingList": [{"name": 1, "value": "a"}]}, {"mergingList": [{"value": "b"}]}, 422,
     "map: map[value:b] does not contain declared merge key: name"),
    ({"mergingList": [{"name": 1}]}, {"mergingList": [{"name": 1, "$patch": "bogus"}]}, 422, "unknown patch type: bogus"),
    ({"name": "a"}, {"$patch": "bogus"}, 422, "unknown patch type: bogus in map: map[$patch:bogus]"),
    ({"retainKeysMap": {"name": "a"}}, {"retainKeysMap": {"$retainKeys": ["name"], "value": "b"}}, 400,
     "invalid patch format of retainKeys"),
    ({"retainKeysMap": {"name": "a"}}, {"retainKeysMap": {"$retainKeys": "name"}}, 400, "invalid patch format of retainKeys"),
    ({"mergingList": [{"name": 1}]}, {"$setElementOrder": [{"name": 1}]}, 400, "invalid patch format of setElementOrder list"),
    ({"mergingIntList": [[1]]}, {"mergingIntList": [[2]]}, 422, "the server rejected our request"),
])
def test_strategic_merge_errors_answer_like_kube(original: dict, patch: dict, code: int, text: str) -> None:
    with pytest.raises(APIError) as info:
        apply_strategic_merge(original, patch, MERGE_ITEM)
    assert info.value.code == code
    assert text in info.value.message


def test_strategic_merge_leaves_inputs_untouched() -> None:
    live = {"mergingList": [{"name": 1, "value": "a"}]}
    patch = {"mergingList": [{"name": 1, "value": "b"}, {"name": 2}]}
    before = json.dumps([live, patch])
    apply_strategic_merge(live, patch, MERGE_ITEM)
    assert json.dumps([live, patch]) == before


def test_non_object_patch_is_bad_request() -> None:
    with pytest.raises(APIError) as info:
        strategic_merge_patch({}, ["x"], "v1", "Pod")
    assert (info.value.code, info.value.message) == (400, "invalid JSON document")


# --- what kubectl sends for the served kinds (merge keys come from the OpenAPI schema) ---

def _deployment(containers: list[dict], **spec: object) -> dict:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web", "tier": "front"},
                     "finalizers": ["a.example/x", "b.example/y"]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                 "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers, **spec}}},
    }


def _template_patch(spec: dict) -> dict:
    return {"spec": {"template": {"spec": spec}}}


def _containers(obj: dict) -> list[dict]:
    return obj["spec"]["template"]["spec"]["containers"]


NGINX = {"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80, "protocol": "TCP"}],
         "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
         "volumeMounts": [{"name": "data", "mountPath": "/data"}]}
SIDECAR = {"name": "sidecar", "image": "busybox", "command": ["sleep", "3600"]}


def test_apply_image_change_touches_only_that_container() -> None:
    live = _deployment([NGINX, SIDECAR])
    patch = _template_patch({"$setElementOrder/containers": [{"name": "nginx"}, {"name": "sidecar"}],
                             "containers": [{"image": "nginx:1.27", "name": "nginx"}]})
    out = strategic_merge_patch(live, patch, "apps/v1", "Deployment")
    assert _containers(out) == [{**NGINX, "image": "nginx:1.27"}, SIDECAR]


def test_apply_adds_a_container_in_the_configured_order() -> None:
    live = _deployment([NGINX, SIDECAR])
    patch = _template_patch({"$setElementOrder/containers": [{"name": "nginx"}, {"name": "log"}, {"name": "sidecar"}],
                             "containers": [{"image": "fluentbit", "name": "log"}]})
    out = strategic_merge_patch(live, patch, "apps/v1", "Deployment")
    assert [c["name"] for c in _containers(out)] == ["nginx", "log", "sidecar"]


def test_apply_removes_a_container() -> None:
    live = _deployment([NGINX, SIDECAR])
    patch = _template_patch({"$setElementOrder/containers": [{"name": "nginx"}],
                             "containers": [{"$patch": "delete", "name": "sidecar"}]})
    assert _containers(strategic_merge_patch(live, patch, "apps/v1", "Deployment")) == [NGINX]


def test_apply_removes_an_env_var_and_keeps_the_rest_of_the_container() -> None:
    live = _deployment([NGINX])
    patch = _template_patch({"$setElementOrder/containers": [{"name": "nginx"}], "containers": [
        {"$setElementOrder/env": [{"name": "A"}], "env": [{"$patch": "delete", "name": "B"}], "name": "nginx"}]})
    out = _containers(strategic_merge_patch(live, patch, "apps/v1", "Deployment"))[0]
    assert out["env"] == [{"name": "A", "value": "1"}]
    assert out["ports"] == NGINX["ports"] and out["volumeMounts"] == NGINX["volumeMounts"]


def test_apply_changes_a_container_port_by_its_merge_key() -> None:
    live = _deployment([NGINX])
    patch = _template_patch({"$setElementOrder/containers": [{"name": "nginx"}], "containers": [
        {"$setElementOrder/ports": [{"containerPort": 8080}], "name": "nginx",
         "ports": [{"containerPort": 8080}, {"$patch": "delete", "containerPort": 80}]}]})
    out = _containers(strategic_merge_patch(live, patch, "apps/v1", "Deployment"))[0]
    assert out["ports"] == [{"containerPort": 8080}]


def test_apply_removes_a_label_with_null() -> None:
    live = _deployment([NGINX])
    out = strategic_merge_patch(live, {"metadata": {"labels": {"tier": None}}}, "apps/v1", "Deployment")
    assert out["metadata"]["labels"] == {"app": "web"}


def test_finalizers_merge_as_a_set_and_delete_from_primitive_list() -> None:
    live = _deployment([NGINX])
    added = strategic_merge_patch(live, {"metadata": {"finalizers": ["c.example/z", "a.example/x"]}}, "apps/v1", "Deployment")
    assert sorted(added["metadata"]["finalizers"]) == ["a.example/x", "b.example/y", "c.example/z"]
    removed = strategic_merge_patch(live, {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a.example/x"]}},
                                    "apps/v1", "Deployment")
    assert removed["metadata"]["finalizers"] == ["b.example/y"]


def test_switching_to_recreate_drops_rolling_update_through_retain_keys() -> None:
    live = _deployment([NGINX])
    patch = {"spec": {"strategy": {"$retainKeys": ["type"], "rollingUpdate": None, "type": "Recreate"}}}
    assert strategic_merge_patch(live, patch, "apps/v1", "Deployment")["spec"]["strategy"] == {"type": "Recreate"}


def test_volume_source_change_with_retain_keys() -> None:
    live = _deployment([NGINX], volumes=[{"name": "data", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}])
    patch = _template_patch({"$setElementOrder/volumes": [{"name": "data"}, {"name": "tmp"}], "volumes": [
        {"$retainKeys": ["configMap", "name"], "configMap": {"name": "cfg"}, "name": "data"}]})
    out = strategic_merge_patch(live, patch, "apps/v1", "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert out == [{"name": "data", "configMap": {"name": "cfg"}}, {"name": "tmp", "emptyDir": {}}]


def test_tolerations_have_no_merge_key_so_the_list_is_replaced() -> None:
    live = _deployment([NGINX], tolerations=[{"key": "a", "operator": "Exists"}])
    patch = _template_patch({"tolerations": [{"key": "b", "operator": "Exists"}]})
    out = strategic_merge_patch(live, patch, "apps/v1", "Deployment")
    assert out["spec"]["template"]["spec"]["tolerations"] == [{"key": "b", "operator": "Exists"}]


def test_service_ports_merge_by_port() -> None:
    live = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"ports": [{"name": "http", "port": 80, "targetPort": 8080}, {"name": "https", "port": 443}]}}
    patch = {"spec": {"$setElementOrder/ports": [{"port": 80}, {"port": 443}], "ports": [{"port": 80, "targetPort": 9090}]}}
    out = strategic_merge_patch(live, patch, "v1", "Service")["spec"]["ports"]
    assert out == [{"name": "http", "port": 80, "targetPort": 9090}, {"name": "https", "port": 443}]


def test_pod_status_conditions_merge_by_type() -> None:
    live = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "True"}, {"type": "Ready", "status": "False"}]}}
    patch = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}
    out = strategic_merge_patch(live, patch, "v1", "Pod")["status"]
    assert out == {"phase": "Running", "conditions": [{"type": "PodScheduled", "status": "True"},
                                                       {"type": "Ready", "status": "True"}]}


def test_owner_references_merge_by_uid() -> None:
    live = {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "rs", "ownerReferences": [
        {"uid": "1", "kind": "Deployment", "name": "a"}]}}
    patch = {"metadata": {"ownerReferences": [{"uid": "2", "kind": "Deployment", "name": "b"}]}}
    out = strategic_merge_patch(live, patch, "apps/v1", "ReplicaSet")["metadata"]["ownerReferences"]
    # Without $setElementOrder, apimachinery puts items named in the patch first.
    assert [o["uid"] for o in out] == ["2", "1"]


def test_kubectl_scale_and_rollout_restart_patches() -> None:
    live = _deployment([NGINX])
    scaled = strategic_merge_patch(live, {"spec": {"replicas": 5}}, "apps/v1", "Deployment")
    assert scaled["spec"]["replicas"] == 5
    restart = {"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}}}}
    out = strategic_merge_patch(live, restart, "apps/v1", "Deployment")["spec"]["template"]["metadata"]
    assert out == {"labels": {"app": "web"}, "annotations": {"kubectl.kubernetes.io/restartedAt": "now"}}


def test_new_list_items_lose_their_nulls_and_directives() -> None:
    live = _deployment([NGINX])
    patch = _template_patch({"containers": [{"name": "new", "image": "x", "args": None,
                                             "$setElementOrder/env": [{"name": "E"}], "env": [{"name": "E", "value": "1"}]}]})
    new = _containers(strategic_merge_patch(live, patch, "apps/v1", "Deployment"))[0]  # patch items first
    assert new == {"name": "new", "image": "x", "env": [{"name": "E", "value": "1"}]}


def test_unknown_kind_merges_maps_and_replaces_lists() -> None:
    live = {"spec": {"items": [{"name": "a"}], "m": {"x": 1}}}
    out = strategic_merge_patch(live, {"spec": {"items": [{"name": "b"}], "m": {"y": 2}}}, "example.com/v1", "Widget")
    assert out == {"spec": {"items": [{"name": "b"}], "m": {"x": 1, "y": 2}}}


# --- JSON merge patch: RFC 7386 appendix A ----------------------------------------------

RFC7386 = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize("target,patch,expected", RFC7386)
def test_merge_patch_rfc7386_examples(target: dict, patch: dict, expected: dict) -> None:
    assert merge_patch(target, patch) == expected


@pytest.mark.parametrize("target,patch,expected", [(["a", "b"], ["c", "d"], ["c", "d"]), ({"a": "b"}, ["c"], ["c"]),
                                                   ({"a": "foo"}, "bar", "bar"), ("string", {"a": None}, {})])
def test_merge_patch_rfc7386_non_object_values_inside_a_field(target: object, patch: object, expected: object) -> None:
    assert merge_patch({"x": target}, {"x": patch}) == {"x": expected}


def test_merge_patch_replaces_lists_and_rejects_non_objects() -> None:
    live = _deployment([NGINX, SIDECAR])
    out = merge_patch(live, _template_patch({"containers": [{"name": "only"}]}))
    assert _containers(out) == [{"name": "only"}]
    assert _containers(live) == [NGINX, SIDECAR]
    with pytest.raises(APIError) as info:
        merge_patch(live, ["x"])
    assert info.value.code == 400


# --- JSON patch (RFC 6902) ----------------------------------------------------------------

def test_json_patch_applies_operations() -> None:
    live = _deployment([NGINX])
    ops = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:2"},
           {"op": "add", "path": "/metadata/labels/new", "value": "yes"},
           {"op": "remove", "path": "/metadata/labels/tier"}]
    out = json_patch(live, json.dumps(ops).encode())
    assert _containers(out)[0]["image"] == "nginx:2"
    assert out["metadata"]["labels"] == {"app": "web", "new": "yes"}
    assert _containers(live)[0]["image"] == "nginx:1.25"


@pytest.mark.parametrize("body,code,message", [
    (b"not json", 400, "failed to decode JSON patch"),
    (b'{"op": "add"}', 400, "json: cannot unmarshal object into Go value of type jsonpatch.Patch"),
    (b'[{"op": "test", "path": "/spec/replicas", "value": 3}]', 422,
     "the server rejected our request due to an error in our request"),
    (b'[{"op": "remove", "path": "/spec/nothing"}]', 422, "the server rejected our request"),
    (b'[{"op": "frobnicate", "path": "/spec"}]', 422, "the server rejected our request"),
    (b'[{"op": "replace", "path": "", "value": [1]}]', 422, "the server rejected our request"),
])
def test_json_patch_errors_answer_like_kube(body: bytes, code: int, message: str) -> None:
    with pytest.raises(APIError) as info:
        json_patch(_deployment([NGINX]), body)
    assert info.value.code == code
    assert message in info.value.message
    assert info.value.status()["code"] == code


@pytest.mark.parametrize("op,cause", [
    ({"op": "test", "path": "/spec/replicas", "value": 7}, "testing value /spec/replicas failed: test failed"),
    ({"op": "test", "path": "/spec/replicas", "value": "1"}, "testing value /spec/replicas failed: test failed"),
    ({"op": "test", "path": "/nope/x", "value": 1}, "test operation does not apply: is missing path: /nope/x: missing value"),
    ({"op": "remove", "path": "/spec/nothing"},
     "error in remove for path: '/spec/nothing': Unable to remove nonexistent key: nothing: missing value"),
    ({"op": "add", "path": "/nope/x", "value": 1}, 'add operation does not apply: doc is missing path: "/nope/x": missing value'),
    ({"op": "add", "path": "/spec/template/spec/containers/9", "value": {}},
     "error in add for path: '/spec/template/spec/containers/9': Unable to access invalid index: 9: invalid index referenced"),
    ({"op": "replace", "path": "/spec/template/spec/containers/x", "value": {}},
     "replace operation does not apply: doc is missing key: /spec/template/spec/containers/x: missing value"),
    ({"op": "move", "from": "/nope/x", "path": "/spec/x"}, "move operation does not apply: doc is missing from path: /nope/x: missing value"),
    ({"op": "frobnicate", "path": "/spec"}, "Unexpected kind: frobnicate"),
])
def test_json_patch_failures_carry_evanphx_json_patch_words(op: dict, cause: str) -> None:
    """kube's 422 hides the engine's error behind a generic message; the cause is evanphx/json-patch's text."""
    with pytest.raises(APIError) as info:
        json_patch(_deployment([NGINX]), json.dumps([op]).encode())
    assert info.value.status()["message"] == "the server rejected our request due to an error in our request"
    assert info.value.status()["details"]["causes"] == [{"reason": "UnexpectedServerResponse", "message": cause}]


def test_json_patch_test_compares_json_values_and_keeps_v4s_quirks() -> None:
    live = _deployment([NGINX])
    replicas = live["spec"]["replicas"]
    ops = [{"op": "test", "path": "/spec/replicas", "value": replicas},
           {"op": "test", "path": "/spec/missing", "value": None},
           {"op": "replace", "path": "/spec/paused", "value": True},  # v4 adds a missing key on replace
           {"op": "add", "path": "/spec/template/spec/containers/-1", "value": {"name": "last"}},
           {"op": "copy", "from": "/metadata/labels", "path": "/spec/template/metadata/labels"}]
    out = json_patch(live, json.dumps(ops).encode())
    assert out["spec"]["paused"] is True
    assert [c["name"] for c in _containers(out)][-1] == "last"
    assert out["spec"]["template"]["metadata"]["labels"] == live["metadata"]["labels"]
    with pytest.raises(APIError):
        json_patch(live, json.dumps([{"op": "test", "path": "/spec/replicas", "value": float(replicas)}]).encode())


def test_json_patch_copies_cannot_grow_a_document_without_bound() -> None:
    ops = [{"op": "add", "path": "/spec/blob", "value": "x" * 100_000}]
    ops += [{"op": "copy", "from": "/spec", "path": f"/spec/c{i}"} for i in range(10)]
    with pytest.raises(APIError) as info:
        json_patch(_deployment([NGINX]), json.dumps(ops).encode())
    assert info.value.code == 422
    assert "exceeding the limit 3145728" in info.value.status()["details"]["causes"][0]["message"]


def test_json_patch_operation_limit() -> None:
    ops = [{"op": "test", "path": "/kind", "value": "Deployment"}] * 10001
    with pytest.raises(APIError) as info:
        json_patch(_deployment([NGINX]), json.dumps(ops).encode())
    assert info.value.code == 413
