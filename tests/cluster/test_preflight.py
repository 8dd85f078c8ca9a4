"""What `labctl up` refuses before it creates anything, each as one line naming the field to change.

The host facts (routes, meminfo, interfaces) are passed in, so these need neither root nor Docker.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import socket

import pytest

from labctl.cluster import preflight
from labctl.cluster.constants import MAX_INTERFACE_NAME, bridge_name
from labctl.cluster.plan import plan_from_topology
from labctl.errors import LabctlError
from labctl.topology import TopologyError, parse_topology, pick_lab_subnet

#: /proc/net/route of a host: a default route, eth0's LAN, docker0, one lab's bridge, a VPN
#: route more specific than a /24 inside 172.30.9.0/24 and a broad one through the same VPN
ROUTES = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0
docker0\t000011AC\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
lab-one\t00001EAC\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
tun0\t00091EAC\t0101080A\t0003\t0\t0\t0\t80FFFFFF\t0\t0\t0
tun0\t0000000A\t0101080A\t0003\t0\t0\t0\t000000FF\t0\t0\t0
"""
DOCKER = {"172.17.0.0/16": "bridge", "172.30.0.0/24": "labctl-one"}
net = ipaddress.IPv4Network


def topo(networking: dict | None = None, workers: int = 2) -> object:
    return parse_topology({"nodes": [{"role": "control-plane"}] + [{"role": "worker"}] * workers,
                           "networking": networking or {}}, "lab.yaml")


def routes() -> list[preflight.HostRoute]:
    return preflight.host_routes(ROUTES)


def test_host_routes_are_read_from_proc_net_route_without_the_default_route():
    assert [(str(r.network), r.interface, r.gateway) for r in routes()] == [
        ("172.17.0.0/16", "docker0", ""), ("172.30.0.0/24", "lab-one", ""), ("192.0.2.0/24", "eth0", ""),
        ("172.30.9.0/25", "tun0", "10.8.1.1"), ("10.0.0.0/8", "tun0", "10.8.1.1")]
    assert preflight.host_routes()  # this host's own table parses too


def test_auto_lab_subnet_skips_host_networks_docker_networks_and_specific_routes_not_broad_vpn_routes():
    conflicts = preflight.lab_subnet_conflicts(routes(), DOCKER)
    assert "172.30.9.0/25" in conflicts and "10.0.0.0/8" not in conflicts
    taken = conflicts + ["172.30.1.0/24"]
    assert pick_lab_subnet(topo(), taken) == "172.30.2.0/24"
    # a pod subnet over the first free /24s: the lab network is never one of its addresses
    assert pick_lab_subnet(topo({"podSubnet": "172.30.0.0/20"}), taken) == "172.30.16.0/24"


def test_a_pod_subnet_overlapping_the_lab_network_is_refused():
    with pytest.raises(TopologyError, match=re.escape('networking.labSubnet: "172.30.4.0/24" overlaps networking.podSubnet')):
        topo({"podSubnet": "172.30.0.0/20"}).with_lab_subnet("172.30.4.0/24")


@pytest.mark.parametrize("networking, problem", [
    ({"labSubnet": "192.0.2.0/24"}, 'networking.labSubnet: "192.0.2.0/24" overlaps 192.0.2.0/24, the network of '
                                    "the host's interface eth0"),
    ({"labSubnet": "172.30.0.0/24"}, 'networking.labSubnet: "172.30.0.0/24" overlaps 172.30.0.0/24, the Docker '
                                     "network 'labctl-one'"),
    ({"labSubnet": "172.30.9.0/24"}, "networking.labSubnet: \"172.30.9.0/24\" overlaps the host's route "
                                     "172.30.9.0/25 via 10.8.1.1 dev tun0"),
    ({"podSubnet": "172.17.0.0/16"}, 'networking.podSubnet: "172.17.0.0/16" overlaps 172.17.0.0/16, the Docker '
                                     "network 'bridge'; pods could not reach that network's addresses"),
    ({"serviceSubnet": "192.0.2.0/24"}, 'networking.serviceSubnet: "192.0.2.0/24" overlaps 192.0.2.0/24'),
])
def test_subnets_the_host_already_uses_are_refused_naming_the_field(networking, problem):
    with pytest.raises(TopologyError) as err:
        preflight.check_subnets(topo(networking), routes(), DOCKER)
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems
    assert str(err.value).startswith("lab.yaml: networking.")


