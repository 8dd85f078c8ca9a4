"""Issue 15's NetworkPolicy acceptance in a real lab, in the spirit of upstream's netpol e2e tests.

Like ``test/e2e/network/netpol`` in kubernetes/kubernetes: namespaces x, y, z (labelled
``ns=<name>``) each hold pods a, b, c (labelled ``pod=<name>``) serving TCP 80 and 81 (container
ports ``serve-80-tcp``/``serve-81-tcp``), with a Service ``s-<pod>`` each; every case applies
policies and then asserts the *whole* reachability matrix — every pod to every other pod on
every port — probed with real connections (``nc -z -w1`` from each pod, all targets at once,
the pods in parallel). Pods run on both workers, so same-node (bridged) and cross-node
(routed) paths are both in every matrix. A pod reaching itself goes over ``lo`` and no
policy applies to it, so self-probes are left out, as upstream's matrix does for loopback.
"""

from __future__ import annotations

import ipaddress
import json
import secrets
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from labctl.client.waiting import WaitTimeout, wait_for
from tests.support.lab import labctl

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
PEERS = tuple(f"{ns}/{pod}" for ns in NAMESPACES for pod in PODS)
PORTS = (80, 81)
#: each pod accepts on both ports with a deep backlog (netcat's listen backlog of 1 would drop the SYNs
#: of 8 probes arriving at once) and probes from the same container
SERVE = ("import socket, threading\n"
         "def serve(port):\n"
         "    s = socket.create_server(('', port), backlog=128)\n"
         "    while True:\n"
         "        s.accept()[0].close()\n"
         f"for port in {PORTS}:\n"
         "    threading.Thread(target=serve, args=(port,)).start()\n")
Matrix = dict[tuple[str, str, int], bool]
Rule = Callable[[str, str, int], bool]


def apply(lab, *objs: dict) -> None:
    lab.kubectl.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def pod(ns: str, name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": ns, "labels": {"pod": name}},
            "spec": {"terminationGracePeriodSeconds": 0, "containers": [{
                "name": "cont", "image": "busybox", "command": ["python3", "-c", SERVE],
                "ports": [{"containerPort": p, "name": f"serve-{p}-tcp"} for p in PORTS]}]}}


def service(ns: str, name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": f"s-{name}", "namespace": ns},
            "spec": {"selector": {"pod": name}, "ports": [{"name": f"p{p}", "port": p} for p in PORTS]}}


def policy(name: str, spec: dict, ns: str = "x") -> dict:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": ns}, "spec": spec}


@pytest.fixture(scope="module")
def ips(lab) -> dict[str, str]:
    """The 9 pods and their Services, Ready; ``x/a`` -> pod IP."""
    apply(lab, *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"ns": ns}}}
                 for ns in NAMESPACES))
    apply(lab, *(pod(ns, p) for ns in NAMESPACES for p in PODS), *(service(ns, p) for ns in NAMESPACES for p in PODS))
    for ns in NAMESPACES:
        lab.kubectl.run("wait", "--for=condition=Ready", "pod", "--all", "-n", ns, "--timeout=120s", timeout=130)
    found = {f"{ns}/{p['metadata']['name']}": p for ns in NAMESPACES
             for p in lab.kubectl.json("get", "pods", "-n", ns)["items"]}
    assert {p["spec"]["nodeName"] for p in found.values()} == {"worker", "worker2"}, "pods on both workers"
    return {key: p["status"]["podIP"] for key, p in found.items()}


@pytest.fixture(autouse=True)
def no_policies_after(lab) -> Iterator[None]:
    yield
    for ns in NAMESPACES:
        lab.kubectl.run("delete", "networkpolicy", "--all", "-n", ns, "--wait=false")


def probe_from(lab, src: str, targets: dict[str, str]) -> Matrix:
    """Every (target, port) from one pod at once: one ``kubectl exec``, one ``nc -z -w1`` each."""
    ns, name = src.split("/")
    script = " ".join(f'(nc -z -w1 {host} {port} && echo "{dst} {port} ok" || echo "{dst} {port} no") &'
                      for dst, host in targets.items() if dst != src for port in PORTS) + " wait"
    out = lab.kubectl.run("exec", "-n", ns, name, "--", "sh", "-c", script, timeout=30).stdout
    return {(src, dst, int(port)): verdict == "ok" for dst, port, verdict in (line.split() for line in out.splitlines())}


def probe(lab, targets: dict[str, str]) -> Matrix:
    with ThreadPoolExecutor(len(PEERS)) as pool:
        results: Matrix = {}
        for part in pool.map(lambda src: probe_from(lab, src, targets), PEERS):
            results.update(part)
    return results


def expect(rule: Rule) -> Matrix:
    return {(src, dst, port): rule(src, dst, port) for src in PEERS for dst in PEERS if src != dst for port in PORTS}


