"""The container's configuration as the kubelet builds it: environment, Service variables,
/etc/hosts, resolv.conf and the image pull policy — the pure builders, without a cluster."""

from __future__ import annotations

import base64

import pytest

from labctl.agent.kubelet.envvars import (
    ContainerConfigError,
    EnvSources,
    PodAddresses,
    container_env,
    referenced_objects,
    resource_value,
    service_env,
)
from labctl.agent.kubelet.etchosts import (
    hostname_and_domain,
    node_hosts_file,
    pod_hostname,
    pod_hosts_file,
    truncate_hostname,
)
from labctl.agent.kubelet.images import ImageNeverPullError, ImageResolver, always_message
from labctl.agent.kubelet.podfiles import pod_file_mounts
from labctl.agent.kubelet.resolvconf import node_resolver, pod_dns
from labctl.kube.resolvconf import DNSConfig, parse_resolv_conf, render

ADDRESSES = PodAddresses(("10.244.1.7",), ("172.30.0.3",))
ALLOCATABLE = {"cpu": "2", "memory": "4Gi"}


def svc(name: str, ns: str, ip: str, *ports: dict) -> dict:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": ip, "ports": list(ports)}}


def pod(containers: list[dict] | None = None, ns: str = "default", **spec) -> dict:
    return {"metadata": {"name": "web-0", "namespace": ns, "uid": "u-1", "labels": {"app": "web", "tier": "a"},
                         "annotations": {"owner": "ann"}},
            "spec": {"nodeName": "worker", "serviceAccountName": "default", "containers": containers or [], **spec}}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def sources(config_maps: dict | None = None, secrets: dict | None = None) -> EnvSources:
    return EnvSources("default", config_maps or {}, secrets or {})


def env_of(container: dict, srcs: EnvSources | None = None, services: dict | None = None, **pod_spec) -> dict:
    return container_env(pod([container], **pod_spec), container, srcs or sources(), services or {}, ADDRESSES,
                         ALLOCATABLE)


# -- Service environment variables ----------------------------------------------------------
SERVICES = [
    svc("kubernetes", "default", "10.96.0.1", {"name": "https", "port": 443, "protocol": "TCP"}),
    svc("my-web", "shop", "10.96.0.20", {"name": "http", "port": 80}, {"name": "metrics", "port": 9100}),
    svc("dns", "shop", "10.96.0.30", {"port": 53, "protocol": "UDP"}),
    svc("headless", "shop", "None", {"port": 80}),
    svc("other", "elsewhere", "10.96.0.40", {"port": 80}),
]


def test_service_variables_are_kubes_for_every_service_of_the_namespace_and_kubernetes():
    env = service_env(SERVICES, "shop", True)
    assert env["MY_WEB_SERVICE_HOST"] == "10.96.0.20" and env["MY_WEB_SERVICE_PORT"] == "80"
    assert env["MY_WEB_SERVICE_PORT_HTTP"] == "80" and env["MY_WEB_SERVICE_PORT_METRICS"] == "9100"
    assert env["MY_WEB_PORT"] == "tcp://10.96.0.20:80"
    assert env["MY_WEB_PORT_80_TCP"] == "tcp://10.96.0.20:80"
    assert env["MY_WEB_PORT_80_TCP_PROTO"] == "tcp" and env["MY_WEB_PORT_80_TCP_PORT"] == "80"
    assert env["MY_WEB_PORT_80_TCP_ADDR"] == "10.96.0.20"
    assert env["MY_WEB_PORT_9100_TCP"] == "tcp://10.96.0.20:9100"
    assert env["DNS_PORT"] == "udp://10.96.0.30:53" and env["DNS_PORT_53_UDP_PROTO"] == "udp"
    assert "DNS_SERVICE_PORT_" not in " ".join(env)  # an unnamed port has no PORT_<NAME>
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1" and env["KUBERNETES_SERVICE_PORT_HTTPS"] == "443"
    assert env["KUBERNETES_PORT"] == "tcp://10.96.0.1:443"
    assert not any(k.startswith(("HEADLESS_", "OTHER_")) for k in env)


