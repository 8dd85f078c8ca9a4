"""Defaulting: what kube-apiserver adds before storing, checked field by field."""

from __future__ import annotations

import copy
from decimal import Decimal

import pytest

from labctl.apiserver.defaults import image_tag, pod_qos_class, prepare_service_update
from labctl.apiserver.strategies import strategy_for
from labctl.kube.quantity import canonical_quantity, milli_value, parse_quantity, value


def _pod(*containers: dict, **spec) -> dict:
    return {"metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": list(containers) or [{"name": "c", "image": "nginx:1.25"}], **spec}}


def test_pod_spec_defaults_match_kube():
    pod = _pod()
    strategy_for("pods").default(pod)
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Always"
    assert spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30
    assert spec["schedulerName"] == "default-scheduler"
    assert spec["securityContext"] == {}
    assert spec["serviceAccountName"] == spec["serviceAccount"] == "default"
    assert spec["enableServiceLinks"] is True
    assert {t["key"] for t in spec["tolerations"]} == {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    ctr = spec["containers"][0]
    assert ctr["imagePullPolicy"] == "IfNotPresent"
    assert ctr["terminationMessagePath"] == "/dev/termination-log"
    assert ctr["terminationMessagePolicy"] == "File"
    assert ctr["resources"] == {}


@pytest.mark.parametrize("image, policy", [
    ("nginx", "Always"),
    ("nginx:latest", "Always"),
    ("nginx:1.14.2", "IfNotPresent"),
    ("localhost:5000/web", "Always"),
    ("localhost:5000/web:v1", "IfNotPresent"),
    ("nginx@sha256:abcd", "IfNotPresent"),
    ("nginx:latest@sha256:abcd", "Always"),
])
def test_image_pull_policy_follows_the_tag(image, policy):
    pod = _pod({"name": "c", "image": image})
    strategy_for("pods").default(pod)
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == policy


def test_image_tag_ignores_registry_port():
    assert image_tag("localhost:5000/web") == ""
    assert image_tag("registry:5000/team/web:v2") == "v2"


def test_explicit_values_are_kept():
    pod = _pod({"name": "c", "image": "nginx", "imagePullPolicy": "Never"},
               restartPolicy="Never", dnsPolicy="Default", terminationGracePeriodSeconds=0,
               serviceAccountName="builder")
    strategy_for("pods").default(pod)
    spec = pod["spec"]
    assert spec["containers"][0]["imagePullPolicy"] == "Never"
    assert (spec["restartPolicy"], spec["dnsPolicy"], spec["terminationGracePeriodSeconds"]) == ("Never", "Default", 0)
    assert spec["serviceAccount"] == "builder"


def test_container_ports_and_probes():
    ctr = {"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
           "livenessProbe": {"httpGet": {"port": 80}}, "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 3}}
    pod = _pod(ctr)
    strategy_for("pods").default(pod)
    ctr = pod["spec"]["containers"][0]
    assert ctr["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert ctr["livenessProbe"] == {"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1,
                                    "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3}
    assert ctr["readinessProbe"]["periodSeconds"] == 3


def test_host_network_pods_get_their_container_ports_as_host_ports():
    pod = _pod({"name": "c", "image": "nginx", "ports": [{"containerPort": 80}, {"containerPort": 53, "hostPort": 53}]},
               hostNetwork=True)
    strategy_for("pods").default(pod)
    assert [p["hostPort"] for p in pod["spec"]["containers"][0]["ports"]] == [80, 53]
    plain = _pod({"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]})
    strategy_for("pods").default(plain)
    assert "hostPort" not in plain["spec"]["containers"][0]["ports"][0]


def test_requests_default_from_limits_on_pods_only():
    ctr = {"name": "c", "image": "nginx", "resources": {"limits": {"cpu": "500m", "memory": "128Mi"},
                                                          "requests": {"cpu": "100m"}}}
    pod = _pod(copy.deepcopy(ctr))
    strategy_for("pods").default(pod)
    assert pod["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "100m", "memory": "128Mi"}
    assert pod["status"]["qosClass"] == "Burstable"
    rs = {"spec": {"selector": {"matchLabels": {"a": "b"}},
                   "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [copy.deepcopy(ctr)]}}}}
    strategy_for("replicasets").default(rs)
    assert rs["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "100m"}
    assert "enableServiceLinks" not in rs["spec"]["template"]["spec"]


def test_quantities_are_stored_canonical():
    pod = _pod({"name": "c", "image": "nginx", "resources": {"limits": {"cpu": "1000m", "memory": "2048Mi"}}})
    strategy_for("pods").default(pod)
    assert pod["spec"]["containers"][0]["resources"] == {"limits": {"cpu": "1", "memory": "2Gi"},
                                                         "requests": {"cpu": "1", "memory": "2Gi"}}


@pytest.mark.parametrize("resources, qos", [
    ({}, "BestEffort"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}}, "Guaranteed"),
    ({"limits": {"cpu": "1"}}, "Burstable"),
    ({"requests": {"memory": "1Gi"}}, "Burstable"),
    ({"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "500m"}}, "Burstable"),
])
def test_qos_class(resources, qos):
    pod = _pod({"name": "c", "image": "nginx", "resources": resources})
    strategy_for("pods").default(pod)
    assert pod["status"]["qosClass"] == qos
    assert pod_qos_class(pod["spec"]) == qos


def test_existing_status_is_not_reset():
    pod = _pod()
    pod["status"] = {"phase": "Running", "qosClass": "BestEffort"}
    strategy_for("pods").default(pod)
    assert pod["status"]["phase"] == "Running"


def test_defaulting_is_idempotent():
    pod = _pod({"name": "c", "image": "nginx", "resources": {"limits": {"cpu": "0.5"}}})
    strategy_for("pods").default(pod)
    once = copy.deepcopy(pod)
    strategy_for("pods").default(pod)
    assert pod == once


def test_deployment_defaults():
    deploy = {"spec": {"selector": {"matchLabels": {"app": "web"}},
                       "template": {"metadata": {"labels": {"app": "web"}},
                                    "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}}
    strategy_for("deployments").default(deploy)
    spec = deploy["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["revisionHistoryLimit"] == 10
    assert spec["progressDeadlineSeconds"] == 600
    assert spec["template"]["spec"]["restartPolicy"] == "Always"
    assert spec["selector"] == {"matchLabels": {"app": "web"}}  # never defaulted in apps/v1


def test_recreate_strategy_gets_no_rolling_update():
    deploy = {"spec": {"strategy": {"type": "Recreate"}}}
    strategy_for("deployments").default(deploy)
    assert deploy["spec"]["strategy"] == {"type": "Recreate"}


def test_replicaset_defaults():
    rs = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1"}]}}}}
    strategy_for("replicasets").default(rs)
    assert rs["spec"]["replicas"] == 1
    assert rs["spec"]["template"]["spec"]["dnsPolicy"] == "ClusterFirst"


@pytest.mark.parametrize("svc_type, extra", [
    ("ClusterIP", {}),
    ("NodePort", {"externalTrafficPolicy": "Cluster"}),
    ("LoadBalancer", {"externalTrafficPolicy": "Cluster", "allocateLoadBalancerNodePorts": True}),
])
def test_service_defaults(svc_type, extra):
    svc = {"spec": {"type": svc_type, "selector": {"app": "web"}, "ports": [{"port": 80}]}}
    strategy_for("services").default(svc)
    assert svc["spec"] == {"type": svc_type, "selector": {"app": "web"},
                           "ports": [{"port": 80, "protocol": "TCP", "targetPort": 80}],
                           "sessionAffinity": "None", "internalTrafficPolicy": "Cluster",
                           "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack", **extra}


def test_service_type_and_client_ip_affinity():
    svc = {"spec": {"ports": [{"port": 53, "protocol": "UDP", "targetPort": "dns"}], "sessionAffinity": "ClientIP"}}
    strategy_for("services").default(svc)
    assert svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"][0]["targetPort"] == "dns"
    assert svc["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}


def test_external_name_service_gets_no_ip_families():
    svc = {"spec": {"type": "ExternalName", "externalName": "example.com"}}
    strategy_for("services").default(svc)
    assert "ipFamilies" not in svc["spec"] and "internalTrafficPolicy" not in svc["spec"]


def test_cluster_ip_fills_cluster_ips():
    svc = {"spec": {"clusterIP": "None", "ports": [{"port": 80}]}}
    strategy_for("services").default(svc)
    assert svc["spec"]["clusterIPs"] == ["None"]


def test_prepare_service_update_keeps_allocations_and_drops_node_ports():
    old = {"spec": {"type": "NodePort", "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"],
                    "externalTrafficPolicy": "Cluster",
                    "ports": [{"port": 80, "protocol": "TCP", "nodePort": 30080}]}}
    replaced = {"spec": {"type": "NodePort", "ports": [{"port": 80, "protocol": "TCP"}]}}
    prepare_service_update(old, replaced)
    assert replaced["spec"]["clusterIP"] == "10.96.0.20"
    assert replaced["spec"]["ports"][0]["nodePort"] == 30080
    to_cluster_ip = copy.deepcopy(old)
    to_cluster_ip["spec"]["type"] = "ClusterIP"
    prepare_service_update(old, to_cluster_ip)
    assert "nodePort" not in to_cluster_ip["spec"]["ports"][0]
    assert "externalTrafficPolicy" not in to_cluster_ip["spec"]
    to_external = copy.deepcopy(old)
    to_external["spec"].update(type="ExternalName", externalName="example.com")
    prepare_service_update(old, to_external)
    assert "clusterIP" not in to_external["spec"] and "clusterIPs" not in to_external["spec"]


def test_namespace_defaults():
    ns = {"metadata": {"name": "team-a"}}
    strategy_for("namespaces").default(ns)
    assert ns["spec"] == {"finalizers": ["kubernetes"]}
    assert ns["status"] == {"phase": "Active"}
    assert ns["metadata"]["labels"] == {"kubernetes.io/metadata.name": "team-a"}


def test_secret_node_endpoints_defaults():
    secret = {"data": {}}
    strategy_for("secrets").default(secret)
    assert secret["type"] == "Opaque"
    node = {"status": {"capacity": {"cpu": "2", "memory": "4Gi"}}}
    strategy_for("nodes").default(node)
    assert node["status"]["allocatable"] == {"cpu": "2", "memory": "4Gi"}
    ep = {"subsets": [{"addresses": [{"ip": "10.244.1.2"}], "ports": [{"port": 80}]}]}
    strategy_for("endpoints").default(ep)
    assert ep["subsets"][0]["ports"][0]["protocol"] == "TCP"
    lease = {"spec": {"holderIdentity": "x"}}
    strategy_for("leases").default(lease)
    assert lease == {"spec": {"holderIdentity": "x"}}


@pytest.mark.parametrize("resource", ["pods", "services", "deployments", "replicasets", "namespaces", "nodes"])
@pytest.mark.parametrize("junk", [{}, {"spec": None}, {"spec": {"containers": "x", "ports": 3, "template": 1}},
                                  {"spec": {"containers": [None, 1]}, "metadata": "x"}])
def test_malformed_input_never_raises(resource, junk):
    strategy_for(resource).default(copy.deepcopy(junk))


# --- quantities -----------------------------------------------------------------------

@pytest.mark.parametrize("text, number", [
    ("500m", Decimal("0.5")), ("1", Decimal(1)), ("0.1", Decimal("0.1")), ("128Mi", Decimal(128 * 2**20)),
    ("1Gi", Decimal(2**30)), ("1k", Decimal(1000)), ("1e3", Decimal(1000)), ("1.5G", Decimal(1500000000)),
    ("-2", Decimal(-2)), ("100n", Decimal("1E-7")), (2, Decimal(2)), (0.25, Decimal("0.25")),
])
def test_parse_quantity(text, number):
    assert parse_quantity(text) == number


@pytest.mark.parametrize("bad", ["", "abc", "1.2.3", "5mm", "1 Gi", " 1", "Mi", "1Gb", True, None])
def test_parse_quantity_rejects(bad):
    with pytest.raises(ValueError, match="quantities must match the regular expression"):
        parse_quantity(bad)


@pytest.mark.parametrize("text, canonical", [
    ("1000m", "1"), ("1500m", "1500m"), ("0.5", "500m"), ("2048Mi", "2Gi"), ("1536Mi", "1536Mi"),
    ("1.5Gi", "1536Mi"), ("512", "512"), ("1000", "1k"), ("128974848", "128974848"), ("1e3", "1e3"),
    ("0.0001", "1m"), ("0", "0"), ("100Ki", "100Ki"), ("1000Ki", "1000Ki"),
])
def test_canonical_quantity(text, canonical):
    assert canonical_quantity(text) == canonical


def test_milli_and_whole_values():
    assert milli_value("250m") == 250
    assert milli_value("2") == 2000
    assert value("128Mi") == 134217728
    assert value("0.5") == 1
