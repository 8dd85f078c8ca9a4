"""The pod's hostname and its kubelet-managed ``/etc/hosts``.

The kubelet writes every pod a hosts file of its own (``managedHostsFileContent``): the
localhost lines, the pod's IP with its hostname — with the FQDN first when the pod has a
``subdomain`` (``web-0.nginx.default.svc.cluster.local web-0``), so ``hostname -f``
answers from the file at once instead of timing out on DNS — and the ``hostAliases``.
A ``hostNetwork`` pod gets the node's hosts file with its ``hostAliases`` appended. Pure
text here; the pod worker writes it on the node and every container of the pod bind-mounts
it (:mod:`.podfiles`).
"""

from __future__ import annotations

HEADER = "# Kubernetes-managed hosts file.\n"
HOST_NETWORK_HEADER = "# Kubernetes-managed hosts file (host network).\n"
#: a hostname is a DNS label
HOSTNAME_MAX = 63
#: with ``setHostnameAsFQDN`` the kernel's limit on a hostname applies
FQDN_MAX = 64


def truncate_hostname(name: str) -> str:
    """``truncatePodHostnameIfNeeded``: 63 characters, without a trailing ``-`` or ``.``."""
    if len(name) <= HOSTNAME_MAX:
        return name
    return name[:HOSTNAME_MAX].rstrip("-.")


def hostname_and_domain(pod: dict, cluster_domain: str) -> tuple[str, str]:
    """``GeneratePodHostNameAndDomain``: (hostname, domain); the domain is
    ``<subdomain>.<namespace>.svc.<cluster domain>`` when the pod has a subdomain, else ''."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    hostname = truncate_hostname(spec.get("hostname") or meta.get("name", ""))
    subdomain = spec.get("subdomain") or ""
    domain = f"{subdomain}.{meta.get('namespace', 'default')}.svc.{cluster_domain}" if subdomain else ""
    return hostname, domain


def pod_hostname(pod: dict, cluster_domain: str) -> str:
    """The UTS hostname of the pod's containers: the FQDN with ``setHostnameAsFQDN``, else the short name."""
    hostname, domain = hostname_and_domain(pod, cluster_domain)
    if (pod.get("spec") or {}).get("setHostnameAsFQDN") and domain:
        return f"{hostname}.{domain}"[:FQDN_MAX]
    return hostname


def hosts_from_aliases(aliases: list[dict]) -> str:
    """The ``# Entries added by HostAliases.`` section: one line per IP, its names tab-separated."""
    if not aliases:
        return ""
    lines = ["", "# Entries added by HostAliases."]
    lines += [f"{alias.get('ip', '')}\t" + "\t".join(alias.get("hostnames") or []) for alias in aliases]
    return "\n".join(lines) + "\n"


def managed_hosts(pod_ips: list[str], hostname: str, domain: str, aliases: list[dict]) -> str:
    """The text of the pod's ``/etc/hosts``, line for line the kubelet's."""
    text = (HEADER + "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            "fe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\nfe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n")
    for ip in pod_ips:
        text += f"{ip}\t{hostname}.{domain}\t{hostname}\n" if domain else f"{ip}\t{hostname}\n"
    return text + hosts_from_aliases(aliases)


def node_hosts_file(node_hosts: str, aliases: list[dict]) -> str:
    """A ``hostNetwork`` pod's hosts file (``nodeHostsFileContent``): the node's, then the ``hostAliases``."""
    return HOST_NETWORK_HEADER + node_hosts + hosts_from_aliases(aliases)


def pod_hosts_file(pod: dict, pod_ips: list[str], cluster_domain: str) -> str:
    """The hosts file of ``pod`` once its IPs are known."""
    hostname, domain = hostname_and_domain(pod, cluster_domain)
    return managed_hosts(pod_ips, hostname, domain, (pod.get("spec") or {}).get("hostAliases") or [])
