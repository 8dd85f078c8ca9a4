"""The TUI against a real lab (Pilot): what it shows is what the nodes and the API server say, and
what it does changes the cluster.

One lab for the module; every test makes the state it needs (the current pods, a rollout from
whatever image runs now) and waits for what it checks, so the tests pass in any order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
from pilot_wait import until

from labctl.cluster import Lab
from labctl.tui.app import LabApp
from labctl.tui.live import LiveSource
from labctl.tui.screens.dialogs import PromptScreen
from labctl.tui.widgets.command_bar import CommandBar
from labctl.tui.widgets.object_table import ObjectTable

pytestmark = [pytest.mark.docker, pytest.mark.kubectl]

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: tui-web, namespace: default}
spec:
  replicas: 3
  selector: {matchLabels: {app: tui-web}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: tui-web}}
    spec:
      containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: tui-web, namespace: default}
spec:
  type: NodePort
  selector: {app: tui-web}
  ports: [{port: 80, targetPort: 80}]
"""


@pytest.fixture(scope="module")
def web(lab):
    """The lab with Deployment and NodePort Service ``tui-web`` (3 replicas, rolled out)."""
    lab.kubectl.run("apply", "-f", "-", input=MANIFEST)
    lab.kubectl.run("rollout", "status", "deployment/tui-web", "--timeout=180s", timeout=200)
    return lab


def settled(lab) -> None:
    lab.kubectl.run("rollout", "status", "deployment/tui-web", "--timeout=180s", timeout=200)


def run_app(lab, view: str, body: Callable[[LabApp, object], Awaitable[None]], node: str | None = None) -> None:
    async def main() -> None:
        app = LabApp(LiveSource(Lab.open(lab.name)), view, node)
        async with app.run_test(size=(160, 48)) as pilot:
            await until(pilot, lambda: app.state.synced, "the informers to list the lab")
            await body(app, pilot)

    asyncio.run(main())


def table(app: LabApp, selector: str = "#table") -> ObjectTable:
    return app.screen.query_one(selector, ObjectTable)


def text_of(app: LabApp, selector: str) -> str:
    return str(app.screen.query_one(selector).render())


def test_pods_view_shows_the_real_pod_ips(web) -> None:
    settled(web)
    pods = web.kubectl.json("get", "pods", "-A")["items"]
    expected = {(p["metadata"]["name"], p["spec"]["nodeName"], p["status"]["podIP"]) for p in pods
                if p["status"].get("podIP") and not p["metadata"].get("deletionTimestamp")}

    async def body(app: LabApp, pilot) -> None:
        def shown() -> set[tuple[str, str, str]]:
            node, out = "", set()
            for row in table(app).rows_shown:
                if row.group:
                    node = row.ref.name
                else:
                    out.add((row.ref.name, node, row.cells[1]))
            return out

        await until(pilot, lambda: expected <= shown(), f"the pods' IPs under their nodes: {sorted(expected)}")

    run_app(web, "pods", body)


def test_network_view_shows_the_veths_ip_link_shows_in_the_node(web) -> None:
    settled(web)
    links = json.loads(web.exec("worker", "ip", "-j", "link", "show", "master", "cni0").stdout)
    veths = {link["ifname"] for link in links}
    assert veths, "the worker runs pods, so cni0 has ports"

    async def body(app: LabApp, pilot) -> None:
        await until(pilot, lambda: app.state.network is not None, "the node inspection")
        await until(pilot, lambda: all(v in text_of(app, "#net-bridge") for v in veths),
                    f"every veth of the worker's cni0 in the view: {sorted(veths)}")
        assert "worker" in text_of(app, "#net-node")

    run_app(web, "network", body, node="worker")


def test_traffic_view_counts_answers_from_every_backend(web) -> None:
    settled(web)
    backends = {p["metadata"]["name"] for p in web.kubectl.json("get", "pods", "-l", "app=tui-web")["items"]
                if not p["metadata"].get("deletionTimestamp")}

    async def body(app: LabApp, pilot) -> None:
        await until(pilot, lambda: table(app).select_key("service/default/tui-web"), "Service tui-web listed")
        await pilot.press("t")  # traffic to the selected Service: every node's NodePort, from this machine
        await until(pilot, lambda: app.current_mode == "traffic", "the Traffic view")
        await pilot.press("space")
        await until(pilot, lambda: backends <= set(app.state.traffic.by_pod),
                    f"answers from every backend {sorted(backends)}", timeout=60)
        await pilot.press("space")
        await until(pilot, lambda: not app.state.traffic.running, "the traffic to stop")
        shown = text_of(app, "#traffic-backends")
        assert all(name in shown for name in backends)
        assert app.state.traffic.errors == 0, [f.error for f in app.state.traffic.failures]

    run_app(web, "services", body)


def test_workloads_view_follows_a_rollout_from_start_to_end(web) -> None:
    settled(web)
    deployment = web.kubectl.json("get", "deployment", "tui-web")
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    revision = int(deployment["metadata"]["annotations"]["deployment.kubernetes.io/revision"])

    async def body(app: LabApp, pilot) -> None:
        await until(pilot, lambda: table(app).select_key("deployment/default/tui-web"), "Deployment tui-web listed")
        web.kubectl.run("set", "image", "deployment/tui-web", f"web={'nginx:1.16.1' if image == 'nginx' else 'nginx'}")

        def finished():
            samples = app.state.rollouts.samples("default/tui-web")
            last = samples[-1] if samples else None
            return last and last.revision > revision and last.complete and last.old_total == 0 and samples

        samples = await until(pilot, finished, "the rollout to complete in the view", timeout=180)
        assert samples[0].revision == revision and samples[0].complete, "it was seen from before it started"
        assert any(s.old_total and s.new_total for s in samples), "old and new pods side by side"
        assert all(s.new_total + s.old_total <= 4 for s in samples), "never above replicas + maxSurge"
        assert all(s.old_ready + s.new_ready >= 3 for s in samples), "maxUnavailable 0: never fewer ready"
        await pilot.pause(0.3)
        assert f"rev {revision}→{revision + 1}" in text_of(app, "#rollout-chart")

    run_app(web, "workloads", body)


def test_scale_from_the_workloads_view_changes_the_cluster(web) -> None:
    settled(web)
    replicas = web.kubectl.json("get", "deployment", "tui-web")["spec"]["replicas"]
    wanted = replicas + 1

    async def body(app: LabApp, pilot) -> None:
        await until(pilot, lambda: table(app).select_key("deployment/default/tui-web"), "Deployment tui-web listed")
        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, PromptScreen), "the replicas prompt")
        await pilot.press("ctrl+u", *str(wanted), "enter")  # clear the current value, type the new one
        await until(pilot, lambda: "✓" in str(app.screen.query_one(CommandBar).render()), "the action to succeed")
        assert f"kubectl scale deployment/tui-web --replicas={wanted} -n default" in str(
            app.screen.query_one(CommandBar).render())

    run_app(web, "workloads", body)
    assert web.kubectl.json("get", "deployment", "tui-web")["spec"]["replicas"] == wanted
    web.kubectl.run("scale", "deployment/tui-web", "--replicas=3")
