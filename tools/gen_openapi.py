#!/usr/bin/env python3
"""Generate the OpenAPI v3 documents labctl's API server publishes at ``/openapi/v3``.

Run by hand, output committed::

    pip install 'kubernetes-validate==1.37.*'
    python tools/gen_openapi.py            # writes labctl/apiserver/openapi_data/*.json.gz

Why this source: kubectl 1.37 needs per-group-version OpenAPI v3 documents for
``apply`` (server-side field validation check, strategic-merge patch metadata) and
``explain`` (descriptions).  No PyPI package ships kube-apiserver's own
``api/openapi-spec/v3`` files, but ``kubernetes-validate`` (maintained, one release per
Kubernetes minor) ships every definition of Kubernetes' swagger with the vendor
extensions intact (``x-kubernetes-group-version-kind``, ``x-kubernetes-patch-strategy``,
``x-kubernetes-patch-merge-key``, ``x-kubernetes-list-map-keys`` ...), converted to JSON
Schema 2020-12.  This script undoes that conversion (``"type": ["string", "null"]`` ->
``"type": "string"``, ``#/$defs/`` -> ``#/components/schemas/``, the ``enum`` it adds to
``apiVersion``/``kind``), wraps ``$ref`` in ``allOf`` the way kube-apiserver's v3 builder
does, keeps only the definitions reachable from the kinds labctl serves, and adds
``paths`` for the served resources (kubectl looks for ``fieldValidation`` among the
PATCH parameters of a path whose ``x-kubernetes-group-version-kind`` is the kind).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KUBE_VERSION = "1.37.0"
OUT_DIR = Path(__file__).resolve().parent.parent / "labctl" / "apiserver" / "openapi_data"
META = "io.k8s.apimachinery.pkg.apis.meta.v1."
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


@dataclass(frozen=True)
class Resource:
    """One served REST resource, enough to write its ``paths`` entries."""

    plural: str
    kind: str
    schema: str  # definition name, e.g. io.k8s.api.core.v1.Pod
    namespaced: bool
    subresources: tuple[str, ...] = ()  # "status", "scale"
    create_only: bool = False  # the reviews: POST to the collection, nothing stored


@dataclass(frozen=True)
class GroupVersion:
    group: str
    version: str
    resources: tuple[Resource, ...]
    extra: tuple[str, ...] = ()  # more definitions to publish (Scale, Binding ...)

    @property
    def path(self) -> str:
        """The index key kube-apiserver uses: ``api/v1``, ``apis/apps/v1``."""
        return f"api/{self.version}" if not self.group else f"apis/{self.group}/{self.version}"

    @property
    def file_name(self) -> str:
        return self.path.replace("/", "__") + ".json.gz"


def _core(plural: str, kind: str, namespaced: bool = True, subs: tuple[str, ...] = ()) -> Resource:
    return Resource(plural, kind, f"io.k8s.api.core.v1.{kind}", namespaced, subs)


SERVED: tuple[GroupVersion, ...] = (
    GroupVersion("", "v1", (
        _core("namespaces", "Namespace", False, ("status",)),
        _core("nodes", "Node", False, ("status",)),
        _core("pods", "Pod", True, ("status",)),
        _core("services", "Service", True, ("status",)),
        _core("endpoints", "Endpoints"),
        _core("events", "Event"),
        _core("configmaps", "ConfigMap"),
        _core("secrets", "Secret"),
        _core("serviceaccounts", "ServiceAccount"),
        _core("persistentvolumes", "PersistentVolume", False, ("status",)),
        _core("persistentvolumeclaims", "PersistentVolumeClaim", True, ("status",)),
        _core("limitranges", "LimitRange"),
        _core("resourcequotas", "ResourceQuota", True, ("status",)),
    ), extra=("io.k8s.api.core.v1.Binding",)),
    GroupVersion("apps", "v1", (
        Resource("replicasets", "ReplicaSet", "io.k8s.api.apps.v1.ReplicaSet", True, ("status", "scale")),
        Resource("deployments", "Deployment", "io.k8s.api.apps.v1.Deployment", True, ("status", "scale")),
        Resource("daemonsets", "DaemonSet", "io.k8s.api.apps.v1.DaemonSet", True, ("status",)),
        Resource("statefulsets", "StatefulSet", "io.k8s.api.apps.v1.StatefulSet", True, ("status", "scale")),
        Resource("controllerrevisions", "ControllerRevision", "io.k8s.api.apps.v1.ControllerRevision", True),
    ), extra=("io.k8s.api.autoscaling.v1.Scale",)),
    GroupVersion("batch", "v1", (
        Resource("cronjobs", "CronJob", "io.k8s.api.batch.v1.CronJob", True, ("status",)),
        Resource("jobs", "Job", "io.k8s.api.batch.v1.Job", True, ("status",)),
    )),
    GroupVersion("authentication.k8s.io", "v1", (
        Resource("selfsubjectreviews", "SelfSubjectReview", "io.k8s.api.authentication.v1.SelfSubjectReview", False,
                 create_only=True),
    )),
    GroupVersion("authorization.k8s.io", "v1", tuple(
        Resource(kind.lower() + "s", kind, f"io.k8s.api.authorization.v1.{kind}", kind.startswith("Local"),
                 create_only=True)
        for kind in ("LocalSubjectAccessReview", "SelfSubjectAccessReview", "SelfSubjectRulesReview",
                     "SubjectAccessReview"))),
    GroupVersion("rbac.authorization.k8s.io", "v1", tuple(
        Resource(kind.lower() + "s", kind, f"io.k8s.api.rbac.v1.{kind}", not kind.startswith("Cluster"))
        for kind in ("ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"))),
    GroupVersion("coordination.k8s.io", "v1", (
        Resource("leases", "Lease", "io.k8s.api.coordination.v1.Lease", True),
    )),
    GroupVersion("discovery.k8s.io", "v1", (
        Resource("endpointslices", "EndpointSlice", "io.k8s.api.discovery.v1.EndpointSlice", True),
    )),
    GroupVersion("networking.k8s.io", "v1", (
        Resource("networkpolicies", "NetworkPolicy", "io.k8s.api.networking.v1.NetworkPolicy", True),
        Resource("ingresses", "Ingress", "io.k8s.api.networking.v1.Ingress", True, ("status",)),
        Resource("ingressclasses", "IngressClass", "io.k8s.api.networking.v1.IngressClass", False),
    )),
    GroupVersion("events.k8s.io", "v1", (
        Resource("events", "Event", "io.k8s.api.events.v1.Event", True),
    )),
    GroupVersion("scheduling.k8s.io", "v1", (
        Resource("priorityclasses", "PriorityClass", "io.k8s.api.scheduling.v1.PriorityClass", False),
    )),
    GroupVersion("storage.k8s.io", "v1", (
        Resource("storageclasses", "StorageClass", "io.k8s.api.storage.v1.StorageClass", False),
    )),
    GroupVersion("autoscaling", "v2", (
        Resource("horizontalpodautoscalers", "HorizontalPodAutoscaler",
                 "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler", True, ("status",)),
    )),
    GroupVersion("policy", "v1", (
        Resource("poddisruptionbudgets", "PodDisruptionBudget", "io.k8s.api.policy.v1.PodDisruptionBudget", True,
                 ("status",)),
    ), extra=("io.k8s.api.policy.v1.Eviction",)),
    GroupVersion("apiextensions.k8s.io", "v1", (
        Resource("customresourcedefinitions", "CustomResourceDefinition",
                 "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition", False,
                 ("status",)),
    )),
)

# Published in every group-version document, as kube-apiserver does.
COMMON = (META + "Status", META + "DeleteOptions", META + "WatchEvent", META + "Patch", META + "APIResourceList")


def load_definitions() -> dict[str, Any]:
    """Read kubernetes-validate's ``_definitions.json`` for Kubernetes 1.37."""
    try:
        import kubernetes_validate  # noqa: F401  (only for its data files)
    except ImportError:
        sys.exit("ERROR: failed to import kubernetes_validate: pip install 'kubernetes-validate==1.37.*'")
    base = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    path = base / f"v{KUBE_VERSION}-local" / "_definitions.json"
    if not path.exists():
        sys.exit(f"ERROR: failed to find {str(path)!r}: install kubernetes-validate for Kubernetes {KUBE_VERSION}")
    return json.loads(path.read_text())["$defs"]