def test_enable_service_links_false_keeps_only_the_kubernetes_service():
    env = service_env(SERVICES, "shop", False)
    assert {k.split("_")[0] for k in env} == {"KUBERNETES"}


def test_a_service_named_kubernetes_in_the_pods_namespace_wins():
    own = svc("kubernetes", "shop", "10.96.0.99", {"port": 8080})
    assert service_env([own, *SERVICES], "shop", True)["KUBERNETES_SERVICE_HOST"] == "10.96.0.99"
    assert service_env([*SERVICES, own], "shop", True)["KUBERNETES_SERVICE_HOST"] == "10.96.0.99"


def test_explicit_env_wins_over_service_variables_and_may_use_them():
    env = env_of({"name": "c", "env": [{"name": "WEB_SERVICE_HOST", "value": "mine"},
                                       {"name": "URL", "value": "http://$(WEB_SERVICE_HOST):$(WEB_SERVICE_PORT)"}]},
                 services={"WEB_SERVICE_HOST": "10.96.0.5", "WEB_SERVICE_PORT": "80"})
    assert env["WEB_SERVICE_HOST"] == "mine" and env["URL"] == "http://mine:80"


# -- env, envFrom, valueFrom ------------------------------------------------------------------
CFG = {"metadata": {"name": "cfg"}, "data": {"color": "blue", "size": "L"}}
SECRET = {"metadata": {"name": "db"}, "data": {"password": b64("s3cret"), "user": b64("admin")}}


def test_env_from_config_map_and_secret_with_prefix_then_env_overrides():
    container = {"name": "c", "envFrom": [{"configMapRef": {"name": "cfg"}},
                                          {"secretRef": {"name": "db"}, "prefix": "DB_"}],
                 "env": [{"name": "size", "value": "XL"}]}
    env = env_of(container, sources({"cfg": CFG}, {"db": SECRET}))
    assert env == {"color": "blue", "size": "XL", "DB_password": "s3cret", "DB_user": "admin"}


def test_key_refs_decode_secrets_and_name_what_is_missing():
    container = {"name": "c", "env": [
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "color"}}},
        {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}}]}
    assert env_of(container, sources({"cfg": CFG}, {"db": SECRET})) == {"COLOR": "blue", "PASS": "s3cret"}
    with pytest.raises(ContainerConfigError, match='^configmap "cfg" not found$'):
        env_of(container, sources({}, {"db": SECRET}))
    with pytest.raises(ContainerConfigError, match='^secret "db" not found$'):
        env_of(container, sources({"cfg": CFG}, {}))
    missing_key = {"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "k"}}}]}
    with pytest.raises(ContainerConfigError, match="^couldn't find key k in ConfigMap default/cfg$"):
        env_of(missing_key, sources({"cfg": CFG}))
    missing_secret_key = {"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "db", "key": "k"}}}]}
    with pytest.raises(ContainerConfigError, match="^couldn't find key k in Secret default/db$"):
        env_of(missing_secret_key, sources({}, {"db": SECRET}))


def test_optional_references_that_are_missing_are_skipped():
    container = {"name": "c",
                 "envFrom": [{"configMapRef": {"name": "nope", "optional": True}},
                             {"secretRef": {"name": "nope", "optional": True}}],
                 "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "nope", "key": "a", "optional": True}}},
                         {"name": "B", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "b", "optional": True}}},
                         {"name": "C", "valueFrom": {"secretKeyRef": {"name": "db", "key": "c", "optional": True}}},
                         {"name": "D", "value": "d"}]}
    assert env_of(container, sources({"cfg": CFG}, {"db": SECRET})) == {"D": "d"}


