"""Label and field selectors: Kubernetes' grammar, matching, and its exact 400 error texts."""

from __future__ import annotations

import pytest

from labctl.apiserver.errors import APIError
from labctl.apiserver.selectors import parse_field_selector, parse_label_selector
from labctl.kube.labels import (
    EVERYTHING,
    NOTHING,
    SelectorError,
    format_label_selector,
    format_labels,
    new_requirement,
    selector_from_label_selector,
    selector_from_set,
)

KEY_REGEX = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
             "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
             "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")
VALUE_REGEX = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and "
               "must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', "
               "regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")


@pytest.mark.parametrize("text, canonical", [
    ("", ""),
    ("a=b", "a=b"),
    ("a==b", "a==b"),
    ("a!=b", "a!=b"),
    ("  a  =  b  ", "a=b"),
    ("a", "a"),
    ("!a", "!a"),
    ("env in (prod, qa)", "env in (prod,qa)"),
    ("env notin (qa)", "env notin (qa)"),
    ("x in (foo,,baz),y,z notin ()", "x in (,baz,foo),y,z notin ()"),
    ("z=1,a=2,m", "a=2,m,z=1"),
    ("a in (in, notin)", "a in (in,notin)"),
    ("a=", "a="),
    ("example.com/tier=front-end", "example.com/tier=front-end"),
    ("replicas>3,n<10", "n<10,replicas>3"),
    ("\tapp=web,\n!canary", "app=web,!canary"),  # sorted by key, not by text
])
def test_label_selector_canonical_form_round_trips(text, canonical):
    selector = parse_label_selector(text)
    assert str(selector) == canonical
    assert str(parse_label_selector(str(selector))) == canonical


@pytest.mark.parametrize("text, message", [
    ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
    ("a,", "found '', expected: identifier after ','"),
    (",", "found ',', expected: !, identifier, or 'end of string'"),
    ("a=b c", "found 'c', expected: ',' or 'end of string'"),
    ("!a=b", "found '=', expected: ',' or 'end of string'"),
    ("a in b", "unable to parse requirement: found 'b' expected: '('"),
    ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
    ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
    ("a=(", "unable to parse requirement: found '(', expected: identifier"),
    ("!", "unable to parse requirement: found '', expected: identifier"),
    ("-a", f'unable to parse requirement: <nil>: Invalid value: "-a": {KEY_REGEX}'),
    ("a=-b", f'unable to parse requirement: values[0][a]: Invalid value: "-b": {VALUE_REGEX}'),
    ("/a=b", 'unable to parse requirement: <nil>: Invalid value: "/a": prefix part must be non-empty'),
    ("a" * 64, f'unable to parse requirement: <nil>: Invalid value: "{"a" * 64}": '
               "name part must be no more than 63 bytes"),
    ("n>x", 'unable to parse requirement: values[0]: Invalid value: "x": '
            "for 'Gt', 'Lt' operators, the value must be an integer"),
])
def test_label_selector_errors_are_400_with_kubernetes_text(text, message):
    with pytest.raises(APIError) as info:
        parse_label_selector(text)
    assert (info.value.code, info.value.reason) == (400, "BadRequest")
    assert info.value.message == message


def test_two_bad_values_aggregate_in_brackets():
    with pytest.raises(APIError) as info:
        parse_label_selector("a in (-x,-y)")
    assert info.value.message == (f'unable to parse requirement: [values[0][a]: Invalid value: "-x": {VALUE_REGEX}, '
                                  f'values[1][a]: Invalid value: "-y": {VALUE_REGEX}]')


