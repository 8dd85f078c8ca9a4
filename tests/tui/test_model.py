"""The TUI's pure parts: the state model fed by the recorded lab, rows, the rollout chart, traffic
statistics, actions and their commands, and the request pump (on the host and as a pod runs it)."""

from __future__ import annotations

import asyncio
import http.server
import json
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest
from tui_recording import RECORDING

from labctl.errors import LabctlError
from labctl.exercises import traffic as requests
from labctl.tui import pump
from labctl.tui.actions import Action, Ref, undo_patch
from labctl.tui.recorded import RecordedSource, load_recording
from labctl.tui.rollout import Bounds, RolloutSample
from labctl.tui.rows import Row, filter_rows, pod_rows, service_rows, workload_rows
from labctl.tui.state import LabState
from labctl.tui.traffic import Sample, TrafficStats
from labctl.tui.widgets.rollout_chart import LIMIT, NEW_READY, OLD_READY, draw_rollout


def replayed() -> LabState:
    """The recording applied to a state model, as the app applies the messages it posts."""
    source = RecordedSource(load_recording(RECORDING))
    state = LabState(source.lab, source.clock)

    def sink(message) -> None:
        name = type(message).__name__
        if name == "ObjectsChanged":
            state.apply(message.events, message.synced)
        elif name == "NetworkRead":
            state.set_network(message.network, message.error)
        elif name == "TrafficRead":
            state.start_traffic(message.plan)
            state.add_traffic(message.samples, message.running)

    source.start(sink)
    return state


def test_the_recorded_rollout_replays_through_the_state_model() -> None:
    state = replayed()
    samples = state.rollouts.samples("rollout/example-2")
    assert samples[0].revision < samples[-1].revision
    assert any(s.new_total and s.old_total for s in samples), "old and new pods side by side mid-rollout"
    assert samples[-1].complete and samples[-1].old_total == 0 and samples[-1].new_ready == 4
    assert max(s.new_total + s.old_total for s in samples) <= 5, "never above replicas + maxSurge"


def test_pods_are_grouped_under_their_node_with_their_ips() -> None:
    state = replayed()
    rows = pod_rows(state)
    headings = [r for r in rows if r.group]
    assert [r.ref.name for r in headings] == state.node_names()
    node = None
    for row in rows:
        if row.group:
            node = row.ref.name
            continue
        pod = state.get("pods", row.ref.namespace, row.ref.name)
        assert pod["spec"]["nodeName"] == node
        assert row.cells[1] == pod["status"]["podIP"]
        assert row.cells[3].startswith("✓ ")


def test_workloads_list_replicasets_under_their_deployment_current_first() -> None:
    rows = workload_rows(replayed())
    names = [r.cells[0].strip() for r in rows]
    deployment = names.index("✓ example-2")
    assert names[deployment + 1].startswith("▶ example-2-") and names[deployment + 2].startswith("· example-2-")
    assert rows[deployment + 1].cells[2] == "new" and rows[deployment + 2].cells[2] == "old"


def test_services_show_ready_endpoints() -> None:
    rows = {r.ref.name: r for r in service_rows(replayed())}
    assert rows["ex2-svc-external"].cells[4] == "✓ 4 ready"
    assert rows["ex2-svc-external"].cells[3] == "80:30000/TCP"
    assert rows["kubernetes"].cells[4] == "(no selector)"


def test_filter_keeps_the_heading_of_a_matching_row() -> None:
    rows = [Row("node/a", ("▾ a",), group=True), Row("pod/x", ("web-1",)), Row("node/b", ("▾ b",), group=True),
            Row("pod/y", ("db-1",))]
    assert [r.key for r in filter_rows(rows, "WEB")] == ["node/a", "pod/x"]
    assert [r.key for r in filter_rows(rows, "db")] == ["node/b", "pod/y"]


def test_rollout_chart_stacks_new_over_old_under_the_surge_bound() -> None:
    samples = [RolloutSample(0, 1, 0, 0, 4, 4, True), RolloutSample(1, 2, 1, 0, 4, 4, False),
               RolloutSample(2, 2, 1, 1, 3, 3, False), RolloutSample(3, 2, 4, 4, 0, 0, True)]
    lines = draw_rollout(samples, Bounds(4, 1, 1, "RollingUpdate"), width=60, height=7)
    chart = [line.split(" │")[0] for line in lines[:5]]
    assert lines[0].endswith("≤5 pods = 4+1 surge") and "≥3 must be available" in lines[2]
    columns = ["".join(row[i] for row in reversed(chart)) for i in range(0, 8, 2)]  # bottom-up, 2 cells each
    assert columns[0] == OLD_READY * 4 + LIMIT
    assert columns[3] == NEW_READY * 4 + LIMIT
    assert "rev 1→2" in lines[5]


