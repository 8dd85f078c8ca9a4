"""The REST verbs over the store, with kube-apiserver's semantics, the same for every kind.

This module is HTTP-free: the aiohttp layer (``server.py``) parses a request into a
:class:`RequestScope` and calls one method here, which returns the object to answer with
or raises :class:`~labctl.apiserver.errors.APIError`. Keeping the rules here (generation,
optimistic concurrency, graceful deletion, finalizers, allocation) lets tests and
benchmarks drive them without sockets.

Like kube's generic registry ``Store``, the flow knows no kind: where kinds differ it asks
the kind's strategy (:mod:`labctl.apiserver.strategies`).
"""

from __future__ import annotations

import base64
import builtins  # the class's ``list`` verb shadows the builtin inside it
import datetime as dt
import ipaddress

import orjson

from labctl.kube.meta import IMMUTABLE_ON_UPDATE, SERVER_OWNED_ON_CREATE, generate_name, new_uid, now, spec_of, timestamp
from labctl.kube.resources import APIEXTENSIONS_GROUP, Registry, ResourceType

from ..clusterconfig import ClusterConfig
from . import admission, decode, errors
from .allocators import NodePortAllocator, ServiceIPAllocator
from .patch import json_patch, merge_patch, strategic_merge_patch
from .queryparams import ListOptions
from .scope import RequestScope
from .selectors import parse_field_selector, parse_label_selector
from .storage import AlreadyExists, NotFound, PreconditionFailed, SQLiteStore, clone
from .strategies import (
    INITIAL_NAMESPACES,
    ensure_default_service_account,
    ensure_system_priority_classes,
    strategy_for,
)

