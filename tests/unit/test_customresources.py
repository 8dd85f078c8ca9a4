"""CustomResourceDefinitions: their validation, structural schemas, and the custom resources they serve.

Schemas and objects in, paths and field errors out for the pure parts; the REST flow is
driven in process (``RestAPI`` over a throwaway SQLite store) for serving, status and
deletion, as kube-apiserver's apiextensions server behaves.
"""

from __future__ import annotations

import copy
import json

import pytest

from labctl.apiserver import structural
from labctl.apiserver._validate_apiextensions import validate_crd
from labctl.apiserver.decode import Patch, decode_patch_body, loads_json, object_from
from labctl.apiserver.errors import APIError
from labctl.apiserver.queryparams import ListOptions
from labctl.apiserver.rest import RequestScope, RestAPI
from labctl.apiserver.storage import SQLiteStore
from labctl.apiserver.strategies import strategy_for
from labctl.kube.printers import build_table, parse_column_path
from labctl.kube.resources import resource_for

#: the CronTab of kubernetes.io's "Extend the Kubernetes API with CustomResourceDefinitions", with bounds
CRONTAB_SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "required": ["cronSpec"],
            "properties": {
                "cronSpec": {"type": "string", "pattern": r"^(\d+|\*)(/\d+)?(\s+(\d+|\*)(/\d+)?){4}$"},
                "image": {"type": "string"},
                "replicas": {"type": "integer", "minimum": 1, "maximum": 10},
                "policy": {"type": "string", "enum": ["Allow", "Forbid"]},
                "env": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}},
                "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}},
    },
}


def crontab_crd(scope: str = "Namespaced", **version: object) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "crontabs.stable.example.com"},
        "spec": {
            "group": "stable.example.com", "scope": scope,
            "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"]},
            "versions": [{
                "name": "v1", "served": True, "storage": True,
                "schema": {"openAPIV3Schema": copy.deepcopy(CRONTAB_SCHEMA)},
                "additionalPrinterColumns": [
                    {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                    {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}],
                **version,
            }],
        },
    }


def crontab(name: str = "my-new-cron-object", **spec: object) -> dict:
    return {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": name},
            "spec": {"cronSpec": "* * * * */5", "image": "my-awesome-cron-image", **spec}}


def fields(errs) -> list[str]:
    return [str(e) for e in errs]


CRDS = RequestScope(resource_for("customresourcedefinitions"))


def crontabs(api: RestAPI, name: str | None = None, namespace: str | None = "default") -> RequestScope:
    rt = api.registry.lookup("stable.example.com", "v1", "crontabs")
    assert rt is not None, "crontabs are not served"
    return RequestScope(rt, namespace if rt.namespaced else None, name)


# -- the structural schema ----------------------------------------------------------------------
def test_a_structural_schema_types_every_node_and_gives_arrays_items():
    schema = {"type": "object", "properties": {
        "spec": {"properties": {"list": {"type": "array"}, "n": {"type": "int"}}},
        "m": {"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "string"}},
        "r": {"type": "string", "$ref": "#/x"}}}
    assert fields(structural.check_structural(schema, "s")) == [
        's.properties[spec].type: Required value: must not be empty for specified object fields',
        's.properties[spec].properties[list].items: Required value: must be specified',
        's.properties[spec].properties[n].type: Unsupported value: "int": supported values: "array", "boolean", '
        '"integer", "number", "object", "string"',
        "s.properties[m].additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive",
        "s.properties[r].$ref: Forbidden: labctl does not serve this schema keyword",
    ]


def test_the_root_is_an_object_whose_metadata_may_only_constrain_name():
    assert fields(structural.check_structural({"type": "string"}, "s")) == [
        's.type: Invalid value: "string": must be object at the root']
    meta = {"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {
        "type": "object"}}}}}
    assert fields(structural.check_structural(meta, "s")) == [
        "s.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but "
        "metadata is implicitly specified"]
    untyped_but_preserved = {"type": "object", "properties": {"any": {"x-kubernetes-preserve-unknown-fields": True},
                                                              "port": {"x-kubernetes-int-or-string": True}}}
    assert structural.check_structural(untyped_but_preserved, "s") == []


