#!/usr/bin/env python3
"""The fault table: what a student can break on purpose, under a bounded load, and how the lab heals.

One scratch lab (control plane + two workers) runs a Deployment of 4 web pods behind a
NodePort Service. For each fault, three loops run from the host while it happens:

- the **load**: HTTP GETs at a fixed rate (--rate, default 50/s) to the NodePort on one node's
  InternalIP — only this lab's own node addresses — each with a 1 s time-out;
- **health**: every 0.25 s, the API server's ``/readyz`` answered within 1 s, every Node
  Ready, the Deployment's 4 replicas available;
- **writes**: a ConfigMap created every 0.25 s, the acknowledged (201) names remembered.

The fault is injected after a 3 s baseline; the run ends once everything was healthy and
every request answered for 5 s in a row (at least 10 s after the fault), or after --observe
seconds. The table's columns: the fault, the load, requests sent, failed requests, the
*window* (from the fault to the last failed request or health check; "> N s" if it never
healed), and the *objects lost* (acknowledged ConfigMaps, the lab's Nodes, Services and
Deployment missing afterwards). Prints the table; ``--out FILE`` writes JSON.

    python bench/faults.py --out bench/results/faults.json
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests
from _common import write_json

from labctl.cluster import Lab, down, up
from labctl.cluster.scratch import scratch_topology, unique_name
from labctl.cni.bridge import host_veth_name
from labctl.kube import containers as c
from labctl.topology import parse_topology

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from support.hostile import alias_bomb  # noqa: E402  (the body the API server's tests send)

NODE_PORT = 30080
REPLICAS = 4
BASELINE_S = 3.0
SETTLED_S = 5.0          # healthy this long in a row, after the fault, ends the run
MIN_AFTER_S = 10.0
PROBE_S = 0.25
TIMEOUT_S = 1.0


# -- the lab and its workload -------------------------------------------------------------------
class Bench:
    """The lab under test: admin access over HTTPS, kubectl, docker exec into nodes, node IPs."""

    def __init__(self, lab: Lab, kubeconfig: Path, workdir: Path) -> None:
        self.lab = lab
        self.kubectl = lab.kubectl(kubeconfig)
        config = lab.kubeconfig()
        cluster, user = config["clusters"][0]["cluster"], config["users"][0]["user"]
        self.server = cluster["server"]
        files = {"ca.crt": cluster["certificate-authority-data"], "admin.crt": user["client-certificate-data"],
                 "admin.key": user["client-key-data"]}
        for name, data in files.items():
            (workdir / name).write_bytes(base64.b64decode(data))
            (workdir / name).chmod(0o600)
        self.session_args = {"cert": (str(workdir / "admin.crt"), str(workdir / "admin.key")),
                             "verify": str(workdir / "ca.crt")}
        self.ips = {n.name: n.internal_ip for n in lab.nodes()}

    def api(self, method: str, path: str, **kwargs: object) -> requests.Response:
        """A request as the lab's admin (verify and cert per request: a Session's would lose to
        ``REQUESTS_CA_BUNDLE`` in the environment)."""
        return requests.request(method, self.server + path, timeout=TIMEOUT_S, **self.session_args,  # type: ignore[arg-type]
                                **kwargs)

    def node_exec(self, node: str, *argv: str, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(["docker", "exec", f"{self.lab.name}-{node}", *argv], capture_output=True, text=True,
                              timeout=60, check=check)

    def pod_exec(self, pod: str, script: str, stdin: str | None = None) -> str:
        """Run ``sh -c script`` in a pod (``kubectl exec [-i]``); its output."""
        interactive = ["-i"] if stdin is not None else []
        proc = self.kubectl.run("exec", *interactive, pod, "--", "sh", "-c", script, input=stdin, check=False,
                                timeout=120)
        return (proc.stdout + proc.stderr).strip()

    def apply(self, *objs: dict) -> None:
        self.kubectl.run("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List",
                                                               "items": list(objs)}))

    def wait(self, what: str, check: Callable[[], bool], timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}")
            time.sleep(0.5)


def toolbox(name: str, account: str = "default") -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"serviceAccountName": account, "terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "sh", "image": "labctl/toolbox:latest", "command": ["sleep", "86400"]}]}}


def workload(b: Bench) -> None:
    """4 web pods behind NodePort 30080; a student with edit rights and services/status; two shell pods."""
    labels = {"app": "web"}
    b.apply(
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
         "spec": {"replicas": REPLICAS, "selector": {"matchLabels": labels},
                  "template": {"metadata": {"labels": labels},
                               "spec": {"terminationGracePeriodSeconds": 1,
                                        "containers": [{"name": "web", "image": "labctl/web:v1",
                                                        "readinessProbe": {"httpGet": {"path": "/", "port": 80},
                                                                           "periodSeconds": 1}}]}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
         "spec": {"type": "NodePort", "selector": labels,
                  "ports": [{"port": 80, "targetPort": 80, "nodePort": NODE_PORT}]}},
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "hijack"},
         "spec": {"type": "LoadBalancer", "loadBalancerClass": "example.com/none", "selector": {"app": "none"},
                  "ports": [{"port": 80}]}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "student"}},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "student-edit"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
         "subjects": [{"kind": "ServiceAccount", "name": "student", "namespace": "default"}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "service-status"},
         "rules": [{"apiGroups": [""], "resources": ["services/status"], "verbs": ["get", "patch", "update"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": "student-service-status"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "service-status"},
         "subjects": [{"kind": "ServiceAccount", "name": "student", "namespace": "default"}]},
        toolbox("plain"), toolbox("student", "student"),
    )
    b.kubectl.run("rollout", "status", "deployment/web", "--timeout=300s", timeout=320)
    b.kubectl.run("wait", "--for=condition=Ready", "pod/plain", "pod/student", "--timeout=180s", timeout=200)


# -- the three loops ----------------------------------------------------------------------------
@dataclass
class Record:
    """What the loops saw: (time, ok) per request and per health check, acknowledged writes."""

    requests: list[tuple[float, bool]] = field(default_factory=list)
    health: list[tuple[float, bool, str]] = field(default_factory=list)
    written: list[str] = field(default_factory=list)


class Loops:
    def __init__(self, b: Bench, via: str, rate: float, tag: str) -> None:
        self.b, self.address, self.rate, self.tag = b, b.ips[via], rate, tag
        self.record = Record()
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=t, daemon=True) for t in (self._load, self._health, self._writes)]

    def __enter__(self) -> Loops:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for t in self.threads:
            t.join()

    def _get(self) -> None:
        sent = time.monotonic()
        try:
            conn = http.client.HTTPConnection(self.address, NODE_PORT, timeout=TIMEOUT_S)
            conn.request("GET", "/")
            ok = conn.getresponse().status == 200
            conn.close()
        except OSError:
            ok = False
        self.record.requests.append((sent, ok))

    def _load(self) -> None:
        """Open loop: request i leaves at start + i / rate, whether or not earlier ones answered."""
        start, i = time.monotonic(), 0
        with ThreadPoolExecutor(max_workers=64) as pool:
            while not self.stopping.is_set():
                pause = start + i / self.rate - time.monotonic()
                if pause > 0:
                    time.sleep(pause)
                pool.submit(self._get)
                i += 1

    def _health(self) -> None:
        while not self.stopping.is_set():
            t = time.monotonic()
            why = ""
            try:
                if self.b.api("GET", "/readyz").status_code != 200:
                    why = "API not ready"
                else:
                    nodes = self.b.api("GET", "/api/v1/nodes").json()["items"]
                    ready = {n["metadata"]["name"] for n in nodes
                             if any(x["type"] == "Ready" and x["status"] == "True" for x in n["status"]["conditions"])}
                    dep = self.b.api("GET", "/apis/apps/v1/namespaces/default/deployments/web").json()
                    if ready != set(self.b.ips):
                        why = f"nodes not Ready: {sorted(set(self.b.ips) - ready)}"
                    elif (dep.get("status") or {}).get("availableReplicas") != REPLICAS:
                        why = f"{(dep.get('status') or {}).get('availableReplicas', 0)}/{REPLICAS} web pods available"
            except (requests.RequestException, ValueError, KeyError) as err:
                why = f"API: {type(err).__name__}"
            self.record.health.append((t, not why, why))
            self.stopping.wait(max(0.0, PROBE_S - (time.monotonic() - t)))

    def _writes(self) -> None:
        n = 0
        while not self.stopping.is_set():
            t = time.monotonic()
            name = f"ack-{self.tag}-{n}"
            n += 1
            body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"n": str(n)}}
            try:
                if self.b.api("POST", "/api/v1/namespaces/default/configmaps", json=body).status_code == 201:
                    self.record.written.append(name)
            except requests.RequestException:
                pass
            self.stopping.wait(max(0.0, PROBE_S - (time.monotonic() - t)))

    def settled(self, since: float) -> bool:
        """Healthy, and every request answered, for the last SETTLED_S seconds (all after ``since``)."""
        now = time.monotonic()
        if now - since < SETTLED_S:
            return False
        recent = [ok for t, ok in list(self.record.requests) if t > now - SETTLED_S - TIMEOUT_S and t < now - TIMEOUT_S]
        checks = [ok for t, ok, _ in list(self.record.health) if t > now - SETTLED_S]
        return bool(recent) and all(recent) and bool(checks) and all(checks)


# -- the faults --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fault:
    name: str
    via: str                                # the node whose NodePort takes the load
    inject: Callable[[Bench], str]          # does it; returns a note for the table


def web_pod_on(b: Bench, node: str) -> str:
    pods = b.kubectl.json("get", "pods", "-l", "app=web")["items"]
    return next(p["metadata"]["name"] for p in pods if p["spec"].get("nodeName") == node)


def delete_veth(b: Bench) -> str:
    pod = web_pod_on(b, "worker")
    sandbox = subprocess.run(["docker", "ps", "-q", "--no-trunc", "--filter", f"label={c.CLUSTER_LABEL}={b.lab.name}",
                              "--filter", f"label={c.POD_NAME_LABEL}={pod}",
                              "--filter", f"label={c.CONTAINER_NAME_LABEL}=POD"],
                             capture_output=True, text=True, check=True).stdout.split()[0]
    b.node_exec("worker", "ip", "link", "del", host_veth_name(sandbox, "eth0"), check=True)
    return f"veth of pod {pod}"


def docker_stop_start(b: Bench) -> str:
    subprocess.run(["docker", "stop", "-t", "1", f"{b.lab.name}-worker"], capture_output=True, check=True)
    time.sleep(10)
    subprocess.run(["docker", "start", f"{b.lab.name}-worker"], capture_output=True, check=True)
    return "stopped for 10 s"


def delete_node(b: Bench) -> str:
    b.kubectl.run("delete", "node", "worker2", "--wait=false")
    return ""


API_CALL = ('curl -s -o /dev/null -w "%{{http_code}} %{{time_total}}s" --max-time 30 --cacert {sa}/ca.crt '
            '-H "Authorization: Bearer $(cat {sa}/token)" {args} '
            'https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT{path}')
SA = "/var/run/secrets/kubernetes.io/serviceaccount"


def hijack(pod: str) -> Callable[[Bench], str]:
    def inject(b: Bench) -> str:
        body = json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": b.ips["control-plane"]}]}}})
        answer = b.pod_exec(pod, API_CALL.format(sa=SA, path="/api/v1/namespaces/default/services/hijack/status",
                                                  args=f"-X PATCH -H 'Content-Type: application/merge-patch+json' "
                                                       f"-d '{body}'"))
        time.sleep(3)  # the announcers act on the watch event at once; give them time to be wrong
        announced = [n for n in b.ips if n != "control-plane" and f" {b.ips['control-plane']}/" in
                     b.node_exec(n, "ip", "-4", "-o", "addr", "show", "dev", "eth0").stdout]
        return f"PATCH → {answer}; the control plane's address announced by {', '.join(announced) or 'no node'}"
    return inject


def alias_bombs(b: Bench) -> str:
    b.pod_exec("student", "cat > /tmp/bomb", stdin=alias_bomb().decode())
    call = API_CALL.format(sa=SA, path="/api/v1/namespaces/default/configmaps",
                           args="-X POST -H 'Content-Type: application/yaml' --data-binary @/tmp/bomb")
    return "3 POSTs → " + ", ".join(b.pod_exec("student", call) for _ in range(3))


def in_node(node: str, script: str) -> Callable[[Bench], str]:
    """A fault that is a shell command in a node; the note is what it printed (an error, if any)."""
    def inject(b: Bench) -> str:
        return b.node_exec(node, "sh", "-c", script).stderr.strip()
    return inject


FAULTS = [
    Fault("`iptables -t nat -F` in worker", "worker", in_node("worker", "iptables -t nat -F")),
    Fault("`iptables -t nat -F && -X` in worker", "worker",
          in_node("worker", "iptables -t nat -F && iptables -t nat -X")),
    Fault("`ip link del` of a pod's veth (worker)", "worker", delete_veth),
    Fault("`kill -9` of the node agent (worker)", "worker", in_node("worker", "pkill -9 -f 'labctl.agent --config'")),
    Fault("`kill -9` of the API server", "worker",
          in_node("control-plane", "pkill -9 -f 'labctl.apiserver --data-dir'")),
    Fault("`docker stop` + `docker start` of worker", "worker2", docker_stop_start),
    Fault("`kubectl delete node worker2`", "worker2", delete_node),
    Fault("LoadBalancer status PATCH from a pod (its own token)", "worker", hijack("plain")),
    Fault("LoadBalancer status PATCH from a pod allowed to write it", "worker", hijack("student")),
    Fault("YAML alias bomb ×3 from a pod allowed to create", "worker", alias_bombs),
]


def baseline_objects(b: Bench) -> set[str]:
    """The lab's Nodes, Services and Deployments, as kind/name."""
    found = set()
    for kind in ("nodes", "services", "deployments"):
        found |= {f"{kind}/{o['metadata']['name']}" for o in b.kubectl.json("get", kind)["items"]}
    return found


