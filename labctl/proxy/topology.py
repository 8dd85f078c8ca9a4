"""Which endpoints a Service port's traffic may go to from this node: kube-proxy's ``CategorizeEndpoints``.

The EndpointSlices list every endpoint with its conditions; the traffic policies decide which
of them each kind of traffic uses:

* **Cluster** traffic (``internalTrafficPolicy: Cluster``, and everything external with
  ``externalTrafficPolicy: Cluster``) goes to the *ready* endpoints of every node; when none
  is ready anywhere, to the *serving and terminating* ones (upstream's
  ProxyTerminatingEndpoints: a Deployment's last pods still answer while they drain instead
  of the Service refusing connections);
* **Local** traffic goes to this node's ready endpoints, or when it has none ready, to this
  node's serving-terminating ones; no local endpoint at all means no chain (the filter table
  drops the traffic: "has no local endpoints").

No topology hints: a lab's nodes have no zones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from labctl.proxy.types import Endpoint, ServicePortInfo


@dataclass(frozen=True)
class Categorized:
    """The endpoints of one Service port as this node's rules use them.

    ``reachable`` are the endpoints that get a ``KUBE-SEP-`` chain (cluster ∪ local);
    ``has_any`` says the Service has a usable endpoint somewhere, so no-local-endpoint
    traffic is DROPped ("has no local endpoints") rather than REJECTed ("has no endpoints").
    """

    cluster: tuple[Endpoint, ...] = ()
    local: tuple[Endpoint, ...] = ()
    reachable: tuple[Endpoint, ...] = ()
    has_any: bool = False


def _serving_terminating(ep: Endpoint) -> bool:
    return ep.serving and ep.terminating


def _usable(eps: Sequence[Endpoint]) -> tuple[Endpoint, ...]:
    """Ready endpoints, or when there is none, the serving-terminating ones."""
    ready = tuple(ep for ep in eps if ep.ready)
    return ready or tuple(ep for ep in eps if _serving_terminating(ep))


def categorize_endpoints(endpoints: Sequence[Endpoint], svc: ServicePortInfo, node_name: str) -> Categorized:
    """Split ``endpoints`` (sorted) by the port's traffic policies, as seen from ``node_name``."""
    cluster: tuple[Endpoint, ...] = ()
    if svc.uses_cluster_endpoints:
        cluster = _usable(endpoints)
    if not svc.uses_local_endpoints:
        return Categorized(cluster, (), cluster, bool(cluster))
    has_any = any(ep.ready or _serving_terminating(ep) for ep in endpoints)
    local = _usable([ep for ep in endpoints if ep.node_name == node_name])
    if not svc.uses_cluster_endpoints:
        return Categorized((), local, local, has_any)
    # Remote ready endpoints are only in cluster, local terminating ones only in local.
    merged = {str(ep): ep for ep in (*cluster, *local)}
    reachable = tuple(sorted(merged.values(), key=lambda ep: ep.sort_key))
    return Categorized(cluster, local, reachable, has_any)