def test_broad_routes_through_a_gateway_are_no_conflict():
    # the VPN's 10.0.0.0/8 holds the default pod and Service subnets: pods still work
    preflight.check_subnets(topo({"labSubnet": "172.30.3.0/24"}), routes(), DOCKER)


def test_the_kube_dns_address_must_be_inside_the_service_subnet():
    with pytest.raises(TopologyError, match="the cluster DNS Service takes its 10th address"):
        topo({"serviceSubnet": "10.96.0.0/29"})
    smallest = topo({"serviceSubnet": "10.96.0.0/28"}).cluster_config()
    assert ipaddress.ip_address(smallest.dns_service_ip) in net("10.96.0.0/28")


def test_an_address_the_host_does_not_have_is_one_clean_line():
    if "192.0.2.77" in socket.gethostbyname_ex(socket.gethostname())[2]:
        pytest.skip("this host has 192.0.2.77")
    bad = topo({"apiServerAddress": "192.0.2.77"})
    with pytest.raises(TopologyError) as err:
        preflight.check_addresses(bad)
    assert err.value.problems == ("networking.apiServerAddress: 192.0.2.77 is not an address of this host; "
                                  "use 127.0.0.1, 0.0.0.0 or an address `ip -4 addr` shows",)
    preflight.check_addresses(topo({"apiServerAddress": "0.0.0.0"}))


def test_a_host_port_in_use_is_refused():
    plan = plan_from_topology(topo({"labSubnet": "172.30.3.0/24"}), "172.30.3.0/24", "labctl/node:x")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = dataclasses.replace(plan, api_server_port=port)
        with pytest.raises(LabctlError, match=f"host port 127.0.0.1:{port} is already in use"):
            preflight.check_ports_free(taken)


def test_a_topology_the_hosts_memory_cannot_hold_is_refused():
    big = topo(workers=199)
    with pytest.raises(LabctlError) as err:
        preflight.check_memory(big, "MemTotal: 8000000 kB\nMemAvailable:    4194304 kB\n")
    assert str(err.value) == ("lab 'lab' needs about 11,787 MiB of memory (200 nodes: the control plane 131 MiB "
                              "and 199 worker(s) × 56 MiB when idle, plus 512 MiB for pods), but this host has "
                              "4,096 MiB available")
    assert "fewer workers in lab.yaml" in (err.value.hint or "")
    preflight.check_memory(topo(), "MemAvailable:    4194304 kB\n")
    preflight.check_memory(big, "MemFree: 1 kB\n")  # an old kernel without MemAvailable: no figure to hold against


def test_bridge_names_are_unique_per_lab_and_readable():
    assert bridge_name("lab") == "lab-lab"
    assert bridge_name("course-b") == "lab-course-b"
    a, b = bridge_name("classroom-a1"), bridge_name("classroom-a2")   # the first 11 characters shared
    assert a != b and a.startswith("lab-classr") and b.startswith("lab-classr")
    assert max(len(bridge_name("x" * 40)), len(a), len(b)) <= MAX_INTERFACE_NAME == 15
    plan = plan_from_topology(topo().with_name("classroom-a1"), "172.30.3.0/24", "labctl/node:x")
    assert plan.bridge == a
    with pytest.raises(LabctlError, match=f"the host already has an interface '{a}'"):
        preflight.check_bridge_free(plan, ["lo", "eth0", a])
    preflight.check_bridge_free(plan, ["lo", "eth0", b])