def test_traffic_statistics_show_the_version_switch_and_every_failure() -> None:
    stats = TrafficStats()
    stats.add([Sample(100.2, 0.002, "a:1", True, "web-1", "v1"), Sample(101.5, 0.003, "a:1", True, "web-2", "v1"),
               Sample(101.6, 0.004, "a:1", True, "web-3", "v2"), Sample(102.1, 2.0, "a:1", False, error="refused"),
               Sample(103.3, 0.002, "a:1", True, "web-3", "v2")])
    assert stats.requests == 5 and stats.errors == 1 and stats.answered == 4
    assert stats.version_strip().endswith("1*·2")
    assert stats.by_version == Counter({"v1": 2, "v2": 2}) and stats.by_pod["web-3"] == 2
    assert [f.error for f in stats.failures] == ["refused"]
    assert stats.errors_per_second()[-2] == 1.0


def test_action_commands_are_the_cli_a_student_would_type() -> None:
    web = Ref("Deployment", "web", "rollout")
    assert Action("scale", web, "5").command == "kubectl scale deployment/web --replicas=5 -n rollout"
    assert Action("set-image", web, "web=nginx:1.16.1").command == \
        "kubectl set image deployment/web web=nginx:1.16.1 -n rollout"
    assert Action("rollout-undo", web).command == "kubectl rollout undo deployment/web -n rollout"
    assert Action("delete", Ref("Pod", "web-1", "default")).command == "kubectl delete pod web-1 -n default"
    assert Action("cordon", Ref("Node", "worker")).command == "kubectl cordon worker"
    stop = Action("stop-node", Ref("Node", "worker2"), lab="lab")
    assert stop.command == "docker stop lab-worker2" and stop.destructive


def test_undo_patch_takes_the_previous_revision_template_without_its_hash() -> None:
    owner = [{"uid": "d1", "controller": True}]

    def rs(name: str, revision: int, image: str) -> dict:
        return {"metadata": {"name": name, "ownerReferences": owner,
                             "annotations": {"deployment.kubernetes.io/revision": str(revision),
                                             "kubernetes.io/change-cause": f"to {image}"}},
                "spec": {"template": {"metadata": {"labels": {"app": "web", "pod-template-hash": name[-3:]}},
                                      "spec": {"containers": [{"name": "web", "image": image}]}}}}

    deployment = {"metadata": {"name": "web", "uid": "d1", "annotations": {"deployment.kubernetes.io/revision": "3"}}}
    patch = undo_patch(deployment, [rs("web-aaa", 1, "v0"), rs("web-bbb", 2, "v1"), rs("web-ccc", 3, "v2")])
    template = patch[0]["value"]
    assert template["spec"]["containers"][0]["image"] == "v1"
    assert template["metadata"]["labels"] == {"app": "web"}
    assert patch[1]["value"]["kubernetes.io/change-cause"] == "to v1"
    assert patch[1]["value"]["deployment.kubernetes.io/revision"] == "3"
    with pytest.raises(LabctlError):
        undo_patch(deployment, [rs("web-ccc", 3, "v2")])


class _Web(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"web v1 pod=local ip=127.0.0.1\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Web)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_the_pump_sends_at_the_rate_and_reads_the_version(web_server: int) -> None:
    answers: list[dict] = []

    async def run() -> None:
        stopping = asyncio.Event()
        asyncio.get_running_loop().call_later(1.0, stopping.set)
        await pump.pump(requests.get, [("127.0.0.1", web_server)], lambda: 20, answers.append, stopping)

    asyncio.run(run())
    assert 10 <= len(answers) <= 25
    assert all(a["ok"] and a["version"] == "v1" and a["pod"] == "local" for a in answers)


def test_the_pump_runs_as_a_pod_runs_it_standard_library_only(web_server: int) -> None:
    """``python3 -S -c BOOTSTRAP`` with both sources, as the live source starts it in a pod's netns."""
    proc = subprocess.Popen([sys.executable, "-S", "-c", pump.BOOTSTRAP, Path(requests.__file__).read_text(),
                             Path(pump.__file__).read_text(), "5", "/", f"127.0.0.1:{web_server}"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdin is not None
    first = json.loads(proc.stdout.readline())
    proc.stdin.write("50\n")  # a new rate
    proc.stdin.flush()
    lines = [json.loads(proc.stdout.readline()) for _ in range(20)]
    proc.stdin.write("stop\n")
    proc.stdin.close()
    assert proc.wait(timeout=10) == 0
    assert first["ok"] and first["version"] == "v1"
    assert lines[-1]["at"] - lines[0]["at"] < 1.5, "20 answers at 50/s, not at 5/s"
