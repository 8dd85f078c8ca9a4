"""Decoding Kubernetes protobuf request bodies (labctl.apiserver.protobuf).

The fixtures are real bodies kubectl v1.37.1 sent to labctl's API server, stored with
the JSON the same command prints under ``--dry-run=client -o json`` -- Go's JSON encoding
of the very object kubectl serialized -- so each case checks the decoder against
kubectl's own idea of the JSON form.  Synthetic bodies built with the tiny encoder below
cover what kubectl's create commands never send (times, quantities, pointer zeros,
packed lists, unknown fields, malformed input).
"""

from __future__ import annotations

import base64
import importlib.util
import json
import struct
import sys
from pathlib import Path

import pytest

from labctl.apiserver import protobuf
from labctl.apiserver.errors import APIError
from labctl.apiserver.protobuf import decode_object, go_duration, message_name

FIXTURES = json.loads((Path(__file__).parent / "protobuf_fixtures.json").read_text())["cases"]
ROOT = Path(__file__).resolve().parents[2]


# -- a minimal protobuf writer, for synthetic bodies ------------------------------------

def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def vi(number: int, n: int) -> bytes:
    return varint(number << 3) + varint(n)


def ld(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def envelope(api_version: str, kind: str, raw: bytes, **extra: bytes) -> bytes:
    type_meta = ld(1, api_version) + ld(2, kind)
    tail = b"".join(extra.values())
    return b"k8s\x00" + ld(1, type_meta) + ld(2, raw) + ld(3, b"") + ld(4, b"") + tail


def meta(name: str, *extra: bytes) -> bytes:
    # what gogo writes for a fresh ObjectMeta: every non-pointer field, empty or not
    return ld(1, ld(1, name) + ld(2, b"") + ld(3, b"") + ld(4, b"") + ld(5, b"") + ld(6, b"")
              + vi(7, 0) + ld(8, b"") + b"".join(extra))


# -- real kubectl bodies ----------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(FIXTURES))
def test_kubectl_body_decodes_to_kubectls_own_json(case):
    fixture = FIXTURES[case]
    assert fixture["content_type"] == protobuf.MEDIA_TYPE
    assert decode_object(bytes.fromhex(fixture["body_hex"])) == fixture["dry_run_json"]


def body(case: str) -> dict:
    return decode_object(bytes.fromhex(FIXTURES[case]["body_hex"]))


def test_brief_example_configmap():
    raw = bytes.fromhex("6b 38 73 00 0a 0f 0a 02 76 31 12 09 43 6f 6e 66 69 67 4d 61 70 12 1c 0a 12 0a 02 77 33 12 00"
                        " 1a 00 22 00 2a 00 32 00 38 00 42 00 12 06 0a 01 61 12 01 31 1a 00 22 00")
    assert decode_object(raw) == {"kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": "w3"},
                                  "data": {"a": "1"}}


def test_configmap_from_literal_and_file():
    assert body("create_configmap_literal")["data"] == {"a": "1", "b": "two words"}
    cm = body("create_configmap_file")
    assert cm["metadata"] == {"name": "cm-file"}
    assert cm["data"] == {"pbcap_file.txt": "hello-file\n", "other.txt": "hello-file\n"}


def test_secret_data_is_base64_like_json():
    secret = body("create_secret_generic")
    assert {k: base64.b64decode(v).decode() for k, v in secret["data"].items()} == {
        "password": "s3cr3t", "user": "admin"}
    reg = body("create_secret_docker_registry")
    assert reg["type"] == "kubernetes.io/dockerconfigjson"
    config = json.loads(base64.b64decode(reg["data"][".dockerconfigjson"]))
    assert config["auths"]["registry.example:5000"]["username"] == "u"


def test_namespace_and_serviceaccount():
    assert body("create_namespace") == {"kind": "Namespace", "apiVersion": "v1",
                                        "metadata": {"name": "team-a"}, "spec": {}, "status": {}}
    assert body("create_serviceaccount")["metadata"] == {"name": "robot"}