def test_referenced_objects_lists_every_config_map_and_secret():
    container = {"envFrom": [{"configMapRef": {"name": "a"}}, {"secretRef": {"name": "s1"}}],
                 "env": [{"name": "x", "valueFrom": {"configMapKeyRef": {"name": "b", "key": "k"}}},
                         {"name": "y", "valueFrom": {"secretKeyRef": {"name": "s2", "key": "k"}}},
                         {"name": "z", "value": "v"}]}
    assert referenced_objects(container) == ({"a", "b"}, {"s1", "s2"})


@pytest.mark.parametrize(("path", "value"), [
    ("metadata.name", "web-0"), ("metadata.namespace", "default"), ("metadata.uid", "u-1"),
    ("metadata.labels['app']", "web"), ("metadata.annotations['owner']", "ann"),
    ("metadata.labels['missing']", ""),
    ("spec.nodeName", "worker"), ("spec.serviceAccountName", "default"),
    ("status.hostIP", "172.30.0.3"), ("status.hostIPs", "172.30.0.3"),
    ("status.podIP", "10.244.1.7"), ("status.podIPs", "10.244.1.7"),
])
def test_field_refs(path, value):
    container = {"name": "c", "env": [{"name": "V", "valueFrom": {"fieldRef": {"fieldPath": path}}}]}
    assert env_of(container) == {"V": value}


def test_unsupported_field_ref_is_a_config_error():
    container = {"name": "c", "env": [{"name": "V", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}}]}
    with pytest.raises(ContainerConfigError, match="unsupported fieldPath: metadata.labels"):
        env_of(container)


@pytest.mark.parametrize(("resources", "resource", "divisor", "value"), [
    ({"limits": {"cpu": "500m"}}, "limits.cpu", None, "1"),          # rounded up
    ({"limits": {"cpu": "500m"}}, "limits.cpu", "1m", "500"),
    ({"limits": {"memory": "128Mi"}}, "limits.memory", None, str(128 * 2**20)),
    ({"limits": {"memory": "128Mi"}}, "limits.memory", "1Mi", "128"),
    ({"requests": {"memory": "100M"}}, "requests.memory", "1Mi", "96"),
    ({"requests": {"cpu": "250m"}}, "requests.cpu", "1m", "250"),
    ({}, "requests.cpu", None, "0"),
    ({}, "limits.cpu", None, "2"),                                  # node allocatable
    ({}, "limits.memory", "1Gi", "4"),
])
def test_resource_field_refs(resources, resource, divisor, value):
    assert resource_value({"name": "c", "resources": resources}, resource, divisor, ALLOCATABLE) == value


def test_resource_field_ref_of_another_container():
    other = {"name": "side", "resources": {"limits": {"memory": "64Mi"}}}
    container = {"name": "c", "env": [{"name": "M", "valueFrom": {"resourceFieldRef": {
        "containerName": "side", "resource": "limits.memory", "divisor": "1Mi"}}}]}
    p = pod([container, other])
    assert container_env(p, container, sources(), {}, ADDRESSES, ALLOCATABLE) == {"M": "64"}


# -- hostname and /etc/hosts ------------------------------------------------------------------
def test_hosts_file_without_subdomain_has_the_pod_ip_and_short_name():
    text = pod_hosts_file(pod(), ["10.244.1.7"], "cluster.local")
    assert text == ("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n"
                    "::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nfe00::0\tip6-mcastprefix\n"
                    "fe00::1\tip6-allnodes\nfe00::2\tip6-allrouters\n10.244.1.7\tweb-0\n")