@pytest.mark.parametrize("text, labels, expected", [
    ("", {}, True),
    ("app=web", {"app": "web"}, True),
    ("app=web", {"app": "db"}, False),
    ("app=web", {}, False),
    ("app!=web", {}, True),  # != matches a missing key, as in Kubernetes
    ("app!=web", {"app": "web"}, False),
    ("env in (prod,qa)", {"env": "qa"}, True),
    ("env in (prod,qa)", {}, False),
    ("env notin (prod)", {}, True),
    ("env notin (prod)", {"env": "prod"}, False),
    ("app", {"app": ""}, True),
    ("!app", {"app": ""}, False),
    ("x in ()", {"x": ""}, True),
    ("x in ()", {"x": "a"}, False),
    ("app=web,tier!=db", {"app": "web", "tier": "front"}, True),
    ("replicas>3", {"replicas": "4"}, True),
    ("replicas>3", {"replicas": "three"}, False),
])
def test_label_selector_matching(text, labels, expected):
    assert parse_label_selector(text).matches(labels) is expected


def test_requires_exact_match():
    assert parse_label_selector("app=web,x in (a,b)").requires_exact_match("app") == "web"
    assert parse_label_selector("app in (web)").requires_exact_match("app") == "web"
    assert parse_label_selector("x in (a,b)").requires_exact_match("x") is None


# -- metav1.LabelSelector (controllers) --------------------------------------------------------

def test_nil_selector_matches_nothing_and_empty_matches_everything():
    assert selector_from_label_selector(None) is NOTHING
    assert not NOTHING.matches({})
    assert selector_from_label_selector({}) == EVERYTHING
    assert selector_from_label_selector({"matchLabels": {}, "matchExpressions": []}).matches({"a": "b"})


def test_match_labels_and_expressions():
    selector = selector_from_label_selector({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "edge"]},
            {"key": "canary", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "Exists"},
            {"key": "env", "operator": "NotIn", "values": ["dev"]},
        ],
    })
    assert str(selector) == "app=web,!canary,env notin (dev),tier in (edge,front),zone"
    assert selector.matches({"app": "web", "tier": "edge", "zone": "a"})
    assert not selector.matches({"app": "web", "tier": "edge", "zone": "a", "canary": "1"})
    assert not selector.matches({"app": "web", "tier": "back", "zone": "a"})


def test_label_selector_object_errors():
    with pytest.raises(SelectorError, match='^"Like" is not a valid label selector operator$'):
        selector_from_label_selector({"matchExpressions": [{"key": "a", "operator": "Like"}]})
    with pytest.raises(SelectorError) as info:
        selector_from_label_selector({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})
    assert str(info.value) == ("values: Invalid value: []string{}: "
                               "for 'in', 'notin' operators, values set can't be empty")
    with pytest.raises(SelectorError) as info:
        new_requirement("a", "exists", ["x"])
    assert str(info.value) == ('values: Invalid value: []string{"x"}: '
                               "values set must be empty for exists and does not exist")


def test_set_and_formatting_helpers():
    assert str(selector_from_set({"b": "2", "a": "1"})) == "a=1,b=2"
    assert selector_from_set(None).empty
    assert format_labels({"b": "2", "a": "1"}) == "a=1,b=2"
    assert format_labels({}) == "<none>"
    assert format_label_selector({"matchLabels": {"app": "web"}}) == "app=web"
    assert format_label_selector({}) == "<none>"
    assert format_label_selector(None) == "<none>"
    assert format_label_selector({"matchExpressions": [{"key": "a", "operator": "Nope"}]}) == "<error>"


# -- field selectors -----------------------------------------------------------------------------

POD = {
    "metadata": {"name": "web-1", "namespace": "default"},
    "spec": {"nodeName": "lab-worker", "restartPolicy": "Always", "schedulerName": "default-scheduler",
             "serviceAccountName": "default"},
    "status": {"phase": "Running", "podIP": "10.244.1.5", "podIPs": [{"ip": "10.244.1.5"}]},
}
EVENT = {
    "metadata": {"name": "web-1.1", "namespace": "default"},
    "involvedObject": {"kind": "Pod", "namespace": "default", "name": "web-1", "uid": "u1", "apiVersion": "v1",
                       "resourceVersion": "7", "fieldPath": "spec.containers{web}"},
    "reason": "Pulled", "source": {"component": "kubelet"}, "type": "Normal",
}


