#!/usr/bin/env python3
"""Generate the compact protobuf schema labctl's API server uses to decode kubectl's bodies.

Run by hand, output committed::

    python tools/gen_protobuf_schema.py /tmp/k8sproto   # writes labctl/apiserver/protobuf_data/schema.json.gz

Why: kubectl 1.37 sends ``application/vnd.kubernetes.protobuf`` bodies for its typed
``create`` commands and does not retry with JSON on 415.  Decoding those bodies needs, per
message, the field numbers, JSON names and types -- exactly what Kubernetes' own
``generated.proto`` files say (go-to-protobuf names every proto field after its JSON
name).  The ``.proto`` texts are read from Kubernetes' repositories (``kubernetes/api``,
``kubernetes/apimachinery`` or the ``staging/`` copies in ``kubernetes/kubernetes``), kept
outside the repository (e.g. in ``/tmp/k8sproto``), and only this script's output is
committed.  Comments may be stripped from the inputs beforehand; the parser ignores them.

What a ``.proto`` file cannot say, and this script adds from two other sources:

* which fields are Go *embedded* structs serialised ``json:",inline"`` (``INLINE`` below,
  from Kubernetes' ``types.go``): their sub-fields land in the parent JSON object;
* which scalar fields are Go *pointers* (``POINTER_FIELDS``, also from ``types.go``): an
  explicit zero there (``replicas: 0``, ``gracePeriodSeconds: 0``, ``automountServiceAccountToken:
  false``) means something and is kept, while gogo-protobuf also writes the zero value of
  every non-pointer field, which Go's JSON encoder drops (``omitempty``);
* which fields are required (``required`` lists of the committed OpenAPI documents in
  ``labctl/apiserver/openapi_data``): those are not ``omitempty`` in Go, so their zero value is kept.

Output layout (gzip JSON)::

    {"messages": {"k8s.io.api.core.v1.ConfigMap": {"1": ["metadata", "k8s.io...ObjectMeta", flags], ...}},
     "map_fields": {...}, "sources": {...}}

A field entry is ``[json_name, type, flags]`` or, for ``map<k, v>``, ``[json_name, "map", flags,
key_type, value_type]``; ``flags`` is a string of letters: ``r`` repeated, ``i`` inline
(embedded), ``p`` pointer scalar, ``q`` required.  ``type`` is a proto scalar name
(``string``, ``int32``, ``bytes`` ...) or a message's full name without the leading dot.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "labctl" / "apiserver" / "protobuf_data" / "schema.json.gz"
OPENAPI_DIR = ROOT / "labctl" / "apiserver" / "openapi_data"

SCALARS = {
    "double", "float", "int32", "int64", "uint32", "uint64", "sint32", "sint64",
    "fixed32", "fixed64", "sfixed32", "sfixed64", "bool", "string", "bytes",
}
CORE = "k8s.io.api.core.v1."
META = "k8s.io.apimachinery.pkg.apis.meta.v1."

# Embedded Go structs (`json:",inline"`): message -> field whose sub-fields are flattened.
INLINE = {
    CORE + "ConfigMapEnvSource": "localObjectReference",
    CORE + "ConfigMapKeySelector": "localObjectReference",
    CORE + "ConfigMapProjection": "localObjectReference",
    CORE + "ConfigMapVolumeSource": "localObjectReference",
    CORE + "SecretEnvSource": "localObjectReference",
    CORE + "SecretKeySelector": "localObjectReference",
    CORE + "SecretProjection": "localObjectReference",
    CORE + "EphemeralContainer": "ephemeralContainerCommon",
    CORE + "Probe": "handler",
    CORE + "Volume": "volumeSource",
    "k8s.io.api.networking.v1.IngressRule": "ingressRuleValue",
}

_CONTAINER_PTRS = ("restartPolicy",)
_SECCTX_PTRS = ("privileged", "runAsUser", "runAsGroup", "runAsNonRoot", "readOnlyRootFilesystem",
                "allowPrivilegeEscalation", "procMount")
# Scalar fields that are Go pointers (*int32, *bool, *string ...), by message.
POINTER_FIELDS: dict[str, tuple[str, ...]] = {
    META + "DeleteOptions": ("gracePeriodSeconds", "orphanDependents", "propagationPolicy",
                             "ignoreStoreReadErrorWithClusterBreakingPotential"),
    META + "ObjectMeta": ("deletionGracePeriodSeconds",),
    META + "OwnerReference": ("controller", "blockOwnerDeletion"),
    META + "ListMeta": ("remainingItemCount",),
    META + "Preconditions": ("uid", "resourceVersion"),
    META + "PatchOptions": ("force",),
    "k8s.io.api.autoscaling.v2.HorizontalPodAutoscalerSpec": ("minReplicas",),
    "k8s.io.api.autoscaling.v2.HorizontalPodAutoscalerStatus": ("observedGeneration",),
    "k8s.io.api.autoscaling.v2.HPAScalingRules": ("stabilizationWindowSeconds", "selectPolicy"),
    "k8s.io.api.autoscaling.v2.MetricTarget": ("averageUtilization",),
    "k8s.io.api.autoscaling.v2.MetricValueStatus": ("averageUtilization",),
    "k8s.io.api.apps.v1.DeploymentSpec": ("replicas", "revisionHistoryLimit", "progressDeadlineSeconds",
                                          "podReplacementPolicy"),
    "k8s.io.api.apps.v1.DeploymentStatus": ("collisionCount", "terminatingReplicas"),
    "k8s.io.api.apps.v1.ReplicaSetSpec": ("replicas",),
    "k8s.io.api.apps.v1.ReplicaSetStatus": ("terminatingReplicas",),
    "k8s.io.api.apps.v1.StatefulSetSpec": ("replicas", "revisionHistoryLimit"),
    "k8s.io.api.apps.v1.StatefulSetStatus": ("collisionCount",),
    "k8s.io.api.apps.v1.DaemonSetSpec": ("revisionHistoryLimit",),
    "k8s.io.api.apps.v1.DaemonSetStatus": ("collisionCount",),
    "k8s.io.api.apps.v1.RollingUpdateStatefulSetStrategy": ("partition",),
    "k8s.io.api.batch.v1.JobSpec": ("parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                                    "backoffLimitPerIndex", "maxFailedIndexes", "manualSelector",
                                    "ttlSecondsAfterFinished", "completionMode", "suspend", "podReplacementPolicy",
                                    "managedBy"),
    "k8s.io.api.batch.v1.JobStatus": ("ready", "terminating"),
    "k8s.io.api.batch.v1.CronJobSpec": ("timeZone", "startingDeadlineSeconds", "suspend",
                                        "successfulJobsHistoryLimit", "failedJobsHistoryLimit"),
    "k8s.io.api.batch.v1.SuccessPolicyRule": ("succeededIndexes", "succeededCount"),
    "k8s.io.api.batch.v1.PodFailurePolicyOnExitCodesRequirement": ("containerName",),
    "k8s.io.api.batch.v1.PodFailurePolicyOnPodConditionsPattern": ("status",),
    CORE + "PodSpec": ("terminationGracePeriodSeconds", "activeDeadlineSeconds", "automountServiceAccountToken",
                       "shareProcessNamespace", "priority", "enableServiceLinks", "preemptionPolicy",
                       "setHostnameAsFQDN", "hostUsers", "hostnameOverride"),
    CORE + "ServiceAccount": ("automountServiceAccountToken",),
    CORE + "ConfigMap": ("immutable",),
    CORE + "Secret": ("immutable",),
    CORE + "ConfigMapVolumeSource": ("defaultMode", "optional"),
    CORE + "SecretVolumeSource": ("defaultMode", "optional"),
    CORE + "ProjectedVolumeSource": ("defaultMode",),
    CORE + "DownwardAPIVolumeSource": ("defaultMode",),
    CORE + "KeyToPath": ("mode",),
    CORE + "DownwardAPIVolumeFile": ("mode",),
    CORE + "ConfigMapEnvSource": ("optional",),
    CORE + "SecretEnvSource": ("optional",),
    CORE + "ConfigMapKeySelector": ("optional",),
    CORE + "SecretKeySelector": ("optional",),
    CORE + "ConfigMapProjection": ("optional",),
    CORE + "SecretProjection": ("optional",),
    CORE + "FileKeySelector": ("optional",),
    CORE + "Container": _CONTAINER_PTRS,
    CORE + "EphemeralContainerCommon": _CONTAINER_PTRS,
    CORE + "SecurityContext": _SECCTX_PTRS,
    CORE + "PodSecurityContext": ("runAsUser", "runAsGroup", "runAsNonRoot", "fsGroup", "fsGroupChangePolicy",
                                  "supplementalGroupsPolicy", "seLinuxChangePolicy"),
    CORE + "WindowsSecurityContextOptions": ("gmsaCredentialSpecName", "gmsaCredentialSpec", "runAsUserName",
                                             "hostProcess"),
    CORE + "Probe": ("terminationGracePeriodSeconds",),
    CORE + "GRPCAction": ("service",),
    CORE + "Toleration": ("tolerationSeconds",),
    CORE + "TopologySpreadConstraint": ("minDomains", "nodeAffinityPolicy", "nodeTaintsPolicy"),
    CORE + "ServiceSpec": ("allocateLoadBalancerNodePorts", "ipFamilyPolicy", "loadBalancerClass",
                           "internalTrafficPolicy", "trafficDistribution"),
    CORE + "ServicePort": ("appProtocol",),
    CORE + "EndpointPort": ("appProtocol",),
    CORE + "LoadBalancerIngress": ("ipMode",),
    CORE + "PortStatus": ("error",),
    CORE + "ClientIPConfig": ("timeoutSeconds",),
    CORE + "ServiceAccountTokenProjection": ("expirationSeconds",),
    CORE + "CSIVolumeSource": ("readOnly", "fsType"),
    CORE + "HostPathVolumeSource": ("type",),
    CORE + "VolumeMount": ("mountPropagation", "recursiveReadOnly"),
    CORE + "Lifecycle": ("stopSignal",),
    CORE + "ContainerStatus": ("started", "stopSignal"),
    CORE + "PersistentVolumeClaimSpec": ("storageClassName", "volumeMode", "volumeAttributesClassName"),
    CORE + "PodCertificateProjection": ("maxExpirationSeconds",),
    CORE + "ClusterTrustBundleProjection": ("name", "signerName", "optional"),
    CORE + "TypedLocalObjectReference": ("apiGroup",),
    CORE + "TypedObjectReference": ("apiGroup", "namespace"),
    CORE + "PodResourceClaim": ("resourceClaimName", "resourceClaimTemplateName"),
    CORE + "PodResourceClaimStatus": ("resourceClaimName",),
    CORE + "PodDNSConfigOption": ("value",),
    CORE + "AppArmorProfile": ("localhostProfile",),
    CORE + "SeccompProfile": ("localhostProfile",),
    CORE + "NodeFeatures": ("supplementalGroupsPolicy",),
    CORE + "NodeRuntimeHandlerFeatures": ("recursiveReadOnlyMounts", "userNamespaces"),
    CORE + "NodeSwapStatus": ("capacity",),
    "k8s.io.api.discovery.v1.EndpointConditions": ("ready", "serving", "terminating"),
    "k8s.io.api.discovery.v1.Endpoint": ("hostname", "nodeName", "zone"),
    "k8s.io.api.discovery.v1.EndpointPort": ("name", "protocol", "port", "appProtocol"),
    "k8s.io.api.authentication.v1.TokenRequestSpec": ("expirationSeconds",),
    "k8s.io.api.coordination.v1.LeaseSpec": ("holderIdentity", "leaseDurationSeconds", "leaseTransitions",
                                             "strategy", "preferredHolder"),
    "k8s.io.api.networking.v1.IngressSpec": ("ingressClassName",),
    "k8s.io.api.networking.v1.HTTPIngressPath": ("pathType",),
    "k8s.io.api.networking.v1.IngressClassParametersReference": ("apiGroup", "scope", "namespace"),
    "k8s.io.api.networking.v1.IngressPortStatus": ("error",),
    "k8s.io.api.networking.v1.NetworkPolicyPort": ("protocol", "port", "endPort"),
}

# Fields whose proto name is not their JSON name: go-to-protobuf lower-cases only the first
# letter of the Go name (UID -> uID) while the JSON tag says "uid".
JSON_NAMES = {
    "k8s.io.api.authentication.v1.BoundObjectReference": {"uID": "uid"},
    "k8s.io.api.networking.v1.IngressClassParametersReference": {"aPIGroup": "apiGroup"},
}

# Fields newer than the .proto copies the index held (field numbers from Kubernetes' types.go).
EXTRA_FIELDS = {
    META + "DeleteOptions": {6: ("ignoreStoreReadErrorWithClusterBreakingPotential", "bool", "")},
}

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|[A-Za-z_.][\w.]*|\d+|[{}<>=;,\[\]()]')


@dataclass
class Field:
    name: str
    number: int
    type: str
    repeated: bool = False
    map_key: str | None = None


@dataclass
class Message:
    full_name: str
    fields: list[Field] = field(default_factory=list)


def strip_comments(text: str) -> str:
    """Drop ``//`` and ``/* */`` comments (quoted strings are left alone)."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(text[i : j + 1])
            i = j + 1
        elif text.startswith("//", i):
            i = text.find("\n", i)
            i = n if i < 0 else i
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_proto(text: str) -> tuple[str, list[Message]]:
    """Parse one ``.proto`` text into its package and messages (nested ones get dotted names)."""
    tokens = _TOKEN.findall(strip_comments(text))
    package, messages, scope = "", [], []  # scope: the stack of open messages
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok == "package":
            package, i = tokens[i + 1], i + 3
        elif tok == "message":
            parent = scope[-1].full_name if scope else package
            msg = Message(f"{parent}.{tokens[i + 1]}")
            messages.append(msg)
            scope.append(msg)
            i += 3  # message NAME {
        elif tok in ("enum", "oneof", "service", "extend"):
            depth, i = 0, i + 1
            while tokens[i] != "{":
                i += 1
            while True:  # skip the whole block: labctl's kinds use none of these
                depth += {"{": 1, "}": -1}.get(tokens[i], 0)
                i += 1
                if depth == 0:
                    break
        elif tok == "}":
            scope.pop()
            i += 1
        elif tok in ("optional", "repeated", "required") and scope:
            end = tokens.index(";", i)
            type_, name, number = tokens[i + 1], tokens[i + 2], int(tokens[i + 4])
            scope[-1].fields.append(Field(name, number, type_, repeated=tok == "repeated"))
            i = end + 1  # options in [...] are irrelevant here
        elif tok == "map" and scope:
            # map < K , V > name = N ;
            key, value, name, number = tokens[i + 2], tokens[i + 4], tokens[i + 6], int(tokens[i + 8])
            scope[-1].fields.append(Field(name, number, value, map_key=key))
            i = tokens.index(";", i) + 1
        elif tok in ("syntax", "import", "option", "reserved"):
            i = tokens.index(";", i) + 1
        else:
            raise SystemExit(f"failed to parse .proto: unexpected token {tok!r} near token {i}")
    return package, messages


