"""What a student sees inside a container, with the real kubectl against a real lab: the
environment (ConfigMap, Secret, downward API, resources, Service variables), the
kubelet-managed /etc/hosts and hostname, resolv.conf per dnsPolicy, a missing ConfigMap's
CreateContainerConfigError and its recovery, and imagePullPolicy.

One lab for the module; every test makes objects of its own names, so they pass in any order.
"""

from __future__ import annotations

import base64
import json
import time

import pytest

from labctl.client.waiting import wait_for

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

IMAGE = "labctl/web:v1"


def apply(lab, *objs: dict) -> None:
    lab.kubectl.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)}))


def pod(name: str, env: list | None = None, **spec) -> dict:
    container = {"name": "app", "image": IMAGE, "env": env or [], **spec.pop("container", {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": name}},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [container], **spec}}


def config_map(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def secret(name: str, **data: str) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def service(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"selector": {"app": name}, "ports": [{"name": "http", "port": 80, "targetPort": 80}]}}


def running(lab, name: str, timeout: float = 120) -> dict:
    def check() -> dict | None:
        p = lab.kubectl.json("get", "pod", name)
        return p if (p.get("status") or {}).get("phase") == "Running" and p["status"].get("podIP") else None
    return wait_for(check, timeout, 0.5, f"pod {name} Running")


def waiting_reason(lab, name: str) -> tuple[str, str]:
    statuses = (lab.kubectl.json("get", "pod", name).get("status") or {}).get("containerStatuses") or [{}]
    waiting = (statuses[0].get("state") or {}).get("waiting") or {}
    return waiting.get("reason", ""), waiting.get("message", "")


def sh(lab, name: str, *cmd: str) -> str:
    return lab.kubectl.run("exec", name, "--", *cmd).stdout


def environment(lab, name: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in sh(lab, name, "env").splitlines() if "=" in line)


def events(lab, name: str) -> list[dict]:
    return lab.kubectl.json("get", "events", "--field-selector", f"involvedObject.name={name}")["items"]


def test_env_from_config_maps_secrets_downward_api_resources_and_services(lab):
    apply(lab, config_map("env-cfg", color="blue", size="L"), secret("env-db", password="s3cret"), service("env-web"))
    apply(lab, pod("env-pod", env=[
        {"name": "COLOR", "valueFrom": {"configMapKeyRef": {"name": "env-cfg", "key": "color"}}},
        {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "env-db", "key": "password"}}},
        {"name": "MAYBE", "valueFrom": {"configMapKeyRef": {"name": "absent", "key": "x", "optional": True}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "APP_LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
        {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "CPU_M", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
        {"name": "GREETING", "value": "$(COLOR) at $(ENV_WEB_SERVICE_HOST)"}],
        container={"envFrom": [{"configMapRef": {"name": "env-cfg"}, "prefix": "CFG_"},
                               {"secretRef": {"name": "absent", "optional": True}}],
                   "resources": {"limits": {"memory": "96Mi", "cpu": "250m"}}}))
    p = running(lab, "env-pod")
    env = environment(lab, "env-pod")
    svc = lab.kubectl.json("get", "service", "env-web")["spec"]["clusterIP"]
    assert env["COLOR"] == "blue" and env["PASSWORD"] == "s3cret" and "MAYBE" not in env
    assert env["CFG_color"] == "blue" and env["CFG_size"] == "L"
    assert (env["POD_NAME"], env["POD_NAMESPACE"], env["APP_LABEL"], env["SA"]) == ("env-pod", "default", "env-pod",
                                                                                     "default")
    assert env["NODE"] == p["spec"]["nodeName"] and env["POD_IP"] == p["status"]["podIP"]
    assert env["HOST_IP"] == p["status"]["hostIP"]
    assert env["MEM_MI"] == "96" and env["CPU_M"] == "250"
    assert env["GREETING"] == f"blue at {svc}"
    # the Service variables of "Connecting Applications with Services"
    assert env["ENV_WEB_SERVICE_HOST"] == svc and env["ENV_WEB_SERVICE_PORT"] == "80"
    assert env["ENV_WEB_SERVICE_PORT_HTTP"] == "80" and env["ENV_WEB_PORT"] == f"tcp://{svc}:80"
    assert env["ENV_WEB_PORT_80_TCP"] == f"tcp://{svc}:80" and env["ENV_WEB_PORT_80_TCP_ADDR"] == svc
    assert env["ENV_WEB_PORT_80_TCP_PROTO"] == "tcp" and env["ENV_WEB_PORT_80_TCP_PORT"] == "80"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1" and env["KUBERNETES_PORT_443_TCP_PORT"] == "443"


def test_service_links_can_be_turned_off(lab):
    apply(lab, service("nolinks-web"))
    apply(lab, pod("nolinks", enableServiceLinks=False))
    running(lab, "nolinks")
    env = environment(lab, "nolinks")
    assert "NOLINKS_WEB_SERVICE_HOST" not in env and env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"


def test_missing_config_map_is_create_container_config_error_until_it_appears(lab):
    apply(lab, pod("late-cfg", env=[{"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "late", "key": "level"}}}]))
    _reason, message = wait_for(lambda: (r := waiting_reason(lab, "late-cfg"))[0] == "CreateContainerConfigError" and r,
                               90, 0.5, "CreateContainerConfigError")
    assert message == 'configmap "late" not found'
    assert lab.kubectl.json("get", "pod", "late-cfg")["status"]["phase"] == "Pending"
    shown = lab.kubectl.run("get", "pod", "late-cfg").stdout
    assert "CreateContainerConfigError" in shown
    wait_for(lambda: any(e["type"] == "Warning" and e["reason"] == "Failed"
                         and e["message"] == 'Error: configmap "late" not found' for e in events(lab, "late-cfg")),
             30, 0.5, "the Failed event")
    apply(lab, config_map("late", other="x"))  # the key is still missing
    wait_for(lambda: waiting_reason(lab, "late-cfg")[1] == "couldn't find key level in ConfigMap default/late",
             60, 0.5, "the missing key's message")
    started = time.monotonic()
    apply(lab, config_map("late", level="debug"))
    running(lab, "late-cfg", timeout=60)
    assert time.monotonic() - started < 20  # the retry back-off is at most 10 s
    assert environment(lab, "late-cfg")["LEVEL"] == "debug"


def test_missing_secret_is_named_in_the_waiting_message(lab):
    apply(lab, pod("late-secret", container={"envFrom": [{"secretRef": {"name": "nope"}}]}))
    wait_for(lambda: waiting_reason(lab, "late-secret") == ("CreateContainerConfigError", 'secret "nope" not found'),
             90, 0.5, "CreateContainerConfigError naming the secret")


def test_hosts_file_hostname_subdomain_and_host_aliases(lab):
    apply(lab, pod("hosts-pod", hostname="db-0", subdomain="backend",
                   hostAliases=[{"ip": "127.0.0.1", "hostnames": ["foo.local", "bar.local"]},
                                {"ip": "10.1.2.3", "hostnames": ["foo.remote"]}]))
    p = running(lab, "hosts-pod")
    hosts = sh(lab, "hosts-pod", "cat", "/etc/hosts")
    assert hosts.startswith("# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n")
    assert f"{p['status']['podIP']}\tdb-0.backend.default.svc.cluster.local\tdb-0\n" in hosts
    assert hosts.endswith("# Entries added by HostAliases.\n127.0.0.1\tfoo.local\tbar.local\n10.1.2.3\tfoo.remote\n")
    started = time.monotonic()
    assert sh(lab, "hosts-pod", "hostname", "-f").strip() == "db-0.backend.default.svc.cluster.local"
    assert time.monotonic() - started < 2.0  # answered from /etc/hosts, no DNS timeout
    assert sh(lab, "hosts-pod", "hostname").strip() == "db-0"


def test_host_network_pod_has_the_nodes_hosts_plus_its_aliases(lab):
    apply(lab, pod("hostnet-hosts", hostNetwork=True, hostAliases=[{"ip": "10.1.2.3", "hostnames": ["db.remote"]}]))
    p = running(lab, "hostnet-hosts")
    node_hosts = lab.exec(p["spec"]["nodeName"], "cat", "/etc/hosts").stdout
    hosts = sh(lab, "hostnet-hosts", "cat", "/etc/hosts")
    assert hosts == ("# Kubernetes-managed hosts file (host network).\n" + node_hosts
                     + "\n# Entries added by HostAliases.\n10.1.2.3\tdb.remote\n")
    assert lab.exec(p["spec"]["nodeName"], "cat", "/etc/hosts").stdout == node_hosts  # the node's own file untouched


def test_plain_pod_has_its_ip_and_name_in_hosts(lab):
    apply(lab, pod("plain-hosts"))
    p = running(lab, "plain-hosts")
    assert f"{p['status']['podIP']}\tplain-hosts\n" in sh(lab, "plain-hosts", "cat", "/etc/hosts")
    assert sh(lab, "plain-hosts", "hostname", "-f").strip() == "plain-hosts"


def test_resolv_conf_per_dns_policy(lab):
    apply(lab,
          pod("dns-first", dnsConfig={"searches": ["my.dns.search.suffix"],
                                      "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}),
          pod("dns-none", dnsPolicy="None", dnsConfig={"nameservers": ["192.0.2.1"],
                                                       "searches": ["ns1.svc.cluster-domain.example"],
                                                       "options": [{"name": "ndots", "value": "2"}]}),
          pod("dns-default", dnsPolicy="Default"))
    for name in ("dns-first", "dns-none", "dns-default"):
        running(lab, name)
    first = sh(lab, "dns-first", "cat", "/etc/resolv.conf")
    assert first == ("nameserver 10.96.0.10\n"
                     "search default.svc.cluster.local svc.cluster.local cluster.local my.dns.search.suffix\n"
                     "options ndots:2 edns0\n")
    none = sh(lab, "dns-none", "cat", "/etc/resolv.conf")
    assert none == "nameserver 192.0.2.1\nsearch ns1.svc.cluster-domain.example\noptions ndots:2\n"
    default = sh(lab, "dns-default", "cat", "/etc/resolv.conf")
    node = lab.exec(default_node(lab, "dns-default"), "cat", "/etc/resolv.conf").stdout
    assert "127.0.0.11" in node  # the node's resolver is Docker's embedded DNS ...
    servers = [line.split()[1] for line in default.splitlines() if line.startswith("nameserver")]
    assert servers and not any(s.startswith("127.") for s in servers) and "10.96.0.10" not in servers
    assert "options ndots:0" in default  # ... whose options the pod takes over


def default_node(lab, name: str) -> str:
    return lab.kubectl.json("get", "pod", name)["spec"]["nodeName"]


def test_image_pull_policy_never_and_always(lab):
    apply(lab, pod("never-pull", container={"image": "labctl/not-here:1.0", "imagePullPolicy": "Never"}),
          pod("always-pull", container={"imagePullPolicy": "Always"}))
    wait_for(lambda: waiting_reason(lab, "never-pull") == (
        "ErrImageNeverPull", 'Container image "labctl/not-here:1.0" is not present with pull policy of Never'),
        90, 0.5, "ErrImageNeverPull")
    assert "ErrImageNeverPull" in lab.kubectl.run("get", "pod", "never-pull").stdout
    assert not any(e["reason"] == "Pulling" for e in events(lab, "never-pull"))
    running(lab, "always-pull")
    assert any(e["reason"] == "Pulled" and "imagePullPolicy Always" in e["message"] and "no registry" in e["message"]
               for e in events(lab, "always-pull"))
