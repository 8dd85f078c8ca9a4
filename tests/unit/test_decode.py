"""Request-body decoding with limits (labctl.apiserver.decode): refused early, worded as kube words it.

How fast a hostile body is refused is a benchmark's business (a wall-clock bound here flaked
on the shared machine); these tests show the refusal comes before the work: an alias bomb is
never expanded, and nesting 1,000 or 5,000 deep is refused within the frames that the allowed
depth (:data:`~labctl.apiserver.decode.MAX_DEPTH`) needs.
"""

from __future__ import annotations

import inspect
import sys

import orjson
import pytest

from labctl.apiserver import decode
from labctl.apiserver.errors import APIError
from support.hostile import alias_bomb, nested_yaml_block, nested_yaml_flow

ALIAS_BOMB = alias_bomb()


def refusal(fn, *args, spare_frames: int = 3 * decode.MAX_DEPTH):
    """``fn(*args)``'s result or decode error, with the recursion limit only ``spare_frames``
    above the current depth: a decoder that recursed through every level of the body before
    refusing it would fail here."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack(0)) + spare_frames)
    try:
        return fn(*args)
    except (decode.DecodeError, APIError) as err:
        return err
    finally:
        sys.setrecursionlimit(limit)


def test_a_yaml_alias_bomb_is_refused_in_milliseconds():
    err = refusal(decode.loads_yaml, ALIAS_BOMB)
    assert isinstance(err, decode.DecodeError) and str(err) == "yaml: document contains excessive aliasing"


def test_a_few_aliases_still_work():
    doc = decode.loads_yaml(b"base: &env [{name: A, value: '1'}]\nc1: {env: *env}\nc2: {env: *env}\n").doc
    assert doc["c1"]["env"] == doc["c2"]["env"] == [{"name": "A", "value": "1"}]


@pytest.mark.parametrize("data", [
    nested_yaml_flow(1000), nested_yaml_flow(5000), nested_yaml_block(1000),  # as in the issue
    b"x: &x " + b"[" * 90 + b"]" * 90 + b"\ny: " + b"[" * 50 + b"*x" + b"]" * 50,  # an alias nests its target
])
def test_deep_yaml_is_refused_without_recursion(data):
    err = refusal(decode.loads_yaml, data)
    assert isinstance(err, decode.DecodeError) and "max" in str(err) and "depth" in str(err)


def test_an_anchor_containing_itself_is_refused():
    err = refusal(decode.loads_yaml, b"a: &x [*x]")
    assert str(err) == "yaml: line 1: anchor 'x' value contains itself"


@pytest.mark.parametrize("depth", [101, 1000, 5000])
def test_deep_json_is_refused_with_gos_words(depth):
    err = refusal(decode.loads_json, b"[" * depth + b"]" * depth)
    assert str(err) == "invalid character '[' exceeded max depth of 100"


def test_json_at_the_depth_limit_is_fine():
    assert decode.loads_json(b"[" * 100 + b"]" * 100).doc is not None


def test_json_duplicate_keys_are_found_with_their_paths_and_the_last_wins():
    body = decode.loads_json(b'{"metadata": {"name": "a", "name": "b", "labels": {"x": "1", "x": "2"}}, '
                             b'"spec": {"containers": [{"name": "c", "image": "i", "image": "j"}]}}')
    assert body.doc["metadata"] == {"name": "b", "labels": {"x": "2"}}
    assert body.duplicates == ["metadata.labels.x", "metadata.name", "spec.containers[0].image"]
    assert decode.loads_json(b'{"a": 1, "a": 2}', find_duplicates=False).duplicates == []


def test_yaml_duplicate_keys_are_goyamls_strict_error():
    body = decode.loads_yaml(b"metadata:\n  name: a\n  name: b\n")
    assert body.doc == {"metadata": {"name": "b"}}
    assert body.yaml_strict == ['yaml: unmarshal errors:\n  line 3: key "name" already set in map']


@pytest.mark.parametrize(("data", "doc"), [
    (b"{1: a, true: b, 2.5: c}", {"1": "a", "true": "b", "2.5": "c"}),  # keys become strings, like sigs.k8s.io/yaml
    (b"when: 2001-12-14", {"when": "2001-12-14"}),  # timestamps stay strings
    (b"s: !!set {x, y}", {"s": {"x": None, "y": None}}),
    (b"big: 99999999999999999999999", {"big": 1e23}),  # beyond 64 bits: a float, as goyaml resolves it
    (b"a: 1\n---\nb: 2\n", {"a": 1}),  # the first document only, as goyaml reads it
])
def test_yaml_is_decoded_to_the_json_kube_would_convert_it_to(data, doc):
    assert decode.loads_yaml(data).doc == doc
    orjson.dumps(doc)  # and storage can encode it


@pytest.mark.parametrize("data", [b"a: .inf", b"a: .nan", b"{[a]: 1}", b"a: !foo x", b"a: b: c", b"a: \x00"])
def test_yaml_that_json_cannot_hold_is_a_decode_error(data):
    with pytest.raises(decode.DecodeError):
        decode.loads_yaml(data)


def test_big_json_integers_stay_encodable():
    body = decode.loads_json(b'{"a": 99999999999999999999, "b": 1, "b": 2}')
    orjson.dumps(body.doc)


def typed(data: bytes, content_type: str = "application/json", kind: str = "Pod", mode: str = "Strict"):
    return decode.typed_object(data, content_type, "v1", kind, mode)


def test_create_bodies_of_the_wrong_types_are_a_400_in_kubes_words():
    with pytest.raises(APIError) as info:
        typed(b'{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": ["a"]}}')
    assert info.value.code == 400 and info.value.reason == "BadRequest"
    assert info.value.message == ('Pod in version "v1" cannot be handled as a Pod: json: cannot unmarshal array '
                                  "into Go struct field ObjectMeta.metadata.labels of type map[string]string")


def test_unreadable_bodies_are_unrecognized_objects():
    with pytest.raises(APIError) as info:
        typed(b"[1, 2]")
    assert info.value.message == (
        "the object provided is unrecognized (must be of type Pod): couldn't get version/kind; json parse error: "
        'json: cannot unmarshal array into Go value of type struct { APIVersion string "json:\\"apiVersion,omitempty'
        '\\""; Kind string "json:\\"kind,omitempty\\"" } (5b312c20325d)')
    with pytest.raises(APIError) as info:
        typed(ALIAS_BOMB, "application/yaml")
    assert info.value.code == 400
    assert info.value.message.startswith("the object provided is unrecognized (must be of type Pod): "
                                         "yaml: document contains excessive aliasing (")


def test_field_validation_decides_what_unknown_and_duplicate_fields_cost():
    data = b'{"metadata": {"name": "a", "name": "b"}, "spec": {"containerz": []}}'
    with pytest.raises(APIError) as info:
        typed(data, mode="Strict")
    assert info.value.code == 400
    assert info.value.message == ('Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
                                  'duplicate field "metadata.name", unknown field "spec.containerz"')
    obj, warnings = typed(data, mode="Warn")
    assert obj == {"metadata": {"name": "b"}, "spec": {}}  # the unknown field is dropped, never stored
    assert warnings == ['duplicate field "metadata.name"', 'unknown field "spec.containerz"']
    assert typed(data, mode="Ignore") == ({"metadata": {"name": "b"}, "spec": {}}, [])


@pytest.mark.parametrize("mode", ["Strict", "Warn", "Ignore"])
def test_server_side_apply_refuses_unknown_fields_in_every_mode(mode):
    """kube's field manager types the apply body before anything: structured-merge-diff's words."""
    apply = decode.Patch("apply", decode.loads_yaml(
        b"metadata: {name: web, namespace: default}\nspec: {replica: 3, template: {spec: {containers: [{name: c, imagee: x}]}}}"))
    with pytest.raises(APIError) as info:
        decode.check_apply_patch(apply, "apps/v1", "Deployment")
    assert info.value.code == 400
    assert info.value.message == (
        "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): errors:\n"
        "  .spec.replica: field not declared in schema\n"
        "  .spec.template.spec.containers[0].imagee: field not declared in schema")


def test_server_side_apply_duplicates_follow_field_validation():
    apply = decode.Patch("apply", decode.loads_yaml(b"metadata:\n  name: a\n  name: b\n"))
    with pytest.raises(APIError) as info:
        decode.patched_object({"metadata": {"name": "b"}}, {}, apply, "v1", "ConfigMap", "Strict")
    assert info.value.message == ('error strict decoding YAML: error converting YAML to JSON: yaml: unmarshal errors:'
                                  '\n  line 3: key "name" already set in map')
    assert decode.patched_object({"metadata": {"name": "b"}}, {}, apply, "v1", "ConfigMap", "Ignore") == []


@pytest.mark.parametrize("patch_type", ["merge", "strategic"])
def test_a_patch_adding_an_unknown_field_is_refused_or_dropped(patch_type):
    body = decode.loads_json(b'{"spec": {"replica": 4}}')
    patched = {"metadata": {"name": "web"}, "spec": {"replicas": 1, "replica": 4}}
    with pytest.raises(APIError) as info:
        decode.patched_object(dict(patched, spec=dict(patched["spec"])), {"metadata": {"name": "web"}},
                              decode.Patch(patch_type, body), "apps/v1", "Deployment", "Strict")
    assert (info.value.code, info.value.message) == (400, 'strict decoding error: unknown field "spec.replica"')
    warned = dict(patched, spec=dict(patched["spec"]))
    assert decode.patched_object(warned, {"metadata": {"name": "web"}}, decode.Patch(patch_type, body),
                                 "apps/v1", "Deployment", "Warn") == ['unknown field "spec.replica"']
    assert warned["spec"] == {"replicas": 1}


def test_yaml_duplicates_under_strict_use_goyamls_words():
    with pytest.raises(APIError) as info:
        typed(b"metadata:\n  name: a\n  name: b\n", "application/yaml")
    assert info.value.message == ('Pod in version "v1" cannot be handled as a Pod: strict decoding error: '
                                  'yaml: unmarshal errors:\n  line 3: key "name" already set in map')


def test_a_null_body_is_an_empty_object():
    assert typed(b"null") == ({}, [])


def test_patched_objects_of_the_wrong_type_are_422_naming_the_patch():
    patch = decode.Patch("merge", decode.loads_json(b'{"metadata": {"labels": ["a"]}}'))
    with pytest.raises(APIError) as info:
        decode.patched_object({"metadata": {"name": "p", "labels": ["a"]}}, {}, patch, "v1", "Pod", "Strict")
    assert info.value.code == 422 and info.value.reason == "Invalid"
    assert info.value.message.startswith(' "" is invalid: patch: Invalid value: "{')
    assert info.value.message.endswith("json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels"
                                       " of type map[string]string")
    apply = decode.Patch("apply", decode.loads_yaml(b"metadata: {name: web, namespace: ns, labels: [a]}"))
    with pytest.raises(APIError) as info:
        decode.check_apply_patch(apply, "apps/v1", "Deployment")
    assert info.value.code == 400
    assert info.value.message == ("failed to create typed patch object (ns/web; apps/v1, Kind=Deployment): "
                                  ".metadata.labels: expected map, got list")


def test_a_patch_is_not_blamed_for_unknown_fields_already_stored():
    patch = decode.Patch("merge", decode.loads_json(b'{"spec": {"extra2": 1}}'))
    stored = {"metadata": {"name": "c"}, "spec": {"extra1": 1}}
    with pytest.raises(APIError) as info:
        decode.patched_object({"metadata": {"name": "c"}, "spec": {"extra1": 1, "extra2": 1}}, stored, patch,
                              "v1", "Service", "Strict")
    assert info.value.message == 'strict decoding error: unknown field "spec.extra2"'