def test_deployment_replicas_selector_and_template():
    dep = body("create_deployment")
    assert dep["apiVersion"] == "apps/v1" and dep["kind"] == "Deployment"
    assert dep["spec"]["replicas"] == 3
    assert dep["spec"]["selector"] == {"matchLabels": {"app": "web"}}
    assert dep["spec"]["template"]["metadata"]["labels"] == {"app": "web"}
    assert dep["spec"]["template"]["spec"]["containers"] == [
        {"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80}], "resources": {}}]
    two = body("create_deployment_two_images")
    assert [c["image"] for c in two["spec"]["template"]["spec"]["containers"]] == ["nginx", "busybox:1.36"]
    assert two["metadata"]["namespace"] == "team-a"


def test_services_ports_intstr_and_nodeport():
    nodeport = body("create_service_nodeport")["spec"]
    assert nodeport["type"] == "NodePort"
    assert nodeport["ports"] == [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080,
                                  "nodePort": 30080}]
    named = body("create_service_clusterip")["spec"]["ports"][0]
    assert named["port"] == 5678 and named["targetPort"] == "http"  # string arm of IntOrString
    lb = body("create_service_loadbalancer")["spec"]
    assert lb["type"] == "LoadBalancer" and [p["port"] for p in lb["ports"]] == [443, 80]
    assert body("create_service_externalname")["spec"] == {"type": "ExternalName", "selector": {"app": "ext"},
                                                           "externalName": "db.example.com"}


# -- synthetic bodies ---------------------------------------------------------------------

def test_unknown_fields_are_skipped_at_every_level():
    fixture = bytes.fromhex(FIXTURES["create_configmap_literal"]["body_hex"])
    unknown = vi(99, 7) + ld(98, b"\x01\x02") + varint(97 << 3 | 1) + b"\0" * 8 + varint(96 << 3 | 5) + b"\0" * 4
    cm = (meta("w3", ld(11, ld(1, "k") + ld(2, "v") + unknown), unknown) + unknown
          + ld(2, ld(1, "a") + ld(2, "1") + unknown))
    got = decode_object(envelope("v1", "ConfigMap", cm, trailer=unknown))
    assert got == {"kind": "ConfigMap", "apiVersion": "v1",
                   "metadata": {"name": "w3", "labels": {"k": "v"}}, "data": {"a": "1"}}
    assert decode_object(fixture)["data"]["a"] == "1"


def test_pointer_zero_is_kept_and_plain_zero_dropped():
    spec = vi(1, 0) + vi(5, 0) + vi(7, 0)  # replicas (pointer) 0, minReadySeconds 0, paused false
    dep = decode_object(envelope("apps/v1", "Deployment", meta("zero") + ld(2, spec)))
    assert dep["spec"] == {"replicas": 0}
    opts = decode_object(envelope("v1", "DeleteOptions", vi(1, 0) + ld(4, "Foreground") + vi(3, 0)))
    assert opts == {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                    "propagationPolicy": "Foreground", "orphanDependents": False}
    sa = decode_object(envelope("v1", "ServiceAccount", meta("sa") + vi(4, 0)))
    assert sa["automountServiceAccountToken"] is False


def test_eviction_carries_delete_options():
    ev = decode_object(envelope("policy/v1", "Eviction", meta("p", ld(3, "default")) + ld(2, vi(1, 7))))
    assert ev == {"kind": "Eviction", "apiVersion": "policy/v1",
                  "metadata": {"name": "p", "namespace": "default"}, "deleteOptions": {"gracePeriodSeconds": 7}}


def test_times_quantities_and_inline_references():
    created = ld(8, vi(1, 1795996800) + vi(2, 5))  # 2026-11-30T00:00:00Z (+5ns, dropped by RFC 3339)
    container = (ld(1, "c") + ld(2, "busybox") + ld(8, ld(1, ld(1, "cpu") + ld(2, ld(1, "100m"))))
                 + ld(19, ld(2, ld(1, ld(1, "settings")) + vi(2, 1))) + ld(6, vi(3, 0)))
    volume = ld(1, ld(1, "scratch") + ld(2, ld(2, b"")))  # emptyDir: {} must survive
    pod = decode_object(envelope("v1", "Pod", ld(1, ld(1, "p") + created) + ld(2, ld(2, container) + volume)))
    assert pod["metadata"] == {"name": "p", "creationTimestamp": "2026-11-30T00:00:00Z"}
    c = pod["spec"]["containers"][0]
    assert c["resources"] == {"limits": {"cpu": "100m"}}
    assert c["envFrom"] == [{"configMapRef": {"name": "settings", "optional": True}}]
    assert c["ports"] == [{"containerPort": 0}]  # required field: its zero is kept
    assert pod["spec"]["volumes"] == [{"name": "scratch", "emptyDir": {}}]
    lease = decode_object(envelope("coordination.k8s.io/v1", "Lease", meta("l")
                                   + ld(2, ld(1, "node-1") + vi(2, 40) + ld(4, vi(1, 1795996800) + vi(2, 123456789)))))
    assert lease["spec"] == {"holderIdentity": "node-1", "leaseDurationSeconds": 40,
                             "renewTime": "2026-11-30T00:00:00.123456Z"}


def test_packed_and_unpacked_repeated_numbers():
    groups = vi(4, 1000) + vi(4, 2000)  # proto2 style, one tag per element
    packed = ld(4, varint(3000) + varint(4000))
    pod = decode_object(envelope("v1", "Pod", meta("p") + ld(2, ld(14, groups + packed))))
    assert pod["spec"]["securityContext"] == {"supplementalGroups": [1000, 2000, 3000, 4000]}


def test_negative_int32_and_double():
    ports = ld(6, vi(2, -1) + vi(3, 80))  # hostPort -1 is ten bytes on the wire
    pod = decode_object(envelope("v1", "Pod", meta("p") + ld(2, ld(2, ld(1, "c") + ports))))
    assert pod["spec"]["containers"][0]["ports"] == [{"hostPort": -1, "containerPort": 80}]
    assert protobuf._scalar("double", struct.pack("<d", 1.5)) == 1.5


def test_raw_extension_holds_embedded_json():
    rev = decode_object(envelope("apps/v1", "ControllerRevision", meta("r") + ld(2, ld(1, b'{"spec":{"x":1}}'))
                                 + vi(3, 2)))
    assert rev["data"] == {"spec": {"x": 1}} and rev["revision"] == 2


def test_hints_fill_an_empty_type_meta():
    raw = b"k8s\x00" + ld(1, b"") + ld(2, meta("cm") + ld(2, ld(1, "a") + ld(2, "")))
    assert decode_object(raw, "v1", "ConfigMap") == {"kind": "ConfigMap", "apiVersion": "v1",
                                                     "metadata": {"name": "cm"}, "data": {"a": ""}}


def test_embedded_json_content_type():
    raw = b"k8s\x00" + ld(2, b'{"kind":"ConfigMap","apiVersion":"v1"}') + ld(4, "application/json")
    assert decode_object(raw) == {"kind": "ConfigMap", "apiVersion": "v1"}


@pytest.mark.parametrize("raw, words", [
    (b'{"kind":"ConfigMap"}', "magic"),
    (b"k8s\x00\x0a\x05\x0a\x02", "claims"),
    (b"k8s\x00\x0a\x80", "truncated varint"),
    (envelope("v1", "ConfigMap", ld(1, vi(1, 5))), "metadata.name"),
    (envelope("v1", "ConfigMap", ld(1, ld(1, b"\xff\xfe"))), "UTF-8"),
    (envelope("v1", "ConfigMap", b"", gzip=ld(3, "gzip")), "contentEncoding"),
    (envelope("v1", "ConfigMap", varint(2 << 3 | 3)), "wire type 3"),
    (b"k8s\x00" + ld(2, meta("x")), "no apiVersion"),
])
def test_malformed_bodies_are_bad_requests(raw, words):
    with pytest.raises(APIError) as info:
        decode_object(raw)
    assert info.value.code == 400 and info.value.reason == "BadRequest"
    assert words in info.value.message


def test_kind_without_schema_is_unsupported_media_type():
    with pytest.raises(APIError) as info:
        decode_object(envelope("example.com/v1", "Widget", b""))
    assert info.value.code == 415


def test_message_names_for_served_kinds():
    assert message_name("v1", "ConfigMap") == "k8s.io.api.core.v1.ConfigMap"
    assert message_name("apps/v1", "ReplicaSet") == "k8s.io.api.apps.v1.ReplicaSet"
    assert message_name("coordination.k8s.io/v1", "Lease") == "k8s.io.api.coordination.v1.Lease"
    assert message_name("discovery.k8s.io/v1", "EndpointSlice") == "k8s.io.api.discovery.v1.EndpointSlice"
    assert message_name("autoscaling/v1", "Scale") == "k8s.io.api.autoscaling.v1.Scale"
    assert message_name("apps/v1", "DeleteOptions") == "k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions"
    assert message_name("v1", "Widget") is None


@pytest.mark.parametrize("ns, text", [(0, "0s"), (1, "1ns"), (1500, "1.5µs"), (2_500_000, "2.5ms"),
                                       (1_500_000_000, "1.5s"), (90_000_000_000, "1m30s"),
                                       (3_600_000_000_000, "1h0m0s"), (-3_723_000_000_000, "-1h2m3s")])
def test_go_duration_text(ns, text):
    assert go_duration(ns) == text


def test_generator_parses_proto_text():
    spec = importlib.util.spec_from_file_location("gen_protobuf_schema", ROOT / "tools" / "gen_protobuf_schema.py")
    gen = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = gen  # dataclasses look their module up while the class is built
    spec.loader.exec_module(gen)
    package, messages = gen.parse_proto("""
        syntax = "proto2";  // comment
        package k8s.io.api.demo.v1;
        /* block
           comment */
        message Outer {
          // +optional
          optional .k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta metadata = 1;
          map<string, Inner> items = 2;
          repeated int64 counts = 3 [packed = true];
          message Inner { optional string name = 1; }
          optional Inner inner = 4;
        }
    """)
    assert package == "k8s.io.api.demo.v1"
    outer, inner = messages
    assert (outer.full_name, inner.full_name) == ("k8s.io.api.demo.v1.Outer", "k8s.io.api.demo.v1.Outer.Inner")
    assert [(f.name, f.number, f.type, f.repeated, f.map_key) for f in outer.fields] == [
        ("metadata", 1, ".k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta", False, None),
        ("items", 2, "Inner", False, "string"), ("counts", 3, "int64", True, None), ("inner", 4, "Inner", False, None)]
    known = {m.full_name for m in messages}
    assert gen.resolve("Inner", outer.full_name, known) == "k8s.io.api.demo.v1.Outer.Inner"


def test_committed_schema_covers_every_served_kind():
    for api_version, kind in [("v1", k) for k in ("Namespace", "Node", "Pod", "Service", "Endpoints", "Event",
                                                  "ConfigMap", "Secret", "ServiceAccount", "Binding")] + [
            ("apps/v1", "ReplicaSet"), ("apps/v1", "Deployment"), ("coordination.k8s.io/v1", "Lease"),
            ("discovery.k8s.io/v1", "EndpointSlice"), ("policy/v1", "Eviction"), ("autoscaling/v1", "Scale"),
            ("v1", "DeleteOptions")]:
        assert message_name(api_version, kind), f"{api_version} {kind}"
    # every message type a field names is itself in the schema
    schema = protobuf.schema()
    for name, fields in schema.items():
        for f in fields.values():
            assert f.type in protobuf._SCALAR_TYPES or f.type in schema, f"{name}.{f.name}: {f.type}"


def test_objects_embedded_in_objects_are_bounded():
    """A List whose item is a List whose item is ... stops at MAX_EMBEDDED levels, with a 400, fast."""
    def nested(depth: int) -> bytes:
        body = envelope("v1", "ConfigMap", b"")
        for _ in range(depth):
            body = envelope("v1", "List", ld(2, ld(1, body)))  # items[0].raw
        return body
    assert decode_object(nested(3))["items"]
    with pytest.raises(APIError) as info:
        decode_object(nested(200))
    assert info.value.code == 400
    assert info.value.message == "failed to decode protobuf body: objects embedded more than 8 deep"
