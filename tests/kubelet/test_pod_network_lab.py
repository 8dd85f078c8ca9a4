"""hostPort and hostNetwork in a real lab, with the real kubectl.

hostPort goes through the node's CNI configuration list (``labctl-bridge`` then
``labctl-portmap``): the node's address answers on the host port, from the host and from
pods, the node's ``iptables-save`` shows the reference portmap chains, and they go with the
pod. A hostNetwork pod runs in its node container's network namespace: the node's IP, the
node's interfaces, the node's resolver unless ``ClusterFirstWithHostNet``.
"""

from __future__ import annotations

import json
import re
import urllib.request

import pytest

from labctl.client.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]


def pod(name: str, node: str, image: str, container: dict | None = None, **spec: object) -> dict:
    container = {"name": "app", "image": image, **(container or {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1, "containers": [container], **spec}}


def create(lab, *objs: dict) -> None:
    lab.kubectl.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def ready(lab, name: str, timeout: float = 90) -> dict:
    def check() -> dict | None:
        p = lab.kubectl.json("get", "pod", name)
        conds = (p.get("status") or {}).get("conditions") or []
        return p if any(c["type"] == "Ready" and c["status"] == "True" for c in conds) else None
    return wait_for(check, timeout, 0.5, f"pod {name} Ready")


def node_ip(lab, node: str) -> str:
    addresses = lab.kubectl.json("get", "node", node)["status"]["addresses"]
    return next(a["address"] for a in addresses if a["type"] == "InternalIP")


def http_get(address: str, port: int) -> str:
    with urllib.request.urlopen(f"http://{address}:{port}/", timeout=5) as response:
        return response.read().decode()


def nat_table(lab, node: str) -> str:
    return lab.exec(node, "iptables-save", "-t", "nat").stdout


@pytest.fixture(scope="module")
def net_lab(lab):
    """Clients on both workers, created once; the tests make their own servers."""
    create(lab, pod("client-w1", "worker", "labctl/toolbox:latest"), pod("client-w2", "worker2", "labctl/toolbox:latest"))
    ready(lab, "client-w1")
    ready(lab, "client-w2")
    lab.wait_for_addons()  # no add-on pod starts on a worker while a test compares its reservations
    return lab


def test_host_port_answers_on_the_node_ip_and_goes_with_the_pod(net_lab) -> None:
    lab = net_lab
    create(lab, pod("hp", "worker", "labctl/web:v1", container={"ports": [{"containerPort": 80, "hostPort": 8081}]}))
    pod_ip = ready(lab, "hp")["status"]["podIP"]
    worker = node_ip(lab, "worker")
    assert f"ip={pod_ip}" in http_get(worker, 8081)  # from the host, through the node's DNAT
    for client in ("client-w2", "client-w1"):  # another node's pod, and a pod on the same bridge (hairpin)
        out = lab.kubectl.run("exec", client, "--", "curl", "-s", "--max-time", "5", f"http://{worker}:8081/")
        assert f"ip={pod_ip}" in out.stdout, (client, out.stdout, out.stderr)
    nat = nat_table(lab, "worker")
    assert "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in nat
    chain = re.search(r"-A (CNI-DN-[0-9a-f]+) -p tcp -m tcp --dport 8081 -j DNAT --to-destination "
                      + re.escape(f"{pod_ip}:80"), nat)
    assert chain, nat
    assert f"--dports 8081 -j {chain.group(1)}" in nat
    # the kubelet caches the ADD's result and ports where libcni does, for the DEL
    cached = lab.exec("worker", "sh", "-c", "grep -l '\"hostPort\": 8081' /var/lib/cni/results/labctl-*", check=False)
    assert cached.returncode == 0 and cached.stdout.strip().endswith("-eth0"), cached

    lab.kubectl.run("delete", "pod", "hp", "--wait=true")
    wait_for(lambda: chain.group(1) not in nat_table(lab, "worker"), 30, 0.5, "the pod's CNI-DN chain removed")
    assert lab.exec("worker", "test", "-e", cached.stdout.strip(), check=False).returncode == 1  # cache entry gone
    with pytest.raises(OSError):
        http_get(worker, 8081)


def test_host_network_pod_is_in_the_node_namespace(net_lab) -> None:
    lab = net_lab
    web = {"env": [{"name": "PORT", "value": "8099"}], "ports": [{"containerPort": 8099}]}
    create(lab, pod("hn", "worker2", "labctl/toolbox:latest", hostNetwork=True),
           pod("hn-web", "worker2", "labctl/web:v1", web, hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"))
    hn = ready(lab, "hn")
    worker2 = node_ip(lab, "worker2")
    assert hn["status"]["podIP"] == worker2 == hn["status"]["hostIP"]
    addrs = lab.kubectl.run("exec", "hn", "--", "ip", "-o", "addr").stdout
    assert f"inet {worker2}/" in addrs and " cni0 " in addrs  # the node's interfaces, not a pod's eth0 only
    assert lab.kubectl.run("exec", "hn", "--", "hostname").stdout.strip() == "worker2"
    # the node's resolver for ClusterFirst; cluster DNS when asked for ClusterFirstWithHostNet
    node_resolv = lab.exec("worker2", "cat", "/etc/resolv.conf").stdout
    assert lab.kubectl.run("exec", "hn", "--", "cat", "/etc/resolv.conf").stdout == node_resolv
    assert ready(lab, "hn-web")["status"]["podIP"] == worker2
    resolv = lab.kubectl.run("exec", "hn-web", "--", "cat", "/etc/resolv.conf").stdout
    assert "nameserver 10.96.0.10" in resolv and "search default.svc.cluster.local" in resolv
    assert lab.exec("worker2", "cat", "/etc/resolv.conf").stdout == node_resolv  # the node's file untouched
    # its server listens in the node's namespace: another node's pod reaches it at the node's address
    out = lab.kubectl.run("exec", "client-w1", "--", "curl", "-s", "--max-time", "5", f"http://{worker2}:8099/")
    assert out.stdout.startswith("web v1 pod=worker2 "), out  # its hostname is the node's
    lab.kubectl.run("delete", "pod", "hn", "hn-web", "--wait=true")


def test_no_cni_call_for_host_network_pods(net_lab) -> None:
    """No address is reserved for a hostNetwork pod: the node's IPAM directory does not change."""
    lab = net_lab
    before = set(lab.exec("worker", "ls", "/var/lib/cni/networks/labctl").stdout.split())
    create(lab, pod("hn2", "worker", "labctl/toolbox:latest", hostNetwork=True))
    ready(lab, "hn2")
    assert set(lab.exec("worker", "ls", "/var/lib/cni/networks/labctl").stdout.split()) == before
    lab.kubectl.run("delete", "pod", "hn2", "--wait=true")
