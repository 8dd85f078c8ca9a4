"""The cluster zone's record rules (labctl/dns/records.py): pure, no sockets."""

from __future__ import annotations

import ipaddress

import pytest

from labctl.dns.records import ClusterZone, Rcode, dashed, reverse_name_to_ip, undashed

ZONE = "cluster.local"


def service(name, ns="default", cluster_ip="10.96.0.20", ports=(("http", 80, "TCP"),), **spec):
    body = {"clusterIP": cluster_ip, "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}
    if cluster_ip and cluster_ip != "None":
        body["clusterIPs"] = [cluster_ip]
    return {"metadata": {"name": name, "namespace": ns}, "spec": {**body, **spec}}


def endpoints(name, addresses, ns="default", ports=(("http", 8080, "TCP"),), not_ready=()):
    return {"metadata": {"name": name, "namespace": ns}, "subsets": [{
        "addresses": [{"ip": ip, **({"hostname": h} if h else {})} for ip, h in addresses],
        "notReadyAddresses": [{"ip": ip} for ip in not_ready],
        "ports": [{"name": n, "port": p, "protocol": proto} for n, p, proto in ports]}]}


@pytest.fixture
def zone() -> ClusterZone:
    services = {
        ("default", "web"): service("web", ports=(("http", 80, "TCP"), ("", 8443, "TCP"))),
        ("default", "db"): service("db", cluster_ip="None", ports=(("pg", 5432, "TCP"),)),
        ("default", "empty"): service("empty", cluster_ip="None"),
        ("default", "ext"): service("ext", cluster_ip="", type="ExternalName", externalName="Example.COM."),
        ("default", "alias"): service("alias", cluster_ip="", type="ExternalName",
                                      externalName="web.default.svc.cluster.local"),
        ("other", "dns"): service("dns", ns="other", cluster_ip="10.96.0.10",
                                  ports=(("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"))),
        ("default", "v6"): service("v6", cluster_ip="fd00::20"),
    }
    eps = {
        ("default", "web"): endpoints("web", [("10.244.1.5", ""), ("10.244.2.6", "")]),
        ("default", "db"): endpoints("db", [("10.244.1.7", "db-0"), ("10.244.2.8", "")],
                                     ports=(("pg", 5432, "TCP"),), not_ready=("10.244.1.99",)),
    }
    namespaces = {("", "default"): {}, ("", "kube-system"): {}, ("", "other"): {}, ("", "lonely"): {}}
    return ClusterZone(services, eps, namespaces, zone=ZONE, ttl=5, dns_ip="10.96.0.10", clock=lambda: 1000)


def data(answer, rtype=None):
    return sorted(r.data for r in answer.answers if rtype is None or r.rtype == rtype)


def test_cluster_ip_service_resolves_to_its_cluster_ip(zone):
    answer = zone.answer("web.default.svc.cluster.local.", "A")
    assert answer.rcode == Rcode.NOERROR
    assert data(answer) == ["10.96.0.20"]
    assert answer.answers[0].ttl == 5
    assert answer.answers[0].name == "web.default.svc.cluster.local"


def test_names_are_case_insensitive(zone):
    assert data(zone.answer("WEB.Default.SVC.Cluster.Local", "A")) == ["10.96.0.20"]


def test_missing_service_is_nxdomain_with_soa(zone):
    answer = zone.answer("nope.default.svc.cluster.local", "A")
    assert answer.rcode == Rcode.NXDOMAIN and answer.answers == []
    assert [r.rtype for r in answer.authority] == ["SOA"]
    assert answer.authority[0].data[-1] == 5  # negative TTL = record TTL


def test_search_path_miss_is_nxdomain_so_clients_try_the_next_suffix(zone):
    # ndots:5 makes "web.other" try web.other.default.svc.cluster.local first
    assert zone.answer("web.other.default.svc.cluster.local", "A").rcode == Rcode.NXDOMAIN
    assert zone.answer("example.com.cluster.local", "A").rcode == Rcode.NXDOMAIN


def test_existing_name_without_that_type_is_nodata(zone):
    answer = zone.answer("web.default.svc.cluster.local", "AAAA")
    assert answer.rcode == Rcode.NOERROR and answer.answers == []
    assert answer.authority[0].rtype == "SOA"
    assert answer.is_negative


def test_ipv6_cluster_ip_is_an_aaaa_record(zone):
    assert data(zone.answer("v6.default.svc.cluster.local", "AAAA")) == ["fd00::20"]
    assert zone.answer("v6.default.svc.cluster.local", "A").answers == []


def test_headless_service_has_one_a_per_ready_endpoint(zone):
    answer = zone.answer("db.default.svc.cluster.local", "A")
    assert data(answer) == ["10.244.1.7", "10.244.2.8"]  # not 10.244.1.99: not ready


def test_headless_service_without_ready_endpoints_is_nodata(zone):
    answer = zone.answer("empty.default.svc.cluster.local", "A")
    assert answer.rcode == Rcode.NOERROR and answer.answers == []


def test_endpoint_hostname_and_dashed_ip_names(zone):
    assert data(zone.answer("db-0.db.default.svc.cluster.local", "A")) == ["10.244.1.7"]
    assert data(zone.answer("10-244-2-8.db.default.svc.cluster.local", "A")) == ["10.244.2.8"]
    assert data(zone.answer("10-244-1-5.web.default.svc.cluster.local", "A")) == ["10.244.1.5"]
    assert zone.answer("db-9.db.default.svc.cluster.local", "A").rcode == Rcode.NXDOMAIN
    assert zone.answer("10-244-1-99.db.default.svc.cluster.local", "A").rcode == Rcode.NXDOMAIN


def test_srv_for_a_named_port_of_a_cluster_ip_service(zone):
    answer = zone.answer("_http._tcp.web.default.svc.cluster.local", "SRV")
    assert data(answer) == [(0, 100, 80, "web.default.svc.cluster.local")]
    assert [(r.name, r.data) for r in answer.additional] == [("web.default.svc.cluster.local", "10.96.0.20")]


def test_srv_protocol_must_match(zone):
    assert data(zone.answer("_dns._udp.dns.other.svc.cluster.local", "SRV")) == [
        (0, 100, 53, "dns.other.svc.cluster.local")]
    assert zone.answer("_dns._tcp.dns.other.svc.cluster.local", "SRV").rcode == Rcode.NXDOMAIN
    assert zone.answer("_nope._tcp.web.default.svc.cluster.local", "SRV").rcode == Rcode.NXDOMAIN


def test_srv_wildcards_and_bare_service_name_list_every_port(zone):
    both = [(0, 50, 53, "dns.other.svc.cluster.local")] * 2
    assert data(zone.answer("_*._*.dns.other.svc.cluster.local", "SRV")) == both
    assert data(zone.answer("_any._udp.dns.other.svc.cluster.local", "SRV")) == [both[0][:1] + (100, 53, both[0][3])]
    assert sorted(r.data[2] for r in zone.answer("web.default.svc.cluster.local", "SRV").answers) == [80, 8443]


def test_headless_srv_targets_each_endpoint_with_glue(zone):
    answer = zone.answer("_pg._tcp.db.default.svc.cluster.local", "SRV")
    assert data(answer) == [(0, 50, 5432, "10-244-2-8.db.default.svc.cluster.local"),
                            (0, 50, 5432, "db-0.db.default.svc.cluster.local")]
    glue = sorted((r.name, r.data) for r in answer.additional)
    assert glue == [("10-244-2-8.db.default.svc.cluster.local", "10.244.2.8"),
                    ("db-0.db.default.svc.cluster.local", "10.244.1.7")]


def test_srv_asked_as_a_records_is_nodata(zone):
    answer = zone.answer("_http._tcp.web.default.svc.cluster.local", "A")
    assert answer.rcode == Rcode.NOERROR and answer.answers == []


def test_external_name_is_a_cname_for_every_type(zone):
    for qtype in ("A", "AAAA", "CNAME", "SRV"):
        answer = zone.answer("ext.default.svc.cluster.local", qtype)
        assert [(r.rtype, r.data) for r in answer.answers] == [("CNAME", "example.com")], qtype
    assert zone.answer("_http._tcp.ext.default.svc.cluster.local", "SRV").rcode == Rcode.NXDOMAIN


def test_empty_non_terminals_are_nodata_only_when_they_exist(zone):
    for name in ("svc.cluster.local", "default.svc.cluster.local", "lonely.svc.cluster.local",
                 "pod.cluster.local", "_tcp.web.default.svc.cluster.local"):
        answer = zone.answer(name, "A")
        assert (answer.rcode, answer.answers) == (Rcode.NOERROR, []), name
    assert zone.answer("ghost.svc.cluster.local", "A").rcode == Rcode.NXDOMAIN
    assert zone.answer("_udp.web.default.svc.cluster.local", "A").rcode == Rcode.NXDOMAIN


def test_namespaces_known_from_services_when_namespaces_are_not_watched():
    zone = ClusterZone({("team", "api"): service("api", ns="team")}, {})
    assert zone.answer("team.svc.cluster.local", "A").rcode == Rcode.NOERROR
    assert zone.answer("ghost.svc.cluster.local", "A").rcode == Rcode.NXDOMAIN


def test_pod_records_are_the_dashed_ip(zone):
    assert data(zone.answer("10-244-1-5.default.pod.cluster.local", "A")) == ["10.244.1.5"]
    assert data(zone.answer("fd00--5.default.pod.cluster.local", "AAAA")) == ["fd00::5"]
    assert zone.answer("not-an-ip.default.pod.cluster.local", "A").rcode == Rcode.NXDOMAIN


def test_apex_soa_ns_and_dns_version(zone):
    assert zone.answer("cluster.local", "SOA").answers[0].data[:3] == ("ns.dns.cluster.local",
                                                                        "hostmaster.cluster.local", 1000)
    ns = zone.answer("cluster.local", "NS")
    assert data(ns) == ["ns.dns.cluster.local"]
    assert [(r.name, r.data) for r in ns.additional] == [("ns.dns.cluster.local", "10.96.0.10")]
    assert data(zone.answer("ns.dns.cluster.local", "A")) == ["10.96.0.10"]
    assert data(zone.answer("dns-version.cluster.local", "TXT")) == ["1.1.0"]
    assert zone.answer("cluster.local", "A").answers == []


def test_names_outside_the_zone_are_not_ours(zone):
    assert zone.answer("example.com", "A") is None
    assert zone.answer("cluster.local.example.com", "A") is None
    assert zone.answer("xcluster.local", "A") is None


def test_ptr_for_cluster_ips_and_headless_endpoints(zone):
    assert data(zone.answer("20.0.96.10.in-addr.arpa.", "PTR")) == ["web.default.svc.cluster.local"]
    assert data(zone.answer("7.1.244.10.in-addr.arpa", "PTR")) == ["db-0.db.default.svc.cluster.local"]
    assert data(zone.answer("8.2.244.10.in-addr.arpa", "PTR")) == ["10-244-2-8.db.default.svc.cluster.local"]
    v6 = ipaddress.ip_address("fd00::20").reverse_pointer
    assert data(zone.answer(v6, "PTR")) == ["v6.default.svc.cluster.local"]


def test_unknown_ptr_falls_through_to_upstream(zone):
    assert zone.answer("1.1.168.192.in-addr.arpa", "PTR") is None
    assert zone.answer("96.10.in-addr.arpa", "PTR") is None
    assert zone.answer("20.0.96.10.in-addr.arpa", "A") is None


def test_changes_show_after_invalidate():
    services, eps = {}, {}
    times = iter([1, 2])
    zone = ClusterZone(services, eps, clock=lambda: next(times))
    assert zone.answer("1.0.96.10.in-addr.arpa", "PTR") is None
    services[("default", "new")] = service("new", cluster_ip="10.96.0.1")
    assert data(zone.answer("new.default.svc.cluster.local", "A")) == ["10.96.0.1"]  # live cache, no index
    zone.invalidate()
    assert data(zone.answer("1.0.96.10.in-addr.arpa", "PTR")) == ["new.default.svc.cluster.local"]
    assert zone.serial == 2


def test_any_returns_everything_the_name_owns(zone):
    assert {r.rtype for r in zone.answer("web.default.svc.cluster.local", "ANY").answers} == {"A", "SRV"}


def test_custom_zone():
    zone = ClusterZone({("default", "web"): service("web")}, {}, zone="lab.internal.")
    assert data(zone.answer("web.default.svc.lab.internal", "A")) == ["10.96.0.20"]
    assert zone.answer("web.default.svc.cluster.local", "A") is None


@pytest.mark.parametrize("ip", ["10.244.1.5", "fd00::1", "2001:db8::a:b"])
def test_dashed_round_trip(ip):
    assert undashed(dashed(ip)) == ip


def test_reverse_name_parsing():
    assert reverse_name_to_ip("4.3.2.1.in-addr.arpa") == "1.2.3.4"
    assert reverse_name_to_ip("3.2.1.in-addr.arpa") is None
    assert reverse_name_to_ip("x.3.2.1.in-addr.arpa") is None
