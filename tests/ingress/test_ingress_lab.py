"""Ingress on a real lab, with the real kubectl, from the host as a student reaches it.

One lab for the module, with the ingress add-on on and free host ports mapped to its NodePorts
(30080 → HTTP, 30443 → HTTPS, as the shipped topologies map 8080 and 8443). Two Deployments
(``shop``: the tutorials' ``nginx``, ``blog``: the small web image) behind one Ingress with two
hosts and two paths; what a student checks: the routes, ``kubectl get ingress`` with an
ADDRESS, the requests in ``kubectl logs`` of the controller and of the backend, HTTPS with a TLS
Secret, and a rollout behind the Ingress under 25 requests a second without one failing.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from labctl.client.waiting import wait_for as _wait_for
from labctl.cluster.scratch import unique_name
from support.lab import Lab, free_port
from support.traffic import HostClient, http_get

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

CONTROLLER = ["-n", "ingress-nginx", "deployment/ingress-nginx-controller"]
#: how long after `kubectl rollout status` returns the old version may still answer: the old pods'
#: endpoints go, the controller renders and reloads nginx (seconds on a loaded machine)
SETTLED = 3.0


def wait_for(check, timeout: float = 120, interval: float = 0.5, what: str = ""):
    return _wait_for(check, timeout, interval, what)


def apply(lab, *objs: dict) -> None:
    lab.kubectl.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def app(name: str, image: str, replicas: int = 2) -> list[dict]:
    labels = {"app": name}
    return [
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
         "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"containers": [{"name": "web", "image": image,
                                                        "ports": [{"containerPort": 80}]}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
         "spec": {"selector": labels, "ports": [{"name": "http", "port": 8080, "targetPort": 80}]}}]


def backend(service: str, by_name: bool = False) -> dict:
    return {"service": {"name": service, "port": {"name": "http"} if by_name else {"number": 8080}}}


SHOP_INGRESS = {
    "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "shop"},
    "spec": {  # no ingressClassName: the add-on's class is the default
        "tls": [{"hosts": ["shop.lab"], "secretName": "shop-tls"}],
        "rules": [
            {"host": "shop.lab", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend("shop")},
                {"path": "/blog", "pathType": "Prefix", "backend": backend("blog", by_name=True)}]}},
            {"host": "blog.lab", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": backend("blog")}]}}]}}


@pytest.fixture(scope="module")
def ing_lab(docker_engine, kubectl_binary, tmp_path_factory):
    """A 1 control-plane + 2 worker lab with the ingress add-on; ``http_port``/``https_port`` on the host."""
    http_port, https_port = free_port(), free_port()
    lab = Lab(unique_name("ing"), tmp_path_factory.mktemp("inglab"), kubectl_binary, extra={
        "addons": {"ingress": True},
        "portMappings": [{"hostPort": http_port, "nodePort": 30080, "listenAddress": "127.0.0.1"},
                         {"hostPort": https_port, "nodePort": 30443, "listenAddress": "127.0.0.1"}]})
    lab.http_port, lab.https_port = http_port, https_port
    created = lab.up()
    try:
        assert created.returncode == 0, f"labctl up failed:\n{created.stderr}"
        lab.kubectl.run("rollout", "status", *CONTROLLER, "--timeout=180s", timeout=200)
        apply(lab, *app("shop", "nginx:1.14.2"), *app("blog", "labctl/web:v1"))
        for name in ("shop", "blog"):
            lab.kubectl.run("rollout", "status", f"deployment/{name}", "--timeout=180s", timeout=200)
        apply(lab, SHOP_INGRESS)
        yield lab
    finally:
        lab.down()


def get(lab, host: str, path: str = "/") -> str:
    return http_get("127.0.0.1", lab.http_port, path=path, host_header=host)


def answers(lab, host: str, path: str = "/") -> str | None:
    try:
        return get(lab, host, path)
    except (AssertionError, OSError):
        return None


def test_two_hosts_and_two_paths_route_to_two_services_from_the_host(ing_lab):
    lab = ing_lab
    wait_for(lambda: (answers(lab, "blog.lab") or "").startswith("web v1"), what="blog.lab through the Ingress")
    assert get(lab, "shop.lab").startswith("nginx v")  # v1, or v2 after the rollout test
    assert " pod=shop-" in get(lab, "shop.lab", "/cart?id=1")
    assert get(lab, "shop.lab", "/blog").startswith("web v1 pod=blog-")
    assert get(lab, "shop.lab", "/blog/post/1").startswith("web v1 pod=blog-")
    assert get(lab, "shop.lab", "/blogroll").startswith("nginx v")  # Prefix matches whole path elements
    with pytest.raises(AssertionError, match="HTTP 404 .*default backend - 404"):
        get(lab, "unknown.lab")
    # both shop pods answer: the upstream is the endpoints, nginx balances itself
    pods = {get(lab, "shop.lab").split("pod=")[1].split()[0] for _ in range(20)}
    assert len(pods) == 2

    address = wait_for(lambda: lab.kubectl.json("get", "ingress", "shop").get("status", {}).get("loadBalancer", {})
                       .get("ingress"), what="the controller to write status.loadBalancer")
    node_ips = {a["address"] for n in lab.kubectl.json("get", "nodes")["items"] for a in n["status"]["addresses"]}
    assert [list(a) for a in address] == [["ip"]] and address[0]["ip"] in node_ips
    header, row = lab.kubectl.run("get", "ingress").stdout.splitlines()
    assert header.split() == ["NAME", "CLASS", "HOSTS", "ADDRESS", "PORTS", "AGE"]
    assert row.split()[:6] == ["shop", "nginx", "shop.lab,blog.lab", address[0]["ip"], "80,", "443"]
    assert "nginx" in lab.kubectl.run("get", "ingressclass").stdout


def test_nginx_logs_show_the_requests(ing_lab):
    lab = ing_lab
    wait_for(lambda: answers(lab, "shop.lab") is not None, what="shop.lab answers")
    get(lab, "shop.lab", "/logged-by-both")
    controller = lab.kubectl.run("logs", *CONTROLLER).stdout
    [line] = [x for x in controller.splitlines() if "GET /logged-by-both" in x]
    assert "200" in line and "host=shop.lab" in line and "[default-shop-8080]" in line
    pods = [p["metadata"]["name"] for p in lab.kubectl.json("get", "pods", "-l", "app=shop")["items"]
            if not p["metadata"].get("deletionTimestamp")]  # not a pod the rollout test is ending
    shop = " ".join(lab.kubectl.run("logs", pod, check=False).stdout for pod in pods)
    assert '"GET /logged-by-both HTTP/1.0" 200' in shop  # the backend's own nginx logged it too
    assert "nginx reloaded" in lab.kubectl.run("logs", *CONTROLLER).stdout


def test_tls_from_a_secret_answers_on_https(ing_lab, tmp_path):
    lab = ing_lab
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=shop.lab",
                    "-addext", "subjectAltName=DNS:shop.lab", "-keyout", str(tmp_path / "tls.key"),
                    "-out", str(tmp_path / "tls.crt")], check=True, capture_output=True)
    lab.kubectl.run("create", "secret", "tls", "shop-tls", f"--cert={tmp_path / 'tls.crt'}",
                    f"--key={tmp_path / 'tls.key'}")
    url = f"https://shop.lab:{lab.https_port}/"
    resolve = f"shop.lab:{lab.https_port}:127.0.0.1"

    def https() -> str | None:
        proc = subprocess.run(["curl", "-sk", "--max-time", "3", "--resolve", resolve, url],
                              capture_output=True, text=True)
        return proc.stdout if proc.returncode == 0 and proc.stdout.startswith("nginx v") else None

    assert " pod=shop-" in wait_for(https, what="HTTPS for shop.lab")
    # the certificate served is the Secret's
    verified = subprocess.run(["curl", "-s", "--max-time", "3", "--cacert", str(tmp_path / "tls.crt"),
                               "--resolve", resolve, url], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    # a host without a TLS entry gets no certificate (the handshake is refused, as for unknown names)
    other = subprocess.run(["curl", "-sk", "--max-time", "3", "--resolve", f"blog.lab:{lab.https_port}:127.0.0.1",
                            f"https://blog.lab:{lab.https_port}/"], capture_output=True, text=True)
    assert other.returncode != 0


def test_a_rollout_behind_the_ingress_loses_no_request(ing_lab):
    lab = ing_lab
    lab.kubectl.run("set", "image", "deployment/shop", "web=nginx:1.14.2")  # v1, whatever ran before
    lab.kubectl.run("rollout", "status", "deployment/shop", "--timeout=240s", timeout=260)
    wait_for(lambda: all((answers(lab, "shop.lab") or "").startswith("nginx v1") for _ in range(5)),
             what="shop.lab answers v1 only")
    client = HostClient("127.0.0.1", lab.http_port, host_header="shop.lab")
    client.start()
    try:
        wait_for(lambda: len(client.results) >= 2 * client.rate, timeout=30, interval=0.1, what="answers from v1")
        lab.kubectl.run("set", "image", "deployment/shop", "web=nginx:1.16.1")
        lab.kubectl.run("rollout", "status", "deployment/shop", "--timeout=240s", timeout=260)
        rolled_out = client.now()
        wait_for(lambda: client.now() >= rolled_out + SETTLED + 2, timeout=30, interval=0.1,
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
    # once the rollout is done, the old pods leave the EndpointSlice, then the upstream at nginx's next reload
    late = [(round(at - rolled_out, 2), answer) for at, answer, _ in results
            if at >= rolled_out + SETTLED and not answer.startswith("nginx v2")]
    assert not late, f"after the rollout (+{SETTLED}s), still: {late[:5]}"
