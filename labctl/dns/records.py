"""Names → records for the cluster zone, from cached Services and Endpoints (pure).

This is the Kubernetes DNS-Based Service Discovery specification as CoreDNS's
``kubernetes`` plugin answers it, so what a student learns here holds on a real cluster:

* ``<svc>.<ns>.svc.<zone>``: A/AAAA of the ClusterIP; for a headless Service
  (``clusterIP: None``) one A per *ready* endpoint address; for an ExternalName Service a
  CNAME to the external name.
* ``<hostname>.<svc>.<ns>.svc.<zone>``: A of an endpoint address that has a hostname
  (a StatefulSet pod behind its headless Service); ``1-2-3-4.<svc>.<ns>.svc.<zone>`` for one
  without.
* ``_<port>._<proto>.<svc>.<ns>.svc.<zone>`` SRV for each *named* port: the Service name
  as target (ClusterIP) or one target per endpoint address (headless). ``*``/``any``
  match every port or protocol, like CoreDNS.
* ``1-2-3-4.<ns>.pod.<zone>``: A 1.2.3.4 ("pods insecure", kube-dns' behaviour).
* PTR for ClusterIPs and headless endpoint addresses; ``dns-version.<zone>`` TXT.

NXDOMAIN means "this name does not exist"; NODATA (NOERROR, no answers) means "the name
exists but has no record of that type" — e.g. an AAAA query for an IPv4 Service, or a
headless Service with no ready endpoints. Clients walk the search path on NXDOMAIN only,
so getting the two right is what makes ``nslookup web`` work from any namespace.

Nothing here does I/O: :class:`ClusterZone` reads live mappings (the informers' caches,
keyed by ``(namespace, name)``) and answers a question with an :class:`Answer`.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

log = logging.getLogger("labctl.dns")

Obj = Mapping[str, Any]
Cache = Mapping[tuple[str, str], Obj]

DEFAULT_ZONE = "cluster.local"
DEFAULT_TTL = 5  # CoreDNS kubernetes plugin default (and minimum)
DNS_SCHEMA_VERSION = "1.1.0"  # the version of the specification this implements
WILDCARDS = ("*", "any")
REVERSE_ZONES = ("in-addr.arpa", "ip6.arpa")


class Rcode(IntEnum):
    NOERROR = 0
    SERVFAIL = 2
    NXDOMAIN = 3


@dataclass(frozen=True)
class Record:
    """One resource record. ``data`` is an IP, a target name, TXT text, an SRV tuple
    ``(priority, weight, port, target)`` or an SOA tuple ``(mname, rname, serial, refresh,
    retry, expire, minimum)``. Names are lower case without the trailing dot."""

    name: str
    rtype: str
    data: Any
    ttl: int


@dataclass
class Answer:
    rcode: Rcode = Rcode.NOERROR
    answers: list[Record] = field(default_factory=list)
    additional: list[Record] = field(default_factory=list)
    authority: list[Record] = field(default_factory=list)

    @property
    def is_negative(self) -> bool:
        return self.rcode == Rcode.NXDOMAIN or (self.rcode == Rcode.NOERROR and not self.answers)


def dashed(ip: str) -> str:
    """``10.244.1.5`` → ``10-244-1-5`` (and ``fd00::1`` → ``fd00--1``), the endpoint/pod label."""
    return ip.replace(".", "-").replace(":", "-")


def undashed(label: str) -> str | None:
    """The IP a dashed label names, or None if it names none."""
    for candidate in (label.replace("-", "."), label.replace("-", ":")):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def ip_rtype(ip: str) -> str:
    return "AAAA" if ":" in ip else "A"


def is_headless(svc: Obj) -> bool:
    return (svc.get("spec") or {}).get("clusterIP") == "None"


def service_type(svc: Obj) -> str:
    return (svc.get("spec") or {}).get("type") or "ClusterIP"


def cluster_ips(svc: Obj) -> list[str]:
    spec = svc.get("spec") or {}
    ips = spec.get("clusterIPs") or ([spec["clusterIP"]] if spec.get("clusterIP") else [])
    return [ip for ip in ips if ip and ip != "None"]


@dataclass(frozen=True)
class EndpointAddress:
    ip: str
    hostname: str
    ports: tuple[tuple[str, int, str], ...]  # (name, port, protocol lower case)

    @property
    def label(self) -> str:
        return self.hostname or dashed(self.ip)


def ready_addresses(endpoints: Obj | None) -> Iterator[EndpointAddress]:
    """Ready addresses of an Endpoints object with their subset's ports (notReady ones never
    appear in DNS, unless the Service publishes them, which the endpoints controller
    already reflects by listing them under ``addresses``)."""
    for subset in (endpoints or {}).get("subsets") or []:
        ports = tuple((p.get("name") or "", int(p.get("port", 0)), (p.get("protocol") or "TCP").lower())
                      for p in subset.get("ports") or [])
        for addr in subset.get("addresses") or []:
            if addr.get("ip"):
                yield EndpointAddress(addr["ip"], (addr.get("hostname") or "").lower(), ports)


def port_matches(name: str, protocol: str, port_label: str, proto_label: str) -> bool:
    """``_http._tcp`` against a port; ``*``/``any`` in either label matches everything."""
    want_port, want_proto = port_label.removeprefix("_"), proto_label.removeprefix("_")
    return ((want_port in WILDCARDS or (name != "" and want_port == name))
            and (want_proto in WILDCARDS or want_proto == protocol))


def srv_weight(count: int) -> int:
    """Equal share of 100 among ``count`` targets of one priority, as CoreDNS does."""
    return max(1, 100 // max(1, count))


def reverse_name_to_ip(name: str) -> str | None:
    """``4.3.2.1.in-addr.arpa`` → ``1.2.3.4`` (and 32-nibble ``ip6.arpa`` names); None if partial."""
    if name.endswith(".in-addr.arpa"):
        octets = name.removesuffix(".in-addr.arpa").split(".")
        candidate = ".".join(reversed(octets)) if len(octets) == 4 else ""
    elif name.endswith(".ip6.arpa"):
        nibbles = name.removesuffix(".ip6.arpa").split(".")
        hexdigits = "".join(reversed(nibbles)) if len(nibbles) == 32 else ""
        candidate = ":".join(hexdigits[i:i + 4] for i in range(0, len(hexdigits), 4))
    else:
        return None
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return None


class ClusterZone:
    """Answers questions about ``<zone>`` (and PTR questions) from live object caches.

    ``services``/``endpoints`` map ``(namespace, name)`` to objects, ``namespaces`` maps
    ``("", name)``; pass the informers' ``cache`` dicts and call :meth:`invalidate` on every
    change so the derived indexes (reverse names, namespaces) are rebuilt on next use.
    """

    def __init__(self, services: Cache, endpoints: Cache, namespaces: Cache | None = None, *,
                 zone: str = DEFAULT_ZONE, ttl: int = DEFAULT_TTL, dns_ip: str | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.services, self.endpoints, self.namespaces = services, endpoints, namespaces
        self.zone = zone.lower().strip(".")
        self.ttl = ttl
        self.dns_ip = dns_ip
        self._suffix = "." + self.zone
        self._clock = clock
        self.serial = int(clock())
        self.generation = 0  # bumped on every change: lets callers cache answers safely
        self._ptr: dict[str, list[str]] | None = None
        self._service_namespaces: set[str] | None = None

    def invalidate(self) -> None:
        """Forget derived indexes and bump the SOA serial: the caches changed."""
        self._ptr = None
        self._service_namespaces = None
        self.serial = int(self._clock())
        self.generation += 1

    def in_zone(self, qname: str) -> bool:
        name = qname.lower().rstrip(".")
        return name == self.zone or name.endswith(self._suffix)

    def answer(self, qname: str, qtype: str) -> Answer | None:
        """The answer for one question, or None when the name is not ours (forward it).

        PTR names we do not know are not ours either: like CoreDNS's ``fallthrough
        in-addr.arpa ip6.arpa`` they go upstream, so node and external IPs still resolve.
        """
        name = qname.lower().rstrip(".")
        if name == self.zone:
            return self._apex(name, qtype)
        if name.endswith(self._suffix):
            return self._in_zone(name, name[:-len(self._suffix)].split("."), qtype)
        if qtype == "PTR":
            return self._ptr_answer(name)
        return None

    # -- the zone's tree ------------------------------------------------------------------

    def _in_zone(self, name: str, labels: list[str], qtype: str) -> Answer:
        if labels == ["dns-version"]:
            return self._records(name, qtype, [Record(name, "TXT", DNS_SCHEMA_VERSION, self.ttl)])
        if labels == ["ns", "dns"] and self.dns_ip:
            return self._records(name, qtype, [Record(name, ip_rtype(self.dns_ip), self.dns_ip, self.ttl)])
        if labels[-1] == "svc":
            return self._svc(name, labels[:-1], qtype)
        if labels[-1] == "pod":
            return self._pod(name, labels[:-1], qtype)
        if labels == ["dns"] and self.dns_ip:
            return self._nodata()  # empty non-terminal above ns.dns.<zone>
        return self._nxdomain()

    def _apex(self, name: str, qtype: str) -> Answer:
        ns_name = f"ns.dns.{self.zone}"
        glue = [Record(ns_name, ip_rtype(self.dns_ip), self.dns_ip, self.ttl)] if self.dns_ip else []
        return self._records(name, qtype, [self._soa(), Record(name, "NS", ns_name, self.ttl)], glue)

    def _svc(self, name: str, labels: list[str], qtype: str) -> Answer:
        if not labels:
            return self._nodata()
        if len(labels) == 1:
            return self._nodata() if self.namespace_exists(labels[0]) else self._nxdomain()
        svc_name, ns = labels[-2], labels[-1]
        svc = self.services.get((ns, svc_name))
        if svc is None:
            return self._nxdomain()
        if len(labels) == 2:
            return self._records(name, qtype, *self._service_records(name, ns, svc_name, svc))
        if len(labels) == 3 and labels[0].startswith("_"):
            has_proto = any(port_matches(p.get("name") or "x", (p.get("protocol") or "TCP").lower(), "*", labels[0])
                            for p in (svc.get("spec") or {}).get("ports") or [])
            return self._nodata() if has_proto else self._nxdomain()  # _tcp.<svc>…: empty non-terminal
        if len(labels) == 3:
            return self._endpoint(name, labels[0], ns, svc_name, svc, qtype)
        if len(labels) == 4 and labels[0].startswith("_") and labels[1].startswith("_"):
            return self._srv(name, labels[0], labels[1], ns, svc_name, svc, qtype)
        return self._nxdomain()

    def _pod(self, name: str, labels: list[str], qtype: str) -> Answer:
        if len(labels) <= 1:
            return self._nodata()  # "pods insecure": any namespace may hold pods
        ip = undashed(labels[0]) if len(labels) == 2 else None
        if ip is None:
            return self._nxdomain()
        return self._records(name, qtype, [Record(name, ip_rtype(ip), ip, self.ttl)])

    # -- one Service ----------------------------------------------------------------------

    def _service_records(self, name: str, ns: str, svc_name: str, svc: Obj) -> tuple[list[Record], list[Record]]:
        """Every record ``<svc>.<ns>.svc.<zone>`` owns, and the glue for its SRV targets."""
        if service_type(svc) == "ExternalName":
            target = ((svc.get("spec") or {}).get("externalName") or "").lower().rstrip(".")
            return ([Record(name, "CNAME", target, self.ttl)] if target else []), []
        if not is_headless(svc):
            ports = [(p.get("name") or "", int(p["port"]), (p.get("protocol") or "TCP").lower())
                     for p in (svc.get("spec") or {}).get("ports") or [] if p.get("port")]
            addresses = [Record(name, ip_rtype(ip), ip, self.ttl) for ip in cluster_ips(svc)]
            weight = srv_weight(len(ports))
            srvs = [Record(name, "SRV", (0, weight, port, name), self.ttl) for _, port, _ in ports]
            return addresses + srvs, (addresses if srvs else [])
        ready = list(ready_addresses(self.endpoints.get((ns, svc_name))))
        addresses = [Record(name, ip_rtype(ip), ip, self.ttl) for ip in dict.fromkeys(a.ip for a in ready)]
        srvs, glue = self._headless_srv(name, name, ready, "*", "*")
        return addresses + srvs, glue

    def _headless_srv(self, owner: str, service_name: str, ready: list[EndpointAddress],
                      port_label: str, proto_label: str) -> tuple[list[Record], list[Record]]:
        """SRV per (ready address, matching port), target ``<hostname|dashed-ip>.<svc>…``."""
        pairs = [(a, port) for a in ready for (pname, port, proto) in a.ports
                 if port_matches(pname, proto, port_label, proto_label)]
        weight = srv_weight(len(pairs))
        srvs, glue, seen = [], [], set()
        for address, port in pairs:
            target = f"{address.label}.{service_name}"
            srvs.append(Record(owner, "SRV", (0, weight, port, target), self.ttl))
            if target not in seen:
                seen.add(target)
                glue.append(Record(target, ip_rtype(address.ip), address.ip, self.ttl))
        return srvs, glue

    def _srv(self, name: str, port_label: str, proto_label: str, ns: str, svc_name: str, svc: Obj,
             qtype: str) -> Answer:
        service_name = f"{svc_name}.{ns}.svc.{self.zone}"
        if service_type(svc) == "ExternalName":
            return self._nxdomain()
        if is_headless(svc):
            ready = list(ready_addresses(self.endpoints.get((ns, svc_name))))
            srvs, glue = self._headless_srv(name, service_name, ready, port_label, proto_label)
        else:
            ports = [int(p["port"]) for p in (svc.get("spec") or {}).get("ports") or []
                     if p.get("port") and port_matches(p.get("name") or "", (p.get("protocol") or "TCP").lower(),
                                                       port_label, proto_label)]
            srvs = [Record(name, "SRV", (0, srv_weight(len(ports)), port, service_name), self.ttl) for port in ports]
            glue = [Record(service_name, ip_rtype(ip), ip, self.ttl) for ip in cluster_ips(svc)] if srvs else []
        if not srvs:
            return self._nxdomain()
        return self._records(name, qtype, srvs, glue)

    def _endpoint(self, name: str, label: str, ns: str, svc_name: str, svc: Obj, qtype: str) -> Answer:
        """``<hostname|dashed-ip>.<svc>.<ns>.svc.<zone>`` (``*`` = every ready address)."""
        if service_type(svc) == "ExternalName":
            return self._nxdomain()
        matches = [a for a in ready_addresses(self.endpoints.get((ns, svc_name)))
                   if label in WILDCARDS or label == a.hostname or label == dashed(a.ip)]
        if not matches:
            return self._nxdomain()
        ips = dict.fromkeys(a.ip for a in matches)
        return self._records(name, qtype, [Record(name, ip_rtype(ip), ip, self.ttl) for ip in ips])

    # -- answers --------------------------------------------------------------------------

    def _records(self, name: str, qtype: str, records: list[Record], additional: Sequence[Record] = ()) -> Answer:
        """The answer for a name that exists and owns ``records``: the ones of ``qtype``
        (a CNAME answers every type), or NODATA."""
        cname = [r for r in records if r.rtype == "CNAME"]
        if cname:
            return Answer(answers=cname)
        if qtype == "ANY":
            return Answer(answers=list(records), additional=list(additional))
        matching = [r for r in records if r.rtype == qtype]
        if not matching:
            return self._nodata()
        wanted = {r.data[3] for r in matching if r.rtype == "SRV"} | {r.data for r in matching if r.rtype == "NS"}
        return Answer(answers=matching, additional=[r for r in additional if r.name in wanted])

    def _soa(self) -> Record:
        return Record(self.zone, "SOA", (f"ns.dns.{self.zone}", f"hostmaster.{self.zone}", self.serial,
                                         7200, 1800, 86400, self.ttl), self.ttl)

    def _nodata(self) -> Answer:
        return Answer(Rcode.NOERROR, authority=[self._soa()])

    def _nxdomain(self) -> Answer:
        return Answer(Rcode.NXDOMAIN, authority=[self._soa()])

    def namespace_exists(self, namespace: str) -> bool:
        if self.namespaces is not None and ("", namespace) in self.namespaces:
            return True
        if self._service_namespaces is None:
            self._service_namespaces = {ns for ns, _ in self.services}
        return namespace in self._service_namespaces

    # -- reverse --------------------------------------------------------------------------

    def _ptr_answer(self, name: str) -> Answer | None:
        ip = reverse_name_to_ip(name)
        targets = self._reverse_index().get(ip, []) if ip else []
        if not targets:
            return None
        return Answer(answers=[Record(name, "PTR", target, self.ttl) for target in targets])

    def _reverse_index(self) -> dict[str, list[str]]:
        """IP → names: ClusterIPs to their Service, headless endpoint addresses to theirs.

        A Service or Endpoints the index cannot read (malformed, stored before the API
        server checked types) is left out with a log line; every other name still resolves.
        """
        if self._ptr is None:
            index: dict[str, list[str]] = {}
            for (ns, svc_name), svc in list(self.services.items()):
                try:
                    for ip, name in self._reverse_names(ns, svc_name, svc):
                        index.setdefault(ip, []).append(name)
                except (AttributeError, KeyError, TypeError, ValueError) as err:
                    log.warning("leaving %s/%s out of the reverse zone (malformed): %s", ns, svc_name, err)
            self._ptr = {ip: list(dict.fromkeys(names)) for ip, names in index.items()}
        return self._ptr

    def _reverse_names(self, ns: str, svc_name: str, svc: Obj) -> list[tuple[str, str]]:
        base = f"{svc_name}.{ns}.svc.{self.zone}"
        if service_type(svc) == "ExternalName":
            return []
        if is_headless(svc):
            return [(a.ip, f"{a.label}.{base}") for a in ready_addresses(self.endpoints.get((ns, svc_name)))]
        return [(ip, base) for ip in cluster_ips(svc)]
