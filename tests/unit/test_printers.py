"""Server-side Tables: the cells ``kubectl get`` shows for typical objects, as a real cluster prints them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from labctl.apiserver.strategies import Strategy, strategy_for
from labctl.kube.printers import TablePrinter, build_table, human_duration
from labctl.kube.resources import RESOURCES

NOW = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


def ago(seconds: float) -> str:
    return (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def printer(resource: str) -> TablePrinter:
    """The kind's print handler; a kind labctl does not serve (``widgets``) gets the generic strategy's."""
    return strategy_for(resource).printer if resource in {rt.plural for rt in RESOURCES} else Strategy.printer


def cells(resource: str, obj: dict) -> list:
    return build_table(printer(resource), [obj], now=NOW)["rows"][0]["cells"]


def header(resource: str, wide: bool = False) -> list[str]:
    """The header line kubectl prints: upper-cased names, priority-1 columns only with -o wide."""
    cols = build_table(printer(resource), [], now=NOW)["columnDefinitions"]
    return [c["name"].upper() for c in cols if wide or c["priority"] == 0]


@pytest.mark.parametrize("seconds, text", [
    (-3, "<invalid>"), (-1.5, "0s"), (0, "0s"), (5, "5s"), (119, "119s"), (120, "2m"), (200, "3m20s"),
    (599, "9m59s"), (600, "10m"), (3 * 3600 - 1, "179m"), (3 * 3600, "3h"), (3 * 3600 + 60, "3h1m"),
    (8 * 3600, "8h"), (10 * 3600, "10h"), (47 * 3600, "47h"), (48 * 3600, "2d"), (51 * 3600, "2d3h"),
    (8 * 86400, "8d"), (729 * 86400, "729d"), (730 * 86400, "2y"), (800 * 86400, "2y70d"),
    (8 * 365 * 86400, "8y"),
])
def test_human_duration_matches_kubernetes(seconds, text):
    assert human_duration(seconds) == text


def test_table_shape_and_include_object():
    pod = {"metadata": {"name": "p", "namespace": "default", "creationTimestamp": ago(5)}, "spec": {}}
    table = build_table(printer("pods"), [pod], now=NOW)
    assert (table["kind"], table["apiVersion"]) == ("Table", "meta.k8s.io/v1")
    assert table["columnDefinitions"][0] == {**table["columnDefinitions"][0], "name": "Name", "type": "string",
                                             "format": "name", "priority": 0}
    assert table["rows"][0]["object"] == {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                          "metadata": pod["metadata"]}
    assert build_table(printer("pods"), [pod], "Object", now=NOW)["rows"][0]["object"] is pod
    assert "object" not in build_table(printer("pods"), [pod], "None", now=NOW)["rows"][0]


@pytest.mark.parametrize("resource, normal, wide", [
    ("pods", "NAME READY STATUS RESTARTS AGE", "IP NODE NOMINATED NODE READINESS GATES"),
    ("services", "NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE", "SELECTOR"),
    ("nodes", "NAME STATUS ROLES AGE VERSION", "INTERNAL-IP EXTERNAL-IP OS-IMAGE KERNEL-VERSION CONTAINER-RUNTIME"),
    ("deployments", "NAME READY UP-TO-DATE AVAILABLE AGE", "CONTAINERS IMAGES SELECTOR"),
    ("replicasets", "NAME DESIRED CURRENT READY AGE", "CONTAINERS IMAGES SELECTOR"),
    ("events", "LAST SEEN TYPE REASON OBJECT MESSAGE", "SUBOBJECT SOURCE FIRST SEEN COUNT NAME"),
    ("endpoints", "NAME ENDPOINTS AGE", ""),
    ("endpointslices", "NAME ADDRESSTYPE PORTS ENDPOINTS AGE", ""),
    ("namespaces", "NAME STATUS AGE", ""),
    ("configmaps", "NAME DATA AGE", ""),
    ("secrets", "NAME TYPE DATA AGE", ""),
    ("serviceaccounts", "NAME SECRETS AGE", ""),
    ("leases", "NAME HOLDER AGE", ""),
    ("widgets", "NAME CREATED AT", ""),  # kube's default table convertor
])
def test_headers(resource, normal, wide):
    assert " ".join(header(resource)) == normal
    extra = [h for h in header(resource, wide=True) if h not in header(resource)]
    assert " ".join(extra) == wide


# -- pods ------------------------------------------------------------------------------------------

def pod(containers=None, init=None, phase="Running", conditions=None, spec=None, **meta) -> dict:
    """A pod whose containers are ``(name, state, ready, restarts, last_finished_ago)`` tuples."""
    def statuses(items, specs):
        out = []
        for name, state, ready, restarts, finished, *extra in items:
            status = {"name": name, "state": state, "ready": ready, "restartCount": restarts}
            if finished is not None:
                status["lastState"] = {"terminated": {"exitCode": 1, "finishedAt": ago(finished)}}
            if extra:
                status["started"] = extra[0]
            out.append(status)
            specs.append({"name": name, "image": "busybox"})
        return out
    spec = dict(spec or {})
    spec["containers"], init_specs = [], []
    status = {"phase": phase, "conditions": conditions or [],
              "containerStatuses": statuses(containers or [], spec["containers"])}
    if init is not None:
        status["initContainerStatuses"] = statuses(init, init_specs)
        spec["initContainers"] = spec.get("initContainers") or init_specs
    return {"metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(200), **meta},
            "spec": spec, "status": status}


RUNNING = {"running": {"startedAt": ago(100)}}
READY = [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}]


def waiting(reason):
    return {"waiting": {"reason": reason}}


def terminated(reason="", code=0, signal=0):
    return {"terminated": {"reason": reason, "exitCode": code, "signal": signal}}


@pytest.mark.parametrize("case, obj, ready, status, restarts", [
    ("running", pod([("web", RUNNING, True, 0, None)], conditions=READY), "1/1", "Running", "0"),
    ("restarted", pod([("web", RUNNING, True, 1, 5)], conditions=READY), "1/1", "Running", "1 (5s ago)"),
    ("unscheduled", pod(phase="Pending", spec={"containers": []}), "0/0", "Pending", "0"),
    ("creating", pod([("web", waiting("ContainerCreating"), False, 0, None)], phase="Pending"),
     "0/1", "ContainerCreating", "0"),
    ("crashloop", pod([("web", waiting("CrashLoopBackOff"), False, 5, 30)]), "0/1", "CrashLoopBackOff",
     "5 (30s ago)"),
    ("errimagepull", pod([("web", waiting("ErrImagePull"), False, 0, None)], phase="Pending"),
     "0/1", "ErrImagePull", "0"),
    ("imagepullbackoff", pod([("web", waiting("ImagePullBackOff"), False, 0, None)], phase="Pending"),
     "0/1", "ImagePullBackOff", "0"),
    ("completed", pod([("job", terminated("Completed"), False, 0, None)], phase="Succeeded"),
     "0/1", "Completed", "0"),
    ("error", pod([("job", terminated("Error", 1), False, 0, None)], phase="Failed"), "0/1", "Error", "0"),
    ("oom-no-reason", pod([("web", terminated(code=137), False, 0, None)]), "0/1", "ExitCode:137", "0"),
    ("signal", pod([("web", terminated(signal=9), False, 0, None)]), "0/1", "Signal:9", "0"),
    ("two-of-three-ready", pod([("a", RUNNING, True, 0, None), ("b", RUNNING, False, 0, None),
                                ("c", RUNNING, True, 0, None)]), "2/3", "Running", "0"),
    ("init-running", pod([("web", waiting("PodInitializing"), False, 0, None)],
                         init=[("i1", RUNNING, False, 0, None), ("i2", waiting("PodInitializing"), False, 0, None)],
                         phase="Pending"), "0/1", "Init:0/2", "0"),
    ("init-second", pod([("web", waiting("PodInitializing"), False, 0, None)],
                        init=[("i1", terminated("Completed"), False, 0, None), ("i2", RUNNING, False, 0, None)],
                        phase="Pending"), "0/1", "Init:1/2", "0"),
    ("init-crashloop", pod([("web", waiting("PodInitializing"), False, 0, None)],
                           init=[("i1", waiting("CrashLoopBackOff"), False, 3, 10)], phase="Pending"),
     "0/1", "Init:CrashLoopBackOff", "3 (10s ago)"),
    ("init-error", pod([("web", waiting("PodInitializing"), False, 0, None)],
                       init=[("i1", terminated("Error", 1), False, 0, None)], phase="Pending"),
     "0/1", "Init:Error", "0"),
    ("init-exitcode", pod([], init=[("i1", terminated(code=2), False, 0, None)], phase="Pending"),
     "0/0", "Init:ExitCode:2", "0"),
    ("terminating", pod([("web", RUNNING, True, 0, None)], conditions=READY, deletionTimestamp=ago(1)),
     "1/1", "Terminating", "0"),
    ("succeeded-deleted", pod([("job", terminated("Completed"), False, 0, None)], phase="Succeeded",
                              deletionTimestamp=ago(1)), "0/1", "Completed", "0"),
    ("completed-but-one-running", pod([("a", RUNNING, True, 0, None), ("b", terminated("Completed"), False, 0,
                                                                      None)], conditions=READY),
     "1/2", "Running", "0"),
    ("completed-but-one-running-not-ready", pod([("a", RUNNING, True, 0, None),
                                                 ("b", terminated("Completed"), False, 0, None)]),
     "1/2", "NotReady", "0"),
    ("scheduling-gated", pod(phase="Pending", conditions=[{"type": "PodScheduled", "status": "False",
                                                           "reason": "SchedulingGated"}]), "0/0", "SchedulingGated",
     "0"),
])
def test_pod_ready_status_restarts(case, obj, ready, status, restarts):
    assert cells("pods", obj)[1:4] == [ready, status, restarts]


def test_pod_node_lost():
    lost = pod([("web", RUNNING, True, 0, None)])
    lost["status"]["reason"] = "NodeLost"
    # A running container sets no reason, so the pod's own reason shows.
    assert cells("pods", lost)[1:3] == ["1/1", "NodeLost"]
    lost["metadata"]["deletionTimestamp"] = ago(1)
    assert cells("pods", lost)[2] == "Unknown"


def test_pod_sidecar_counts_toward_ready():
    obj = pod([("web", RUNNING, True, 0, None)], init=[("proxy", RUNNING, True, 2, 60, True)], conditions=READY,
              spec={"initContainers": [{"name": "proxy", "image": "envoy", "restartPolicy": "Always"}]})
    assert cells("pods", obj)[1:4] == ["2/2", "Running", "2 (60s ago)"]


def test_pod_wide_cells_and_completed_row_condition():
    obj = pod([("web", RUNNING, True, 0, None)], conditions=READY + [{"type": "example.com/gate", "status": "True"}],
              spec={"nodeName": "lab-worker", "readinessGates": [{"conditionType": "example.com/gate"},
                                                                 {"conditionType": "example.com/other"}]})
    obj["status"]["podIPs"] = [{"ip": "10.244.1.7"}]
    assert cells("pods", obj)[4:] == ["3m20s", "10.244.1.7", "lab-worker", "<none>", "1/2"]
    assert cells("pods", pod())[5:8] == ["<none>", "<none>", "<none>"]
    done = pod([("job", terminated("Completed"), False, 0, None)], phase="Succeeded")
    row = build_table(printer("pods"), [done], now=NOW)["rows"][0]
    assert row["conditions"] == [{"type": "Completed", "status": "True", "reason": "Succeeded",
                                  "message": "The pod has completed successfully."}]


# -- services, endpoints -----------------------------------------------------------------------------

def service(type_, ports, **spec) -> dict:
    return {"metadata": {"name": "web", "creationTimestamp": ago(30)},
            "spec": {"type": type_, "clusterIP": "10.96.0.20", "clusterIPs": ["10.96.0.20"], "ports": ports, **spec}}


@pytest.mark.parametrize("obj, expected", [
    (service("ClusterIP", [{"port": 80, "protocol": "TCP"}], selector={"app": "web"}),
     ["ClusterIP", "10.96.0.20", "<none>", "80/TCP", "30s", "app=web"]),
    (service("NodePort", [{"port": 80, "nodePort": 30000, "protocol": "TCP"},
                          {"port": 53, "nodePort": 30053, "protocol": "UDP"}]),
     ["NodePort", "10.96.0.20", "<none>", "80:30000/TCP,53:30053/UDP", "30s", "<none>"]),
    (service("LoadBalancer", [{"port": 80, "nodePort": 31000, "protocol": "TCP"}]),
     ["LoadBalancer", "10.96.0.20", "<pending>", "80:31000/TCP", "30s", "<none>"]),
    ({**service("LoadBalancer", [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]),
      "status": {"loadBalancer": {"ingress": [{"ip": "172.30.0.200"}]}}},
     ["LoadBalancer", "10.96.0.20", "172.30.0.200", "443:31443/TCP", "30s", "<none>"]),
    (service("ClusterIP", [{"port": 80, "protocol": "TCP"}], externalIPs=["192.0.2.1"]),
     ["ClusterIP", "10.96.0.20", "192.0.2.1", "80/TCP", "30s", "<none>"]),
    (service("ClusterIP", [], clusterIP="None", clusterIPs=["None"]),
     ["ClusterIP", "None", "<none>", "<none>", "30s", "<none>"]),
    (service("ExternalName", [], clusterIPs=[], clusterIP="", externalName="example.com"),
     ["ExternalName", "<none>", "example.com", "<none>", "30s", "<none>"]),
])
def test_service_cells(obj, expected):
    assert cells("services", obj)[1:] == expected


def test_endpoints_and_slices():
    ep = {"metadata": {"name": "web", "creationTimestamp": ago(9)},
          "subsets": [{"addresses": [{"ip": f"10.244.1.{i}"} for i in range(1, 5)], "ports": [{"port": 8080}]}]}
    assert cells("endpoints", ep)[1] == "10.244.1.1:8080,10.244.1.2:8080,10.244.1.3:8080 + 1 more..."
    assert cells("endpoints", {"metadata": {"name": "x"}})[1:] == ["<none>", "<unknown>"]
    eps = {"metadata": {"name": "web-abc"}, "addressType": "IPv4", "ports": [{"port": 8080}, {"name": "dns"}],
           "endpoints": [{"addresses": ["10.244.1.1"]}, {"addresses": ["10.244.2.1"]}]}
    assert cells("endpointslices", eps)[1:4] == ["IPv4", "8080,dns", "10.244.1.1,10.244.2.1"]
    assert cells("endpointslices", {"metadata": {"name": "e"}, "addressType": "IPv4"})[2:4] == ["<unset>", "<unset>"]


# -- nodes, workloads, others -----------------------------------------------------------------------

def node(labels, ready="True", unschedulable=False) -> dict:
    return {"metadata": {"name": "lab-control-plane", "labels": labels, "creationTimestamp": ago(600)},
            "spec": {"unschedulable": unschedulable},
            "status": {"conditions": [{"type": "MemoryPressure", "status": "False"},
                                      {"type": "Ready", "status": ready}],
                       "addresses": [{"type": "InternalIP", "address": "172.30.0.2"},
                                     {"type": "Hostname", "address": "lab-control-plane"}],
                       "nodeInfo": {"kubeletVersion": "v1.37.0-labctl", "osImage": "Debian GNU/Linux 12 (bookworm)",
                                    "kernelVersion": "6.1.0", "containerRuntimeVersion": "docker://20.10.24"}}}


@pytest.mark.parametrize("obj, status, roles", [
    (node({"node-role.kubernetes.io/control-plane": ""}), "Ready", "control-plane"),
    (node({"kubernetes.io/role": "worker"}), "Ready", "worker"),
    (node({"node-role.kubernetes.io/control-plane": "", "node-role.kubernetes.io/master": ""}), "Ready",
     "control-plane,master"),
    (node({}, ready="False", unschedulable=True), "NotReady,SchedulingDisabled", "<none>"),
    (node({}, ready="Unknown"), "NotReady", "<none>"),
    ({"metadata": {"name": "n"}, "spec": {"unschedulable": True}}, "Unknown,SchedulingDisabled", "<none>"),
])
def test_node_status_and_roles(obj, status, roles):
    assert cells("nodes", obj)[1:3] == [status, roles]


def test_node_wide_cells():
    assert cells("nodes", node({}))[3:] == ["10m", "v1.37.0-labctl", "172.30.0.2", "<none>",
                                            "Debian GNU/Linux 12 (bookworm)", "6.1.0", "docker://20.10.24"]


def test_deployment_and_replicaset_counts():
    template = {"spec": {"containers": [{"name": "web", "image": "lab/web:1"}, {"name": "log", "image": "busybox"}]}}
    deploy = {"metadata": {"name": "web", "creationTimestamp": ago(3600)},
              "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}, "template": template},
              "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}}
    assert cells("deployments", deploy)[1:] == ["2/3", 3, 2, "60m", "web,log", "lab/web:1,busybox", "app=web"]
    fresh = {"metadata": {"name": "new"}, "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "x"}}}}
    assert cells("deployments", fresh)[1:4] == ["0/2", 0, 0]
    rs = {"metadata": {"name": "web-5d8f7", "creationTimestamp": ago(3600)},
          "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "pod-template-hash": "5d8f7"}},
                   "template": template},
          "status": {"replicas": 3, "readyReplicas": 1}}
    assert cells("replicasets", rs)[1:] == [3, 3, 1, "60m", "web,log", "lab/web:1,busybox",
                                            "app=web,pod-template-hash=5d8f7"]
    scaled_down = {"metadata": {"name": "old"}, "spec": {"replicas": 0}, "status": {"replicas": 0}}
    assert cells("replicasets", scaled_down)[1:4] == [0, 0, 0]


def test_event_cells():
    ev = {"metadata": {"name": "web.1787", "namespace": "default"},
          "involvedObject": {"kind": "Pod", "name": "web", "fieldPath": "spec.containers{web}"},
          "reason": "Pulled", "type": "Normal", "message": "Container image already present \n",
          "source": {"component": "kubelet", "host": "lab-worker"},
          "firstTimestamp": ago(300), "lastTimestamp": ago(20), "count": 4}
    assert cells("events", ev) == ["20s", "Normal", "Pulled", "pod/web", "spec.containers{web}",
                                   "kubelet, lab-worker", "Container image already present", "5m", 4, "web.1787"]
    new_api = {"metadata": {"name": "e2"}, "involvedObject": {"kind": "Node"},
               "eventTime": "2026-11-30T11:59:50.000000Z",
               "reportingComponent": "labctl-scheduler", "type": "Warning", "reason": "FailedScheduling"}
    assert cells("events", new_api)[:4] == ["10s", "Warning", "FailedScheduling", "node"]
    assert cells("events", new_api)[5] == "labctl-scheduler"
    assert cells("events", new_api)[8] == 1


@pytest.mark.parametrize("resource, obj, expected", [
    ("namespaces", {"metadata": {"name": "kube-system", "creationTimestamp": ago(86400 * 3)},
                    "status": {"phase": "Active"}}, ["kube-system", "Active", "3d"]),
    ("configmaps", {"metadata": {"name": "c", "creationTimestamp": ago(1)}, "data": {"a": "1", "b": "2"},
                    "binaryData": {"c": "AA=="}}, ["c", 3, "1s"]),
    ("secrets", {"metadata": {"name": "s", "creationTimestamp": ago(1)}, "type": "Opaque", "data": {"k": "dg=="}},
     ["s", "Opaque", 1, "1s"]),
    ("serviceaccounts", {"metadata": {"name": "default", "creationTimestamp": ago(1)}}, ["default", 0, "1s"]),
    ("leases", {"metadata": {"name": "labctl-scheduler", "creationTimestamp": ago(1)},
                "spec": {"holderIdentity": "lab-control-plane_1"}}, ["labctl-scheduler", "lab-control-plane_1", "1s"]),
    ("widgets", {"metadata": {"name": "w", "creationTimestamp": ago(7200)}}, ["w", ago(7200)]),
    ("widgets", {"metadata": {"name": "w"}}, ["w", "0001-01-01T00:00:00Z"]),
])
def test_simple_resources(resource, obj, expected):
    assert cells(resource, obj) == expected