def resolve(type_: str, msg_name: str, known: set[str]) -> str:
    """Resolve a field type to a scalar name or a message's full name, like protoc's scoping."""
    if type_ in SCALARS:
        return type_
    if type_.startswith("."):
        return type_[1:]
    scope = msg_name
    while scope:
        candidate = f"{scope}.{type_}"
        if candidate in known:
            return candidate
        scope = scope.rpartition(".")[0]
    if type_ in known:
        return type_
    raise SystemExit(f"failed to resolve type {type_!r} used in message {msg_name!r}")


def load_required() -> dict[str, set[str]]:
    """``required`` lists of the committed OpenAPI documents, keyed by proto full name."""
    required: dict[str, set[str]] = {}
    for path in sorted(OPENAPI_DIR.glob("*.json.gz")):
        schemas = json.loads(gzip.decompress(path.read_bytes()))["components"]["schemas"]
        for name, schema in schemas.items():
            if name.startswith("io.k8s.") and schema.get("required"):
                required["k8s.io." + name[len("io.k8s.") :]] = set(schema["required"])
    return required


def build_schema(proto_dir: Path, known_elsewhere: frozenset[str] = frozenset()) -> dict:
    """Parse every ``*.proto`` in ``proto_dir`` into the compact schema.

    ``known_elsewhere``: message names the inputs may refer to without defining them (``--add``).
    """
    messages: list[Message] = []
    sources: dict[str, str] = {}
    for path in sorted(proto_dir.glob("*.proto")):
        text = path.read_text()
        package, parsed = parse_proto(text)
        messages += parsed
        first = text.lstrip().splitlines()[0] if text.strip() else ""
        sources[package] = first.lstrip("/ ").strip()
    known = {m.full_name for m in messages} | known_elsewhere
    required = load_required()
    out: dict[str, dict[str, list]] = {}
    for msg in messages:
        ptrs = set(POINTER_FIELDS.get(msg.full_name, ()))
        req = required.get(msg.full_name, set())
        entries: dict[str, list] = {}
        for f in msg.fields:
            f.name = JSON_NAMES.get(msg.full_name, {}).get(f.name, f.name)
            flags = ("r" if f.repeated else "") + ("i" if INLINE.get(msg.full_name) == f.name else "")
            flags += ("p" if f.name in ptrs else "") + ("q" if f.name in req else "")
            type_ = resolve(f.type, msg.full_name, known)
            if f.map_key:
                entries[str(f.number)] = [f.name, "map", flags, f.map_key, type_]
            else:
                entries[str(f.number)] = [f.name, type_, flags]
        for number, (name, type_, flags) in EXTRA_FIELDS.get(msg.full_name, {}).items():
            entries.setdefault(str(number), [name, type_, flags + ("p" if name in ptrs else "")])
        out[msg.full_name] = entries
    _check_tables(out, set(sources), known_elsewhere)
    return {"messages": out, "sources": sources}