@pytest.mark.parametrize("resource, obj, text, expected", [
    ("pods", POD, "spec.nodeName=lab-worker", True),
    ("pods", POD, "spec.nodeName=other", False),
    ("pods", POD, "spec.nodeName!=other", True),
    ("pods", POD, "spec.nodeName==lab-worker,status.phase=Running", True),
    ("pods", POD, "status.phase!=Running", False),
    ("pods", POD, "status.podIP=10.244.1.5", True),
    ("pods", POD, "spec.restartPolicy=Always,spec.schedulerName=default-scheduler", True),
    ("pods", POD, "spec.serviceAccountName=default,metadata.namespace=default", True),
    ("pods", POD, "status.nominatedNodeName=", True),
    ("pods", POD, "spec.host=lab-worker", True),  # old clients' name for spec.nodeName
    ("pods", POD, "spec.nodeName=", False),  # the unscheduled-pods query of a scheduler
    ("pods", POD, "metadata.name=web-1", True),
    ("events", EVENT, "involvedObject.kind=Pod,involvedObject.name=web-1", True),
    ("events", EVENT, "involvedObject.uid=u1,involvedObject.fieldPath=spec.containers{web}", True),
    ("events", EVENT, "reason=Pulled,source=kubelet,type=Normal", True),
    ("events", EVENT, "type=Warning", False),
    ("secrets", {"metadata": {"name": "s"}, "type": "Opaque"}, "type=Opaque", True),
    ("namespaces", {"metadata": {"name": "dev"}, "status": {"phase": "Active"}}, "status.phase=Active", True),
    ("nodes", {"metadata": {"name": "n"}, "spec": {"unschedulable": True}}, "spec.unschedulable=true", True),
    ("nodes", {"metadata": {"name": "n"}, "spec": {}}, "spec.unschedulable=false", True),
    ("replicasets", {"metadata": {"name": "r"}, "status": {"replicas": 0}}, "status.replicas=0", True),
    ("replicasets", {"metadata": {"name": "r"}, "status": {"replicas": 3}}, "status.replicas!=0", True),
    ("configmaps", {"metadata": {"name": "c", "namespace": "d"}}, "metadata.name=c,metadata.namespace=d", True),
    ("configmaps", {"metadata": {"name": "a\\,b=c"}}, r"metadata.name=a\\\,b\=c", True),
])
def test_field_selector_matching(resource, obj, text, expected):
    assert parse_field_selector(text, resource).matches(obj) is expected


@pytest.mark.parametrize("resource, text, message", [
    ("pods", "spec.containers=x", "field label not supported: spec.containers"),
    ("pods", "metadata.labels=x", "field label not supported: metadata.labels"),
    ("events", "message=x", "field label not supported: message"),
    ("nodes", "metadata.namespace=x", "field label not supported: metadata.namespace"),
    ("secrets", "data=x", "field label not supported: data"),
    ("configmaps", "data=x",
     '"data" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("replicasets", "spec.replicas=1",
     '"spec.replicas" is not a known field selector: only "metadata.name", "metadata.namespace"'),
    ("pods", "status.phase", "invalid selector: 'status.phase'; can't understand 'status.phase'"),
    ("pods", "status.phase=a=b", "invalid field selector: unescaped character in value: 61"),
    ("pods", "status.phase=a\\x", "invalid field selector: invalid escape sequence: \\x"),
])
def test_field_selector_errors(resource, text, message):
    with pytest.raises(APIError) as info:
        parse_field_selector(text, resource)
    assert (info.value.code, info.value.message) == (400, message)


def test_field_selector_string_is_sorted_and_escaped():
    selector = parse_field_selector(r"status.phase!=Failed,metadata.name=a\,b", "pods")
    assert str(selector) == r"metadata.name=a\,b,status.phase!=Failed"
    assert selector.requires_exact_match("metadata.name") == "a,b"
    assert parse_field_selector("", "pods").empty