def truth_table(expected: Matrix, seen: Matrix, port: int) -> str:
    """Upstream's printout: a row per source, a column per destination; ``X`` marks a wrong cell."""
    lines = [f"port {port}: .=reachable, x=blocked, X=wrong", "      " + " ".join(f"{d:>4}" for d in PEERS)]
    for src in PEERS:
        cells = []
        for dst in PEERS:
            key = (src, dst, port)
            cells.append("   -" if src == dst else "   X" if seen.get(key) != expected[key]
                         else "   ." if expected[key] else "   x")
        lines.append(f"{src:>5} " + " ".join(cells))
    return "\n".join(lines)


def assert_matrix(lab, rule: Rule, targets: dict[str, str], timeout: float = 15) -> None:
    """Probe until the matrix is the expected one (the policy is enforced within a second or so)."""
    expected = expect(rule)
    seen: Matrix = {}

    def matches() -> bool:
        nonlocal seen
        seen = probe(lab, targets)
        return seen == expected
    try:
        wait_for(matches, timeout=timeout, interval=0, what="the reachability matrix")
    except WaitTimeout:
        pytest.fail("\n\n".join(truth_table(expected, seen, port) for port in PORTS), pytrace=False)


def to(dst: str) -> Callable[[str], bool]:
    return lambda peer: peer == dst


def test_without_policies_everyone_reaches_everyone(lab, ips):
    assert_matrix(lab, lambda src, dst, port: True, ips)


def test_default_deny_ingress(lab, ips):
    apply(lab, policy("deny-all", {"podSelector": {}}))
    assert_matrix(lab, lambda src, dst, port: not dst.startswith("x/"), ips)


def test_allow_from_a_pod_selector(lab, ips):
    apply(lab, policy("a-from-b", {"podSelector": {"matchLabels": {"pod": "a"}},
                                   "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}))
    assert_matrix(lab, lambda src, dst, port: dst != "x/a" or src == "x/b", ips)


def test_allow_from_a_namespace_selector_and_both_selectors_as_and(lab, ips):
    apply(lab, policy("a-from-y", {"podSelector": {"matchLabels": {"pod": "a"}},
                                   "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]}),
          policy("b-from-z-c", {"podSelector": {"matchLabels": {"pod": "b"}}, "ingress": [{"from": [{
              "namespaceSelector": {"matchLabels": {"ns": "z"}}, "podSelector": {"matchLabels": {"pod": "c"}}}]}]}))
    assert_matrix(lab, lambda src, dst, port: (src.startswith("y/") if dst == "x/a" else
                                               src == "z/c" if dst == "x/b" else True), ips)


def test_ip_block_with_except(lab, ips):
    apply(lab, policy("a-from-pods-but-y-b", {"podSelector": {"matchLabels": {"pod": "a"}}, "ingress": [{"from": [
        {"ipBlock": {"cidr": "10.244.0.0/16", "except": [f"{ips['y/b']}/32"]}}]}]}))
    assert_matrix(lab, lambda src, dst, port: dst != "x/a" or src != "y/b", ips)


def test_egress_deny_with_dns_allowed(lab, ips):
    """x's pods may resolve names and reach y only: by Service name, so DNS and the ClusterIP DNAT are in the path."""
    dns = {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                   "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
           "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    apply(lab, policy("egress-dns-and-y", {"podSelector": {}, "policyTypes": ["Egress"], "egress": [
        dns, {"to": [{"namespaceSelector": {"matchLabels": {"ns": "y"}}}]}]}))
    names = {peer: f"s-{peer[2]}.{peer[0]}.svc.cluster.local." for peer in PEERS}
    assert_matrix(lab, lambda src, dst, port: not src.startswith("x/") or dst.startswith("y/"), names)


def test_named_port(lab, ips):
    apply(lab, policy("a-on-81-by-name", {"podSelector": {"matchLabels": {"pod": "a"}},
                                          "ingress": [{"ports": [{"port": "serve-81-tcp"}]}]}))
    assert_matrix(lab, lambda src, dst, port: dst != "x/a" or port == 81, ips)


def test_end_port(lab, ips):
    apply(lab, policy("a-on-78-to-80", {"podSelector": {"matchLabels": {"pod": "a"}},
                                        "ingress": [{"ports": [{"port": 78, "endPort": 80}]}]}))
    assert_matrix(lab, lambda src, dst, port: dst != "x/a" or port == 80, ips)


def test_a_removed_policy_restores_traffic_within_a_second(lab, ips):
    apply(lab, policy("deny-all", {"podSelector": {}}))
    assert_matrix(lab, lambda src, dst, port: not dst.startswith("x/"), ips)
    # from y/a, a connection attempt to x/a every 50 ms for 3 s, each printing the time it got through
    attempts = lab.kubectl.popen("exec", "-n", "y", "a", "--", "sh", "-c",
                                 f"echo started; for i in $(seq 60); do (nc -z -w3 {ips['x/a']} 80 && date +%s.%N) & "
                                 "sleep 0.05; done; wait")
    try:
        assert attempts.stdout is not None and attempts.stdout.readline().strip() == "started"
        deleted_at = time.time()
        lab.kubectl.run("delete", "networkpolicy", "deny-all", "-n", "x")
        out, _ = attempts.communicate(timeout=30)
    finally:
        attempts.kill()
    first = min((float(line) for line in out.split()), default=None)
    assert first is not None, "no connection got through within 3 s of the deletion"
    assert first - deleted_at < 1.0, f"traffic came back {first - deleted_at:.2f}s after the policy was deleted"


def test_trace_and_net_name_the_policy_rules(lab, ips):
    apply(lab, policy("a-from-b", {"podSelector": {"matchLabels": {"pod": "a"}},
                                   "ingress": [{"from": [{"podSelector": {"matchLabels": {"pod": "b"}}}]}]}))
    assert_matrix(lab, lambda src, dst, port: dst != "x/a" or src == "x/b", ips)
    allowed = labctl("trace", "--name", lab.name, "--explain", "x/b", "x/a:80", env=lab.env, check=True).stdout
    assert "NetworkPolicy x/a-from-b ingress rule 0 allows it (from pods pod=b in x (x/b))" in allowed
    assert "verdict: delivered" in allowed
    dropped = labctl("trace", "--name", lab.name, "y/a", "x/a:80", env=lab.env, check=True).stdout  # a live trace
    assert "DROP: pod x/a is isolated for ingress and no rule of x/a-from-b allows this" in dropped
    assert "verdict: dropped" in dropped
    net = labctl("net", "--name", lab.name, env=lab.env, check=True).stdout
    assert f"pod x/a {ips['x/a']}  isolated for ingress by x/a-from-b" in net
    assert "allows from pods pod=b in x (x/b)" in net


def connects(ip: str, port: int) -> bool:
    """A TCP connection from the host (the test process), as a NodePort client outside the cluster."""
    try:
        socket.create_connection((ip, port), timeout=1).close()
        return True
    except OSError:
        return False


def test_node_port_traffic_is_policed_before_kube_proxy_accepts_it(lab, ips):
    """kube-proxy's KUBE-FORWARD accepts NodePort traffic (marked for masquerade): the policy jump must come first."""
    apply(lab, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "np-a", "namespace": "x"},
                "spec": {"type": "NodePort", "selector": {"pod": "a"}, "ports": [{"port": 80}]}})
    try:
        port = lab.kubectl.json("get", "service", "np-a", "-n", "x")["spec"]["ports"][0]["nodePort"]
        nodes = [a["address"] for n in lab.kubectl.json("get", "nodes")["items"] if n["metadata"]["name"] != "control-plane"
                 for a in n["status"]["addresses"] if a["type"] == "InternalIP"]
        wait_for(lambda: all(connects(ip, port) for ip in nodes), timeout=15, interval=0.2, what="the NodePort open")
        apply(lab, policy("deny-all", {"podSelector": {}}))
        wait_for(lambda: not any(connects(ip, port) for ip in nodes), timeout=15, interval=0.2,
                 what="the NodePort blocked on every node")
        # the host and the nodes are on the lab network: allowed by address, through either node
        lab_network = str(ipaddress.ip_network(f"{nodes[0]}/16", strict=False))
        apply(lab, policy("from-lab-network", {"podSelector": {}, "ingress": [{"from": [{"ipBlock": {"cidr": lab_network}}]}]}))
        wait_for(lambda: all(connects(ip, port) for ip in nodes), timeout=15, interval=0.2,
                 what="the NodePort open to the lab network")
    finally:
        lab.kubectl.run("delete", "service", "np-a", "-n", "x", "--wait=false")