def run_fault(b: Bench, i: int, fault: Fault, rate: float, observe: float) -> dict:
    before = baseline_objects(b)
    with Loops(b, fault.via, rate, tag=str(i)) as loops:
        time.sleep(BASELINE_S)
        injected = time.monotonic()
        note = fault.inject(b) or ""
        deadline = injected + observe
        while time.monotonic() < deadline and not (time.monotonic() - injected >= MIN_AFTER_S
                                                    and loops.settled(injected)):
            time.sleep(0.25)
        healed = time.monotonic() < deadline
        time.sleep(TIMEOUT_S)  # the last requests' answers
    rec = loops.record
    bad = [t for t, ok in rec.requests if not ok] + [t for t, ok, _ in rec.health if not ok]
    causes = sorted({why for t, ok, why in rec.health if not ok})
    last_bad = max((t for t in bad if t >= injected), default=None)
    window = 0.0 if last_bad is None else last_bad - injected
    configmaps = {o["metadata"]["name"] for o in b.kubectl.json("get", "configmaps")["items"]}
    lost = sorted(set(rec.written) - configmaps) + sorted(before - baseline_objects(b))
    failures = sum(not ok for _, ok in rec.requests)
    return {"fault": fault.name, "load": f"{rate:g} req/s → {fault.via}:{NODE_PORT}", "requests": len(rec.requests),
            "failures": failures, "window_s": round(window, 1), "healed": healed, "objects_lost": len(lost),
            "lost": lost[:10], "writes_acknowledged": len(rec.written), "unhealthy": causes[:6], "note": note}


