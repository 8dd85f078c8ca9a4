"""`labctl up` / `labctl down` against the real Docker engine, checked with the real kubectl.

The host must look exactly the same after `down` as before `up`: containers, networks,
volumes, links and iptables rules are compared.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time

import pytest
import yaml

from labctl.client.waiting import wait_for
from labctl.cluster import preflight
from labctl.cluster.constants import bridge_name
from labctl.cluster.scratch import unique_name, write_topology
from support.lab import Lab, labctl

pytestmark = pytest.mark.docker


def host_state() -> dict[str, list[str]]:
    def lines(*cmd: str) -> list[str]:
        return sorted(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines())

    iptables = [re.sub(r"\[\d+:\d+\]", "", line) for line in lines("iptables-save")
                if not line.startswith("#")]
    return {
        "containers": lines("docker", "ps", "-aq", "--no-trunc"),
        "networks": lines("docker", "network", "ls", "-q", "--no-trunc"),
        "volumes": lines("docker", "volume", "ls", "-q"),
        "links": [re.sub(r"^\d+: ", "", line).split("@")[0].split(":")[0] for line in lines("ip", "-o", "link")],
        "iptables": sorted(iptables),
    }


def assert_host_restored(before: dict[str, list[str]], *names: str) -> None:
    """The host as before `up`: exactly, when nothing else touched Docker meanwhile (as in CI);
    otherwise (other labs came and went during the test) nothing named after our labs remains."""
    after = host_state()
    if after == before:
        return
    ours = [n for name in names for n in (name, bridge_name(name))]
    leftovers = {kind: [item for item in set(after[kind]) - set(before[kind]) if any(o in item for o in ours)]
                 for kind in after}
    assert not any(leftovers.values()), leftovers
    others = subprocess.run(["docker", "ps", "-aq", "--filter", "label=io.labctl.cluster"],
                            capture_output=True, text=True).stdout.split()
    # a rule of another lab's bridge that came or went: that lab was being made or removed meanwhile
    foreign_rules = [line for line in set(after["iptables"]) ^ set(before["iptables"])
                     if re.search(r"\blab-\S+", line) and not any(o in line for o in ours)]
    assert (others or foreign_rules or after["containers"] != before["containers"]
            or after["networks"] != before["networks"]), f"host changed although no other lab was active: {after} != {before}"


def ready_nodes(lab: Lab) -> dict[str, dict]:
    nodes = lab.kubectl.json("get", "nodes")["items"]
    return {n["metadata"]["name"]: n for n in nodes
            if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"])}


def test_up_default_shape_then_down_leaves_host_as_before(docker_engine, kubectl_binary, tmp_path):
    before = host_state()
    lab = Lab(unique_name("up"), tmp_path, kubectl_binary)
    try:
        created = lab.up()
        assert created.returncode == 0, created.stderr
        assert "is ready in" in created.stderr
        nodes = ready_nodes(lab)
        assert sorted(nodes) == ["control-plane", "worker", "worker2"]
        cidrs = {n["spec"]["podCIDR"] for n in nodes.values()}
        ips = {next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
               for n in nodes.values()}
        assert len(cidrs) == 3 and all(c.startswith("10.244.") and c.endswith("/24") for c in cidrs)
        assert len(ips) == 3
        cp = nodes["control-plane"]
        assert "node-role.kubernetes.io/control-plane" in cp["metadata"]["labels"]
        assert {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}.items() <= cp["spec"]["taints"][0].items()
        def holders() -> list[str]:
            leases = lab.kubectl.json("get", "leases", "-n", "kube-node-lease")["items"]
            return sorted(lease["spec"]["holderIdentity"] for lease in leases)

        # each agent registers its Node, then creates its Lease a moment later
        assert wait_for(lambda: holders() == ["control-plane", "worker", "worker2"], timeout=10,
                        what="a Lease per node")

        status = labctl("status", env=lab.env).stdout
        assert f"{lab.name}-worker2" in status
        kubeconfig = yaml.safe_load(labctl("kubeconfig", "--name", lab.name, env=lab.env, check=True).stdout)
        assert kubeconfig["current-context"] == f"labctl-{lab.name}"
        inspect = subprocess.run(["docker", "inspect", f"{lab.name}-worker", "--format",
                                  "{{json .HostConfig.CapAdd}} {{.HostConfig.Privileged}}"],
                                 capture_output=True, text=True, check=True).stdout
        assert "NET_ADMIN" in inspect and inspect.strip().endswith("false")
        # the control plane's start-up CPU weight is back to a node's once its API server answered
        shares = {subprocess.run(["docker", "inspect", f"{lab.name}-{node}", "--format", "{{.HostConfig.CpuShares}}"],
                                 capture_output=True, text=True, check=True).stdout.strip() for node in nodes}
        assert shares == {"1024"}
        assert "10.244.1.0/24" in lab.kubectl.run("get", "node", "worker", "-o", "jsonpath={.spec.podCIDR}").stdout
    finally:
        removed = lab.down()
    assert removed.returncode == 0, removed.stderr
    assert_host_restored(before, lab.name)
    contexts = yaml.safe_load(lab.kubeconfig.read_text())["contexts"]
    assert not [c for c in contexts if c["name"] == f"labctl-{lab.name}"]


def test_single_node_lab_and_two_labs_side_by_side(docker_engine, kubectl_binary, tmp_path):
    before = host_state()
    first = Lab(unique_name("one"), tmp_path / "a", kubectl_binary, workers=0)
    second = Lab(unique_name("two"), tmp_path / "b", kubectl_binary, workers=1)
    first.workdir.mkdir()
    second.workdir.mkdir()
    try:
        assert first.up().returncode == 0
        assert second.up().returncode == 0
        assert sorted(ready_nodes(first)) == ["control-plane"]
        single = first.kubectl.json("get", "node", "control-plane")
        assert not single["spec"].get("taints"), "a single-node lab must schedule pods on its only node"
        assert sorted(ready_nodes(second)) == ["control-plane", "worker"]
        labs = labctl("get", "clusters").stdout.split()
        assert first.name in labs and second.name in labs
    finally:
        first.down()
        quiet = labctl("down", "-q", "--name", second.name, env=second.env)
    assert quiet.returncode == 0, quiet.stderr
    assert (quiet.stdout, quiet.stderr) == ("", ""), "`down -q` prints nothing when all goes well"
    assert_host_restored(before, first.name, second.name)


def test_bad_input_one_line_errors_and_nothing_left(docker_engine, kubectl_binary, tmp_path):
    before = host_state()

    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nnodes:\n  - role: master\n")
    proc = labctl("up", "-t", str(broken))
    assert proc.returncode != 0
    assert "nodes[0].role" in proc.stderr and "Traceback" not in proc.stderr

    proc = labctl("down", "--name", "no-such-lab-here")
    assert proc.returncode != 0 and "no lab named 'no-such-lab-here'" in proc.stderr

    proc = labctl("up", "-t", str(write_topology(tmp_path / "t.yaml", unique_name("dock"))),
                  env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"})
    assert proc.returncode != 0
    assert "cannot reach the Docker engine" in proc.stderr and "Traceback" not in proc.stderr

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        name = unique_name("port")
        topo = write_topology(tmp_path / "p.yaml", name, workers=0)
        doc = yaml.safe_load(topo.read_text())
        doc["networking"]["apiServerPort"] = port
        topo.write_text(yaml.safe_dump(doc))
        proc = labctl("up", "-t", str(topo), env={"KUBECONFIG": str(tmp_path / "kc")})
        assert proc.returncode != 0
        assert f"host port 127.0.0.1:{port} is already in use" in proc.stderr
    assert_host_restored(before, name)


def test_unusable_addresses_and_subnets_are_one_line_errors_before_anything_is_made(docker_engine, tmp_path):
    """The issue's repros: an apiServerAddress the host lacks gave a traceback (`OSError: [Errno
    99]`), a labSubnet a host network uses failed two minutes later with an SSL time-out."""
    before = host_state()
    attached = [r.network for r in preflight.host_routes() if r.connected and r.network.prefixlen <= 24
                and not r.interface.startswith(("lab-", "docker", "br-"))]  # Docker does not know it: only labctl can refuse
    cases = {
        "apiServerAddress": ({"apiServerAddress": "192.0.2.77"},
                             "networking.apiServerAddress: 192.0.2.77 is not an address of this host"),
        "labSubnet": ({"labSubnet": str(next(attached[0].subnets(new_prefix=24)))} if attached else None,
                      "networking.labSubnet: "),
        "podSubnet": ({"podSubnet": "172.17.0.0/16"}, 'networking.podSubnet: "172.17.0.0/16" overlaps 172.17.0.0/16'),
    }
    names = []
    for field, (networking, error) in cases.items():
        if networking is None:
            continue  # a host with no network of its own to collide with
        name = unique_name("pre")
        names.append(name)
        doc = yaml.safe_load(write_topology(tmp_path / f"{name}.yaml", name, workers=0).read_text())
        doc["networking"].update(networking)
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(doc))
        started = time.monotonic()
        proc = labctl("up", "-t", str(tmp_path / f"{name}.yaml"), env={"KUBECONFIG": str(tmp_path / "kc")})
        assert proc.returncode == 1, proc.stderr
        assert error in proc.stderr and "Traceback" not in proc.stderr, (field, proc.stderr)
        assert time.monotonic() - started < 60, f"{field}: refused only after {time.monotonic() - started:.0f}s"
    assert_host_restored(before, *names)


def test_name_in_use_is_refused_and_existing_lab_untouched(lab):
    proc = lab.up()
    assert proc.returncode != 0
    assert f"a lab named '{lab.name}' already exists" in proc.stderr
    assert sorted(ready_nodes(lab)) == ["control-plane", "worker", "worker2"]


def test_restarts_keep_state_and_nodes_come_back(lab):
    lab.kubectl.run("create", "configmap", "survives", "--from-literal=k=v")
    subprocess.run(["docker", "restart", "-t", "1", f"{lab.name}-worker"], check=True, capture_output=True)
    subprocess.run(["docker", "restart", "-t", "1", f"{lab.name}-control-plane"], check=True, capture_output=True)
    deadline = time.monotonic() + 90
    ready: dict = {}
    while time.monotonic() < deadline:
        try:
            ready = ready_nodes(lab)
            if len(ready) == 3:
                break
        except AssertionError:
            pass
        time.sleep(1)
    assert sorted(ready) == ["control-plane", "worker", "worker2"]
    assert lab.kubectl.json("get", "configmap", "survives")["data"] == {"k": "v"}
    routes = lab.exec("worker", "ip", "-o", "addr").stdout
    assert "eth0" in routes
