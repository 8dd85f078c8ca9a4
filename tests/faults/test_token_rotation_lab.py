"""Tokens that last the lesson, in a real lab whose pod tokens live only 20 seconds.

``serviceAccounts.tokenExpirationSeconds: 20`` in the topology: the kubelets ask for 20 s
tokens (the API server is started with that floor instead of kube's 600 s) and renew them
every 16 s. Over several lifetimes — past the API server's 60 s of leeway for the first
token — a toolbox pod calls the API with whatever its token file holds, as a script would,
and kube-dns (whose own token rotates the same way) resolves a Service created after the
first token expired. An hour-long lab behaves the same, only slower. And a kube-dns whose
token the API server refuses says so: 0/1, out of the endpoints, until it has a good one again.
"""

from __future__ import annotations

import json
import re
import subprocess
import time

import pytest

from labctl.client.waiting import wait_for
from support.lab import Lab, unique_name

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

TOKEN_SECONDS = 20
#: the API server accepts a token up to 60 s after it expired (go-jose's leeway)
LEEWAY_SECONDS = 60
SA = "/var/run/secrets/kubernetes.io/serviceaccount"
CALL_API = (f'curl -s -o /dev/null -w "%{{http_code}}" --max-time 5 --cacert {SA}/ca.crt '
            f'-H "Authorization: Bearer $(cat {SA}/token)" https://kubernetes.default.svc/api')


@pytest.fixture(scope="module")
def short_token_lab(docker_engine, kubectl_binary, tmp_path_factory):
    lab = Lab(unique_name("tok"), tmp_path_factory.mktemp("toklab"), kubectl_binary, workers=1,
              extra={"serviceAccounts": {"tokenExpirationSeconds": TOKEN_SECONDS}})
    created = lab.up()
    try:
        assert created.returncode == 0, f"labctl up failed:\n{created.stderr}"
        yield lab
    finally:
        lab.down()


def ready(lab, name: str, namespace: str = "default") -> bool:
    got = lab.kubectl.run("get", "pod", name, "-n", namespace, "-o", "json", check=False)
    if got.returncode != 0:
        return False
    conditions = json.loads(got.stdout).get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def in_pod(lab, *cmd: str) -> str:
    return lab.kubectl.run("exec", "toolbox", "--", *cmd).stdout


def test_a_pods_token_keeps_working_over_several_lifetimes_and_dns_keeps_up(short_token_lab):
    lab = short_token_lab
    lab.kubectl.run("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "toolbox"},
        "spec": {"nodeName": "worker", "terminationGracePeriodSeconds": 0,
                 "containers": [{"name": "toolbox", "image": "labctl/toolbox:latest"}]}}))
    wait_for(lambda: ready(lab, "toolbox"), timeout=120, what="toolbox Ready")
    started = time.monotonic()
    listing = in_pod(lab, "ls", "-la", SA)
    first_generation = re.search(r"\.\.data -> (\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{9})", listing)
    assert first_generation and "token -> ..data/token" in listing, listing

    tokens, codes = set(), []
    first_expired = TOKEN_SECONDS + LEEWAY_SECONDS  # after this the first token is refused
    while time.monotonic() - started < first_expired + 2 * TOKEN_SECONDS:
        tokens.add(in_pod(lab, "cat", f"{SA}/token"))
        codes.append(in_pod(lab, "sh", "-c", CALL_API))
        time.sleep(5)
    print(f"{len(tokens)} tokens seen in {time.monotonic() - started:.0f}s; API answers {codes}")
    assert set(codes) == {"200"}, codes
    assert len(tokens) >= 4  # renewed at 80 % of 20 s, over about 100 s

    # kube-dns authenticates with a rotating token too: a Service made now is resolved
    lab.kubectl.run("create", "service", "clusterip", "late", "--tcp=80:80")
    cluster_ip = lab.kubectl.json("get", "service", "late")["spec"]["clusterIP"]
    answer = wait_for(lambda: in_pod(lab, "getent", "hosts", "late.default.svc.cluster.local").split()[:1],
                      timeout=30, what="late.default.svc.cluster.local resolved")
    assert answer == [cluster_ip]
    dns_pods = lab.kubectl.json("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")["items"]
    assert dns_pods and all(ready(lab, p["metadata"]["name"], "kube-system") for p in dns_pods)
    generation = in_pod(lab, "readlink", f"{SA}/..data").strip()
    assert generation.startswith("..") and generation > first_generation.group(1)  # kube's timestamped names
    assert in_pod(lab, "ls", "-a", SA).split().count(generation) == 1  # the old generations are gone


def dns_pods(lab) -> list[dict]:
    return lab.kubectl.json("get", "pods", "-n", "kube-system", "-l", "k8s-app=kube-dns")["items"]


def dns_ready(lab) -> list[bool]:
    return [ready(lab, p["metadata"]["name"], "kube-system") for p in dns_pods(lab)]


def test_a_kube_dns_whose_token_is_refused_leaves_the_endpoints_until_it_has_a_good_one(short_token_lab):
    lab = short_token_lab
    wait_for(lambda: all(dns_ready(lab)), timeout=60, what="kube-dns Ready")
    account = lab.kubectl.json("get", "serviceaccount", "kube-dns", "-n", "kube-system")
    lab.kubectl.run("delete", "serviceaccount", "kube-dns", "-n", "kube-system")
    # its open watches were authenticated when they started: restart the API server to end them
    # (nodeinit starts it again at once; the state is on the control plane's volume)
    node = f"{lab.name}-control-plane"
    pids = subprocess.run(["docker", "exec", node, "sh", "-c", "ps -eo pid,args | grep '[l]abctl.apiserver'"],
                          capture_output=True, text=True, check=True).stdout.split()[:1]
    subprocess.run(["docker", "exec", node, "kill", *pids], check=True)
    wait_for(lambda: not any(dns_ready(lab)), timeout=60, what="kube-dns reported not ready")
    wait_for(lambda: not any(s.get("addresses") for s in
                             lab.kubectl.json("get", "endpoints", "kube-dns", "-n", "kube-system").get("subsets") or []),
             timeout=30, what="the endpoints controller to take kube-dns's not-ready pods out")
    logs = lab.kubectl.run("logs", "-n", "kube-system", dns_pods(lab)[0]["metadata"]["name"]).stdout
    assert re.search(r"not ready: watch of \w+ failed: 401 Unauthorized", logs), logs[-2000:]

    for key in ("uid", "resourceVersion", "creationTimestamp"):  # the same account, made anew
        account["metadata"].pop(key, None)
    lab.kubectl.run("apply", "-f", "-", input=json.dumps(account))
    started = time.monotonic()
    wait_for(lambda: all(dns_ready(lab)), timeout=90, what="kube-dns Ready with a renewed token")
    print(f"kube-dns Ready again {time.monotonic() - started:.0f}s after its ServiceAccount came back")