def test_hosts_file_with_hostname_subdomain_and_host_aliases():
    p = pod(hostname="db", subdomain="nginx", hostAliases=[
        {"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]}, {"ip": "10.1.2.3", "hostnames": ["foo.remote"]}])
    text = pod_hosts_file(p, ["10.244.1.7"], "cluster.local")
    assert "10.244.1.7\tdb.nginx.default.svc.cluster.local\tdb\n" in text
    assert text.endswith("\n# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tfoo.remote\n")


def test_host_network_hosts_file_is_the_nodes_plus_host_aliases():
    node = "127.0.0.1\tlocalhost\n172.30.0.3\tworker\n"
    assert node_hosts_file(node, [{"ip": "10.1.2.3", "hostnames": ["db"]}]) == (
        "# Kubernetes-managed hosts file (host network).\n127.0.0.1\tlocalhost\n172.30.0.3\tworker\n"
        "\n# Entries added by HostAliases.\n10.1.2.3\tdb\n")


def _mounts(spec: dict, container: dict | None = None) -> dict[str, tuple[str, bool]]:
    """target → (source, read-only) of the pod's file mounts for ``container``."""
    mounts = pod_file_mounts({"metadata": {"name": "p", "uid": "u1"}, "spec": spec}, container or {"name": "app"},
                             "/merged/var/lib/kubelet/pods/u1")
    assert all(m["Type"] == "bind" and m["BindOptions"] == {"Propagation": "rslave"} for m in mounts)
    return {m["Target"]: (m["Source"], m["ReadOnly"]) for m in mounts}


def test_every_container_mounts_the_kubelets_hosts_and_resolv_conf_from_the_pods_directory():
    assert _mounts({}) == {"/etc/hosts": ("/merged/var/lib/kubelet/pods/u1/etc-hosts", False),
                           "/etc/resolv.conf": ("/merged/var/lib/kubelet/pods/u1/resolv.conf", False)}
    # containerd mounts resolv.conf read-only with a read-only root; the kubelet's hosts file stays writable
    read_only = {"name": "app", "securityContext": {"readOnlyRootFilesystem": True}}
    assert _mounts({}, read_only) == {"/etc/hosts": ("/merged/var/lib/kubelet/pods/u1/etc-hosts", False),
                                      "/etc/resolv.conf": ("/merged/var/lib/kubelet/pods/u1/resolv.conf", True)}
    # a volume of the container's own at the path wins, as with the kubelet and containerd
    own = {"name": "app", "volumeMounts": [{"name": "cfg", "mountPath": "/etc/resolv.conf"}]}
    assert list(_mounts({}, own)) == ["/etc/hosts"]


@pytest.mark.parametrize("spec, own_resolv", [
    ({"hostNetwork": True}, False), ({"hostNetwork": True, "dnsPolicy": "ClusterFirst"}, False),
    ({"hostNetwork": True, "dnsPolicy": "Default"}, False),
    ({"hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet"}, True),
    ({"hostNetwork": True, "dnsPolicy": "None", "dnsConfig": {"nameservers": ["192.0.2.1"]}}, True),
    ({"hostNetwork": True, "dnsConfig": {"searches": ["x.example"]}}, True),
])
def test_host_network_pods_keep_the_nodes_resolv_conf_unless_their_dns_is_their_own(spec, own_resolv):
    assert ("/etc/resolv.conf" in _mounts(spec)) is own_resolv
    assert "/etc/hosts" in _mounts(spec)  # the node's hosts plus the pod's hostAliases, always


def test_hostname_and_domain():
    assert hostname_and_domain(pod(), "cluster.local") == ("web-0", "")
    assert hostname_and_domain(pod(subdomain="s", ns="x"), "lab.local") == ("web-0", "s.x.svc.lab.local")
    assert pod_hostname(pod(subdomain="s", setHostnameAsFQDN=True), "cluster.local") == "web-0.s.default.svc.cluster.local"
    assert truncate_hostname("a" * 62 + "-b") == "a" * 62
    assert truncate_hostname("short") == "short"


# -- resolv.conf ----------------------------------------------------------------------------
NODE = DNSConfig(["172.30.0.1"], ["corp.example"], ["ndots:0"])


def test_cluster_first_is_the_cluster_dns_then_the_nodes_searches():
    dns = pod_dns(pod(ns="shop"), NODE, ["10.96.0.10"], "cluster.local")
    assert render(dns) == ("nameserver 10.96.0.10\n"
                           "search shop.svc.cluster.local svc.cluster.local cluster.local corp.example\n"
                           "options ndots:5\n")


def test_cluster_first_merges_dns_config():
    dns = pod_dns(pod(dnsConfig={"nameservers": ["1.1.1.1", "10.96.0.10"], "searches": ["my.dns.search.suffix"],
                                 "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}),
                  NODE, ["10.96.0.10"], "cluster.local")
    assert dns.nameservers == ["10.96.0.10", "1.1.1.1"]
    assert dns.searches[-1] == "my.dns.search.suffix" and dns.options == ["ndots:2", "edns0"]


def test_none_is_only_dns_config_and_default_is_the_node():
    none = pod_dns(pod(dnsPolicy="None", dnsConfig={"nameservers": ["192.0.2.1"], "searches": ["ns1.svc.cluster-domain.example"],
                                                    "options": [{"name": "ndots", "value": "2"}]}),
                   NODE, ["10.96.0.10"], "cluster.local")
    assert render(none) == "nameserver 192.0.2.1\nsearch ns1.svc.cluster-domain.example\noptions ndots:2\n"
    default = pod_dns(pod(dnsPolicy="Default"), NODE, ["10.96.0.10"], "cluster.local")
    assert (default.nameservers, default.searches, default.options) == (["172.30.0.1"], ["corp.example"], ["ndots:0"])


def test_host_network_cluster_first_falls_back_to_default_unless_with_host_net():
    assert pod_dns(pod(hostNetwork=True), NODE, ["10.96.0.10"], "cluster.local").nameservers == ["172.30.0.1"]
    with_net = pod_dns(pod(hostNetwork=True, dnsPolicy="ClusterFirstWithHostNet"), NODE, ["10.96.0.10"], "cluster.local")
    assert with_net.nameservers == ["10.96.0.10"]


def test_limits_three_nameservers_and_32_searches():
    dns = pod_dns(pod(dnsPolicy="None", dnsConfig={"nameservers": [f"192.0.2.{i}" for i in range(5)],
                                                   "searches": [f"s{i}.example" for i in range(40)]}),
                  NODE, [], "cluster.local")
    assert len(dns.nameservers) == 3 and len(dns.searches) == 32


def test_node_resolver_replaces_dockers_embedded_dns_by_its_upstreams():
    node = "nameserver 127.0.0.11\noptions ndots:0\n"
    docker = "# Generated by Docker\nnameserver 10.255.255.53\nsearch corp.example\n"
    resolver = node_resolver(node, docker)
    assert (resolver.nameservers, resolver.searches, resolver.options) == (["10.255.255.53"], [], ["ndots:0"])
    assert node_resolver("nameserver 9.9.9.9\nsearch a b\n", "").nameservers == ["9.9.9.9"]
    assert parse_resolv_conf("domain x\nsearch a b # c\n").searches == ["a", "b"]


# -- imagePullPolicy --------------------------------------------------------------------------
class _NoImages:
    def __init__(self) -> None:
        self.api = self


def test_never_pull_of_an_absent_image_is_err_image_never_pull():
    resolver = ImageResolver(_NoImages(), {}, pull=lambda image: pytest.fail("Never must not pull"))  # type: ignore[arg-type]
    with pytest.raises(ImageNeverPullError, match='^Container image "busybox:1.36" is not present with pull policy of Never$'):
        resolver.pull("busybox:1.36", "Never")


def test_always_on_a_present_image_says_it_uses_the_local_copy():
    assert "has imagePullPolicy Always" in always_message("busybox", "busybox")
    assert 'using the local copy of "busybox"' in always_message("busybox", "busybox")
    assert 'alias "labctl/web:v1"' in always_message("nginx", "labctl/web:v1")
