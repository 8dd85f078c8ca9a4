"""The cluster DNS server as a process: objects made by kubectl, queries over UDP and TCP."""

from __future__ import annotations

import time
import urllib.request

import pytest
from dnslib import QTYPE, RCODE

from labctl.client.waiting import wait_for

pytestmark = pytest.mark.kubectl

OBJECTS = """
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  ports: [{name: http, port: 80, protocol: TCP}, {name: metrics, port: 9090, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  clusterIP: None
  ports: [{name: pg, port: 5432, protocol: TCP}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: db, namespace: default}
subsets:
- addresses:
  - {ip: 10.244.1.7, hostname: db-0}
  - {ip: 10.244.2.8}
  notReadyAddresses:
  - {ip: 10.244.1.99}
  ports: [{name: pg, port: 5432, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: default}
spec: {type: ExternalName, externalName: target.example}
---
apiVersion: v1
kind: Service
metadata: {name: many, namespace: default}
spec:
  clusterIP: None
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: many, namespace: default}
subsets:
- addresses: [%s]
  ports: [{name: http, port: 80, protocol: TCP}]
""" % ", ".join(f"{{ip: 10.244.3.{i}}}" for i in range(1, 61))


@pytest.fixture(scope="module")
def dns(dns_kubectl, shared_apiserver, upstream_dns, dns_process_factory):
    dns_kubectl.run("apply", "-f", "-", input=OBJECTS)
    return dns_process_factory(shared_apiserver.kubeconfig, upstream_dns.port)


def cluster_ip(kubectl, name: str) -> str:
    return kubectl.json("get", "service", name)["spec"]["clusterIP"]


@pytest.mark.parametrize("tcp", [False, True], ids=["udp", "tcp"])
def test_service_name_resolves_to_its_cluster_ip(dns, dns_kubectl, tcp):
    reply = dns.query("web.default.svc.cluster.local", tcp=tcp)
    assert reply.header.rcode == RCODE.NOERROR and reply.header.aa == 1
    assert [str(rr.rdata) for rr in reply.rr] == [cluster_ip(dns_kubectl, "web")]
    assert reply.rr[0].ttl == 5


def test_unknown_service_is_nxdomain_with_soa(dns):
    reply = dns.query("nope.default.svc.cluster.local")
    assert reply.header.rcode == RCODE.NXDOMAIN
    assert [rr.rtype for rr in reply.auth] == [QTYPE.SOA]


def test_named_ports_have_srv_records(dns, dns_kubectl):
    reply = dns.query("_http._tcp.web.default.svc.cluster.local", "SRV")
    assert [(rr.rdata.port, str(rr.rdata.target)) for rr in reply.rr] == [(80, "web.default.svc.cluster.local.")]
    assert [str(rr.rdata) for rr in reply.ar] == [cluster_ip(dns_kubectl, "web")]


def test_headless_service_lists_ready_endpoints_and_hostnames(dns):
    assert dns.addresses("db.default.svc.cluster.local") == ["10.244.1.7", "10.244.2.8"]
    assert dns.addresses("db-0.db.default.svc.cluster.local") == ["10.244.1.7"]
    srv = dns.query("_pg._tcp.db.default.svc.cluster.local", "SRV")
    assert sorted(str(rr.rdata.target) for rr in srv.rr) == ["10-244-2-8.db.default.svc.cluster.local.",
                                                             "db-0.db.default.svc.cluster.local."]
    assert sorted(str(rr.rdata) for rr in srv.ar) == ["10.244.1.7", "10.244.2.8"]


def test_external_name_is_a_cname_resolved_upstream(dns):
    reply = dns.query("ext.default.svc.cluster.local")
    assert [(QTYPE[rr.rtype], str(rr.rdata)) for rr in reply.rr] == [("CNAME", "target.example."),
                                                                     ("A", "192.0.2.7")]
    cname_only = dns.query("ext.default.svc.cluster.local", "CNAME")
    assert [str(rr.rdata) for rr in cname_only.rr] == ["target.example."]


def test_other_names_are_forwarded_to_the_upstream(dns, upstream_dns):
    assert dns.addresses("outside.example") == ["192.0.2.1"]
    assert dns.addresses("outside.example", tcp=True) == ["192.0.2.1"]
    assert dns.query("missing.example").header.rcode == RCODE.NXDOMAIN
    assert "outside.example." in upstream_dns.resolver.queries
    assert not any(q.endswith("cluster.local.") for q in upstream_dns.resolver.queries)


def test_ptr_of_a_cluster_ip(dns, dns_kubectl):
    ip = cluster_ip(dns_kubectl, "web")
    reply = dns.query(".".join(reversed(ip.split("."))) + ".in-addr.arpa", "PTR")
    assert [str(rr.rdata) for rr in reply.rr] == ["web.default.svc.cluster.local."]


def test_big_answers_are_truncated_over_udp_and_whole_over_tcp(dns):
    udp = dns.query("many.default.svc.cluster.local")
    assert udp.header.tc == 1 and not udp.rr
    assert len(dns.addresses("many.default.svc.cluster.local", tcp=True)) == 60


def test_a_new_service_resolves_within_a_second(dns, dns_kubectl):
    name = "late.default.svc.cluster.local"
    assert dns.query(name).header.rcode == RCODE.NXDOMAIN
    dns_kubectl.run("create", "service", "clusterip", "late", "--tcp=80:80")
    ip = cluster_ip(dns_kubectl, "late")
    deadline = time.monotonic() + 1.0
    while dns.addresses(name) != [ip]:
        assert time.monotonic() < deadline, "the new Service did not resolve within 1 s"
        time.sleep(0.02)
    dns_kubectl.run("delete", "service", "late")
    deadline = time.monotonic() + 1.0
    while dns.query(name).header.rcode != RCODE.NXDOMAIN:
        assert time.monotonic() < deadline, "the deleted Service still resolved after 1 s"
        time.sleep(0.02)


GROWING = """
apiVersion: v1
kind: Service
metadata: {name: growing, namespace: default}
spec:
  clusterIP: None
  ports: [{name: pg, port: 5432, protocol: TCP}]
---
apiVersion: v1
kind: Endpoints
metadata: {name: growing, namespace: default}
subsets:
- addresses: [{ip: 10.244.4.7}]
  ports: [{name: pg, port: 5432, protocol: TCP}]
"""


def test_endpoint_changes_reach_headless_answers(dns, dns_kubectl):
    # a headless Service of its own: "db" stays as the other tests expect it
    name = "growing.default.svc.cluster.local"
    dns_kubectl.run("apply", "-f", "-", input=GROWING)
    wait_for(lambda: dns.addresses(name) == ["10.244.4.7"], timeout=10, interval=0.02, what=f"{name} to resolve")
    dns_kubectl.run("patch", "endpoints", "growing", "--type=json", "-p",
                    '[{"op": "add", "path": "/subsets/0/addresses/-", "value": {"ip": "10.244.4.9"}}]')
    deadline = time.monotonic() + 1.0
    while dns.addresses(name) != ["10.244.4.7", "10.244.4.9"]:
        assert time.monotonic() < deadline, "the new endpoint did not appear within 1 s"
        time.sleep(0.02)


def test_health_and_ready(dns):
    for path in ("/health", "/ready"):
        with urllib.request.urlopen(f"http://127.0.0.1:{dns.health_port}{path}", timeout=5) as resp:
            assert resp.status == 200 and resp.read() == b"OK"