def _check_tables(messages: dict[str, dict[str, list]], packages: set[str],
                  known_elsewhere: frozenset[str] = frozenset()) -> None:
    """Fail loudly if a hand-kept table names a message or field the .proto files lack."""
    for table in (INLINE, POINTER_FIELDS):
        for msg, names in table.items():
            if msg.rpartition(".")[0] not in packages:
                continue  # a package these inputs do not cover (an --only run)
            if msg not in messages:
                if msg not in known_elsewhere:
                    print(f"warning: {msg} (named in a table) is not in the .proto inputs", file=sys.stderr)
                continue
            present = {e[0] for e in messages[msg].values()}
            for name in (names,) if isinstance(names, str) else names:
                if name not in present:
                    print(f"warning: {msg}.{name} (named in a table) is not a field", file=sys.stderr)


def merge_packages(existing: dict, fresh: dict, packages: list[str]) -> dict:
    """``existing`` with the messages (and source notes) of ``packages`` taken from ``fresh``.

    Adding a group (RBAC, authorization) must not re-decode the kinds already served from
    newer ``.proto`` copies: their inputs stay as the table in docs/protobuf.md lists them.
    """
    def in_packages(name: str) -> bool:
        return any(name.startswith(p + ".") for p in packages)

    missing = [p for p in packages if p not in fresh["sources"]]
    if missing:
        raise SystemExit(f"failed to merge: no .proto input declares package(s) {', '.join(missing)}")
    messages = {k: v for k, v in existing["messages"].items() if not in_packages(k)}
    messages.update({k: v for k, v in fresh["messages"].items() if in_packages(k)})
    sources = {**existing["sources"], **{p: fresh["sources"][p] for p in packages}}
    return {"messages": dict(sorted(messages.items())), "sources": sources}


