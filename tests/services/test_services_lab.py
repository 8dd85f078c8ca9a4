"""Issue 6's acceptance in a real lab: ClusterIP, NodePort, LoadBalancer, the rules, a rollout.

One lab for the module, the course's objects in it: example-1 behind ex1-svc and
ex1-svc-external, a LoadBalancer, the iptables layout and a Service deletion, and the class
exercise (Deployment example-2 + ex2-svc-external rolled out while the host sends requests
through the NodePort). Every test makes what it needs in any order: the ``example1`` fixture
(re)applies example-1 and waits until it serves, a test that needs something else (its own
Service, example-2 on NodePort 30000) makes it and removes it after. Everything goes through
the real kubectl, Docker and the nodes' kernels; the client on the host is a plain socket client.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import time
from pathlib import Path

import pytest
import yaml

from labctl.client.rest import APIClient, Credentials, resource_path
from labctl.client.waiting import wait_for as _wait_for
from labctl.proxy import chains
from support.traffic import HostClient, http_get

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

COURSE = Path(__file__).resolve().parents[2] / "exercises" / "course"
NODES = ("control-plane", "worker", "worker2")
CONTROL_PLANE_TOLERATION = {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}
#: a backend that answers with the client address it sees (toolbox image: python3)
WHOAMI = ("import http.server as h\n"
          "class H(h.BaseHTTPRequestHandler):\n"
          "    def do_GET(s):\n"
          "        b = s.client_address[0].encode()\n"
          "        s.send_response(200); s.send_header('Content-Length', str(len(b))); s.end_headers(); s.wfile.write(b)\n"
          "    def log_message(s, *a): pass\n"
          "h.ThreadingHTTPServer(('', 8080), H).serve_forever()\n")



def wait_for(check, timeout: float = 120, interval: float = 0.5, what: str = ""):
    return _wait_for(check, timeout, interval, what)


def apply(lab, *objs: dict) -> None:
    lab.kubectl.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def course(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((COURSE / name).read_text()) if d]


def ready_pods(lab, selector: str) -> list[dict]:
    pods = lab.kubectl.json("get", "pods", "-l", selector)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp") and any(
        c["type"] == "Ready" and c["status"] == "True" for c in p.get("status", {}).get("conditions", []))]


def endpoint_ips(lab, name: str) -> set[str]:
    got = lab.kubectl.run("get", "endpoints", name, "-o", "json", check=False)
    if got.returncode != 0:  # not written yet
        return set()
    ep = json.loads(got.stdout)
    return {a["ip"] for s in ep.get("subsets") or [] for a in s.get("addresses") or []}


def node_ips(lab) -> dict[str, str]:
    return {n["metadata"]["name"]: next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
            for n in lab.kubectl.json("get", "nodes")["items"]}


def programmed(lab, node: str) -> dict[str, set[str]]:
    """Service -> the backend IPs ``node``'s proxy has programmed for it (the rules' comments
    read ``default/<service>[:<port name>] -> <ip>:<port>``): what traffic through that node reaches."""
    nat = lab.exec(node, "iptables-save", "-t", "nat").stdout
    backends: dict[str, set[str]] = collections.defaultdict(set)
    for service, ip in re.findall(r'--comment "default/([a-z0-9-]+)(?::\S*)? -> ([0-9.]+):[0-9]+"', nat):
        backends[service].add(ip)
    return backends


def wait_programmed(lab, nodes, *services: str, backends: set[str]) -> None:
    """Wait until every node in ``nodes`` sends each of ``services`` to exactly ``backends``."""
    for node in nodes:
        wait_for(lambda n=node: all(programmed(lab, n)[s] == backends for s in services), timeout=30,
                 what=f"the rules of {', '.join(services)} on {node}")


def toolbox_pod(node: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"toolbox-{node}", "labels": {"role": "client"}},
            "spec": {"nodeName": node, "tolerations": [CONTROL_PLANE_TOLERATION], "terminationGracePeriodSeconds": 0,
                     "containers": [{"name": "toolbox", "image": "labctl/toolbox:latest"}]}}


def curl_loop(lab, pod: str, url: str, count: int) -> list[str]:
    script = f"for i in $(seq {count}); do curl -s --max-time 3 {url} || echo FAILED; echo; done"
    out = lab.kubectl.run("exec", pod, "--", "sh", "-c", script, timeout=300).stdout
    return [line for line in out.splitlines() if line.strip()]


def remove(lab, *objects: str, pods: str = "") -> None:
    """Delete ``objects`` (``kind/name``) if they exist, then wait until no pod matches ``pods``."""
    lab.kubectl.run("delete", *objects, "--ignore-not-found")
    if pods:
        wait_for(lambda: not lab.kubectl.json("get", "pods", "-l", pods)["items"], what=f"pods {pods} gone")


@pytest.fixture
def example1(svc_lab):
    """example-1 (4 web pods) behind ex1-svc and ex1-svc-external, plus a toolbox pod per node.

    Applied for every test (unchanged when it is there) and awaited until it serves; example-2
    goes first, as in the course: its pods are ``app=web`` too and it takes NodePort 30000.
    """
    lab = svc_lab
    remove(lab, "deployment/example-2", "service/ex2-svc-external", pods="app=web,pod-template-hash")
    apply(lab, *course("replicaset-example-1.yaml"), *course("services-ex1.yaml"),
          *(toolbox_pod(n) for n in NODES))
    pods = wait_for(lambda: len(ready_pods(lab, "app=web")) == 4 and ready_pods(lab, "app=web"), what="4 web pods")
    wait_for(lambda: len(ready_pods(lab, "role=client")) == 3, what="toolbox pods")
    want = {p["status"]["podIP"] for p in pods}
    wait_for(lambda: endpoint_ips(lab, "ex1-svc") == want, timeout=30, what="ex1-svc endpoints")
    wait_programmed(lab, NODES, "ex1-svc", "ex1-svc-external", backends=want)
    return {p["metadata"]["name"] for p in pods}


def test_cluster_ip_spreads_over_every_backend_from_every_node(svc_lab, example1):
    cluster_ip = svc_lab.kubectl.json("get", "svc", "ex1-svc")["spec"]["clusterIP"]
    for node in NODES:
        answers = curl_loop(svc_lab, f"toolbox-{node}", f"http://{cluster_ip}/", 200)
        assert "FAILED" not in answers, f"failed requests from {node}"
        per_pod = collections.Counter(a.split("pod=")[1].split()[0] for a in answers)
        assert set(per_pod) == example1, f"from {node}: {per_pod}"
        assert min(per_pod.values()) >= 20, f"from {node}: a backend got < 10% of 200: {per_pod}"


def test_kubectl_shows_the_endpoints(svc_lab, example1):
    """``kubectl get endpoints`` reads v1 Endpoints; ``describe svc`` reads EndpointSlices (kubectl ≥ 1.33)."""
    ips = {p["status"]["podIP"] for p in ready_pods(svc_lab, "app=web")}
    assert endpoint_ips(svc_lab, "ex1-svc") == ips
    described = wait_for(lambda: (out := svc_lab.kubectl.run("describe", "svc", "ex1-svc").stdout)
                         and sum(f"{ip}:80" in out for ip in ips) == 3 and out, timeout=30, what="describe svc endpoints")
    assert "+ 1 more..." in described  # kubectl lists three, then counts


def test_backend_sees_the_client_pod_ip(svc_lab, example1):
    lab = svc_lab
    whoami = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"whoami-{n}", "labels": {"app": "whoami"}},
               "spec": {"nodeName": n, "terminationGracePeriodSeconds": 0, "containers": [{
                   "name": "whoami", "image": "labctl/toolbox:latest", "command": ["python3", "-c", WHOAMI],
                   "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}}
              for n in ("worker", "worker2")]
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "whoami"},
           "spec": {"selector": {"app": "whoami"}, "ports": [{"port": 80, "targetPort": 8080}]}}
    apply(lab, *whoami, svc)
    backends = wait_for(lambda: len(ips := endpoint_ips(lab, "whoami")) == 2 and ips, what="whoami endpoints")
    wait_programmed(lab, ("worker", "worker2"), "whoami", backends=backends)
    cluster_ip = lab.kubectl.json("get", "svc", "whoami")["spec"]["clusterIP"]
    for node in ("worker", "worker2"):  # one backend on the client's bridge, one on the other node
        client_ip = lab.kubectl.json("get", "pod", f"toolbox-{node}")["status"]["podIP"]
        seen = set(curl_loop(lab, f"toolbox-{node}", f"http://{cluster_ip}/", 20))
        assert seen == {client_ip}, f"backends saw {seen}, the client is {client_ip}"


def test_node_port_from_the_host_on_every_node_and_the_port_mapping(svc_lab, example1):
    for node, ip in node_ips(svc_lab).items():
        assert http_get(ip, 30000).startswith("nginx v1 pod="), node
    answers = {http_get("127.0.0.1", svc_lab.host_port).split("pod=")[1].split()[0] for _ in range(40)}
    assert answers <= example1 and len(answers) >= 2


def test_load_balancer_gets_an_external_ip_reachable_from_the_host(svc_lab, example1):
    lab = svc_lab
    apply(lab, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ex1-lb"},
                "spec": {"type": "LoadBalancer", "selector": {"app": "web"}, "ports": [{"name": "web", "port": 80}]}})

    def external_ip() -> str | None:
        row = lab.kubectl.run("get", "svc", "ex1-lb", "--no-headers").stdout.split()
        return row[3] if len(row) > 3 and row[3][0].isdigit() else None

    ip = wait_for(external_ip, timeout=30, what="EXTERNAL-IP")
    lab_net = next(iter(node_ips(lab).values())).rsplit(".", 1)[0]
    assert ip.startswith(lab_net + ".") and int(ip.rsplit(".", 1)[1]) >= 200
    announcers = wait_for(lambda: [n for n in NODES if ip in lab.exec(n, "ip", "-4", "-o", "addr", "show").stdout],
                          timeout=30, what="an announcing node")
    assert len(announcers) == 1 and announcers[0] != "control-plane", announcers
    wait_programmed(lab, announcers, "ex1-lb", backends=endpoint_ips(lab, "ex1-svc"))
    answers = {http_get(ip, 80).split("pod=")[1].split()[0] for _ in range(30)}
    assert answers <= example1 and len(answers) >= 2
    lab.kubectl.run("delete", "svc", "ex1-lb")
    wait_for(lambda: ip not in lab.exec(announcers[0], "ip", "-4", "-o", "addr", "show").stdout, timeout=30,
             what="the LB IP withdrawn")


def test_iptables_layout_and_deleting_a_service_clears_every_node_within_a_second(svc_lab, example1):
    lab = svc_lab
    # a NodePort Service of its own in front of example-1 (ex1-svc-external stays for the others)
    apply(lab, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "ex1-rules"},
                "spec": {"type": "NodePort", "selector": {"app": "web"}, "ports": [{"name": "web", "port": 80}]}})
    svc = lab.kubectl.json("get", "svc", "ex1-rules")
    node_port = svc["spec"]["ports"][0]["nodePort"]

    def rules(node: str) -> list[str]:
        nat = lab.exec(node, "iptables-save", "-t", "nat").stdout
        return [line for line in nat.splitlines() if "default/ex1-rules" in line]

    for node in NODES:  # every node's proxy has synced the Service with its 4 endpoints
        wait_for(lambda n=node: sum("-j DNAT --to-destination 10.244." in rule for rule in rules(n)) == 4,
                 timeout=30, what=f"the rules of ex1-rules on {node}")
    ours = rules("worker")
    assert any(rule.startswith("-A KUBE-SERVICES -d " + svc["spec"]["clusterIP"]) for rule in ours)
    assert any(rule.startswith("-A KUBE-NODEPORTS") and f"--dport {node_port}" in rule and "-j KUBE-EXT-" in rule
               for rule in ours)
    assert sum("-m statistic --mode random --probability" in rule for rule in ours) == 3  # 4 endpoints: 3 + last
    assert sum("-j DNAT --to-destination 10.244." in rule for rule in ours) == 4

    # a watcher in every node notes (host clock) when the Service's rules are gone
    for node in NODES:
        lab.exec(node, "sh", "-c", "rm -f /tmp/gone; (while iptables-save -t nat | grep -q default/ex1-rules; "
                                   "do sleep 0.02; done; date +%s.%N > /tmp/gone) >/dev/null 2>&1 &")

    async def delete() -> float:
        async with APIClient(Credentials.from_kubeconfig(lab.kubeconfig)) as client:
            started = time.time()
            await client.delete(resource_path("services", "default", "ex1-rules"))
            return started
    started = asyncio.run(delete())
    gone = {n: float(wait_for(lambda n=n: lab.exec(n, "cat", "/tmp/gone", check=False).stdout.strip(), timeout=20,
                              what=f"rules gone on {n}")) for n in NODES}
    assert max(gone.values()) - started < 1.0, {n: round(t - started, 3) for n, t in gone.items()}


def test_selectorless_service_with_only_a_hand_written_endpoint_slice_answers(svc_lab, example1):
    """kube-proxy reads EndpointSlices: a slice of one's own (no selector, no v1 Endpoints) is enough.

    Its ready endpoint gets the traffic, its ``ready: false`` one none."""
    lab = svc_lab
    serving, not_ready = sorted(ready_pods(lab, "app=web"), key=lambda p: p["metadata"]["name"])[:2]
    apply(lab, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "handmade"},
                "spec": {"ports": [{"name": "http", "port": 8080, "targetPort": 80}]}})
    lab.kubectl.run("apply", "-f", "-", input=json.dumps({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": "handmade-1", "labels": {"kubernetes.io/service-name": "handmade",
                                                      "endpointslice.kubernetes.io/managed-by": "staff"}},
        "addressType": "IPv4", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}],
        "endpoints": [{"addresses": [serving["status"]["podIP"]], "conditions": {"ready": True}},
                      {"addresses": [not_ready["status"]["podIP"]], "conditions": {"ready": False}}]}))
    try:
        assert lab.kubectl.run("get", "endpoints", "handmade", check=False).returncode != 0  # no v1 Endpoints at all
        wait_programmed(lab, NODES, "handmade", backends={serving["status"]["podIP"]})
        cluster_ip = lab.kubectl.json("get", "svc", "handmade")["spec"]["clusterIP"]
        answers = curl_loop(lab, "toolbox-worker2", f"http://{cluster_ip}:8080/", 10)
        assert {a.split("pod=")[1].split()[0] for a in answers if "pod=" in a} == {serving["metadata"]["name"]}, answers
        assert "FAILED" not in answers
    finally:
        remove(lab, "service/handmade", "endpointslice/handmade-1")


def test_internal_traffic_policy_local_answers_only_next_to_an_endpoint(svc_lab, example1):
    """``internalTrafficPolicy: Local``: a pod on the backend's node gets it, a pod elsewhere is dropped,
    and the rules are kube-proxy's (``KUBE-SVL-``, the filter table's "has no local endpoints" DROP)."""
    lab = svc_lab
    apply(lab, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "itp-backend", "labels": {"app": "itp"}},
                "spec": {"nodeName": "worker", "terminationGracePeriodSeconds": 0, "containers": [{
                    "name": "whoami", "image": "labctl/toolbox:latest", "command": ["python3", "-c", WHOAMI],
                    "readinessProbe": {"tcpSocket": {"port": 8080}, "periodSeconds": 1}}]}},
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "itp"},
           "spec": {"selector": {"app": "itp"}, "internalTrafficPolicy": "Local",
                    "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}})
    try:
        backend = wait_for(lambda: len(ips := endpoint_ips(lab, "itp")) == 1 and ips, what="itp endpoint")
        wait_programmed(lab, ("worker",), "itp", backends=backend)
        svc = lab.kubectl.json("get", "svc", "itp")
        cluster_ip, name = svc["spec"]["clusterIP"], "default/itp:http"
        svl, svc_chain = (chains.service_chain(p, name, "tcp") for p in (chains.SVL_PREFIX, chains.SVC_PREFIX))
        drop = (f'-A KUBE-SERVICES -d {cluster_ip}/32 -p tcp -m comment --comment "{name} has no local endpoints"'
                " -m tcp --dport 80 -j DROP")
        for node in ("worker2", "control-plane"):
            wait_for(lambda n=node: drop in lab.exec(n, "iptables-save", "-t", "filter").stdout.splitlines(),
                     timeout=30, what=f"the has-no-local-endpoints DROP on {node}")
            assert name not in lab.exec(node, "iptables-save", "-t", "nat").stdout
        nat = lab.exec("worker", "iptables-save", "-t", "nat").stdout.splitlines()
        assert (f'-A KUBE-SERVICES -d {cluster_ip}/32 -p tcp -m comment --comment "{name} cluster IP"'
                f" -m tcp --dport 80 -j {svl}") in nat
        assert not any(svc_chain in line for line in nat)  # no cluster-wide chain: nothing uses it
        assert any(line.startswith(f"-A {svl} ") and "-j KUBE-SEP-" in line for line in nat)

        near = lab.kubectl.json("get", "pod", "toolbox-worker")["status"]["podIP"]
        assert set(curl_loop(lab, "toolbox-worker", f"http://{cluster_ip}/", 5)) == {near}
        assert curl_loop(lab, "toolbox-worker2", f"http://{cluster_ip}/", 2) == ["FAILED"] * 2
    finally:
        remove(lab, "service/itp", "pod/itp-backend")


@pytest.fixture
def example2(svc_lab):
    """The class exercise on a lab without example-1 (same ``app=web`` pods, same NodePort 30000),
    removed afterwards so the next test finds the lab as ``example1`` makes it."""
    lab = svc_lab
    remove(lab, "replicaset/example-1", "service/ex1-svc", "service/ex1-svc-external", pods="app=web")
    apply(lab, *course("rolling-update-example-2.yaml"))  # as the class applies it: image nginx (→ web v1)
    try:
        yield lab
    finally:
        remove(lab, "deployment/example-2", "service/ex2-svc-external", pods="app=web")


def test_rolling_update_through_the_node_port_loses_no_request(example2):
    lab = example2
    lab.kubectl.run("rollout", "status", "deployment/example-2", "--timeout=180s", timeout=200)
    wait_for(lambda: len(endpoint_ips(lab, "ex2-svc-external")) == 4, timeout=30, what="4 endpoints")

    client = HostClient("127.0.0.1", lab.host_port)
    client.start()
    try:
        # 2 s of answers from v1 before the rollout, 2 s of answers after it
        wait_for(lambda: len(client.results) >= 2 * client.rate, timeout=30, interval=0.1, what="answers from v1")
        lab.kubectl.run("set", "image", "deployment/example-2", "web=nginx:1.16.1")
        lab.kubectl.run("rollout", "status", "deployment/example-2", "--timeout=240s", timeout=260)
        rolled_out = len(client.results)
        wait_for(lambda: len(client.results) >= rolled_out + 2 * client.rate, timeout=30, interval=0.1,
                 what="answers after the rollout")
    finally:
        client.stopping.set()
        client.join(10)
    results = client.in_order()
    failures = [r for r in results if not r[2]]
    elapsed = results[-1][0]
    assert len(results) >= 20 * elapsed, f"only {len(results)} requests in {elapsed:.0f}s"
    assert not failures, f"{len(failures)} of {len(results)} requests failed: {failures[:5]}"
    versions = [r[1].split()[1] for r in results]
    assert versions[0] == "v1" and versions[-1] == "v2"
    assert set(versions[-10:]) == {"v2"}, versions[-10:]


def test_cluster_dns_and_the_kubernetes_service_from_a_pod(svc_lab, example1):
    """From the toolbox pod: nslookup answers from kube-dns (installed by `labctl up`), an
    ExternalName resolves as a CNAME, and the pod's projected token calls the API server
    through the `kubernetes` Service (10.96.0.1:443)."""
    lab = svc_lab
    wait_for(lambda: len(ready_pods_ns(lab, "kube-system", "k8s-app=kube-dns")) == 2, what="kube-dns Ready")
    apply(lab, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "docs"},
                "spec": {"type": "ExternalName", "externalName": "docs.example.org"}},
          {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "clients"},
           "spec": {"selector": {"role": "client"}, "ports": [{"port": 80}]}})
    cluster_ip = lab.kubectl.json("get", "svc", "clients")["spec"]["clusterIP"]
    pod = "toolbox-worker"

    def lookup() -> str | None:
        out = lab.kubectl.run("exec", pod, "--", "nslookup", "clients", check=False).stdout
        return out if cluster_ip in out else None

    looked_up = wait_for(lookup, timeout=60, what="nslookup clients to answer the ClusterIP")
    assert "clients.default.svc.cluster.local" in looked_up
    cname = lab.kubectl.run("exec", pod, "--", "dig", "+short", "docs.default.svc.cluster.local", "CNAME").stdout
    assert cname.strip() == "docs.example.org."
    resolv = lab.kubectl.run("exec", pod, "--", "cat", "/etc/resolv.conf").stdout
    assert "nameserver 10.96.0.10" in resolv and "ndots:5" in resolv

    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    # a pod's token carries only what RBAC grants (docs/rbac.md): let default's account read it
    lab.kubectl.run("create", "rolebinding", "default-view", "--clusterrole=view", "--serviceaccount=default:default")
    answer = lab.kubectl.run("exec", pod, "--", "sh", "-c",
                             f'curl -s --cacert {sa}/ca.crt -H "Authorization: Bearer $(cat {sa}/token)" '
                             f'https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/api/v1/namespaces/default/pods'
                             ).stdout
    names = {p["metadata"]["name"] for p in json.loads(answer)["items"]}
    assert pod in names
    by_name = lab.kubectl.run("exec", pod, "--", "sh", "-c",
                              f'curl -s -o /dev/null -w "%{{http_code}}" --cacert {sa}/ca.crt '
                              f'https://kubernetes.default.svc/api').stdout
    assert by_name == "401"  # reachable by its DNS name; no token, no entry


def ready_pods_ns(lab, namespace: str, selector: str) -> list[dict]:
    pods = lab.kubectl.json("get", "pods", "-n", namespace, "-l", selector)["items"]
    return [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                   for c in p.get("status", {}).get("conditions", []))]


def test_every_pod_shows_its_token_volume_and_every_namespace_holds_the_root_ca(svc_lab, example1):
    """As on any cluster: ``kubectl describe pod`` lists the ``kube-api-access-…`` volume and its read-only
    mount, the token's ``ca.crt`` is the ``kube-root-ca.crt`` ConfigMap's, which the root CA publisher
    keeps in every namespace: written back when deleted, published in a new namespace."""
    lab = svc_lab
    pod = lab.kubectl.json("get", "pod", "toolbox-worker")
    [volume] = [v["name"] for v in pod["spec"]["volumes"] if v["name"].startswith("kube-api-access-")]
    described = lab.kubectl.run("describe", "pod", "toolbox-worker").stdout
    assert f"/var/run/secrets/kubernetes.io/serviceaccount from {volume} (ro)" in described
    assert "kube-root-ca.crt" in described and "TokenExpirationSeconds:  3607" in described
    in_pod = lab.kubectl.run("exec", "toolbox-worker", "--", "cat",
                             "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt").stdout

    def root_ca(namespace: str) -> dict | None:
        got = lab.kubectl.run("get", "configmap", "kube-root-ca.crt", "-n", namespace, "-o", "json", check=False)
        return json.loads(got.stdout) if got.returncode == 0 else None

    published = wait_for(lambda: root_ca("default"), what="kube-root-ca.crt in default")
    assert published["data"]["ca.crt"] == in_pod and in_pod.startswith("-----BEGIN CERTIFICATE-----")
    lab.kubectl.run("delete", "configmap", "kube-root-ca.crt")
    wait_for(lambda: "kube-root-ca.crt" in lab.kubectl.run("get", "configmaps", "-o", "name").stdout,
             what="kube-root-ca.crt published again")
    lab.kubectl.run("create", "namespace", "ca-check")
    try:
        fresh = wait_for(lambda: root_ca("ca-check"), what="kube-root-ca.crt in a new namespace")
        assert fresh["data"] == {"ca.crt": in_pod}
    finally:
        lab.kubectl.run("delete", "namespace", "ca-check", "--wait=false")
