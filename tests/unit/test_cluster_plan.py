"""Planning a lab from a topology: names, IPs, capabilities, mounts and published ports."""

from __future__ import annotations

from labctl.cluster.plan import NODE_CAPABILITIES, container_spec, node_config, plan_from_topology
from labctl.topology import default_topology_path, load_topology


def default_plan(**kw):
    topo = load_topology(default_topology_path("default"))
    for method, arg in kw.items():
        topo = getattr(topo, method)(arg)
    return plan_from_topology(topo, "172.30.7.0/24", "labctl/node:abc")


def test_nodes_get_names_ips_and_pod_cidrs_in_topology_order():
    plan = default_plan(with_name="class1")
    assert [(n.name, n.container, n.ip, n.pod_cidr) for n in plan.nodes] == [
        ("control-plane", "class1-control-plane", "172.30.7.2", "10.244.0.0/24"),
        ("worker", "class1-worker", "172.30.7.3", "10.244.1.0/24"),
        ("worker2", "class1-worker2", "172.30.7.4", "10.244.2.0/24"),
    ]
    assert plan.gateway == "172.30.7.1"
    assert plan.internal_api_url == "https://172.30.7.2:6443"


def test_node_containers_are_not_privileged_and_get_only_named_capabilities():
    plan = default_plan()
    spec = container_spec(plan, plan.nodes[1])
    assert spec["cap_add"] == list(NODE_CAPABILITIES) == ["NET_ADMIN", "NET_RAW", "SYS_ADMIN"]
    assert "privileged" not in spec
    assert "/var/run/docker/netns:/var/run/docker/netns:rslave" in spec["binds"]
    assert spec["sysctls"]["net.ipv4.ip_forward"] == "1"
    assert spec["labels"] == {"io.labctl.cluster": "lab", "io.labctl.role": "worker", "io.labctl.node": "worker"}
    assert spec["ports"] == {}  # only the control plane publishes


def test_control_plane_publishes_api_server_and_port_mappings_on_loopback():
    plan = default_plan()
    spec = container_spec(plan, plan.control_plane)
    assert spec["ports"]["6443/tcp"] == [("127.0.0.1", 6443)]
    assert spec["ports"]["30000/tcp"] == [("127.0.0.1", 30000)]
    assert f"{plan.state_volume}:/var/lib/labctl" in spec["binds"]


def test_the_control_plane_starts_with_twice_a_workers_cpu_weight():
    plan = default_plan()
    cp, worker = container_spec(plan, plan.control_plane), container_spec(plan, plan.nodes[1])
    assert cp["cpu_shares"] == 2 * worker["cpu_shares"] == 2048  # until its API server answers


def test_publish_address_moves_every_published_port():
    plan = default_plan(with_publish_address="0.0.0.0")
    spec = container_spec(plan, plan.control_plane)
    assert spec["ports"]["6443/tcp"] == [("0.0.0.0", 6443)]
    assert spec["ports"]["30000/tcp"] == [("0.0.0.0", 30000)]


def test_node_config_carries_cluster_settings():
    plan = default_plan()
    cfg = node_config(plan, plan.nodes[2])
    assert (cfg.node_name, cfg.role, cfg.internal_ip, cfg.pod_cidr) == ("worker2", "worker", "172.30.7.4", "10.244.2.0/24")
    assert cfg.image_aliases["nginx:1.14.2"].startswith("labctl/nginx")
    assert cfg.cluster.lifecycle.node_monitor_grace_seconds > 0 and cfg.cluster.lifecycle.pod_eviction_timeout_seconds > 0