def add_messages(existing: dict, fresh: dict) -> dict:
    """``existing`` plus ``fresh``'s messages; each package's source note gains the new input's."""
    messages = {**existing["messages"], **fresh["messages"]}
    sources = dict(existing["sources"])
    for package, note in fresh["sources"].items():
        sources[package] = f"{sources[package]}; {note}" if package in sources else note
    return {"messages": dict(sorted(messages.items())), "sources": sources}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("proto_dir", type=Path, help="folder with the generated.proto texts (*.proto)")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--only", action="append", default=[], metavar="PACKAGE",
                        help="replace only this proto package (e.g. k8s.io.api.rbac.v1) in the existing --out "
                             "schema, leaving every other message as it is; repeatable")
    parser.add_argument("--add", action="store_true",
                        help="add the inputs' messages to the existing --out schema, keeping all others (a few "
                             "messages of a package whose other inputs are not at hand, e.g. core/v1 ResourceQuota)")
    args = parser.parse_args(argv)
    existing = json.loads(gzip.decompress(args.out.read_bytes())) if args.only or args.add else None
    schema = build_schema(args.proto_dir, frozenset(existing["messages"]) if args.add and existing else frozenset())
    if existing is not None:
        schema = merge_packages(existing, schema, args.only) if args.only else add_messages(existing, schema)
    data = json.dumps(schema, sort_keys=True, separators=(",", ":")).encode()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(gzip.compress(data, mtime=0))
    count = sum(len(m) for m in schema["messages"].values())
    print(f"wrote {args.out} ({len(schema['messages'])} messages, {count} fields, {args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