def table(rows: list[dict], observe: float) -> str:
    lines = ["| fault | load | requests | failures | window | objects lost | notes |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        window = f"{r['window_s']:.1f} s" if r["healed"] else f"> {observe:.0f} s (not healed)"
        notes = "; ".join(x for x in [r["note"], ", ".join(r["unhealthy"])] if x)
        lines.append(f"| {r['fault']} | {r['load']} | {r['requests']:,} | {r['failures']:,} | {window} | "
                     f"{r['objects_lost']} (of {r['writes_acknowledged']} writes) | {notes} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=float, default=50.0, help="NodePort requests per second")
    parser.add_argument("--observe", type=float, default=90.0, help="seconds after a fault before giving up on it")
    parser.add_argument("--only", action="append", help="run only faults whose name contains this")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    name = unique_name("faults")
    started, load_before = time.strftime("%Y-%m-%d %H:%M"), os.getloadavg()
    faults = [f for f in FAULTS if not args.only or any(o in f.name for o in args.only)]
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        kubeconfig = Path(tmp) / "kubeconfig"
        topology = parse_topology(scratch_topology(name), "bench/faults.py")
        print(f"creating lab {name} ...", flush=True)
        lab = up(topology, kubeconfig_path=kubeconfig)
        rows = []
        try:
            b = Bench(lab, kubeconfig, Path(tmp))
            workload(b)
            for i, fault in enumerate(faults):
                print(f"[{i + 1}/{len(faults)}] {fault.name} ...", flush=True)
                rows.append(run_fault(b, i, fault, args.rate, args.observe))
                print(f"    {rows[-1]}", flush=True)
        finally:
            lab.close()
            down(name, kubeconfig_path=kubeconfig)
    print()
    print(table(rows, args.observe))
    write_json(args.out, {"date": started, "machine": platform.platform(), "cores": os.cpu_count(),
                          "load_before": load_before, "load_after": os.getloadavg(), "rate": args.rate,
                          "observe_s": args.observe, "git": subprocess.run(["git", "-C", str(ROOT), "log", "-1",
                                                                             "--format=%h %s"], capture_output=True,
                                                                            text=True).stdout.strip(),
                          "rows": rows})


if __name__ == "__main__":
    main()
