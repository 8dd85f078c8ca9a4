"""Issue 12's acceptance in a real lab, on the real kernel: ``labctl net`` against the nodes' own tools,
and live traces (every path of the issue's list) confirmed by conntrack, with no trace rule left behind.

One lab for the module: the course's ``example-1`` behind ``ex1-svc`` and ``ex1-svc-external``
(NodePort 30000, published on a free host port), ``nobody`` (a Service without endpoints) and
``web-lb`` (a LoadBalancer). After every test, every node's ``iptables-save`` holds exactly the
rules it held before (the autouse ``no_trace_rule_left`` fixture).
"""

from __future__ import annotations

import collections
import functools
import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from labctl.client.waiting import wait_for
from labctl.cluster import Lab as LabFacade
from labctl.cluster.scratch import unique_name
from labctl.inspect import run_trace
from support.lab import Lab, free_port, labctl

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

COURSE = Path(__file__).resolve().parents[2] / "exercises" / "course"
NODES = ("control-plane", "worker", "worker2")
EXTRA_SERVICES = [
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "nobody"},
     "spec": {"selector": {"app": "nobody"}, "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-lb"},
     "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
              "ports": [{"name": "http", "port": 8080, "targetPort": 80}]}},
]


@pytest.fixture(scope="module")
def netlab(docker_engine, kubectl_binary, tmp_path_factory):
    """A 1 control-plane + 2 worker lab running example-1 and its Services; ``127.0.0.1:<port>`` → NodePort 30000."""
    host_port = free_port()
    lab = Lab(unique_name("net"), tmp_path_factory.mktemp("netlab"), kubectl_binary,
              extra={"portMappings": [{"hostPort": host_port, "nodePort": 30000, "listenAddress": "127.0.0.1"}]})
    lab.host_port = host_port
    created = lab.up()
    try:
        assert created.returncode == 0, f"labctl up failed:\n{created.stderr}"
        docs = [d for name in ("replicaset-example-1.yaml", "services-ex1.yaml")
                for d in yaml.safe_load_all((COURSE / name).read_text()) if d]
        lab.kubectl.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                              "items": docs + EXTRA_SERVICES}))
        wait_for(lambda: len(endpoint_ips(lab, "ex1-svc")) == 4, 180, what="4 ready endpoints of ex1-svc")
        wait_for(lambda: lb_ip(lab), 60, what="a LoadBalancer IP for web-lb")
        wait_for(lambda: all(programmed(lab, node) for node in NODES), 60, what="every node's rules for ex1-svc")
        yield lab
    finally:
        lab.down()


def endpoint_ips(lab: Lab, name: str, namespace: str = "default") -> set[str]:
    got = lab.kubectl.run("get", "endpoints", name, "-n", namespace, "-o", "json", check=False)
    if got.returncode != 0:
        return set()
    return {a["ip"] for s in json.loads(got.stdout).get("subsets") or [] for a in s.get("addresses") or []}


def lb_ip(lab: Lab) -> str:
    ingress = lab.kubectl.json("get", "service", "web-lb")["status"].get("loadBalancer", {}).get("ingress") or []
    return ingress[0]["ip"] if ingress else ""


def programmed(lab: Lab, node: str) -> bool:
    nat = lab.exec(node, "iptables-save", "-t", "nat").stdout
    return nat.count('--comment "default/ex1-svc:web -> ') == 4 and "default/web-lb:http loadbalancer IP" in nat


def pods(lab: Lab) -> dict[str, dict]:
    return {p["metadata"]["name"]: p for p in lab.kubectl.json("get", "pods", "-A")["items"]}


def web_pods(lab: Lab) -> dict[str, list[dict]]:
    """node → the example-1 pods on it."""
    by_node = collections.defaultdict(list)
    for p in lab.kubectl.json("get", "pods", "-l", "app=web")["items"]:
        by_node[p["spec"]["nodeName"]].append(p)
    return by_node