def test_the_declare_network_policy_tutorial_unchanged(lab):
    """kubernetes.io's "Declare Network Policy", its commands as printed: nginx behind a Service, reached by
    ``wget --spider --timeout=1 nginx`` from a busybox pod until the ``access-nginx`` policy lets only pods
    labelled ``access=true`` in."""
    def wget(*labels: str) -> tuple[int, str]:
        got = lab.kubectl.run("run", f"busybox-{secrets.token_hex(3)}", "--rm", "-i", "--image=busybox:1.28",
                              "--restart=Never", *labels, "--", "wget", "--spider", "--timeout=1", "nginx",
                              check=False, timeout=120)
        return got.returncode, got.stdout + got.stderr
    lab.kubectl.run("create", "deployment", "nginx", "--image=nginx")
    try:
        lab.kubectl.run("expose", "deployment", "nginx", "--port=80")
        lab.kubectl.run("rollout", "status", "deployment/nginx", "--timeout=120s", timeout=130)
        _, out = wait_for(lambda: (r := wget())[0] == 0 and r, timeout=60, what="wget to reach nginx")
        assert "remote file exists" in out.lower(), out
        apply(lab, {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                    "metadata": {"name": "access-nginx"},
                    "spec": {"podSelector": {"matchLabels": {"app": "nginx"}},
                             "ingress": [{"from": [{"podSelector": {"matchLabels": {"access": "true"}}}]}]}})
        _, out = wait_for(lambda: (r := wget())[0] != 0 and r, timeout=30, what="the policy to block wget")
        assert "timed out" in out, out  # dropped, not refused: one try of one second
        # one shot from a pod just started: its address is in the other nodes' rules before its first packet
        assert wget("--labels=access=true")[0] == 0
    finally:
        lab.kubectl.run("delete", "networkpolicy/access-nginx", "service/nginx", "deployment/nginx",
                        "--ignore-not-found", "--wait=false")