TOO_LARGE_RV_CAUSE = {"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}




#: kube-apiserver's words for an optimistic-concurrency conflict
MODIFIED_MESSAGE = "the object has been modified; please apply your changes to the latest version and try again"


class RestAPI:
    """kube-apiserver's generic registry (``genericregistry.Store``) for every served kind."""

    def __init__(self, store: SQLiteStore, registry: Registry | None = None,
                 cluster: ClusterConfig | None = None) -> None:
        self.store = store
        self.registry = registry or Registry()
        self.cluster = cluster or ClusterConfig()
        self.service_ips = ServiceIPAllocator(self.cluster.service_subnet)
        self.node_ports = NodePortAllocator(self.cluster.node_port_range)

    # -- bootstrap -----------------------------------------------------------------------
    def bootstrap(self, advertise_address: str, secure_port: int) -> None:
        """Objects every cluster has from the start: namespaces, the ``kubernetes`` Service.

        The stored CustomResourceDefinitions are served again first.
        """
        self.serve_custom_resources()
        ns_type = self._type("", "namespaces")
        for ns in INITIAL_NAMESPACES:
            if self.store.get((ns_type.key, "", ns)) is None:
                self.create(RequestScope(ns_type), {"metadata": {"name": ns}})
            ensure_default_service_account(self, ns)
        ensure_system_priority_classes(self)
        svc_type = self._type("", "services")
        if self.store.get((svc_type.key, "default", "kubernetes")) is None:
            self.create(RequestScope(svc_type, "default"), {
                "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
                "spec": {"clusterIP": self.cluster.kubernetes_service_ip, "sessionAffinity": "None",
                         "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": secure_port}]},
            })
        if ipaddress.ip_address(advertise_address).is_loopback:
            return  # Endpoints may not point at loopback; a standalone test server has no node IP
        ep_type = self._type("", "endpoints")
        endpoints = {
            "metadata": {"name": "kubernetes", "namespace": "default",
                         "labels": {"endpointslice.kubernetes.io/skip-mirror": "true"}},
            "subsets": [{"addresses": [{"ip": advertise_address}],
                         "ports": [{"name": "https", "port": secure_port, "protocol": "TCP"}]}],
        }
        current = self.store.get((ep_type.key, "default", "kubernetes"))
        if current is None:
            self.create(RequestScope(ep_type, "default"), endpoints)
        elif current.get("subsets") != endpoints["subsets"]:
            self.update(RequestScope(ep_type, "default", "kubernetes"), {**clone(current), "subsets": endpoints["subsets"]})

    def serve_custom_resources(self) -> None:
        """Serve the custom resources of the stored CustomResourceDefinitions (after a restart)."""
        crd_type = self._type(APIEXTENSIONS_GROUP, "customresourcedefinitions")
        for crd in self.store.list(crd_type.key):
            strategy_for(crd_type).after_create(self, crd)

    def _type(self, group: str, plural: str) -> ResourceType:
        for rt in self.registry.resources:
            if rt.group == group and rt.plural == plural:
                return rt
        raise KeyError(plural)

    # -- reads ---------------------------------------------------------------------------
    def get(self, scope: RequestScope) -> dict:
        obj = self.store.get(scope.key())
        if obj is None:
            raise errors.not_found(scope.resource.plural, scope.resource.group, scope.name or "")
        return obj

    def list(self, scope: RequestScope, opts: ListOptions) -> dict:
        rt = scope.resource
        items = self.store.list(rt.key, scope.namespace if rt.namespaced else None)
        items = self.filter(rt, items, opts)
        revision = self.store.revision
        self._check_list_resource_version(opts, revision)
        meta: dict = {"resourceVersion": str(revision)}
        if opts.continue_token:
            start = _decode_continue(opts.continue_token)
            items = [o for o in items if _sort_key(o) > start]
        if opts.limit and len(items) > opts.limit:
            remaining = len(items) - opts.limit
            items = items[: opts.limit]
            meta["continue"] = _encode_continue(_sort_key(items[-1]), revision)
            meta["remainingItemCount"] = remaining
        return {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items}

    @staticmethod
    def _check_list_resource_version(opts: ListOptions, revision: int) -> None:
        """A list at a resourceVersion: never newer than the store; ``Exact`` only at the current one.

        kube's watch cache waits up to 3 s for a newer version, then answers 504 with a
        ``ResourceVersionTooLarge`` cause; this store is always current, so it answers at once.
        labctl keeps no snapshots, so an older ``Exact`` version is answered like a compacted one.
        """
        if opts.resource_version in ("", "0"):
            return
        wanted = int(opts.resource_version)
        if wanted > revision:
            raise errors.timeout(f"Too large resource version: {wanted}, current: {revision}", 1, [TOO_LARGE_RV_CAUSE])
        if opts.resource_version_match == "Exact" and wanted != revision:
            raise errors.gone("The resourceVersion for the provided list is too old.")

    def filter(self, rt: ResourceType, items: builtins.list[dict], opts: ListOptions) -> builtins.list[dict]:
        matcher = self.matcher(rt, opts)
        return items if matcher is None else [o for o in items if matcher(o)]

    def matcher(self, rt: ResourceType, opts: ListOptions):
        """A predicate for label and field selectors, or None when there are none."""
        labels = parse_label_selector(opts.label_selector) if opts.label_selector else None
        fields = parse_field_selector(opts.field_selector, rt.plural) if opts.field_selector else None
        if labels is None and fields is None:
            return None

        def match(obj: dict) -> bool:
            if labels is not None and not labels.matches(obj.get("metadata", {}).get("labels") or {}):
                return False
            return fields is None or fields.matches(obj)

        return match

    # -- create --------------------------------------------------------------------------
    def create(self, scope: RequestScope, body: dict, dry_run: bool = False) -> dict:
        rt = scope.resource
        strategy = strategy_for(rt)
        obj = clone(body)
        self._check_type_meta(rt, obj)
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            if meta.get("namespace") and meta["namespace"] != scope.namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = scope.namespace
            self._require_namespace(scope.namespace or "", creating=True)
        else:
            meta.pop("namespace", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = generate_name(meta["generateName"])
        if not meta.get("name"):
            raise errors.invalid_object(rt.kind, rt.group, "", [
                errors.required("metadata.name", "name or generateName is required")])
        for f in SERVER_OWNED_ON_CREATE:
            meta.pop(f, None)
        meta["uid"] = new_uid()
        meta["creationTimestamp"] = timestamp()
        if strategy.tracks_generation:
            meta["generation"] = 1
        obj["kind"], obj["apiVersion"] = rt.kind, rt.api_version
        strategy.prepare_for_create(obj)
        admission.mutate(self, rt, obj, None)
        field_errors = strategy.validate(obj) + strategy.admit(obj, None)
        field_errors += strategy.allocate(self, obj, None)
        if field_errors:
            raise errors.invalid_object(rt.kind, rt.group, meta["name"], field_errors)
        admission.validate(self, rt, obj, None)
        if dry_run:
            return obj
        try:
            stored = self.store.create(scope.key(meta["name"]), obj)
        except AlreadyExists:
            raise errors.already_exists(rt.plural, rt.group, meta["name"]) from None
        strategy.after_create(self, stored)
        admission.record(self, rt, scope.namespace)
        return stored

    def _check_type_meta(self, rt: ResourceType, obj: dict) -> None:
        if not isinstance(obj, dict):
            raise errors.bad_request("the body of the request was not a JSON object")
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if api_version and api_version != rt.api_version:
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version ({rt.api_version})")
        if kind and kind != rt.kind:
            raise errors.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
        if not isinstance(obj.get("metadata", {}), dict):
            raise errors.bad_request("metadata must be an object")

    def _require_namespace(self, namespace: str, creating: bool) -> None:
        ns = self.store.get(("core/namespaces", "", namespace))
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if creating and ns.get("metadata", {}).get("deletionTimestamp"):
            raise errors.forbidden_error(
                f'unable to create new content in namespace {namespace} because it is being terminated')

    # -- update --------------------------------------------------------------------------
    def update(self, scope: RequestScope, body: dict, dry_run: bool = False) -> dict:
        rt = scope.resource
        new = clone(body)
        self._check_type_meta(rt, new)
        meta = new.setdefault("metadata", {})
        if meta.get("name") and meta["name"] != scope.name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL ({scope.name})")
        current = self.get(scope)
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, scope.name or "",
                                  "the object has been modified; please apply your changes to the latest version and try again")
        return self._replace(scope, current, new, dry_run)

    def _replace(self, scope: RequestScope, current: dict, new: dict, dry_run: bool) -> dict:
        rt = scope.resource
        strategy = strategy_for(rt)
        meta = new.setdefault("metadata", {})
        old_meta = current["metadata"]
        meta["name"] = old_meta["name"]
        for f in IMMUTABLE_ON_UPDATE:
            if f in old_meta:
                meta[f] = old_meta[f]
            else:
                meta.pop(f, None)
        meta.pop("resourceVersion", None)
        new["kind"], new["apiVersion"] = rt.kind, rt.api_version
        new = strategy.prepare_for_update(new, current, scope.subresource)
        if scope.subresource is None:
            field_errors = strategy.validate_update(current, new) + strategy.admit(new, current)
        else:
            field_errors = strategy.validate_subresource_update(scope.subresource, current, new)
        field_errors += strategy.allocate(self, new, current)
        if field_errors:
            raise errors.invalid_object(rt.kind, rt.group, scope.name or "", field_errors)
        if scope.subresource is None:
            admission.validate(self, rt, new, current)
        if strategy.tracks_generation and spec_of(new) != spec_of(current):
            new["metadata"]["generation"] = int(old_meta.get("generation", 1)) + 1
        if dry_run:
            return new
        expected = int(old_meta["resourceVersion"])
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers") and not strategy.graceful_pending(new):
            return self._remove(scope, expected)
        if _unchanged(new, current):
            # kube's GuaranteedUpdate writes nothing when the object is the same: no new
            # resourceVersion, no MODIFIED event, and kubectl prints "patched (no change)"
            return current
        try:
            stored = self.store.update(scope.key(), new, expected)
        except PreconditionFailed:
            raise errors.conflict(rt.plural, rt.group, scope.name or "",
                                  MODIFIED_MESSAGE) from None
        strategy.after_update(self, stored)
        admission.record(self, rt, scope.namespace)
        return stored

    # -- patch ---------------------------------------------------------------------------
    def patch(self, scope: RequestScope, patch: decode.Patch, dry_run: bool = False,
              field_validation: str = "Warn") -> tuple[int, dict, builtins.list[str]]:
        """Apply a decoded patch; returns (HTTP code, object, warnings): 201 when server-side apply creates.

        The patched object is type-checked like a decoded body (:func:`decode.patched_object`),
        its unknown fields dropped, before the kind's strategy sees it; a server-side apply
        body is typed first (:func:`decode.check_apply_patch`), as kube's field manager does.
        """
        rt = scope.resource
        current = self.store.get(scope.key())
        if patch.type == "apply":
            applied = _expect_object(patch.body.doc)
            decode.check_apply_patch(patch, rt.api_version, rt.kind)
            if current is None:
                warnings = decode.patched_object(applied, {}, patch, rt.api_version, rt.kind, field_validation)
                return 201, self.create(scope, applied, dry_run), warnings
            patched = strategic_merge_patch(clone(current), applied, rt.api_version, rt.kind)
            warnings = decode.patched_object(patched, current, patch, rt.api_version, rt.kind, field_validation)
            return 200, self._replace(scope, current, patched, dry_run), warnings
        if current is None:
            raise errors.not_found(rt.plural, rt.group, scope.name or "")
        if scope.subresource == "scale":
            return 200, self.patch_scale(scope, current, patch, dry_run), []
        if patch.type == "strategic" and not strategy_for(rt).strategic_merge:
            # a custom resource has no patch strategies: kube lists the patch types it takes
            raise errors.APIError(415, "UnsupportedMediaType",
                                  "the body of the request was in an unknown format - accepted media types include: "
                                  "application/json-patch+json, application/merge-patch+json, "
                                  "application/apply-patch+yaml")
        patched = self._patched(clone(current), patch, rt.api_version, rt.kind)
        warnings = decode.patched_object(patched, current, patch, rt.api_version, rt.kind, field_validation)
        wanted_rv = (patched.get("metadata") or {}).get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, scope.name or "",
                                  "the object has been modified; please apply your changes to the latest version and try again")
        return 200, self._replace(scope, current, patched, dry_run), warnings

    @staticmethod
    def _patched(base: dict, patch: decode.Patch, api_version: str, kind: str) -> dict:
        if patch.type == "json":
            return json_patch(base, patch.body.raw)
        if patch.type == "merge":
            return merge_patch(base, _expect_object(patch.body.doc))
        return strategic_merge_patch(base, _expect_object(patch.body.doc), api_version, kind)

    # -- scale subresource ---------------------------------------------------------------
    def get_scale(self, scope: RequestScope) -> dict:
        return strategy_for(scope.resource).scale_of(self.get(scope))

    def update_scale(self, scope: RequestScope, body: dict, dry_run: bool = False) -> dict:
        current = self.get(scope)
        replicas = (body.get("spec") or {}).get("replicas", 0)
        return self._set_replicas(scope, current, replicas, dry_run)

    def patch_scale(self, scope: RequestScope, current: dict, patch: decode.Patch, dry_run: bool) -> dict:
        scale = strategy_for(scope.resource).scale_of(current)
        patched = json_patch(scale, patch.body.raw) if patch.type == "json" else merge_patch(
            scale, _expect_object(patch.body.doc))
        decode.patched_object(patched, scale, patch, "autoscaling/v1", "Scale", "Ignore")
        return self._set_replicas(scope, current, (patched.get("spec") or {}).get("replicas", 0), dry_run)

    def _set_replicas(self, scope: RequestScope, current: dict, replicas, dry_run: bool) -> dict:
        if not isinstance(replicas, int) or replicas < 0:
            raise errors.invalid_object("Scale", "autoscaling", scope.name or "", [
                errors.invalid("spec.replicas", replicas, "must be greater than or equal to 0")])
        strategy = strategy_for(scope.resource)
        new = clone(current)
        strategy.set_replicas(new, replicas)
        plain = RequestScope(scope.resource, scope.namespace, scope.name)
        return strategy.scale_of(self._replace(plain, current, new, dry_run))

    # -- binding (the scheduler's write) --------------------------------------------------
    def bind(self, scope: RequestScope, body: dict) -> dict:
        pod = self.get(scope)
        target = (body.get("target") or {}).get("name")
        if not target:
            raise errors.invalid_object("Binding", "", scope.name or "", [errors.required("target.name")])
        if pod.get("spec", {}).get("nodeName"):
            raise errors.conflict("pods", "", scope.name or "",
                                  f"pod {scope.name} is already assigned to node \"{pod['spec']['nodeName']}\"")
        new = clone(pod)
        new["spec"]["nodeName"] = target
        conditions = [c for c in new.setdefault("status", {}).get("conditions", []) if c.get("type") != "PodScheduled"]
        conditions.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None,
                           "lastTransitionTime": timestamp()})
        new["status"]["conditions"] = conditions
        self.store.update(scope.key(), new, int(pod["metadata"]["resourceVersion"]))
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}

    # -- delete --------------------------------------------------------------------------
    def delete(self, scope: RequestScope, options: dict, dry_run: bool = False) -> dict:
        rt = scope.resource
        strategy = strategy_for(rt)
        current = self.get(scope)
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != current["metadata"].get("uid"):
            raise errors.conflict(rt.plural, rt.group, scope.name or "",
                                  f"Precondition failed: UID in precondition: {pre['uid']}, "
                                  f"UID in object meta: {current['metadata'].get('uid')}")
        if pre.get("resourceVersion") and pre["resourceVersion"] != current["metadata"]["resourceVersion"]:
            raise errors.conflict(rt.plural, rt.group, scope.name or "",
                                  f"Precondition failed: ResourceVersion in precondition: {pre['resourceVersion']}, "
                                  f"ResourceVersion in object meta: {current['metadata']['resourceVersion']}")
        strategy.check_delete(current)
        if dry_run:
            return current
        new = clone(current)
        meta = new["metadata"]
        finalizers = list(meta.get("finalizers") or [])
        policy = options.get("propagationPolicy")
        if options.get("orphanDependents") is True:
            policy = "Orphan"
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        elif policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        grace = strategy.grace_period(current, options)
        if strategy.finalizes_on_delete:
            strategy.finalize(self, current)
            return self._remove(scope, int(meta["resourceVersion"]))
        if not finalizers and grace == 0:
            return self._remove(scope, int(meta["resourceVersion"]))
        if meta.get("deletionTimestamp"):
            # already terminating: a shorter grace period may still speed it up
            if grace < int(meta.get("deletionGracePeriodSeconds") or 0):
                meta["deletionGracePeriodSeconds"] = grace
                meta["deletionTimestamp"] = timestamp(now() + dt.timedelta(seconds=grace))
            else:
                return current
        else:
            meta["deletionTimestamp"] = timestamp(now() + dt.timedelta(seconds=grace))
            meta["deletionGracePeriodSeconds"] = grace
        if finalizers:
            meta["finalizers"] = finalizers
        return self.store.update(scope.key(), new, int(current["metadata"]["resourceVersion"]))

    def _remove(self, scope: RequestScope, expected: int) -> dict:
        try:
            removed = self.store.delete(scope.key(), expected)
        except NotFound:
            raise errors.not_found(scope.resource.plural, scope.resource.group, scope.name or "") from None
        except PreconditionFailed:
            raise errors.conflict(scope.resource.plural, scope.resource.group, scope.name or "",
                                  MODIFIED_MESSAGE) from None
        admission.record(self, scope.resource, scope.namespace)
        return removed

    def delete_collection(self, scope: RequestScope, opts: ListOptions, options: dict,
                          dry_run: bool = False) -> dict:
        listed = self.list(scope, opts)
        deleted = []
        for obj in listed["items"]:
            item_scope = RequestScope(scope.resource, obj["metadata"].get("namespace"), obj["metadata"]["name"])
            try:
                deleted.append(self.delete(item_scope, options, dry_run))
            except errors.APIError as err:
                if err.code != 404:
                    raise
        listed["items"] = deleted
        return listed


def _expect_object(doc) -> dict:
    if not isinstance(doc, dict):
        raise errors.bad_request("patch body must be a JSON object")
    return doc


def _sort_key(obj: dict) -> str:
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}"


def _encode_continue(start: str, revision: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"v": "meta.k8s.io/v1", "rv": revision, "start": start})).decode()


def _decode_continue(token: str) -> str:
    try:
        start = orjson.loads(base64.urlsafe_b64decode(token.encode()))["start"]
    except Exception:
        start = None
    if not isinstance(start, str):
        raise errors.bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    return start


def _unchanged(new: dict, current: dict) -> bool:
    """``new`` is ``current`` but for the resourceVersion (which an update never carries into storage)."""
    if new.keys() != current.keys():
        return False
    meta = {k: v for k, v in current["metadata"].items() if k != "resourceVersion"}
    return new["metadata"] == meta and all(new[k] == current[k] for k in new if k != "metadata")