def rules(lab: Lab) -> dict[str, list[str]]:
    """Every node's ``raw`` rules (its ``-A`` lines), sorted: the table a trace inserts its rules in
    and deletes them from. The other tables are the lab's own to change meanwhile (kube-dns's
    second replica and the ingress controller start just after `up` returns, and every node's
    proxy rewrites its Service chains then)."""
    return {node: sorted(line for line in lab.exec(node, "iptables-save", "-t", "raw").stdout.splitlines()
                         if line.startswith("-A ")) for node in NODES}


@pytest.fixture(autouse=True)
def no_trace_rule_left(netlab):
    before = rules(netlab)
    yield
    after = rules(netlab)
    assert not [line for lines in after.values() for line in lines if "labctl-trace" in line]
    assert after == before


def trace(lab: Lab, *args: str) -> dict:
    proc = labctl("trace", "--name", lab.name, "--json", *args, env=lab.env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["traceRulesLeft"] == 0
    return result


def test_net_matches_ip_bridge_and_iptables_save_in_the_nodes(netlab):
    proc = labctl("net", "--name", netlab.name, "--json", env=netlab.env, check=True)
    doc = json.loads(proc.stdout)
    api_pods = pods(netlab)
    node_ips = {n["metadata"]["name"]: next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
                for n in netlab.kubectl.json("get", "nodes")["items"]}
    pod_cidrs = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in netlab.kubectl.json("get", "nodes")["items"]}
    assert [n["node"] for n in doc["nodes"]] == list(NODES)
    for node in doc["nodes"]:
        name = node["node"]
        ports = json.loads(netlab.exec(name, "bridge", "-j", "link", "show").stdout)
        assert {p["name"] for p in node["bridge"]["ports"]} == {p["ifname"] for p in ports if p.get("master") == "cni0"}
        cni0 = json.loads(netlab.exec(name, "ip", "-j", "addr", "show", "cni0").stdout)[0]
        assert [f"{a['ip']}/{a['prefixlen']}" for a in node["bridge"]["addresses"]] == [
            f"{a['local']}/{a['prefixlen']}" for a in cni0["addr_info"] if a["family"] == "inet"]
        for port in node["bridge"]["ports"]:  # each veth's pod is the API's pod with that IP, on this node
            pod = api_pods[port["pod"]["name"]]
            assert (pod["status"]["podIP"], pod["spec"]["nodeName"]) == (port["pod"]["ip"], name)
        routes = json.loads(netlab.exec(name, "ip", "-j", "route", "show").stdout)
        assert [r["destination"] for r in node["routes"]] == [r["dst"] for r in routes]
        for route in node["routes"]:
            if route["leadsTo"] == "node":  # host-gw: the podCIDR of the node behind the gateway
                assert node_ips[route["node"]] == route["gateway"] and pod_cidrs[route["node"]] == route["destination"]
        nat = netlab.exec(name, "iptables-save", "-t", "nat").stdout.splitlines()
        web = next(s for s in node["services"] if s["name"] == "default/ex1-svc:web")
        svc_rules = [line for line in nat if line.startswith(f"-A {web['chains'][0]['chain']} ")]
        seps = [line.rsplit("-j ", 1)[1] for line in svc_rules if "-j KUBE-SEP-" in line]
        assert [e["chain"] for e in web["endpoints"]] == seps
        assert [e["written"] for e in web["endpoints"]] == [
            line.split("--probability ")[1].split()[0] if "--probability" in line else ""
            for line in svc_rules if "-j KUBE-SEP-" in line]
        assert {e["ip"] for e in web["endpoints"]} == endpoint_ips(netlab, "ex1-svc")
        assert all(e["pod"]["name"].startswith("example-1-") for e in web["endpoints"])
    text = labctl("net", "--name", netlab.name, "worker", env=netlab.env, check=True).stdout
    assert "default/ex1-svc:web" in text and "= 1/4" in text and "host-gw" in text