def test_pruning_drops_undeclared_fields_and_names_them():
    obj = {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "x", "odd": 1},
           "spec": {"cronSpec": "* * * * *", "colour": "blue", "env": [{"name": "A", "value": "1"}],
                    "extra": {"anything": {"goes": True}}, "labels": {"a": "b"}},
           "status": {"ready": True, "phase": "x"}, "top": 1}
    found = structural.prune(obj, CRONTAB_SCHEMA)
    assert sorted(found) == ["spec.colour", "spec.env[0].value", "status.phase", "top"]
    assert obj == {"apiVersion": "stable.example.com/v1", "kind": "CronTab", "metadata": {"name": "x", "odd": 1},
                   "spec": {"cronSpec": "* * * * *", "env": [{"name": "A"}], "extra": {"anything": {"goes": True}},
                            "labels": {"a": "b"}},
                   "status": {"ready": True}}


def test_values_are_validated_with_kube_openapis_words():
    spec = CRONTAB_SCHEMA["properties"]["spec"]
    errs = structural.validate_value({"image": 3, "replicas": 11, "policy": "Maybe", "cronSpec": "often"},
                                     spec, "spec")
    assert sorted(fields(errs)) == [
        'spec.cronSpec: Invalid value: "often": spec.cronSpec in body should match '
        "'^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'",
        'spec.image: Invalid value: "integer": spec.image in body must be of type string: "integer"',
        'spec.policy: Unsupported value: "Maybe": supported values: "Allow", "Forbid"',
        "spec.replicas: Invalid value: 11: spec.replicas in body should be less than or equal to 10",
    ]
    assert fields(structural.validate_value({"replicas": 0}, spec, "spec")) == [
        "spec.cronSpec: Required value",
        "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"]
    assert fields(structural.validate_value({"cronSpec": "* * * * *", "labels": {"a": 1}}, spec, "spec")) == [
        'spec.labels.a: Invalid value: "integer": spec.labels.a in body must be of type string: "integer"']
    assert structural.validate_value({"cronSpec": "* * * * *", "replicas": 2.0}, spec, "spec") == []


# -- the CRD ------------------------------------------------------------------------------------
def test_the_kubernetes_io_crontab_crd_is_valid_once_defaulted():
    crd = crontab_crd()
    strategy_for("customresourcedefinitions").default(crd)
    assert crd["spec"]["names"]["listKind"] == "CronTabList"
    assert validate_crd(crd) == []


@pytest.mark.parametrize(("change", "expected"), [
    (lambda c: c["metadata"].update(name="crontab.stable.example.com"),
     'metadata.name: Invalid value: "crontab.stable.example.com": must be spec.names.plural+"."+spec.group'),
    (lambda c: c["spec"].update(scope="Global"),
     'spec.scope: Unsupported value: "Global": supported values: "Cluster", "Namespaced"'),
    (lambda c: c["spec"]["versions"][0].update(storage=False),
     'spec.versions: Invalid value: ["v1"]: must have exactly one version marked as storage version'),
    (lambda c: c["spec"]["versions"][0].pop("schema"),
     "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"),
    (lambda c: c["spec"]["versions"][0]["additionalPrinterColumns"][0].update(type="text"),
     'spec.versions[0].additionalPrinterColumns[0].type: Unsupported value: "text": supported values: '
     '"boolean", "date", "integer", "number", "string"'),
    (lambda c: c["spec"]["versions"][0].update(subresources={"scale": {"specReplicasPath": ".status.replicas"}}),
     'spec.versions[0].subresources.scale.specReplicasPath: Invalid value: ".status.replicas": should be a json '
     "path under .spec, without array indices"),
    (lambda c: c["spec"]["versions"][0].update(subresources={"scale": {"specReplicasPath": ".spec.replicas"}}),
     "spec.versions[0].subresources.scale.statusReplicasPath: Required value"),
    (lambda c: c["spec"]["names"].update(kind="Cron Tab"),
     'spec.names.kind: Invalid value: "Cron Tab": may have mixed case, but should otherwise match: '
     "[a-z]([-a-z0-9]*[a-z0-9])?"),
])
def test_crd_validation_names_the_field(change, expected):
    crd = crontab_crd()
    strategy_for("customresourcedefinitions").default(crd)
    change(crd)
    assert expected in fields(validate_crd(crd))