def convert(schema: Any, *, in_property: bool = False) -> Any:
    """Turn one JSON-Schema-2020 node back into kube-apiserver's OpenAPI v3 form."""
    if isinstance(schema, list):
        return [convert(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, list):
            kinds = [t for t in value if t != "null"]
            out["type"] = kinds[0] if len(kinds) == 1 else kinds
        elif key == "$ref":
            out["$ref"] = value.replace("#/$defs/", "#/components/schemas/")
        elif key == "properties":
            out["properties"] = {name: convert(sub, in_property=True) for name, sub in value.items()}
        elif key in ("items", "additionalProperties"):
            out[key] = convert(value, in_property=True)
        else:
            out[key] = convert(value)
    if in_property and "$ref" in out:
        # kube's v3 builder: a $ref with siblings (description, extensions) goes in allOf,
        # because OpenAPI 3.0 ignores the siblings of a bare $ref.
        ref = out.pop("$ref")
        out = {"allOf": [{"$ref": ref}], **out}
    return out


def convert_definition(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    out = convert(schema)
    if "x-kubernetes-group-version-kind" in out:
        for field in ("apiVersion", "kind"):  # kubernetes-validate pins these with enum
            out.get("properties", {}).get(field, {}).pop("enum", None)
    if name == INT_OR_STRING:
        out = {"description": _int_or_string_doc(), "format": "int-or-string",
               "oneOf": [{"type": "integer"}, {"type": "string"}]}
    if name == QUANTITY:
        out.setdefault("description", "Quantity is a fixed-point representation of a number.")
    return out


def _int_or_string_doc() -> str:
    return ("IntOrString is a type that can hold an int32 or a string.  When used in JSON or YAML "
            "marshalling and unmarshalling, it produces or consumes the inner type.  This allows you "
            "to have, for example, a JSON field that can accept a name or number.")


def reachable(defs: dict[str, Any], roots: list[str]) -> list[str]:
    """Definition names reachable from ``roots`` through ``$ref`` (sorted)."""
    seen: set[str] = set()
    stack = list(roots)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        if name not in defs:
            sys.exit(f"ERROR: failed to find definition {name!r} in kubernetes-validate data")
        seen.add(name)
        stack.extend(_refs(defs[name]))
    return sorted(seen)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = []
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                found.append(value.rsplit("/", 1)[-1])
            else:
                found.extend(_refs(value))
        return found
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    return []


# --- paths -----------------------------------------------------------------------------
# Parameters are written inline (not as #/components/parameters refs): kubectl's
# QueryParamVerifierV3 only matches an inline {"name": "fieldValidation", "in": "query"}.

def _query(name: str, description: str, type_: str = "string") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": type_, "uniqueItems": True}
    return {"description": description, "in": "query", "name": name, "schema": schema}


def _path_param(name: str, what: str) -> dict[str, Any]:
    return {"description": what, "in": "path", "name": name, "required": True,
            "schema": {"type": "string", "uniqueItems": True}}


PRETTY = _query("pretty", "If 'true', then the output is pretty printed.")
DRY_RUN = _query("dryRun", "When present, indicates that modifications should not be persisted. "
                 "Valid values are: - All: all dry run stages will be processed")
FIELD_MANAGER = _query("fieldManager", "fieldManager is a name associated with the actor or entity "
                       "that is making these changes.")
FIELD_VALIDATION = _query(
    "fieldValidation",
    "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) "
    "containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict")
FORCE = _query("force", "Force is going to \"force\" Apply requests. It means user will re-acquire "
               "conflicting fields owned by other people.", "boolean")
LIST_PARAMS = [
    _query("allowWatchBookmarks", "allowWatchBookmarks requests watch events with type \"BOOKMARK\".", "boolean"),
    _query("continue", "The continue option should be set when retrieving more results from the server."),
    _query("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
    _query("labelSelector", "A selector to restrict the list of returned objects by their labels."),
    _query("limit", "limit is a maximum number of responses to return for a list call.", "integer"),
    _query("resourceVersion", "resourceVersion sets a constraint on what resource versions a request may be served from."),
    _query("resourceVersionMatch", "resourceVersionMatch determines how resourceVersion is applied to list calls."),
    _query("sendInitialEvents", "`sendInitialEvents=true` may be set together with `watch=true`.", "boolean"),
    _query("timeoutSeconds", "Timeout for the list/watch call.", "integer"),
    _query("watch", "Watch for changes to the described resources and return them as a stream of add, "
           "update, and remove notifications.", "boolean"),
]
DELETE_PARAMS = [
    DRY_RUN,
    _query("gracePeriodSeconds", "The duration in seconds before the object should be deleted.", "integer"),
    _query("propagationPolicy", "Whether and how garbage collection will be performed. "
           "Acceptable values are: 'Orphan', 'Background', 'Foreground'."),
]


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _responses(schema: str, *codes: str) -> dict[str, Any]:
    content = {t: {"schema": _ref(schema)} for t in ("application/json", "application/yaml")}
    out = {code: {"content": content, "description": {"200": "OK", "201": "Created", "202": "Accepted"}[code]}
           for code in codes}
    out["401"] = {"description": "Unauthorized"}
    return out


def _operation(verb: str, action: str, op_id: str, gvk: dict[str, str], tag: str, schema: str,
               params: list[dict[str, Any]], codes: tuple[str, ...], body: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {
        "description": f"{verb} {gvk['kind']}",
        "operationId": op_id,
        "responses": _responses(schema, *codes),
        "tags": [tag],
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": gvk,
    }
    if params:
        op["parameters"] = params
    if body == "patch":
        op["requestBody"] = {"content": {t: {"schema": _ref(META + "Patch")} for t in PATCH_TYPES}, "required": True}
    elif body:
        op["requestBody"] = {"content": {"*/*": {"schema": _ref(body)}}, "required": True}
    return op


def build_paths(gv: GroupVersion) -> dict[str, Any]:
    """``paths`` for every served resource of ``gv``: collection, item, subresources."""
    prefix = "/" + gv.path
    short = gv.group.split(".")[0] if gv.group else "core"  # "coordination.k8s.io" -> "coordination"
    group_word = short.capitalize() + gv.version.capitalize()  # operationIds as kube: patchCoreV1NamespacedPod
    tag = f"{short}_{gv.version}"
    paths: dict[str, Any] = {}
    for res in gv.resources:
        gvk = {"group": gv.group, "kind": res.kind, "version": gv.version}
        ns_word = "Namespaced" if res.namespaced else ""
        base = f"{prefix}/namespaces/{{namespace}}/{res.plural}" if res.namespaced else f"{prefix}/{res.plural}"
        common = [_path_param("namespace", "object name and auth scope, such as for teams and projects")] if res.namespaced else []
        write = [DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION]
        k = res.kind
        if res.create_only:  # kube publishes only the POST of a review
            paths[base] = {
                "post": _operation("create a", "post", f"create{group_word}{ns_word}{k}", gvk, tag, res.schema,
                                   write, ("200", "201", "202"), res.schema),
                "parameters": common + [PRETTY],
            }
            continue
        paths[base] = {
            "get": _operation("list or watch objects of kind", "list", f"list{group_word}{ns_word}{k}", gvk, tag,
                              res.schema + "List", LIST_PARAMS, ("200",)),
            "post": _operation("create a", "post", f"create{group_word}{ns_word}{k}", gvk, tag, res.schema,
                               write, ("200", "201", "202"), res.schema),
            "delete": _operation("delete collection of", "deletecollection", f"deletecollection{group_word}{ns_word}{k}",
                                 gvk, tag, META + "Status", DELETE_PARAMS + LIST_PARAMS, ("200",), META + "DeleteOptions"),
            "parameters": common + [PRETTY],
        }
        item_params = [_path_param("name", f"name of the {k}")] + common + [PRETTY]
        paths[f"{base}/{{name}}"] = _item_ops(group_word, ns_word, k, "", gvk, tag, res.schema, write, item_params)
        for sub in res.subresources:
            sub_gvk, sub_schema = gvk, res.schema
            if sub == "scale":
                sub_gvk, sub_schema = {"group": "autoscaling", "kind": "Scale", "version": "v1"}, "io.k8s.api.autoscaling.v1.Scale"
            paths[f"{base}/{{name}}/{sub}"] = _item_ops(group_word, ns_word, k, sub.capitalize(), sub_gvk, tag,
                                                        sub_schema, write, item_params, deletable=False)
        if res.namespaced:  # list across all namespaces
            paths[f"{prefix}/{res.plural}"] = {
                "get": _operation("list or watch objects of kind", "list", f"list{group_word}{k}ForAllNamespaces",
                                  gvk, tag, res.schema + "List", LIST_PARAMS, ("200",)),
                "parameters": [PRETTY],
            }
    return paths


def _item_ops(group_word: str, ns_word: str, kind: str, sub: str, gvk: dict[str, str], tag: str, schema: str,
              write: list[dict[str, Any]], params: list[dict[str, Any]], deletable: bool = True) -> dict[str, Any]:
    name = f"{group_word}{ns_word}{kind}{sub}"
    ops: dict[str, Any] = {
        "get": _operation("read the specified", "get", f"read{name}", gvk, tag, schema, [], ("200",)),
        "put": _operation("replace the specified", "put", f"replace{name}", gvk, tag, schema, write,
                          ("200", "201"), schema),
        "patch": _operation("partially update the specified", "patch", f"patch{name}", gvk, tag, schema,
                            write + [FORCE], ("200", "201"), "patch"),
        "parameters": params,
    }
    if deletable:
        ops["delete"] = _operation("delete a", "delete", f"delete{name}", gvk, tag, schema, DELETE_PARAMS,
                                   ("200", "202"), META + "DeleteOptions")
    return ops


def build_document(gv: GroupVersion, defs: dict[str, Any]) -> dict[str, Any]:
    roots = [r.schema for r in gv.resources] + [r.schema + "List" for r in gv.resources if not r.create_only]
    roots += list(gv.extra) + list(COMMON)
    names = reachable(defs, roots)
    schemas = {name: convert_definition(name, defs[name]) for name in names}
    return {
        "components": {"schemas": schemas},
        "info": {"title": "Kubernetes", "version": f"v{KUBE_VERSION}"},
        "openapi": "3.0.0",
        "paths": build_paths(gv),
    }


def write_document(doc: dict[str, Any], path: Path) -> int:
    """Write compact, key-sorted JSON, gzipped with a fixed mtime so reruns are byte-identical."""
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    with open(path, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    return len(raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder (default: %(default)s)")
    args = parser.parse_args(argv)
    defs = load_definitions()
    args.out.mkdir(parents=True, exist_ok=True)
    for gv in SERVED:
        target = args.out / gv.file_name
        raw_size = write_document(build_document(gv, defs), target)
        print(f"{gv.path:28} {raw_size:>9} bytes JSON  {target.stat().st_size:>8} bytes gz  -> {target.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
