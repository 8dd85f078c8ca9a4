"""API discovery documents: what kubectl reads to map ``kubectl get deploy`` to a URL.

kubectl 1.37 first asks ``/api`` and ``/apis`` for *aggregated* discovery
(``apidiscovery.k8s.io/v2``), which lists every resource in one round trip; older clients
fall back to ``/api/v1``-style resource lists. Both are built from the same registry.
"""

from __future__ import annotations

from labctl.kube.resources import Registry, ResourceType, subresource_kind

AGGREGATED_MEDIA_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
KUBERNETES_VERSION = {"major": "1", "minor": "37", "gitVersion": "v1.37.0-labctl", "gitCommit": "labctl",
                      "gitTreeState": "clean", "buildDate": "2026-11-30T00:00:00Z", "goVersion": "n/a",
                      "compiler": "cpython", "platform": "linux/amd64"}


def wants_aggregated(accept: str) -> bool:
    return "as=APIGroupDiscoveryList" in accept and "v=v2" in accept


def _verbs(rt: ResourceType) -> list[str]:
    return list(rt.verbs)


def resource_list(registry: Registry, group: str, version: str) -> dict:
    """``APIResourceList`` for one group/version (legacy discovery)."""
    resources = []
    for rt in registry.in_group_version(group, version):
        resources.append({
            "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
            "kind": rt.kind, "verbs": _verbs(rt),
            **({"shortNames": list(rt.short_names)} if rt.short_names else {}),
            **({"categories": list(rt.categories)} if rt.categories else {}),
        })
        for sub in rt.subresources:
            sub_kind, sub_verbs = subresource_kind(rt, sub)
            entry = {"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                     "kind": sub_kind[2] if sub_kind else rt.kind, "verbs": list(sub_verbs)}
            if sub_kind:
                entry["group"], entry["version"] = sub_kind[0], sub_kind[1]
            resources.append(entry)
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


def api_versions() -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]}


def api_group(group: str, versions: list[str]) -> dict:
    gvs = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": gvs,
            "preferredVersion": gvs[0]}


def api_group_list(registry: Registry) -> dict:
    groups = [api_group(g, vs) for g, vs in registry.groups().items() if g]
    for g in groups:
        g.pop("kind")
        g.pop("apiVersion")
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def _aggregated_resource(rt: ResourceType) -> dict:
    entry: dict = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular,
        "verbs": _verbs(rt),
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    subs = []
    for sub in rt.subresources:
        sub_kind, sub_verbs = subresource_kind(rt, sub)
        g, v, k = sub_kind if sub_kind else (rt.group, rt.version, rt.kind)
        subs.append({"subresource": sub, "responseKind": {"group": g, "version": v, "kind": k},
                     "verbs": list(sub_verbs)})
    if subs:
        entry["subresources"] = subs
    return entry


def aggregated(registry: Registry, legacy: bool) -> dict:
    """``APIGroupDiscoveryList`` for ``/api`` (legacy=True, the core group) or ``/apis``."""
    items = []
    for group, versions in registry.groups().items():
        if (group == "") != legacy:
            continue
        items.append({
            "metadata": {"name": group, "creationTimestamp": None},
            "versions": [{"version": v, "freshness": "Current",
                          "resources": [_aggregated_resource(rt) for rt in registry.in_group_version(group, v)]}
                         for v in versions],
        })
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
            "metadata": {}, "items": items}