def test_trace_pod_to_pod_on_the_same_node(netlab):
    node, (a, b, *_) = next((n, p) for n, p in web_pods(netlab).items() if len(p) >= 2)
    t = trace(netlab, a["metadata"]["name"], f"{b['metadata']['name']}:80")
    assert t["verdict"]["result"] == "delivered" and t["verdict"]["object"]["name"] == b["metadata"]["name"]
    assert not [h for h in t["hops"] if h["verdict"] in ("DNAT", "MASQUERADE")]
    assert {h["node"] for h in t["hops"]} == {node}
    [entry] = t["conntrack"]
    assert entry["original"]["src"] == a["status"]["podIP"] and entry["reply"]["src"] == b["status"]["podIP"]


def test_trace_pod_to_pod_on_another_node_keeps_the_source_ip(netlab):
    by_node = web_pods(netlab)
    a = by_node["worker"][0]
    b = by_node["worker2"][0]
    t = trace(netlab, a["metadata"]["name"], b["metadata"]["name"], "--port", "80")
    assert t["verdict"]["result"] == "delivered" and t["verdict"]["node"] == "worker2"
    seen_at_destination = next(e for e in t["conntrack"] if e["reply"]["src"] == b["status"]["podIP"]
                               and any(h["kind"] == "conntrack" and h["node"] == "worker2" for h in t["hops"]))
    assert seen_at_destination["original"]["src"] == a["status"]["podIP"]  # no NAT on the way
    assert not [h for h in t["hops"] if h["verdict"] in ("DNAT", "MASQUERADE", "SNAT")]
    assert {h["node"] for h in t["hops"] if h["kind"] == "netfilter"} == {"worker", "worker2"}


def test_trace_pod_to_cluster_ip_shows_the_nodes_chains_and_a_ready_endpoint(netlab):
    client = web_pods(netlab)["worker"][0]
    cluster_ip = netlab.kubectl.json("get", "service", "ex1-svc")["spec"]["clusterIP"]
    t = trace(netlab, client["metadata"]["name"], cluster_ip)
    assert t["destination"]["kind"] == "cluster-ip" and t["verdict"]["result"] == "delivered"
    saved = {node: set(netlab.exec(node, "iptables-save").stdout.splitlines()) for node in NODES}
    for hop in t["hops"]:
        if hop["kind"] == "netfilter" and hop["rule"]:
            assert hop["rule"] in saved[hop["node"]], hop
    chosen = t["chosen"]["endpoint"].split(":")[0]
    assert chosen in endpoint_ips(netlab, "ex1-svc")
    dnat = next(e for e in t["conntrack"] if e["original"]["dst"] == cluster_ip)
    assert dnat["reply"]["src"] == chosen  # conntrack shows the DNAT to the chosen pod
    assert [round(c["probability"], 2) for c in t["candidates"]] == [0.25, 0.33, 0.5, 1.0]


def test_trace_pod_to_a_services_dns_name_over_udp_53(netlab):
    client = web_pods(netlab)["worker2"][0]
    t = trace(netlab, client["metadata"]["name"], "kube-dns.kube-system.svc.cluster.local", "--port", "53",
              "--proto", "udp")
    assert t["protocol"] == "udp" and t["probe"]["result"] == "answered"
    assert t["verdict"]["result"] == "delivered" and t["chosen"]["pod"]["namespace"] == "kube-system"
    assert t["chosen"]["endpoint"].split(":")[0] in endpoint_ips(netlab, "kube-dns", "kube-system")
    assert any(h["comment"] == "kube-system/kube-dns:dns cluster IP" for h in t["hops"])


def test_trace_host_to_the_node_port_mapping(netlab):
    t = trace(netlab, "host", f"127.0.0.1:{netlab.host_port}")
    assert t["hops"][0]["kind"] == "mapping" and t["verdict"]["result"] == "delivered"
    chains = [h["chain"] for h in t["hops"] if h["kind"] == "netfilter"]
    assert "KUBE-NODEPORTS" in chains and any(c.startswith("KUBE-EXT-") for c in chains)
    assert any(h["verdict"] == "MASQUERADE" for h in t["hops"])
    assert any(e["original"]["dport"] == 30000 and e["reply"]["src"] != e["original"]["dst"] for e in t["conntrack"])