def test_a_group_needs_a_dot_and_kubernetes_groups_an_approval(api):
    crd = crontab_crd()
    crd["spec"]["group"] = crd["metadata"]["name"] = "stable"
    crd["metadata"]["name"] = "crontabs.stable"
    with pytest.raises(APIError) as err:
        api.create(CRDS, crd)
    assert 'spec.group: Invalid value: "stable": should be a domain with at least one dot' in err.value.message
    crd["spec"]["group"], crd["metadata"]["name"] = "stable.k8s.io", "crontabs.stable.k8s.io"
    with pytest.raises(APIError) as err:
        api.create(CRDS, crd)
    assert 'protected groups must have approval annotation "api-approved.kubernetes.io"' in err.value.message


def test_two_served_versions_are_refused_rather_than_served_without_conversion(api):
    crd = crontab_crd()
    crd["spec"]["versions"].append({**copy.deepcopy(crd["spec"]["versions"][0]), "name": "v2", "storage": False})
    with pytest.raises(APIError) as err:
        api.create(CRDS, crd)
    assert err.value.code == 422
    assert "labctl serves custom resources at their storage version only" in err.value.message


# -- serving ------------------------------------------------------------------------------------
def test_an_established_crd_serves_its_resource_at_once(api):
    created = api.create(CRDS, crontab_crd())
    status = created["status"]
    assert [(c["type"], c["status"], c["reason"]) for c in status["conditions"]] == [
        ("NamesAccepted", "True", "NoConflicts"), ("Established", "True", "InitialNamesAccepted")]
    assert status["acceptedNames"] == {"plural": "crontabs", "singular": "crontab", "kind": "CronTab",
                                       "listKind": "CronTabList", "shortNames": ["ct"]}
    assert status["storedVersions"] == ["v1"]
    assert created["spec"]["conversion"] == {"strategy": "None"}
    rt = api.registry.lookup("stable.example.com", "v1", "crontabs")
    assert rt is not None and rt.namespaced and rt.short_names == ("ct",) and rt.list_kind == "CronTabList"
    assert api.registry.groups()["stable.example.com"] == ["v1"]

    obj = api.create(crontabs(api), crontab(replicas=3))
    assert obj["metadata"]["namespace"] == "default" and obj["metadata"]["generation"] == 1
    listed = api.list(crontabs(api), ListOptions())
    assert listed["kind"] == "CronTabList" and [o["metadata"]["name"] for o in listed["items"]] == [
        "my-new-cron-object"]


def test_printer_columns_make_the_table(api):
    api.create(CRDS, crontab_crd())
    obj = api.create(crontabs(api), crontab(replicas=3))
    table = build_table(strategy_for(crontabs(api).resource).printer, [obj])
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Spec", "Replicas", "Age"]
    name, spec, replicas, age = table["rows"][0]["cells"]
    assert (name, spec, replicas) == ("my-new-cron-object", "* * * * */5", 3)
    assert age.endswith("s")


def test_a_crd_without_columns_prints_name_and_age(api):
    crd = crontab_crd()
    del crd["spec"]["versions"][0]["additionalPrinterColumns"]
    api.create(CRDS, crd)
    printer = strategy_for(crontabs(api).resource).printer
    assert [c["name"] for c in printer.columns] == ["Name", "Age"]


