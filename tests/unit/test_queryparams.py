"""Query parameters parsed and validated as kube-apiserver does (labctl.apiserver.queryparams)."""

from __future__ import annotations

import pytest
from multidict import MultiDict

from labctl.apiserver import queryparams
from labctl.apiserver.errors import APIError
from labctl.kube.resources import Registry


def q(**params) -> MultiDict:
    return MultiDict((k, v) for k, values in params.items() for v in (values if isinstance(values, list) else [values]))


PODS = next(rt for rt in Registry().resources if rt.plural == "pods" and rt.group == "")
DEPLOYMENTS = next(rt for rt in Registry().resources if rt.plural == "deployments")


def error(fn, *args) -> APIError:
    with pytest.raises(APIError) as info:
        fn(*args)
    return info.value


@pytest.mark.parametrize(("text", "message"), [
    ("abc", 'strconv.ParseInt: parsing "abc": invalid syntax'),
    ("1.5", 'strconv.ParseInt: parsing "1.5": invalid syntax'),
    (" 1", 'strconv.ParseInt: parsing " 1": invalid syntax'),
    ("99999999999999999999", 'strconv.ParseInt: parsing "99999999999999999999": value out of range'),
])
def test_integers_parse_as_gos_parseint(text, message):
    err = error(queryparams.list_options, q(limit=text), PODS)
    assert (err.code, err.reason, err.message) == (400, "BadRequest", message)


def test_a_negative_limit_means_no_paging_and_a_negative_timeout_is_kept():
    opts = queryparams.list_options(q(limit="-1", timeoutSeconds="-1", watch="true"), PODS)
    assert opts.limit == 0 and opts.timeout_seconds == -1 and opts.watch


@pytest.mark.parametrize(("value", "watch"), [("true", True), ("1", True), ("yes", True), ("", True),
                                              ("false", False), ("F", False), ("0", False)])
def test_booleans_follow_apimachinery(value, watch):
    assert queryparams.list_options(q(watch=value), PODS).watch is watch


@pytest.mark.parametrize(("rv", "detail"), [
    ("99999999999999999999", 'strconv.ParseUint: parsing "99999999999999999999": value out of range'),
    ("-5", 'strconv.ParseUint: parsing "-5": invalid syntax'),
    ("abc", 'strconv.ParseUint: parsing "abc": invalid syntax'),
])
def test_a_resource_version_that_is_no_uint64_is_invalid_on_the_resource(rv, detail):
    err = error(queryparams.list_options, q(watch="true", resourceVersion=rv), PODS)
    assert (err.code, err.reason) == (422, "Invalid")
    assert err.message == f'pods "" is invalid: resourceVersion: Invalid value: "{rv}": {detail}'
    err = error(queryparams.list_options, q(resourceVersion=rv), DEPLOYMENTS)
    assert err.message.startswith('deployments.apps "" is invalid: resourceVersion')


def test_list_options_are_validated_like_validate_list_options():
    err = error(queryparams.list_options, q(resourceVersionMatch="Exact"), PODS)
    assert err.code == 422
    assert err.message == ('ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: Forbidden: '
                           "resourceVersionMatch is forbidden unless resourceVersion is provided")
    err = error(queryparams.list_options, q(resourceVersion="5", resourceVersionMatch="Newest"), PODS)
    assert 'Unsupported value: "Newest": supported values: "Exact", "NotOlderThan", ""' in err.message
    err = error(queryparams.list_options, q(sendInitialEvents="true"), PODS)
    assert "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list" in err.message
    err = error(queryparams.list_options, q(watch="1", sendInitialEvents="true"), PODS)
    assert "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan" in err.message
    opts = queryparams.list_options(q(watch="1", sendInitialEvents="true", resourceVersionMatch="NotOlderThan"), PODS)
    assert opts.send_initial_events is True
    err = error(queryparams.list_options, q(resourceVersion="3", **{"continue": "abc"}), PODS)
    assert (err.code, err.message) == (400, "specifying resource version is not allowed when using continue")


def test_write_options_are_validated_like_kubes_create_update_patch_options():
    assert queryparams.write_options(q(), "CreateOptions") == queryparams.WriteOptions(False, "", "Warn")
    assert queryparams.write_options(q(dryRun="All", fieldValidation="Strict", fieldManager="kubectl"),
                                     "UpdateOptions") == queryparams.WriteOptions(True, "kubectl", "Strict")
    err = error(queryparams.write_options, q(dryRun="Yes"), "CreateOptions")
    assert err.message == ('CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: []string{"Yes"}: '
                           'supported values: "All"')
    err = error(queryparams.write_options, q(fieldValidation="strict"), "CreateOptions")
    assert 'fieldValidation: Unsupported value: "strict": supported values: "", "Ignore", "Strict", "Warn"' \
        in err.message
    err = error(queryparams.write_options, q(fieldManager="x" * 129), "CreateOptions")
    assert "fieldManager: Too long: may not be more than 128 bytes" in err.message
    err = error(queryparams.write_options, q(fieldManager="a\x07"), "CreateOptions")
    assert "invalid character U+0007 (at position 1)" in err.message
    err = error(queryparams.write_options, q(), "PatchOptions", "apply")
    assert err.message == ('PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: '
                           "is required for apply patch")
    err = error(queryparams.write_options, q(force="true"), "PatchOptions", "merge")
    assert "force: Forbidden: may not be specified for non-apply patch" in err.message


def test_delete_options_take_the_query_over_the_body_and_are_validated():
    opts = queryparams.delete_options(q(gracePeriodSeconds="5"), {"gracePeriodSeconds": 30})
    assert opts["gracePeriodSeconds"] == 5
    assert queryparams.delete_options(q(gracePeriodSeconds="-3"), {})["gracePeriodSeconds"] == 1
    err = error(queryparams.delete_options, q(propagationPolicy="Later"), {})
    assert err.message == ('DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Later": '
                           'supported values: "Foreground", "Background", "Orphan", "nil"')
    err = error(queryparams.delete_options, q(propagationPolicy="Orphan", orphanDependents="true"), {})
    assert "orphanDependents and deletionPropagation cannot be both set" in err.message
    err = error(queryparams.delete_options, q(gracePeriodSeconds="soon"), {})
    assert err.code == 400


def test_pod_log_integers_are_int64():
    queryparams.check_pod_log_query(q(tailLines="10", limitBytes="5"))
    err = error(queryparams.check_pod_log_query, q(tailLines="99999999999999999999"))
    assert err.message == 'strconv.ParseInt: parsing "99999999999999999999": value out of range'
