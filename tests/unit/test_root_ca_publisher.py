"""The root CA publisher's ConfigMap: what it writes, and what of an edited one it keeps."""

from __future__ import annotations

from labctl.controllers.rootcacert import DESCRIPTION_ANNOTATION, wanted_config_map

CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


def test_a_new_namespace_gets_the_ca_under_ca_crt_with_kubes_description():
    cm = wanted_config_map("team", CA)
    assert cm["metadata"]["name"] == "kube-root-ca.crt" and cm["metadata"]["namespace"] == "team"
    assert cm["data"] == {"ca.crt": CA}
    assert DESCRIPTION_ANNOTATION in cm["metadata"]["annotations"]


def test_an_edited_config_map_gets_the_ca_back_and_keeps_the_rest():
    edited = {"apiVersion": "v1", "kind": "ConfigMap",
              "metadata": {"name": "kube-root-ca.crt", "namespace": "team", "resourceVersion": "42",
                           "labels": {"mine": "yes"}, "annotations": {"note": "x"}},
              "data": {"ca.crt": "not a CA", "extra": "1"}, "binaryData": {"b": "AA=="}}
    cm = wanted_config_map("team", CA, edited)
    assert cm["data"] == {"ca.crt": CA} and cm["binaryData"] == {"b": "AA=="}
    assert cm["metadata"]["resourceVersion"] == "42" and cm["metadata"]["labels"] == {"mine": "yes"}
    assert cm["metadata"]["annotations"]["note"] == "x"
    assert edited["data"]["ca.crt"] == "not a CA"  # the cached object is left as it was
    assert wanted_config_map("team", CA, cm) == cm  # a correct one needs no write
