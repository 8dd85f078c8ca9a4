"""Typed decoding: what kube's Go decoder says about a body of the wrong types (labctl.apiserver.typecheck)."""

from __future__ import annotations

import pytest

from labctl.apiserver import typecheck


def mismatch(api_version: str, kind: str, obj: dict) -> str:
    report = typecheck.check(api_version, kind, obj)
    assert report.mismatch is not None, f"no type error found in {obj}"
    return report.mismatch.go_message()


@pytest.mark.parametrize(("api_version", "kind", "obj", "message"), [
    ("v1", "Pod", {"metadata": {"name": "p", "labels": ["a"]}},
     "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.labels of type map[string]string"),
    ("v1", "Pod", {"metadata": {"name": "p", "annotations": ["x"]}},
     "json: cannot unmarshal array into Go struct field ObjectMeta.metadata.annotations of type map[string]string"),
    ("v1", "Service", {"metadata": {"name": "s"}, "spec": {"selector": ["a"]}},
     "json: cannot unmarshal array into Go struct field ServiceSpec.spec.selector of type map[string]string"),
    ("v1", "ConfigMap", {"metadata": {"name": "c"}, "data": {"k": 5}},
     "json: cannot unmarshal number into Go struct field ConfigMap.data of type string"),
    # indices and map keys are not part of Go's field path; the innermost struct names the field
    ("v1", "Pod", {"spec": {"containers": [{"name": "c", "image": 5}]}},
     "json: cannot unmarshal number into Go struct field Container.spec.containers.image of type string"),
    ("v1", "Pod", {"spec": {"containers": [{"name": "c", "ports": [{"containerPort": 3000000000}]}]}},
     "json: cannot unmarshal number 3000000000 into Go struct field ContainerPort.spec.containers.ports.containerPort "
     "of type int32"),
    ("apps/v1", "Deployment", {"spec": {"replicas": 1.5}},
     "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("apps/v1", "Deployment", {"spec": {"replicas": True}},
     "json: cannot unmarshal bool into Go struct field DeploymentSpec.spec.replicas of type int32"),
    ("v1", "Pod", {"metadata": "x"},
     "json: cannot unmarshal string into Go struct field Pod.metadata of type v1.ObjectMeta"),
    ("v1", "Pod", {"spec": {"containers": {"name": "c"}}},
     "json: cannot unmarshal object into Go struct field PodSpec.spec.containers of type []v1.Container"),
    # IntOrString decodes a non-string into an int32 (its error gets the outer field's context)
    ("v1", "Service", {"spec": {"ports": [{"port": 80, "targetPort": True}]}},
     "json: cannot unmarshal bool into Go struct field ServicePort.spec.ports.targetPort of type int32"),
    # custom decoders: no field context, their own words
    ("v1", "Pod", {"spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "lots"}}}]}},
     "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"),
    ("v1", "Secret", {"data": {"a": "not base64"}}, "illegal base64 data at input byte 3"),
    ("v1", "Pod", {"status": {"conditions": [{"type": "Ready", "lastTransitionTime": "yesterday"}]}},
     'parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006"'),
    ("apps/v1", "Deployment", {"spec": {"template": {"metadata": {"labels": {"app": ["web"]}}}}},
     "json: cannot unmarshal array into Go struct field ObjectMeta.spec.template.metadata.labels of type string"),
])
def test_type_errors_are_worded_as_gos_decoder_words_them(api_version, kind, obj, message):
    assert mismatch(api_version, kind, obj) == message


def test_the_first_error_in_document_order_is_the_one_reported():
    obj = {"metadata": {"labels": {"a": 1}, "annotations": []}, "spec": {"containers": 5}}
    assert "metadata.labels of type string" in mismatch("v1", "Pod", obj)


def test_well_typed_objects_pass_including_the_json_forms_kube_accepts():
    pod = {"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": "web", "labels": {"app": "web"}, "creationTimestamp": "2026-01-02T03:04:05Z"},
           "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
                                    "resources": {"limits": {"cpu": 2, "memory": "128Mi"}},  # numbers are quantities
                                    "readinessProbe": {"httpGet": {"port": "http"}}}]}}
    report = typecheck.check("v1", "Pod", pod)
    assert report.mismatch is None and report.unknown == []


def test_nulls_become_what_gos_decoder_leaves():
    """A struct field sent as null is dropped; a null map value or list item becomes the zero value."""
    pod = {"metadata": None, "spec": {"containers": [None, {"name": "c", "args": ["a", None], "env": None}],
                                      "nodeSelector": {"disk": None}}}
    assert typecheck.check("v1", "Pod", pod).mismatch is None
    assert pod == {"spec": {"containers": [{}, {"name": "c", "args": ["a", ""]}], "nodeSelector": {"disk": ""}}}


def test_unknown_fields_are_listed_with_sigs_k8s_io_json_paths():
    deploy = {"spec": {"replica": 3, "template": {"spec": {"containers": [{"name": "c", "imagee": "x"}]}}},
              "metadata": {"labels": {"any-key": "is fine in a map"}}}
    assert typecheck.check("apps/v1", "Deployment", deploy).unknown == [
        "spec.replica", "spec.template.spec.containers[0].imagee"]
    assert deploy["spec"] == {"template": {"spec": {"containers": [{"name": "c"}]}}}  # dropped, as Go's decoder does
    deploy["spec"]["replica"] = 3
    assert typecheck.check("apps/v1", "Deployment", deploy, strict=False).unknown == []
    assert "replica" not in deploy["spec"]


def test_a_type_error_hides_the_unknown_fields_as_in_kube():
    report = typecheck.check("v1", "Pod", {"bogus": 1, "metadata": {"labels": []}})
    assert report.mismatch is not None and report.unknown == []


def test_server_side_apply_wording_names_the_full_path():
    report = typecheck.check("v1", "Pod", {"spec": {"containers": [{"name": "a"}, {"name": "b", "image": 5}]}})
    assert report.mismatch.apply_message() == ".spec.containers[1].image: expected string, got numeric"


def test_kinds_without_a_schema_are_not_checked():
    assert typecheck.check("v1", "NoSuchKind", {"anything": [1]}).mismatch is None
