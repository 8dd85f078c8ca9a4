"""The Endpoints and LoadBalancer controllers against a real API server process.

The controllers run in-process on their own event loop, exactly as the controller manager
runs them (shared informers, then ``run()``). Pods here are API objects whose status the
test writes (no kubelet): what is under test is the controllers' reading of pods and
Services and what they store — that the stored form equals the computed one (no write
loop), that a terminating pod leaves at once, that hand-written Endpoints survive.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from labctl.client.rest import APIClient, APIStatusError, Credentials, resource_path
from labctl.client.waiting import wait_for as _wait_for
from labctl.controllers.endpoints import EndpointsController
from labctl.controllers.endpointslice import EndpointSliceController
from labctl.controllers.loadbalancer import LoadBalancerController
from support.controllers import ControllersThread


def services_controllers(kubeconfig: Path) -> ControllersThread:
    """The Endpoints, EndpointSlice and LoadBalancer controllers, as the controller manager runs them."""
    return ControllersThread(kubeconfig, [EndpointsController, EndpointSliceController, LoadBalancerController])


def call(kubeconfig: Path, fn):
    async def main():
        async with APIClient(Credentials.from_kubeconfig(kubeconfig)) as client:
            return await fn(client)
    return asyncio.run(main())


def wait_for(check, timeout: float = 10.0, what: str = ""):
    return _wait_for(check, timeout, interval=0.05, what=what)  # fine-grained: "at once" is asserted below


def web_pod(name: str, port: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"app": "web"}},
            "spec": {"nodeName": "worker", "containers": [
                {"name": "web", "image": "labctl/web:v1", "ports": [{"name": "http", "containerPort": port}]}]}}


async def set_pod_running(client: APIClient, name: str, ip: str, ready: bool) -> None:
    path = resource_path("pods", "default", name, "status")
    pod = await client.get(path)
    pod["status"] = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
                     "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    await client.replace(path, pod)


def get(kubeconfig: Path, plural: str, name: str) -> dict | None:
    async def fetch(client):
        try:
            return await client.get(resource_path(plural, "default", name))
        except APIStatusError as err:
            if err.code == 404:
                return None
            raise
    return call(kubeconfig, fetch)


def list_slices(kubeconfig: Path, service: str) -> list[dict]:
    async def fetch(client):
        got = await client.get(resource_path("endpointslices", "default"),
                               labelSelector=f"kubernetes.io/service-name={service}")
        return sorted(got.get("items") or [], key=lambda s: s["metadata"]["name"])
    return call(kubeconfig, fetch)


def addresses(ep: dict | None, key: str = "addresses") -> list[tuple[str, int]]:
    return sorted((a["ip"], p["port"]) for s in (ep or {}).get("subsets") or []
                  for a in s.get(key) or [] for p in s.get("ports") or [])


def test_endpoints_follow_pods_and_terminating_pods_leave_at_once(apiserver):
    kc = apiserver.kubeconfig

    async def setup(client):
        await client.create(resource_path("services", "default"), {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
            "spec": {"selector": {"app": "web"}, "ports": [{"name": "web", "port": 80, "targetPort": "http"}]}})
        for name, port in (("a", 8080), ("b", 9090), ("c", 8080)):
            await client.create(resource_path("pods", "default"), web_pod(name, port))
        await set_pod_running(client, "a", "10.244.1.2", True)
        await set_pod_running(client, "b", "10.244.1.3", True)
        await set_pod_running(client, "c", "10.244.1.4", False)

    with services_controllers(kc):
        call(kc, setup)
        want = [("10.244.1.2", 8080), ("10.244.1.3", 9090)]
        not_ready = [("10.244.1.4", 8080)]  # c: Running, not Ready (its IP may come after a's and b's)
        ep = wait_for(lambda: (e := get(kc, "endpoints", "web")) and addresses(e) == want
                      and addresses(e, "notReadyAddresses") == not_ready and e, what="endpoints")
        slices = wait_for(lambda: (s := list_slices(kc, "web")) and sum(len(x.get("endpoints") or []) for x in s) == 3 and s,
                          what="endpoint slice")
        time.sleep(1.0)  # the stored forms must equal the computed ones: no further writes
        assert get(kc, "endpoints", "web")["metadata"]["resourceVersion"] == ep["metadata"]["resourceVersion"]
        assert [s["metadata"]["resourceVersion"] for s in list_slices(kc, "web")] == \
            [s["metadata"]["resourceVersion"] for s in slices]
        assert len(slices) == 2  # one per port set: 8080 and 9090
        by_ip = {e["addresses"][0]: e["conditions"] for s in slices for e in s["endpoints"]}
        assert by_ip["10.244.1.4"]["ready"] is False and by_ip["10.244.1.2"]["ready"] is True

        started = time.monotonic()
        call(kc, lambda c: c.delete(resource_path("pods", "default", "a")))  # bound: only deletionTimestamp
        assert get(kc, "pods", "a")["metadata"].get("deletionTimestamp")
        wait_for(lambda: addresses(get(kc, "endpoints", "web")) == [("10.244.1.3", 9090)], what="a removed")
        assert time.monotonic() - started < 1.0
        terminating = wait_for(lambda: [e for s in list_slices(kc, "web") for e in s["endpoints"]
                                        if e["addresses"] == ["10.244.1.2"] and e["conditions"].get("terminating")],
                               what="a terminating in its slice")
        assert terminating[0]["conditions"]["ready"] is False

        call(kc, lambda c: set_pod_running(c, "c", "10.244.1.4", True))  # joins when Ready
        wait_for(lambda: ("10.244.1.4", 8080) in addresses(get(kc, "endpoints", "web")), what="c ready")

        call(kc, lambda c: c.delete(resource_path("services", "default", "web")))
        wait_for(lambda: get(kc, "endpoints", "web") is None, what="endpoints deleted with the service")
        wait_for(lambda: not list_slices(kc, "web"), what="slices deleted with the service")


def test_selectorless_service_keeps_hand_written_endpoints(apiserver):
    kc = apiserver.kubeconfig

    async def setup(client):
        await client.create(resource_path("services", "default"), {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"}, "spec": {"ports": [{"port": 5432}]}})
        await client.create(resource_path("endpoints", "default"), {
            "apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "db"},
            "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"port": 5432}]}]})

    with services_controllers(kc):
        call(kc, setup)
        # a Service with a selector created after it: once its (empty) Endpoints exist, the
        # controller has been through "db" too (one queue, resync of every Service)
        call(kc, lambda c: c.create(resource_path("services", "default"), {
            "apiVersion": "v1", "kind": "Service", "metadata": {"name": "later"},
            "spec": {"selector": {"app": "none"}, "ports": [{"port": 80}]}}))
        wait_for(lambda: get(kc, "endpoints", "later") is not None, what="endpoints of 'later'")
        assert addresses(get(kc, "endpoints", "db")) == [("192.0.2.10", 5432)]
        mirrored = wait_for(lambda: list_slices(kc, "db"), what="mirrored slice")
        assert [e["addresses"] for e in mirrored[0]["endpoints"]] == [["192.0.2.10"]]
        assert mirrored[0]["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == \
            "endpointslicemirroring-controller.k8s.io"


def test_load_balancer_ips_come_from_the_lab_pool(apiserver):
    kc = apiserver.kubeconfig

    def lb(name: str) -> dict:
        return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
                "spec": {"type": "LoadBalancer", "selector": {"app": name}, "ports": [{"port": 80}]}}

    async def setup(client):
        await client.create(resource_path("nodes"), {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "worker"},
            "status": {"addresses": [{"type": "InternalIP", "address": "172.30.9.3"}]}})
        for name in ("lb1", "lb2"):
            await client.create(resource_path("services", "default"), lb(name))

    def ingress(name: str) -> list[str]:
        svc = get(kc, "services", name) or {}
        return [i["ip"] for i in ((svc.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []]

    with services_controllers(kc):
        call(kc, setup)
        got = {wait_for(lambda: ingress("lb1"), what="lb1 IP")[0], wait_for(lambda: ingress("lb2"), what="lb2 IP")[0]}
        assert got == {"172.30.9.200", "172.30.9.201"}
        call(kc, lambda c: c.delete(resource_path("services", "default", "lb1")))
        call(kc, lambda c: c.create(resource_path("services", "default"), lb("lb3")))
        assert wait_for(lambda: ingress("lb3"), what="lb3 IP")[0] in got  # the freed IP is reused
        call(kc, lambda c: c.patch(resource_path("services", "default", "lb2"),
                                   {"spec": {"type": "ClusterIP", "ports": [{"port": 80, "nodePort": None}]}}))
        wait_for(lambda: not ingress("lb2"), what="lb2 released its IP")
