"""The pod's ``/etc/resolv.conf`` from ``dnsPolicy`` and ``dnsConfig``, as the kubelet's ``GetPodDNS``.

* ``ClusterFirst`` (the default): the cluster DNS Service as the only nameserver, the search
  path ``<ns>.svc.<domain> svc.<domain> <domain>`` followed by the node's searches, ``ndots:5``.
  A ``hostNetwork`` pod with ``ClusterFirst`` falls back to ``Default``.
* ``ClusterFirstWithHostNet``: the same as ``ClusterFirst``, also for ``hostNetwork`` pods.
* ``Default``: the node's resolver configuration (the kubelet's ``--resolv-conf``).
* ``None``: nothing but what ``dnsConfig`` says.

``dnsConfig`` is appended to any of them (nameservers and searches without duplicates,
options merged by name, the pod's value winning), then cut to the resolver's limits
(3 nameservers, 32 search domains). Pure functions; the pod worker writes the text on the
node and the pod's containers bind-mount it (:mod:`.podfiles`).

What "the node's resolver" is in a lab: the node container's ``/etc/resolv.conf`` names
Docker's embedded DNS, ``127.0.0.11``, which answers only inside the node's own network
namespace — from a pod it would be the pod itself. Its upstreams are the host's
resolvers, which Docker writes into a container that has no DNS settings, as it does for
the pod's sandbox. So the kubelet takes the node's searches and options, and replaces a
loopback nameserver by the sandbox's (Docker's) nameservers: the same servers the node's
own lookups end at.
"""

from __future__ import annotations

import ipaddress

from ...kube.resolvconf import DNSConfig, parse_resolv_conf

MAX_NAMESERVERS = 3
MAX_SEARCHES = 32
MAX_SEARCH_CHARS = 2048
CLUSTER_OPTIONS = ("ndots:5",)


def _loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def loopback_nameservers(resolv_conf: str) -> bool:
    """True when a nameserver of ``resolv_conf`` is on loopback (Docker's ``127.0.0.11``)."""
    return any(_loopback(s) for s in parse_resolv_conf(resolv_conf).nameservers)


def node_resolver(node_resolv_conf: str, docker_resolv_conf: str) -> DNSConfig:
    """The node's resolver as a pod can use it: loopback nameservers replaced by Docker's upstreams."""
    node = parse_resolv_conf(node_resolv_conf)
    servers = [s for s in node.nameservers if not _loopback(s)]
    if len(servers) < len(node.nameservers):
        servers += [s for s in parse_resolv_conf(docker_resolv_conf).nameservers if s not in servers]
    return DNSConfig(servers, node.searches, node.options)


def dns_type(pod: dict) -> str:
    """``getPodDNSType``: "cluster", "host" or "none"."""
    spec = pod.get("spec") or {}
    policy = spec.get("dnsPolicy") or "ClusterFirst"
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet":
        return "cluster"
    if policy == "ClusterFirst" and not spec.get("hostNetwork"):
        return "cluster"
    return "host"


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def merge_options(existing: list[str], pod_options: list[dict]) -> list[str]:
    """``mergeDNSOptions``: by name, the pod's value replacing the base's."""
    merged: dict[str, str] = {}
    for option in existing:
        name, _, value = option.partition(":")
        merged[name] = value
    for pod_option in pod_options:
        merged[pod_option.get("name", "")] = pod_option.get("value") or ""
    return [f"{k}:{v}" if v else k for k, v in merged.items()]


def pod_dns(pod: dict, host: DNSConfig, cluster_dns: list[str], cluster_domain: str) -> DNSConfig:
    """The pod's resolver configuration (``GetPodDNS``)."""
    namespace = (pod.get("metadata") or {}).get("namespace", "default")
    kind = dns_type(pod)
    if kind == "none":
        config = DNSConfig()
    elif kind == "cluster" and cluster_dns:
        cluster_search = [f"{namespace}.svc.{cluster_domain}", f"svc.{cluster_domain}", cluster_domain]
        config = DNSConfig(list(cluster_dns), _unique(cluster_search + host.searches), list(CLUSTER_OPTIONS))
    else:
        config = DNSConfig(list(host.nameservers), list(host.searches), list(host.options))
    extra = (pod.get("spec") or {}).get("dnsConfig")
    if extra:
        config = DNSConfig(_unique(config.nameservers + list(extra.get("nameservers") or [])),
                           _unique(config.searches + list(extra.get("searches") or [])),
                           merge_options(config.options, extra.get("options") or []))
    return fit_limits(config)


def fit_limits(config: DNSConfig) -> DNSConfig:
    """``formDNSConfigFitsLimits``: at most 3 nameservers, 32 searches of 2048 characters in all."""
    searches: list[str] = []
    for search in config.searches[:MAX_SEARCHES]:
        if len(" ".join([*searches, search])) > MAX_SEARCH_CHARS:
            break
        searches.append(search)
    return DNSConfig(config.nameservers[:MAX_NAMESERVERS], searches, config.options)



