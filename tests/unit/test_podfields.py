"""The table of Pod fields labctl honours (labctl/apiserver/podfields.py): every other field is a 422 naming it."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from labctl.agent.kubelet.envvars import FIELD_REFS
from labctl.apiserver import openapi, podfields
from labctl.apiserver.defaults import default_deployment, default_pod
from labctl.apiserver.errors import APIError
from labctl.apiserver.podfields import GIVES_THE_HOST, NOT_HONOURED, refused_fields
from labctl.apiserver.rest import RestAPI
from labctl.apiserver.scope import RequestScope
from labctl.apiserver.storage import SQLiteStore
from labctl.kube.resources import resource_for

ROOT = Path(__file__).resolve().parents[2]


def pod_spec(**container) -> dict:
    return {"containers": [{"name": "app", "image": "nginx", **container}]}


def refused(spec: dict, old: dict | None = None) -> dict[str, str]:
    return {e.field: e.detail for e in refused_fields(spec, "spec", old)}


def test_what_kubectl_run_and_create_deployment_send_passes_once_defaulted():
    """kubectl run web --image=nginx --port=80 --env=A=1 -l app=web, as sent, then kube's defaults."""
    pod = {"metadata": {"name": "web", "labels": {"run": "web"}},
           "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": 80}],
                                    "env": [{"name": "A", "value": "1"}], "resources": {}}],
                    "dnsPolicy": "ClusterFirst", "restartPolicy": "Always"}, "status": {}}
    default_pod(pod)
    assert refused(pod["spec"]) == {}
    deploy = {"metadata": {"name": "web"}, "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
              "strategy": {}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                  {"name": "nginx", "image": "nginx", "resources": {}}]}}}}
    default_deployment(deploy)
    assert refused_fields(deploy["spec"]["template"]["spec"], "spec.template.spec") == []


def test_kubes_own_defaults_and_their_no_op_values_pass():
    spec = pod_spec(imagePullPolicy="IfNotPresent", terminationMessagePath="/dev/termination-log",
                    terminationMessagePolicy="File", stdin=False, tty=False,
                    securityContext={"privileged": False, "allowPrivilegeEscalation": True,
                                     "seccompProfile": {"type": "RuntimeDefault"}},
                    livenessProbe={"httpGet": {"path": "/", "port": 80, "scheme": "HTTP"}, "timeoutSeconds": 1,
                                   "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3},
                    env=[{"name": "NODE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}}])
    spec.update(securityContext={}, schedulerName="default-scheduler", enableServiceLinks=True, hostNetwork=False,
                preemptionPolicy="PreemptLowerPriority", priority=0, dnsPolicy="ClusterFirst", volumes=[],
                tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute",
                              "tolerationSeconds": 300}], os={"name": "linux"})
    assert refused(spec) == {}


@pytest.mark.parametrize("spec,path", [
    (pod_spec(lifecycle={"stopSignal": "SIGUSR1"}), "spec.containers[0].lifecycle.stopSignal"),
    (pod_spec(startupProbe={"grpc": {"port": 9000}}), "spec.containers[0].startupProbe.grpc"),
    (pod_spec(livenessProbe={"grpc": {"port": 9000}}), "spec.containers[0].livenessProbe.grpc"),
    (pod_spec(securityContext={"seLinuxOptions": {"level": "s0"}}), "spec.containers[0].securityContext.seLinuxOptions"),
    (pod_spec(volumeMounts=[{"name": "v", "mountPath": "/v", "subPathExpr": "$(POD)"}]),
     "spec.containers[0].volumeMounts[0].subPathExpr"),
    (pod_spec(resources={"limits": {"ephemeral-storage": "1Gi"}}),
     "spec.containers[0].resources.limits.ephemeral-storage"),
    ({**pod_spec(), "volumes": [{"name": "data", "nfs": {"server": "nfs", "path": "/"}}]}, "spec.volumes[0].nfs"),
    ({**pod_spec(), "volumes": [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {
        "path": "token", "audience": "vault"}}]}}]}, "spec.volumes[0].projected.sources[0].serviceAccountToken.audience"),
    ({**pod_spec(), "securityContext": {"fsGroupChangePolicy": "Always"}}, "spec.securityContext.fsGroupChangePolicy"),
    ({**pod_spec(), "topologySpreadConstraints": []}, None),  # empty: nothing to ignore
    ({**pod_spec(), "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                   "whenUnsatisfiable": "DoNotSchedule"}]},
     "spec.topologySpreadConstraints"),
    ({**pod_spec(), "activeDeadlineSeconds": 60}, "spec.activeDeadlineSeconds"),
    ({**pod_spec(), "anythingNew": 1}, "spec.anythingNew"),  # an allow-list: a field nobody thought of
])
def test_a_field_labctl_would_ignore_is_refused_naming_it(spec: dict, path: str | None):
    assert refused(spec) == ({path: NOT_HONOURED} if path else {})