def test_the_schema_refuses_a_wrong_type_with_its_field_path(api):
    api.create(CRDS, crontab_crd())
    with pytest.raises(APIError) as err:
        api.create(crontabs(api), crontab(replicas="three"))
    assert err.value.code == 422
    assert err.value.message == (
        'CronTab.stable.example.com "my-new-cron-object" is invalid: spec.replicas: Invalid value: "string": '
        'spec.replicas in body must be of type integer: "string"')


def test_unknown_fields_are_pruned_and_reported_as_the_decoder_does(api):
    api.create(CRDS, crontab_crd())
    body = json.dumps(crontab(colour="blue")).encode()
    with pytest.raises(APIError) as err:
        object_from(loads_json(body), "stable.example.com/v1", "CronTab", "Strict")
    assert err.value.message == ('CronTab in version "v1" cannot be handled as a CronTab: strict decoding error: '
                                 'unknown field "spec.colour"')
    doc, warnings = object_from(loads_json(body), "stable.example.com/v1", "CronTab", "Warn")
    assert warnings == ['unknown field "spec.colour"'] and "colour" not in doc["spec"]
    with pytest.raises(APIError) as err:
        object_from(loads_json(json.dumps({**crontab(), "metadata": {"labels": ["a"]}}).encode()),
                    "stable.example.com/v1", "CronTab", "Strict")
    assert "Go struct field ObjectMeta.metadata.labels of type map[string]string" in err.value.message


def test_a_strategic_merge_patch_of_a_custom_resource_is_a_415(api):
    api.create(CRDS, crontab_crd())
    api.create(crontabs(api), crontab())
    patch = Patch("strategic", decode_patch_body(b'{"spec":{"replicas":2}}', "strategic", True))
    with pytest.raises(APIError) as err:
        api.patch(crontabs(api, "my-new-cron-object"), patch)
    assert err.value.code == 415
    merge = Patch("merge", decode_patch_body(b'{"spec":{"replicas":2}}', "merge", True))
    code, patched, _ = api.patch(crontabs(api, "my-new-cron-object"), merge)
    assert code == 200 and patched["spec"]["replicas"] == 2 and patched["metadata"]["generation"] == 2


def test_the_status_subresource_keeps_status_out_of_main_writes(api):
    api.create(CRDS, crontab_crd(subresources={"status": {}}))
    assert crontabs(api).resource.subresources == ("status",)
    created = api.create(crontabs(api), {**crontab(), "status": {"ready": True}})
    assert "status" not in created
    status_scope = RequestScope(crontabs(api).resource, "default", "my-new-cron-object", "status")
    updated = api.update(status_scope, {**created, "status": {"ready": True}})
    assert updated["status"] == {"ready": True} and updated["metadata"]["generation"] == 1
    with pytest.raises(APIError) as err:
        api.update(status_scope, {**updated, "status": {"ready": "yes"}})
    assert "status.ready in body must be of type boolean" in err.value.message


def test_a_cluster_scoped_resource_and_label_selectors(api):
    api.create(CRDS, crontab_crd(scope="Cluster"))
    scope = crontabs(api, namespace=None)
    api.create(scope, {**crontab("a"), "metadata": {"name": "a", "labels": {"tier": "db"}}})
    api.create(scope, crontab("b"))
    assert "namespace" not in api.get(crontabs(api, "a", None))["metadata"]
    selected = api.list(scope, ListOptions(label_selector="tier=db"))
    assert [o["metadata"]["name"] for o in selected["items"]] == ["a"]


def test_deleting_the_crd_deletes_its_objects_and_stops_serving(api):
    api.create(CRDS, crontab_crd())
    rt = crontabs(api).resource
    api.create(crontabs(api), crontab())
    api.delete(RequestScope(CRDS.resource, None, "crontabs.stable.example.com"), {})
    assert api.registry.lookup("stable.example.com", "v1", "crontabs") is None
    assert "stable.example.com" not in api.registry.groups()
    assert api.store.list(rt.key) == []


