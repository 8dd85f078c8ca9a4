"""The kube-dns add-on manifest: rendered from the lab's settings, and the API server takes it."""

from __future__ import annotations

import pytest

from labctl.addons import AddonError, load_addon, render_addon
from labctl.clusterconfig import ClusterConfig

DEFAULTS = ClusterConfig()


def by_kind(objects: list[dict]) -> dict[str, dict]:
    return {obj["kind"]: obj for obj in objects}


def test_kube_dns_addon_has_the_well_known_objects():
    objects = by_kind(load_addon("kube-dns", DEFAULTS))
    assert set(objects) == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Deployment", "Service"}
    # exactly CoreDNS's rights (kubeadm's system:coredns), bound to the Deployment's ServiceAccount
    assert objects["ClusterRole"]["rules"] == [
        {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
        {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]}]
    binding = objects["ClusterRoleBinding"]
    assert binding["roleRef"]["name"] == objects["ClusterRole"]["metadata"]["name"] == "system:coredns"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kube-dns", "namespace": "kube-system"}]
    svc = objects["Service"]
    assert (svc["metadata"]["namespace"], svc["metadata"]["name"]) == ("kube-system", "kube-dns")
    assert svc["spec"]["clusterIP"] == "10.96.0.10"
    assert {(p["name"], p["port"], p["protocol"]) for p in svc["spec"]["ports"]} == {
        ("dns", 53, "UDP"), ("dns-tcp", 53, "TCP")}
    pod = objects["Deployment"]["spec"]["template"]
    assert svc["spec"]["selector"] == pod["metadata"]["labels"] == {"k8s-app": "kube-dns"}
    assert pod["spec"]["dnsPolicy"] == "Default"  # else it would forward to itself
    assert pod["spec"]["containers"][0]["command"] == ["python3", "-m", "labctl.dns"]


def test_node_image_is_substituted():
    deploy = by_kind(load_addon("kube-dns", DEFAULTS, image="labctl/node:0123abcd"))["Deployment"]
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"] == "labctl/node:0123abcd"


def test_service_ip_and_zone_follow_the_lab_settings():
    cluster = ClusterConfig(service_subnet="10.100.0.0/16", cluster_domain="lab.example")
    objects = by_kind(load_addon("kube-dns", cluster))
    assert objects["Service"]["spec"]["clusterIP"] == "10.100.0.10"
    args = objects["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--dns-ip=10.100.0.10" in args and "--zone=lab.example" in args


def test_unknown_addon_is_a_clear_error():
    with pytest.raises(AddonError, match="failed to load add-on 'nope'"):
        load_addon("nope", DEFAULTS)


@pytest.mark.kubectl
def test_api_server_accepts_the_addon(dns_kubectl):
    dns_kubectl.run("apply", "-f", "-", input=render_addon("kube-dns", DEFAULTS, image="labctl/node:test"))
    svc = dns_kubectl.json("-n", "kube-system", "get", "service", "kube-dns")
    assert svc["spec"]["clusterIP"] == "10.96.0.10"
    deploy = dns_kubectl.json("-n", "kube-system", "get", "deployment", "kube-dns")
    assert deploy["spec"]["replicas"] == 2
    assert deploy["spec"]["template"]["spec"]["dnsPolicy"] == "Default"
    dns_kubectl.run("-n", "kube-system", "get", "serviceaccount", "kube-dns")
