"""Lab topologies: the shipped files, defaults, and the exact error a student sees for a broken file."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from importlib import resources
from pathlib import Path

import pytest

from labctl.cluster.scratch import scratch_topology
from labctl.errors import LabctlError
from labctl.kube.containers import node_container_name
from labctl.topology import (
    CONTROL_PLANE_TAINT,
    SHIPPED_TOPOLOGIES,
    Taint,
    TopologyError,
    default_topology_path,
    find_topology,
    format_duration,
    load_topology,
    normalize_image,
    parse_duration,
    parse_topology,
    pick_lab_subnet,
)
from labctl.topology.aliases import DEFAULT_ALIASES

REPO = Path(__file__).resolve().parents[2]
CP_ROLE = {"node-role.kubernetes.io/control-plane": ""}
WORKER_ROLE = {"node-role.kubernetes.io/worker": ""}


def write(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Write ``topologies/bad.yaml`` under ``tmp_path`` and return the relative path errors will show."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "topologies").mkdir(exist_ok=True)
    (tmp_path / "topologies" / "bad.yaml").write_text(textwrap.dedent(text))
    return "topologies/bad.yaml"


def load_error(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> str:
    with pytest.raises(TopologyError) as info:
        load_topology(write(tmp_path, text, monkeypatch))
    return str(info.value)


# --- the shipped topologies ---------------------------------------------------------------------

def test_default_topology_is_one_control_plane_and_two_workers():
    topo = load_topology(default_topology_path())
    assert topo.name == "lab"
    assert [(n.role, n.name, n.pod_cidr) for n in topo.nodes] == [
        ("control-plane", "control-plane", "10.244.0.0/24"),
        ("worker", "worker", "10.244.1.0/24"),
        ("worker", "worker2", "10.244.2.0/24"),
    ]
    assert [node_container_name(topo.name, n.name) for n in topo.nodes] == [
        "lab-control-plane", "lab-worker", "lab-worker2"]
    assert topo.control_plane.taints == (CONTROL_PLANE_TAINT,)
    assert CONTROL_PLANE_TAINT.to_dict() == {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    assert [n.taints for n in topo.workers] == [(), ()]
    assert dict(topo.control_plane.labels) == CP_ROLE
    assert [dict(n.labels) for n in topo.workers] == [WORKER_ROLE, WORKER_ROLE]


def test_default_topology_networking_port_mapping_and_lab_timings():
    topo = load_topology(default_topology_path("default"))
    net = topo.networking
    assert (net.pod_subnet, net.service_subnet, net.lab_subnet) == ("10.244.0.0/16", "10.96.0.0/12", None)
    assert (net.node_port_range, net.node_port_range_text) == ((30000, 32767), "30000-32767")
    assert (net.api_server_address, net.api_server_port) == ("127.0.0.1", 6443)
    cluster = topo.cluster_config()
    assert (cluster.kubernetes_service_ip, cluster.dns_service_ip) == ("10.96.0.1", "10.96.0.10")
    mapping, http, https = topo.port_mappings
    assert (mapping.listen_address, mapping.host_port, mapping.node_port, mapping.protocol, mapping.node) == \
        ("127.0.0.1", 30000, 30000, "TCP", "control-plane")
    # the ingress add-on's NodePort Service (labctl.addons.INGRESS_NODE_PORTS), on by default
    assert [(m.host_port, m.node_port) for m in (http, https)] == [(8080, 30080), (8443, 30443)]
    assert topo.addons == ("ingress",)
    life = topo.node_lifecycle
    assert (life.node_monitor_grace_period, life.pod_eviction_timeout) == (timedelta(seconds=20), timedelta(seconds=30))
    assert (life.lease_duration_seconds, life.lease_renew_interval) == (20, timedelta(seconds=5))
    assert topo.images.resolve("nginx") == "labctl/nginx:v1"
    assert topo.images.resolve("nginx:1.16.1") == "labctl/nginx:v2"


def test_single_topology_has_an_untainted_control_plane():
    topo = load_topology(default_topology_path("single"))
    [node] = topo.nodes
    assert (node.name, node.pod_cidr, node.taints, dict(node.labels)) == ("control-plane", "10.244.0.0/24", (), CP_ROLE)
    assert topo.workers == ()


def test_large_topology_is_one_control_plane_and_five_workers():
    topo = load_topology(default_topology_path("large"))
    assert [n.name for n in topo.nodes] == ["control-plane", "worker", "worker2", "worker3", "worker4", "worker5"]
    assert [n.pod_cidr for n in topo.workers] == [f"10.244.{i}.0/24" for i in range(1, 6)]
    assert topo.control_plane.taints == (CONTROL_PLANE_TAINT,)
    assert [(m.host_port, m.node_port) for m in topo.port_mappings] == [(30000, 30000), (8080, 30080), (8443, 30443)]


@pytest.mark.parametrize("name", SHIPPED_TOPOLOGIES)
def test_the_checkouts_topologies_are_the_packaged_files(name):
    """One copy: every install reads labctl/topologies_data/; topologies/ links to it, so they cannot drift."""
    packaged = Path(str(resources.files("labctl.topologies_data") / f"{name}.yaml"))
    checkout = REPO / "topologies" / f"{name}.yaml"
    assert default_topology_path(name) == packaged
    assert checkout.is_symlink() and checkout.resolve() == packaged.resolve(), \
        f"topologies/{name}.yaml must be a symlink to labctl/topologies_data/{name}.yaml"


def test_find_topology_takes_a_shipped_name_or_a_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert find_topology(None) == default_topology_path("default")
    assert find_topology("large") == default_topology_path("large")
    assert find_topology("mine.yaml") == Path("mine.yaml")
    with pytest.raises(TopologyError, match='no shipped topology "huge"; use one of: default, single, large'):
        default_topology_path("huge")


# --- defaults -----------------------------------------------------------------------------------

def test_minimal_file_gets_every_default(tmp_path, monkeypatch):
    topo = load_topology(write(tmp_path, "nodes: [{role: control-plane}]\n", monkeypatch))
    assert topo.name == "lab" and topo.source == "topologies/bad.yaml"
    [node] = topo.nodes
    assert (node.name, node.pod_cidr, node.taints) == ("control-plane", "10.244.0.0/24", ())
    net = topo.networking
    assert (net.pod_subnet, net.service_subnet, net.lab_subnet, net.node_port_range) == \
        ("10.244.0.0/16", "10.96.0.0/12", None, (30000, 32767))
    assert (net.api_server_address, net.api_server_port) == ("127.0.0.1", 6443)
    assert topo.port_mappings == () and topo.images.resolve("busybox:1.28") == "labctl/toolbox:latest"
    life = topo.node_lifecycle   # Kubernetes' own defaults
    assert (life.node_monitor_grace_period, life.pod_eviction_timeout) == (timedelta(seconds=40), timedelta(seconds=300))
    assert (life.lease_duration_seconds, life.lease_renew_interval) == (40, timedelta(seconds=10))


def test_empty_file_is_a_single_node_lab(tmp_path, monkeypatch):
    topo = load_topology(write(tmp_path, "", monkeypatch))
    assert [n.name for n in topo.nodes] == ["control-plane"]


def test_names_labels_taints_and_mappings_as_written():
    topo = parse_topology({
        "name": "net101",
        "nodes": [{"role": "worker", "name": "edge", "labels": {"zone": "a"}},
                  {"role": "control-plane", "taints": []},
                  {"role": "worker", "taints": [{"key": "gpu", "value": "yes", "effect": "NoExecute"}]}],
        "portMappings": [{"nodePort": 30080, "hostPort": 8080, "node": "edge", "protocol": "UDP"}],
        "nodeLifecycle": {"nodeMonitorGracePeriod": "1m30s", "podEvictionTimeout": 90},
    })
    assert [(n.name, n.pod_cidr) for n in topo.nodes] == [
        ("edge", "10.244.0.0/24"), ("control-plane", "10.244.1.0/24"), ("worker2", "10.244.2.0/24")]
    assert dict(topo.node("edge").labels) == WORKER_ROLE | {"zone": "a"}
    assert topo.control_plane.taints == ()   # taints: [] switches the default taint off
    assert topo.node("worker2").taints == (Taint("gpu", "NoExecute", "yes"),)
    assert [(m.host_port, m.node_port, m.node, m.protocol) for m in topo.port_mappings] == [(8080, 30080, "edge", "UDP")]
    assert topo.node_lifecycle.node_monitor_grace_period == timedelta(seconds=90)
    assert topo.node_lifecycle.pod_eviction_timeout == timedelta(seconds=90)


# --- broken files: the exact text a student sees ------------------------------------------------

BROKEN = {
    "bad role": ("""
        nodes:
          - role: control-plane
          - role: worker
          - role: master
        """, ['nodes[2].role: "master" is not allowed; use one of: control-plane, worker']),
    "pod subnet too small": ("""
        nodes: [{role: control-plane}, {role: worker}, {role: worker}]
        networking: {podSubnet: 10.244.0.0/24}
        """, ['networking.podSubnet: "10.244.0.0/24" is too small for 3 nodes (needs one /24 per node, at least a /22)']),
    "unknown field": ("""
        nodes:
          - role: control-plane
            lables: {zone: a}
        """, ['nodes[0].lables: unknown field (did you mean "labels"?); allowed fields: role, name, labels, taints']),
    "no control-plane": ("nodes: [{role: worker}]\n",
                         ["nodes: needs exactly one node with role: control-plane, found none"]),
    "two control-planes": ("nodes: [{role: control-plane}, {role: control-plane}]\n",
                           ["nodes: needs exactly one node with role: control-plane, found 2 (nodes[0], nodes[1])"]),
    "default name taken": ("nodes: [{role: control-plane}, {role: worker, name: worker2}, {role: worker}]\n",
                           ['nodes[2].name: "worker2" (its default name) is already used by nodes[1]; '
                            "node names must be unique"]),
    "cluster name": ("name: My_Lab\n", [
        'name: "My_Lab" is not a valid cluster name; use at most 40 lowercase letters, digits and \'-\', '
        "starting and ending with a letter or digit (it prefixes container and network names)"]),
    "duplicate node name": ("""
        nodes: [{role: control-plane}, {role: worker, name: db}, {role: worker, name: db}]
        """, ['nodes[2].name: "db" is already used by nodes[1]; node names must be unique']),
    "overlapping subnets": ("""
        networking: {serviceSubnet: 10.240.0.0/12, labSubnet: 10.244.7.0/24}
        """, ['networking.serviceSubnet: "10.240.0.0/12" overlaps networking.podSubnet "10.244.0.0/16"; '
              "the ranges must not share addresses",
              'networking.labSubnet: "10.244.7.0/24" overlaps networking.podSubnet "10.244.0.0/16"; '
              "the ranges must not share addresses",
              'networking.labSubnet: "10.244.7.0/24" overlaps networking.serviceSubnet "10.240.0.0/12"; '
              "the ranges must not share addresses"]),
    "bad CIDRs": ("""
        networking: {podSubnet: 10.244.1.0/16, serviceSubnet: banana, labSubnet: 5}
        """, ['networking.podSubnet: "10.244.1.0/16" has host bits set; did you mean "10.244.0.0/16"?',
              'networking.serviceSubnet: "banana" is not a CIDR; use an IPv4 network like "10.244.0.0/16"',
              'networking.labSubnet: must be "auto" or an IPv4 CIDR like "172.30.0.0/24", got a number (5)']),
    "ports": ("""
        networking: {nodePortRange: 32767-30000, apiServerPort: 70000}
        portMappings:
          - {nodePort: 8080}
          - {hostPort: 30000, nodePort: 30000}
          - {hostPort: 30000, nodePort: 30001, listenAddress: 0.0.0.0}
          - {nodePort: 30002, protocol: tcp, node: worker9}
          - {hostPort: 0, nodePort: 30003}
        """, ['networking.nodePortRange: "32767-30000" is not a port range; FIRST and LAST must be ports (1-65535) '
              "and FIRST <= LAST",
              "networking.apiServerPort: 70000 is out of range; use an integer from 0 to 65535",
              "portMappings[0].nodePort: 8080 is outside networking.nodePortRange 30000-32767",
              "portMappings[2].hostPort: 30000/TCP on 0.0.0.0 is already mapped by portMappings[1]; "
              "host ports must be unique",
              'portMappings[3].protocol: "tcp" is not allowed; use one of: TCP, UDP, SCTP',
              'portMappings[3].node: "worker9" is not a node of this topology; use one of: control-plane',
              "portMappings[4].hostPort: 0 is out of range; use an integer from 1 to 65535"]),
    "labels and taints": ("""
        nodes:
          - role: control-plane
            labels: {tier: 1}
            taints: [{key: gpu, effect: NoSchedul}, {value: x, effect: NoSchedule}]
        """, ['nodes[0].labels["tier"]: must be a string, got a number (1); quote it: "1"',
              'nodes[0].taints[0].effect: "NoSchedul" is not allowed; use one of: NoSchedule, PreferNoSchedule, '
              "NoExecute",
              'nodes[0].taints[1].key: required; a label key like "dedicated" or "example.com/gpu"']),
    "image aliases": ("""
        images:
          aliases: {nginx: "", "docker.io/library/busybox": a, "busybox:latest": b}
        """, ['images.aliases["nginx"]: "" is not an image; use a non-empty local image name like "labctl/web:v1"',
              'images.aliases["busybox:latest"]: names the same image as images.aliases["docker.io/library/busybox"] '
              "(busybox:latest)"]),
    "durations": ("""
        nodeLifecycle: {nodeMonitorGracePeriod: 5 minutes, podEvictionTimeout: 0s, leaseRenewInterval: -1s}
        """, ['nodeLifecycle.nodeMonitorGracePeriod: "5 minutes" is not a duration; use a number of seconds or a '
              'Go duration like "40s", "5m", "1m30s"',
              'nodeLifecycle.podEvictionTimeout: must be positive, got "0s"',
              'nodeLifecycle.leaseRenewInterval: must be positive, got "-1s"']),
    "lease timings": ("nodeLifecycle: {leaseDurationSeconds: 10, leaseRenewInterval: 15s, nodeMonitorGracePeriod: 12}\n", [
        "nodeLifecycle.leaseRenewInterval: 15s must be shorter than nodeLifecycle.leaseDurationSeconds (10s), "
        "or leases expire between renewals",
        "nodeLifecycle.leaseRenewInterval: 15s must be shorter than nodeLifecycle.nodeMonitorGracePeriod (12s), "
        "or healthy nodes go NotReady between renewals"]),
    "wrong shapes": ("""
        apiVersion: kind.x-k8s.io/v1alpha4
        nodes: {role: control-plane}
        networking: [podSubnet]
        """, ['apiVersion: "kind.x-k8s.io/v1alpha4" is not supported; use "labctl.dev/v1alpha1"',
              "nodes: must be a list of nodes like [{role: control-plane}, {role: worker}], got a mapping",
              "networking: must be a mapping with fields podSubnet, serviceSubnet, labSubnet, nodePortRange, "
              "apiServerPort, apiServerAddress; got a list"]),
    "not a mapping": ("- role: control-plane\n", [
        "the topology must be a mapping with fields apiVersion, kind, name, nodes, networking, portMappings, images, "
        "nodeLifecycle, serviceAccounts, resources, addons; got a list"]),
    "malformed YAML": ("""
        nodes:
          - role: control-plane
          role: worker
        """, ["line 4, column 3: invalid YAML: expected <block end>, but found '?'"]),
    "tab": ("nodes:\n\t- role: control-plane\n",
            ["line 2, column 1: invalid YAML: found character '\\t' that cannot start any token"]),
    "duplicate key": ("""
        nodes:
          - role: control-plane
            role: worker
        """, ['line 4, column 5: invalid YAML: duplicate key "role"']),
}


@pytest.mark.parametrize("case", BROKEN)
def test_broken_file_names_the_file_the_field_and_what_is_allowed(case, tmp_path, monkeypatch):
    text, problems = BROKEN[case]
    assert load_error(tmp_path, text, monkeypatch) == "\n".join(f"topologies/bad.yaml: {p}" for p in problems)


def test_topology_error_is_a_user_facing_labctl_error_with_a_hint(tmp_path, monkeypatch):
    with pytest.raises(LabctlError) as info:
        load_topology(write(tmp_path, "nodes: []\n", monkeypatch))
    assert isinstance(info.value, TopologyError)
    assert info.value.source == "topologies/bad.yaml"
    assert info.value.problems == ("nodes: needs exactly one node with role: control-plane, found none",)
    assert "docs/topology.md" in info.value.hint


def test_missing_file_is_a_topology_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TopologyError, match=r"^nope\.yaml: failed to read the topology file: No such file or directory$"):
        load_topology("nope.yaml")


# --- helpers the lead builds `labctl up` on -----------------------------------------------------

def test_with_name_validates_the_override():
    topo = load_topology(default_topology_path())
    assert [node_container_name(topo.with_name("net101").name, n.name) for n in topo.nodes][:1] == \
        ["net101-control-plane"]
    with pytest.raises(TopologyError, match=r'^--name: "Net_101" is not a valid cluster name'):
        topo.with_name("Net_101")


def test_pick_lab_subnet_skips_subnets_in_use_and_validates_explicit_ones():
    topo = load_topology(default_topology_path())
    assert pick_lab_subnet(topo, []) == "172.30.0.0/24"
    assert pick_lab_subnet(topo, ["172.17.0.0/16", "172.30.0.0/24", "172.30.1.128/25"]) == "172.30.2.0/24"
    resolved = topo.with_lab_subnet("172.30.5.0/24")
    assert resolved.networking.lab_subnet == "172.30.5.0/24"
    with pytest.raises(TopologyError, match=r'networking.labSubnet: "172.30.5.0/30" is too small for 3 nodes'):
        topo.with_lab_subnet("172.30.5.0/30")


def test_pick_lab_subnet_fails_with_a_hint_when_everything_is_taken():
    topo = load_topology(default_topology_path())
    with pytest.raises(LabctlError, match="every /24 of 172.30.0.0/16 is in use") as info:
        pick_lab_subnet(topo, ["172.30.0.0/16"])
    assert "networking.labSubnet" in info.value.hint


@pytest.mark.parametrize("text, seconds", [
    ("40s", 40), ("5m", 300), ("1m30s", 90), ("1h", 3600), ("500ms", 0.5), ("1.5s", 1.5), (12, 12), (2.5, 2.5),
])
def test_durations_are_go_strings_or_seconds(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["40", "s", "5 m", "1d", "", True, None, [1]])
def test_not_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_duration_is_gos():
    assert [format_duration(timedelta(seconds=s)) for s in (40, 300, 90, 3723, 0.5)] == \
        ["40s", "5m0s", "1m30s", "1h2m3s", "0.5s"]


@pytest.mark.parametrize("ref, normalized", [
    ("nginx", "nginx:latest"), ("nginx:1.14.2", "nginx:1.14.2"), ("docker.io/library/nginx", "nginx:latest"),
    ("library/nginx:1", "nginx:1"), ("docker.io/bitnami/nginx", "bitnami/nginx:latest"),
    ("localhost:5000/web", "localhost:5000/web:latest"), ("nginx@sha256:abc", "nginx@sha256:abc"),
])
def test_normalize_image(ref, normalized):
    assert normalize_image(ref) == normalized


def test_image_aliases_match_exactly_so_a_mistyped_tag_still_fails_to_pull():
    images = load_topology(default_topology_path()).images
    assert images.resolve("docker.io/library/nginx:latest") == "labctl/nginx:v1"
    assert images.resolve("nginx:1.161") == "nginx:1.161"        # Kubernetes' "bad rollout" lesson
    assert images.resolve("labctl/web:v2") == "labctl/web:v2"


#: images kubernetes.io's task pages run, as a student copies them (page: image)
TUTORIAL_IMAGES = {
    "busybox:1.28": "labctl/toolbox:latest",                     # Init Containers, Security Context, DNS
    "busybox:1.36": "labctl/toolbox:latest",                     # Jobs, sidecars
    "registry.k8s.io/busybox": "labctl/toolbox:latest",          # Configure a Pod to Use a ConfigMap
    "registry.k8s.io/busybox:1.27.2": "labctl/toolbox:latest",   # Liveness, Readiness and Startup Probes
    "registry.k8s.io/pause:3.1": "labctl/pause:latest",          # Debug Running Pods (no shell in it)
    "gcr.io/google-containers/busybox": "labctl/toolbox:latest",  # Debug Services (kubectl run -it --rm)
    "radial/busyboxplus:curl": "labctl/toolbox:latest",          # Connecting Applications with Services
    "registry.k8s.io/e2e-test-images/jessie-dnsutils:1.3": "labctl/toolbox:latest",  # Debugging DNS Resolution
}


@pytest.mark.parametrize("name", ["default", "single", "large"])
def test_the_tutorials_images_run_lab_images_in_every_shipped_topology(name):
    images = load_topology(default_topology_path(name)).images
    assert {image: images.resolve(image) for image in TUTORIAL_IMAGES} == TUTORIAL_IMAGES


@pytest.mark.parametrize("name", ["default", "single", "large"])
def test_the_shipped_topologies_have_exactly_the_default_aliases(name):
    defaults = parse_topology({"name": "lab"}).images
    assert load_topology(default_topology_path(name)).images == defaults
    assert {image: defaults.resolve(image) for image in DEFAULT_ALIASES} == dict(DEFAULT_ALIASES)


def test_a_topologys_own_aliases_extend_and_override_the_defaults():
    images = parse_topology({"name": "lab", "images": {"aliases": {
        "myapp:1.0": "labctl/web:v1",                        # added
        "docker.io/library/nginx:1.16.1": "labctl/nginx:v1",  # the default "nginx:1.16.1", overridden
        "busybox": "busybox",                                 # turned off: pulled as written (and fails offline)
    }}}).images
    assert images.resolve("myapp:1.0") == "labctl/web:v1"
    assert images.resolve("nginx:1.16.1") == "labctl/nginx:v1"
    assert images.resolve("busybox:latest") == "busybox"
    assert images.resolve("busybox:1.28") == "labctl/toolbox:latest"   # the other defaults stay
    assert images.resolve("nginx") == "labctl/nginx:v1"


def test_a_key_naming_a_default_image_is_an_override_not_a_duplicate():
    """Only two keys of the same file naming one image are an error."""
    images = parse_topology({"name": "lab", "images": {"aliases": {"nginx:latest": "labctl/web:v2"}}}).images
    assert images.resolve("nginx") == "labctl/web:v2"


def test_a_scratch_lab_has_the_default_topologys_aliases():
    scratch = parse_topology(scratch_topology("lab"))
    assert scratch.images == load_topology(default_topology_path()).images


@pytest.mark.parametrize("addons, enabled", [(None, ("ingress",)), ({"ingress": False}, ()), ({"ingress": True}, ("ingress",))])
def test_addons_switch_the_ingress_controller(addons, enabled):
    doc = {"apiVersion": "labctl.dev/v1alpha1", "kind": "Topology", "name": "lab", "addons": addons}
    assert parse_topology(doc).addons == enabled


def test_an_addon_switch_is_a_boolean():
    doc = {"apiVersion": "labctl.dev/v1alpha1", "kind": "Topology", "name": "lab", "addons": {"ingress": "no", "dns": 1}}
    with pytest.raises(TopologyError) as err:
        parse_topology(doc)
    assert 'addons.ingress: must be true or false, got a string ("no")' in str(err.value)
    assert "addons.dns: unknown field; allowed fields: ingress" in str(err.value)