def test_an_updated_crd_serves_its_new_schema_and_columns(api):
    created = api.create(CRDS, crontab_crd())
    changed = copy.deepcopy(created)
    changed["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["image"] = {
        "type": "string", "maxLength": 5}
    changed["spec"]["versions"][0]["additionalPrinterColumns"] = []
    api.update(RequestScope(CRDS.resource, None, "crontabs.stable.example.com"), changed)
    with pytest.raises(APIError) as err:
        api.create(crontabs(api), crontab())
    assert "spec.image: Too long: may not be more than 5 bytes" in err.value.message
    assert [c["name"] for c in strategy_for(crontabs(api).resource).printer.columns] == ["Name", "Age"]


def test_the_stored_crds_are_served_again_after_a_restart(tmp_path):
    store = SQLiteStore(tmp_path / "store.db")
    first = RestAPI(store)
    first.bootstrap("127.0.0.1", 6443)
    first.create(CRDS, crontab_crd())
    first.create(crontabs(first), crontab())
    store.close()
    store = SQLiteStore(tmp_path / "store.db")
    try:
        again = RestAPI(store)
        again.bootstrap("127.0.0.1", 6443)
        assert [o["metadata"]["name"] for o in again.list(crontabs(again), ListOptions())["items"]] == [
            "my-new-cron-object"]
    finally:
        store.close()


def test_a_kind_already_used_in_the_group_is_not_accepted(api):
    api.create(CRDS, crontab_crd())
    other = crontab_crd()
    other["metadata"]["name"] = "crontables.stable.example.com"
    other["spec"]["names"] = {"plural": "crontables", "kind": "CronTab"}
    created = api.create(CRDS, other)
    conditions = {c["type"]: (c["status"], c["reason"]) for c in created["status"]["conditions"]}
    assert conditions == {"NamesAccepted": ("False", "KindConflict"), "Established": ("False", "NotAccepted")}
    assert api.registry.lookup("stable.example.com", "v1", "crontables") is None


def test_printer_column_paths():
    assert parse_column_path(".spec.cronSpec") == ["spec", "cronSpec"]
    assert parse_column_path(".status.conditions[0].type") == ["status", "conditions", 0, "type"]
    assert parse_column_path(".metadata.labels['app.kubernetes.io/name']") == [
        "metadata", "labels", "app.kubernetes.io/name"]
    assert parse_column_path(".items[*].name") is None
    assert parse_column_path("spec") is None


def test_schema_defaults_fill_absent_fields_where_the_parent_exists(api):
    crd = crontab_crd()
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["replicas"]["default"] = 1
    spec["properties"]["env"]["items"]["properties"]["value"] = {"type": "string", "default": "on"}
    api.create(CRDS, crd)
    created = api.create(crontabs(api), crontab(env=[{"name": "A"}]))
    assert created["spec"]["replicas"] == 1 and created["spec"]["env"] == [{"name": "A", "value": "on"}]
    bare = api.create(crontabs(api, namespace="default"), {"metadata": {"name": "bare"}})
    assert "spec" not in bare


def test_formats_are_checked_or_refused():
    schema = {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"},
                                               "n": {"type": "integer", "format": "int32"}}}
    assert fields(structural.validate_value({"at": "yesterday", "n": 2**31}, schema, "spec")) == [
        'spec.at: Invalid value: "yesterday": spec.at in body must be of type date-time: "yesterday"',
        "spec.n: Invalid value: 2147483648: spec.n in body must be of type int32: \"2147483648\""]
    assert structural.validate_value({"at": "2026-12-07T12:00:00Z", "n": 3}, schema, "spec") == []
    email = {"type": "object", "properties": {"mail": {"type": "string", "format": "email"}}}
    assert fields(structural.check_structural(email, "s")) == [
        's.properties[mail].format: Unsupported value: "email": supported values: "date-time", "double", "float", '
        '"int32", "int64", "password"']


