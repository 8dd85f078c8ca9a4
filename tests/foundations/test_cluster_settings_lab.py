"""A lab with non-default subnets works end to end, and `labctl up` returns only once DNS answers.

Every component reads the cluster-wide settings from the one ``ClusterConfig`` written to
the nodes, so a topology with ``serviceSubnet: 10.100.0.0/16`` and ``podSubnet:
10.200.0.0/16`` must give pods 10.200.x addresses, kube-dns at 10.100.0.10, the
``kubernetes`` Service at 10.100.0.1 with a certificate valid for it, and working NodePorts.
"""

from __future__ import annotations

import ipaddress
import urllib.request

import pytest

from labctl.client.waiting import wait_for
from support.lab import Lab, unique_name

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

POD_SUBNET = ipaddress.ip_network("10.200.0.0/16")
NETWORKING = {"apiServerPort": 0, "podSubnet": str(POD_SUBNET), "serviceSubnet": "10.100.0.0/16"}


class SubnetLab:
    """The lab, plus what was observed the moment ``labctl up`` returned."""

    def __init__(self, lab: Lab, dns_endpoints: dict) -> None:
        self.lab = lab
        self.dns_endpoints_at_up = dns_endpoints


@pytest.fixture(scope="module")
def subnet_lab(docker_engine, kubectl_binary, tmp_path_factory):
    lab = Lab(unique_name(), tmp_path_factory.mktemp("lab"), kubectl_binary, extra={"networking": NETWORKING})
    try:
        created = lab.up()
        assert created.returncode == 0, f"labctl up failed:\n{created.stderr}"
        # the very first things a student might do once `up` returns
        endpoints = lab.kubectl.json("-n", "kube-system", "get", "endpoints", "kube-dns")
        lab.kubectl.run("run", "first-lookup", "--image=labctl/toolbox", "--restart=Never", "--",
                        "nslookup", "kubernetes.default")
        yield SubnetLab(lab, endpoints)
    finally:
        lab.down()


def _pod_phase(lab: Lab, name: str) -> str:
    return lab.kubectl.json("get", "pod", name).get("status", {}).get("phase", "")


def test_dns_answers_the_moment_up_returns(subnet_lab):
    lab = subnet_lab.lab
    ready = [a["ip"] for s in subnet_lab.dns_endpoints_at_up.get("subsets") or [] for a in s.get("addresses") or []]
    assert ready, f"kube-dns had no ready endpoints when `labctl up` returned: {subnet_lab.dns_endpoints_at_up}"
    phase = wait_for(lambda: _pod_phase(lab, "first-lookup") in ("Succeeded", "Failed") and
                     _pod_phase(lab, "first-lookup"), timeout=60, what="the first nslookup pod to finish")
    output = lab.kubectl.run("logs", "first-lookup").stdout
    assert phase == "Succeeded", f"the first nslookup after `up` failed:\n{output}"
    assert "10.100.0.10" in output and "10.100.0.1" in output, output


def test_services_pods_dns_and_nodeport_follow_the_subnets(subnet_lab):
    lab = subnet_lab.lab
    k = lab.kubectl
    k.run("create", "deployment", "web", "--image=nginx", "--replicas=2", "--port=80")
    k.run("expose", "deployment", "web", "--type=NodePort", "--port=80")
    kubernetes = k.json("get", "service", "kubernetes")
    assert kubernetes["spec"]["clusterIP"] == "10.100.0.1"
    dns = k.json("-n", "kube-system", "get", "service", "kube-dns")
    assert dns["spec"]["clusterIP"] == "10.100.0.10"
    web = k.json("get", "service", "web")
    assert ipaddress.ip_address(web["spec"]["clusterIP"]) in ipaddress.ip_network("10.100.0.0/16")

    k.run("rollout", "status", "deployment/web", "--timeout=90s", timeout=120)
    pods = k.json("get", "pods", "-l", "app=web")["items"]
    ips = [p["status"]["podIP"] for p in pods]
    assert len(ips) == 2 and all(ipaddress.ip_address(ip) in POD_SUBNET for ip in ips), ips

    node_port = web["spec"]["ports"][0]["nodePort"]
    nodes = k.json("get", "nodes")["items"]
    node_ip = next(a["address"] for a in nodes[-1]["status"]["addresses"] if a["type"] == "InternalIP")
    with urllib.request.urlopen(f"http://{node_ip}:{node_port}/", timeout=5) as answer:
        assert answer.status == 200


def test_pod_calls_the_api_through_the_kubernetes_service_and_verifies_its_certificate(subnet_lab):
    k = subnet_lab.lab.kubectl
    k.run("run", "api-caller", "--image=labctl/toolbox", "--restart=Never", "--command", "--", "sleep", "300")
    k.run("wait", "--for=condition=Ready", "pod/api-caller", "--timeout=60s", timeout=90)
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    script = (f'curl -sS --fail --cacert {sa}/ca.crt -H "Authorization: Bearer $(cat {sa}/token)" '
              'https://kubernetes.default.svc/api')
    answer = k.run("exec", "api-caller", "--", "sh", "-c", script, check=False)
    assert answer.returncode == 0 and '"kind":"APIVersions"' in answer.stdout.replace(" ", ""), answer.stderr
    env = k.run("exec", "api-caller", "--", "printenv", "KUBERNETES_SERVICE_HOST").stdout.strip()
    assert env == "10.100.0.1"
