"""With RBAC on every request, a lab still works end to end, and a pod's token is worth only its bindings.

One real lab (three nodes) for the module. Every node agent talks to the API with its node
certificate (the Node authorizer), kube-dns with its ServiceAccount's token (the add-on's
``system:coredns`` binding), the controllers with the admin certificate; nothing in the lab
may be refused what it needs: nodes Ready, a Deployment's pods Running, its Service answering,
cluster DNS answering, and no agent logging a 403.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from labctl.client.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

NODES = ("control-plane", "worker", "worker2")
SA = "/var/run/secrets/kubernetes.io/serviceaccount"


def ready(obj: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (obj.get("status") or {}).get("conditions", []))


def api_status(lab, pod: str, path: str) -> str:
    """The HTTP status a request with the pod's own token gets, through the ``kubernetes`` Service."""
    return lab.kubectl.run("exec", pod, "--", "sh", "-c",
                           f'curl -s -o /dev/null -w "%{{http_code}}" --cacert {SA}/ca.crt '
                           f'-H "Authorization: Bearer $(cat {SA}/token)" https://kubernetes.default.svc{path}').stdout


@pytest.fixture(scope="module")
def toolbox(lab) -> str:
    lab.kubectl.run("run", "toolbox", "--image=labctl/toolbox", "--restart=Never", "--command", "--", "sleep", "3600")
    lab.kubectl.run("wait", "--for=condition=Ready", "pod/toolbox", "--timeout=90s", timeout=120)
    return "toolbox"


def test_the_lab_works_with_rbac_on(lab, toolbox):
    k = lab.kubectl
    def ready_nodes() -> list[str]:
        return sorted(n["metadata"]["name"] for n in k.json("get", "nodes")["items"] if ready(n))

    assert wait_for(lambda: ready_nodes() == sorted(NODES), timeout=60, what="every node Ready")
    k.run("create", "deployment", "web", "--image=nginx", "--replicas=2", "--port=80")
    k.run("expose", "deployment", "web", "--port=80")
    k.run("rollout", "status", "deployment/web", "--timeout=120s", timeout=150)
    pods = k.json("get", "pods", "-l", "app=web")["items"]
    assert len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods)

    def served() -> str:
        return k.run("exec", toolbox, "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                     "http://web.default.svc.cluster.local/", check=False).stdout

    assert wait_for(lambda: served() == "200", timeout=60, what="the web Service to answer through its DNS name")

    k.run("run", "dns-probe", "--image=labctl/toolbox", "--restart=Never", "--command", "--",
          "nslookup", "web.default.svc.cluster.local")
    wait_for(lambda: k.json("get", "pod", "dns-probe")["status"].get("phase") in ("Succeeded", "Failed"),
             timeout=90, what="kubectl run … nslookup to finish")
    cluster_ip = k.json("get", "service", "web")["spec"]["clusterIP"]
    assert k.json("get", "pod", "dns-probe")["status"]["phase"] == "Succeeded"
    assert cluster_ip in k.run("logs", "dns-probe").stdout


def test_a_pods_default_token_reads_discovery_and_nothing_else(lab, toolbox):
    assert api_status(lab, toolbox, "/api") == "200"
    assert api_status(lab, toolbox, "/api/v1/secrets") == "403"
    assert api_status(lab, toolbox, "/api/v1/namespaces/kube-system/pods") == "403"
    denied = lab.kubectl.run("exec", toolbox, "--", "sh", "-c",
                             f'curl -s --cacert {SA}/ca.crt -H "Authorization: Bearer $(cat {SA}/token)" '
                             "https://kubernetes.default.svc/api/v1/secrets").stdout
    assert json.loads(denied)["message"] == (
        'secrets is forbidden: User "system:serviceaccount:default:default" cannot list resource "secrets" '
        'in API group "" at the cluster scope')


def test_no_component_of_the_lab_was_refused(lab, toolbox):
    """The node agents (Node authorizer), kube-dns (its binding) and the controllers (admin) never got a 403."""
    for node in NODES:
        logs = subprocess.run(["docker", "logs", f"{lab.name}-{node}"], capture_output=True, text=True,
                              timeout=60)
        # a refusal reads "403 Forbidden: ..." (a bare "403" is also a log line's milliseconds)
        refused = [line for line in (logs.stdout + logs.stderr).splitlines() if "Forbidden" in line]
        assert refused == [], f"{node}: {refused[:5]}"
    dns_logs = lab.kubectl.run("-n", "kube-system", "logs", "deployment/kube-dns").stdout
    assert "Forbidden" not in dns_logs