@pytest.mark.parametrize("spec,path,value", [
    ({**pod_spec(), "os": {"name": "windows"}}, "spec.os.name", '"windows"'),
    (pod_spec(env=[{"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "spec.priority"}}}]),
     "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath", '"spec.priority"'),
    (pod_spec(env=[{"name": "L", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}}]),
     "spec.containers[0].env[0].valueFrom.fieldRef.fieldPath", '"metadata.labels"'),
    ({**pod_spec(), "volumes": [{"name": "huge", "emptyDir": {"medium": "HugePages"}}]},
     "spec.volumes[0].emptyDir.medium", '"HugePages"'),
    ({**pod_spec(), "hostUsers": False}, "spec.hostUsers", "false"),
    (pod_spec(volumeMounts=[{"name": "v", "mountPath": "/v", "mountPropagation": "Bidirectional"}]),
     "spec.containers[0].volumeMounts[0].mountPropagation", '"Bidirectional"'),
])
def test_a_value_labctl_would_ignore_is_refused_with_the_ones_it_honours(spec: dict, path: str, value: str):
    detail = refused(spec)[path]
    assert detail.startswith(f"labctl does not support {value} here (it would be ignored); supported: ")


@pytest.mark.parametrize("spec,path,what", [
    (pod_spec(securityContext={"privileged": True}), "spec.containers[0].securityContext.privileged",
     "every device and capability"),
    (pod_spec(securityContext={"capabilities": {"add": ["NET_RAW", "CAP_SYS_ADMIN"]}}),
     "spec.containers[0].securityContext.capabilities.add[1]", "a capability beyond Docker's defaults"),
    (pod_spec(securityContext={"procMount": "Unmasked"}), "spec.containers[0].securityContext.procMount",
     "an unmasked /proc"),
    (pod_spec(securityContext={"seccompProfile": {"type": "Unconfined"}}),
     "spec.containers[0].securityContext.seccompProfile.type", "every system call"),
    (pod_spec(securityContext={"appArmorProfile": {"type": "Unconfined"}}),
     "spec.containers[0].securityContext.appArmorProfile.type", "an unconfined process"),
    ({**pod_spec(), "hostPID": True}, "spec.hostPID", "its processes"),
    ({**pod_spec(), "hostIPC": True}, "spec.hostIPC", "its IPC namespace"),
    *[({**pod_spec(), "volumes": [{"name": "node", "hostPath": {"path": path}}]}, "spec.volumes[0].hostPath.path",
       "its filesystem, through the node's system paths: use a path like /data or /mnt/...")
      for path in ("/", "/var/run/docker.sock", "/etc", "/var", "/usr/local/bin", "/var/lib/kubelet/pods")],
    ({**pod_spec(), "securityContext": {"sysctls": [{"name": "kernel.shm_rmid_forced", "value": "1"}]}},
     "spec.securityContext.sysctls", "its kernel settings"),
    ({**pod_spec(), "securityContext": {"seccompProfile": {"type": "Unconfined"}}},
     "spec.securityContext.seccompProfile.type", "every system call"),
    ({**pod_spec(), "initContainers": [{"name": "i", "image": "x", "securityContext": {"privileged": True}}]},
     "spec.initContainers[0].securityContext.privileged", "every device and capability"),
    ({**pod_spec(), "ephemeralContainers": [{"name": "d", "image": "x", "securityContext": {"privileged": True}}]},
     "spec.ephemeralContainers[0].securityContext.privileged", "every device and capability"),
])
def test_what_would_give_a_pod_the_host_is_refused_with_that_reason(spec: dict, path: str, what: str):
    assert refused(spec) == {path: f"{GIVES_THE_HOST} ({what})"}


def test_host_ports_and_the_nodes_network_are_honoured():
    """hostPort through labctl-portmap; hostNetwork is the lab node's namespace, not the host's."""
    spec = pod_spec(ports=[{"containerPort": 80, "hostPort": 8081, "hostIP": "172.30.0.3", "protocol": "TCP"}])
    assert refused(spec) == {}
    assert refused({**pod_spec(ports=[{"containerPort": 8080, "hostPort": 8080}]), "hostNetwork": True,
                    "dnsPolicy": "ClusterFirstWithHostNet"}) == {}


def test_volumes_and_security_context_the_kubelet_honours_pass():
    """docs/kubelet.md: what labctl's kubelet mounts and applies (tests/kubelet/test_volumes_lab.py)."""
    spec = pod_spec(volumeMounts=[{"name": "cfg", "mountPath": "/etc/cfg", "readOnly": True},
                                  {"name": "data", "mountPath": "/d", "subPath": "logs", "mountPropagation": "None"}],
                    securityContext={"runAsUser": 1000, "runAsGroup": 3000, "runAsNonRoot": True,
                                     "readOnlyRootFilesystem": True, "allowPrivilegeEscalation": False,
                                     "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}})
    spec["securityContext"] = {"runAsUser": 1000, "runAsGroup": 1000, "runAsNonRoot": True, "fsGroup": 2000,
                               "supplementalGroups": [4000]}
    spec["volumes"] = [
        {"name": "scratch", "emptyDir": {}}, {"name": "ram", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}},
        {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "a", "path": "b", "mode": 0o400}],
                                      "defaultMode": 0o644, "optional": True}},
        {"name": "sec", "secret": {"secretName": "db", "defaultMode": 0o400}},
        {"name": "info", "downwardAPI": {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": "all", "projected": {"defaultMode": 0o440, "sources": [
            {"configMap": {"name": "cfg"}}, {"secret": {"name": "db"}}, {"serviceAccountToken": {"path": "token"}},
            {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}},
        {"name": "data", "hostPath": {"path": "/data/app", "type": "DirectoryOrCreate"}}]
    assert refused(spec) == {}


def test_the_unsafe_values_stay_refused_whatever_the_table_honours_later(monkeypatch):
    monkeypatch.setitem(podfields.CONTAINER, "securityContext", podfields.ANY)
    monkeypatch.setattr(podfields, "CONTAINER_LISTS", ("containers", "initContainers"))
    podfields._tables.cache_clear()
    try:
        spec = {**pod_spec(securityContext={"runAsUser": 1000, "privileged": True}),
                "initContainers": [{"name": "i", "image": "x", "capabilities": None}]}
        assert refused(spec) == {"spec.containers[0].securityContext.privileged": f"{GIVES_THE_HOST} "
                                                                                  "(every device and capability)"}
    finally:
        monkeypatch.undo()
        podfields._tables.cache_clear()


def test_init_containers_sidecars_hooks_and_startup_probes_are_honoured():
    hooks = {"postStart": {"exec": {"command": ["sh", "-c", "echo hi > /m"]}},
             "preStop": {"httpGet": {"path": "/quit", "port": 80, "scheme": "HTTP"}}}
    spec = {**pod_spec(lifecycle=hooks, startupProbe={"exec": {"command": ["true"]}, "failureThreshold": 30}),
            "initContainers": [{"name": "wait", "image": "busybox", "command": ["sh", "-c", "sleep 1"]},
                               {"name": "proxy", "image": "busybox", "restartPolicy": "Always",
                                "lifecycle": {"preStop": {"sleep": {"seconds": 2}}},
                                "startupProbe": {"tcpSocket": {"port": 8080}}}]}
    assert refused(spec) == {}


def test_an_update_is_held_only_to_what_it_changes():
    stored = {**pod_spec(lifecycle={"stopSignal": "SIGUSR1"}), "activeDeadlineSeconds": 60}
    new = copy.deepcopy(stored)
    new["containers"][0]["image"] = "nginx:2"
    assert refused(new, stored) == {}
    new["activeDeadlineSeconds"] = 30
    new["containers"][0]["securityContext"] = {"privileged": True}
    assert set(refused(new, stored)) == {"spec.activeDeadlineSeconds", "spec.containers[0].securityContext.privileged"}


def test_the_fieldref_paths_are_the_kubelets():
    accepted = podfields.CONTAINER["env[].valueFrom.fieldRef.fieldPath"]
    assert {a for a in accepted if isinstance(a, str)} == set(FIELD_REFS)
    assert {a.shown for a in accepted if isinstance(a, podfields.Matching)} == {
        "metadata.labels['<key>']", "metadata.annotations['<key>']"}


def test_what_the_kubelet_builds_a_containers_configuration_from_is_admitted():
    spec = {**pod_spec(envFrom=[{"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
                                {"secretRef": {"name": "s", "optional": True}}],
                       env=[{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a"}}},
                            {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "b", "optional": True}}},
                            {"name": "C", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
                            {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
                            {"name": "E", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                                             "divisor": "1Mi"}}}]),
            "hostname": "db-0", "subdomain": "db", "setHostnameAsFQDN": True, "enableServiceLinks": False,
            "hostAliases": [{"ip": "10.0.0.1", "hostnames": ["db"]}], "dnsPolicy": "None",
            "dnsConfig": {"nameservers": ["192.0.2.1"], "searches": ["x.example"],
                          "options": [{"name": "ndots", "value": "2"}]}}
    assert refused(spec) == {}
    odd = pod_spec(env=[{"name": "E", "valueFrom": {"resourceFieldRef": {"resource": "limits.hugepages-2Mi"}}}])
    assert list(refused(odd)) == ["spec.containers[0].env[0].valueFrom.resourceFieldRef.resource"]


def _schema_has(path: str, schema_name: str) -> bool:
    """Whether ``path`` (the table's syntax) names a field of the OpenAPI schema ``schema_name``."""
    schemas = openapi._schemas()
    schema = schemas[schema_name]
    for segment in podfields._SEGMENT.findall(path):
        while "$ref" in schema or len(schema.get("allOf", ())) == 1:
            ref = schema.get("$ref") or schema["allOf"][0]["$ref"]
            schema = schemas[ref.rsplit("/", 1)[1]]
        if segment == "[]":
            schema = schema.get("items") or {}
        elif isinstance(schema.get("additionalProperties"), dict):
            schema = schema["additionalProperties"]  # a map: any key
        elif segment in (schema.get("properties") or {}):
            schema = schema["properties"][segment]
        else:
            return False
    return True


def test_every_path_of_the_tables_is_a_field_of_the_pod_schema():
    """A typo in the table would refuse the real field and honour nothing."""
    pod_spec_schema, container_schema = "io.k8s.api.core.v1.PodSpec", "io.k8s.api.core.v1.Container"
    for path in [*podfields.POD_SPEC, *podfields.UNSAFE_POD_SPEC, *podfields.CONTAINER_LISTS]:
        assert _schema_has(path, pod_spec_schema), path
    for path in [*podfields.CONTAINER, *podfields.UNSAFE_CONTAINER]:
        assert _schema_has(path, container_schema), path


def _shipped_workloads() -> list[tuple[str, dict]]:
    found = []
    for path in [*ROOT.glob("exercises/**/*.yaml"), ROOT / "labctl/addons/kube-dns.yaml"]:
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") in ("Pod", "Deployment", "ReplicaSet"):
                found.append((f"{path.relative_to(ROOT)}:{doc['metadata']['name']}", doc))
    return found


@pytest.mark.parametrize("where,doc", _shipped_workloads(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_shipped_manifest_is_admitted(where: str, doc: dict):
    if doc["kind"] == "Pod":
        default_pod(doc)
        assert refused_fields(doc["spec"], "spec") == [], where
    else:
        default_deployment(doc)
        assert refused_fields(doc["spec"]["template"]["spec"], "spec.template.spec") == [], where


@pytest.fixture
def api(tmp_path):
    store = SQLiteStore(tmp_path / "store.db")
    api = RestAPI(store)
    api.create(RequestScope(resource_for("namespaces")), {"metadata": {"name": "default"}})
    yield api
    store.close()


def test_the_api_refuses_a_pod_and_a_deployment_template_with_a_422_naming_the_field(api):
    privileged = pod_spec(securityContext={"privileged": True})
    with pytest.raises(APIError) as info:
        api.create(RequestScope(resource_for("pods"), "default"), {"metadata": {"name": "p"}, "spec": privileged})
    assert (info.value.code, info.value.reason) == (422, "Invalid")
    assert info.value.message == (f'Pod "p" is invalid: spec.containers[0].securityContext.privileged: Forbidden: '
                                  f"{GIVES_THE_HOST} (every device and capability)")
    deploy = {"metadata": {"name": "d"}, "spec": {"selector": {"matchLabels": {"app": "d"}}, "template": {
        "metadata": {"labels": {"app": "d"}}, "spec": pod_spec(livenessProbe={"grpc": {"port": 9000}})}}}
    with pytest.raises(APIError) as info:
        api.create(RequestScope(resource_for("deployments"), "default"), deploy)
    assert info.value.message == (f'Deployment.apps "d" is invalid: spec.template.spec.containers[0].livenessProbe.grpc: '
                                  f"Forbidden: {NOT_HONOURED}")
    assert api.store.list(resource_for("pods").key, "default") == []
    assert api.store.list(resource_for("deployments").key, "default") == []


def test_the_streams_fields_are_honoured():
    # kubectl run -it (stdinOnce) and kubectl debug's ephemeral container, as kubectl 1.37 sends them
    debugger = {"name": "debugger-x", "image": "busybox", "stdin": True, "tty": True, "targetContainerName": "web",
                "terminationMessagePolicy": "File", "resources": {},
                "securityContext": {"capabilities": {"add": ["SYS_PTRACE"]}}}
    assert refused({**pod_spec(stdin=True, tty=True, stdinOnce=True), "ephemeralContainers": [debugger]}) == {}
    # SYS_PTRACE only for an ephemeral container (it sees its pod's processes only); nothing more for it
    stronger = {**debugger, "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}
    assert "beyond Docker's defaults" in refused({**pod_spec(), "ephemeralContainers": [stronger]})[
        "spec.ephemeralContainers[0].securityContext.capabilities.add[0]"]
    assert "beyond Docker's defaults" in refused(pod_spec(securityContext={"capabilities": {"add": ["SYS_PTRACE"]}}))[
        "spec.containers[0].securityContext.capabilities.add[0]"]