def test_trace_host_to_a_load_balancer_ip(netlab):
    ip = lb_ip(netlab)
    t = trace(netlab, "host", f"{ip}:8080")
    assert t["destination"]["kind"] == "load-balancer" and t["verdict"]["result"] == "delivered"
    assert any(h["comment"] == "default/web-lb:http loadbalancer IP" for h in t["hops"])
    assert t["chosen"]["endpoint"].split(":")[0] in endpoint_ips(netlab, "web-lb")


def test_trace_pod_to_a_service_without_endpoints_is_rejected_at_the_rule(netlab):
    client = web_pods(netlab)["worker"][0]
    t = trace(netlab, client["metadata"]["name"], "nobody")
    assert t["verdict"]["result"] == "rejected" and t["probe"]["result"] == "refused"
    hop = t["hops"][t["verdict"]["hop"]]
    assert (hop["table"], hop["chain"], hop["verdict"]) == ("filter", "KUBE-SERVICES", "REJECT")
    assert hop["comment"] == "default/nobody:http has no endpoints" and hop["object"]["name"] == "nobody"


def test_repeated_live_traces_reach_each_endpoint(netlab):
    client = web_pods(netlab)["worker"][0]["metadata"]["name"]
    wanted = endpoint_ips(netlab, "ex1-svc")
    seen: collections.Counter[str] = collections.Counter()
    with LabFacade.open(netlab.name) as lab:
        for _ in range(40):  # P(an endpoint never drawn in 40) = 4 × 0.75^40 < 1e-4
            t = run_trace(lab, client, "ex1-svc")
            assert t.verdict.result == "delivered" and t.trace_rules_left == 0
            seen[t.chosen.endpoint.split(":")[0]] += 1
            if set(seen) == wanted:
                break
    assert set(seen) == wanted, seen


def test_explain_shows_kube_proxys_probabilities(netlab):
    client = web_pods(netlab)["worker2"][0]["metadata"]["name"]
    t = trace(netlab, client, "ex1-svc", "--explain")
    assert t["mode"] == "explain" and t["probe"] is None
    assert [c["written"] for c in t["candidates"]] == ["0.25000000000", "0.33333333349", "0.50000000000", ""]
    assert [round(c["probability"], 4) for c in t["candidates"]] == [0.25, 0.3333, 0.5, 1.0]
    assert {c["endpoint"].split(":")[0] for c in t["candidates"]} == endpoint_ips(netlab, "ex1-svc")
    assert all(c["verdict"]["result"] == "delivered" for c in t["candidates"])
    text = labctl("trace", "--name", netlab.name, client, "ex1-svc", "--explain", env=netlab.env, check=True).stdout
    assert all(f in text for f in ("= 1/4", "= 1/3", "= 1/2", "1 (last rule)"))


def armed_or_done(lab: Lab, proc: subprocess.Popen) -> bool:
    """The trace's rules are in the nodes (or the trace is already over)."""
    return proc.poll() is not None or any("labctl-trace" in lab.exec(n, "iptables-save", "-t", "raw").stdout
                                          for n in ("worker", "worker2"))


def test_an_interrupted_trace_removes_its_rules(netlab):
    """Ctrl-C while the probe waits for an answer that cannot come (no pod holds the address)."""
    client = web_pods(netlab)["worker"][0]["metadata"]["name"]
    for _attempt in range(3):  # the window is the probe's 1.5 s timeout: catch it, or try again
        proc = subprocess.Popen([sys.executable, "-m", "labctl", "trace", "--name", netlab.name, client,
                                 "10.244.2.250:80"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(functools.partial(armed_or_done, netlab, proc), 30, interval=0.02, what="the trace rules")
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                # 130 even when the interrupt lands as the probe finishes; no rule may stay behind
                assert proc.wait(30) == 130, proc.stderr.read() if proc.stderr else ""
                break
        finally:
            proc.kill()
            proc.wait()
    else:
        pytest.fail("the trace always ended before it could be interrupted")
    wait_for(lambda: not any("labctl-trace" in netlab.exec(n, "iptables-save", "-t", "raw").stdout for n in NODES),
             30, what="no trace rule on any node")