def test_list_types_keep_items_unique_and_controller_gens_int_or_string_is_structural():
    schema = {"type": "object", "properties": {
        "tags": {"type": "array", "items": {"type": "string"}, "x-kubernetes-list-type": "set"},
        "conditions": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"],
                       "items": {"type": "object", "properties": {"type": {"type": "string"}}}},
        "memory": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": True}}}
    assert structural.check_structural(schema, "s") == []
    errs = structural.validate_value({"tags": ["a", "b", "a"], "conditions": [{"type": "Ready"}, {"type": "Ready"}],
                                      "memory": "64Mi"}, schema, "status")
    assert fields(errs) == ['status.tags[2]: Duplicate value: "a"',
                            'status.conditions[1]: Duplicate value: {"type":"Ready"}']


def test_the_served_version_and_the_scope_cannot_change(api):
    created = api.create(CRDS, crontab_crd())
    changed = copy.deepcopy(created)
    changed["spec"]["versions"][0]["name"] = "v2"
    changed["spec"]["scope"] = "Cluster"
    with pytest.raises(APIError) as err:
        api.update(RequestScope(CRDS.resource, None, "crontabs.stable.example.com"), changed)
    assert 'spec.scope: Invalid value: "Cluster": field is immutable' in err.value.message
    assert "the served storage version cannot change" in err.value.message


def test_the_scale_subresource_follows_the_crds_paths(api):
    api.create(CRDS, crontab_crd(subresources={"status": {}, "scale": {
        "specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector"}}))
    assert crontabs(api).resource.subresources == ("status", "scale")
    created = api.create(crontabs(api), crontab(replicas=2))
    scale = api.get_scale(RequestScope(crontabs(api).resource, "default", "my-new-cron-object", "scale"))
    assert (scale["kind"], scale["spec"], scale["status"]) == ("Scale", {"replicas": 2}, {"replicas": 0, "selector": ""})
    scaled = api.update_scale(RequestScope(crontabs(api).resource, "default", "my-new-cron-object", "scale"),
                              {"spec": {"replicas": 5}})
    assert scaled["spec"]["replicas"] == 5
    stored = api.get(crontabs(api, "my-new-cron-object"))
    assert stored["spec"]["replicas"] == 5 and stored["metadata"]["generation"] == created["metadata"]["generation"] + 1
    with pytest.raises(APIError) as err:  # the schema still holds: replicas has a maximum of 10
        api.update_scale(RequestScope(crontabs(api).resource, "default", "my-new-cron-object", "scale"),
                         {"spec": {"replicas": 11}})
    assert "spec.replicas in body should be less than or equal to 10" in err.value.message


@pytest.mark.parametrize("path_value", [
    (("spec", "versions", 0, "schema", "openAPIV3Schema", "properties"), "x"),
    (("spec", "versions", 0, "schema", "openAPIV3Schema", "properties", "spec", "properties", "policy", "enum"), 1),
    (("spec", "versions", 0, "schema", "openAPIV3Schema", "properties", "spec", "required"), [{}]),
    (("spec", "versions", 0, "schema", "openAPIV3Schema", "properties", "spec", "additionalProperties"), 3),
    (("spec", "versions", 0, "subresources"), "x"),
    (("spec", "versions", 0, "additionalPrinterColumns"), "x"),
    (("spec", "names", "plural"), ["a"]),
    (("spec", "names", "categories"), [1]),
])
def test_a_malformed_crd_is_a_422_never_a_crash(api, path_value):
    # in process there is no typed decoder in front: the validation itself must hold
    path, value = path_value
    crd = crontab_crd()
    node = crd
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    with pytest.raises(APIError) as err:
        api.create(CRDS, crd)
    assert err.value.code == 422
