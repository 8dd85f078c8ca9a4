#!/usr/bin/env python3
"""``labctl tui``: key press → screen updated, first paint, idle CPU (goals: p99 ≤ 100 ms, ≤ 1 s, ≤ 5 %).

Runs the real command in a pseudo-terminal, as a student's terminal runs it, and reads what
it writes:

* **keys** — the recorded lab (``tests/tui/data/lab.json``) scaled to ``--pods`` pods
  (copies of its web pods spread over the nodes, each with its own IP); keys that always
  change the screen (a view's number, ↓/↑ in a table, typing a filter) are sent one at a
  time, and a key's latency is from writing it to the last byte of the frame it caused
  (the output then stays quiet for :data:`QUIET` seconds). On a machine others share, the
  same figures less the time the UI thread sat runnable waiting for a CPU (its
  ``schedstat``) are reported too: what the app itself takes;
* **first paint** — from starting the process to the first frame that shows the view's
  tabs (recorded lab and, with ``--name``, a live lab; for the live lab also until the
  first pod row is on screen);
* **idle CPU** — the process's CPU time over ``--idle`` seconds without input, on the
  Pods view and on the Overview (which polls the nodes' network and health while visible).

    python bench/tui.py [--name LAB] [--pods 200] [--presses 240] [--idle 30] [--out FILE]
"""

from __future__ import annotations

import argparse
import copy
import fcntl
import json
import os
import platform
import select
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _common import write_json  # noqa: E402

RECORDING = ROOT / "tests" / "tui" / "data" / "lab.json"
#: output quiet this long ends a frame
QUIET = 0.005


def scaled(recording: dict, pods: int) -> dict:
    """The recording with web pods copied until it holds ``pods`` pods (each on a node, with its own IP)."""
    out = copy.deepcopy(recording)
    items = out["objects"]["pods"]
    templates = [p for p in items if p["metadata"]["namespace"] == "rollout"] or items
    nodes = {n["metadata"]["name"]: n["spec"]["podCIDR"] for n in out["objects"]["nodes"]}
    names = sorted(nodes)
    for i in range(max(pods - len(items), 0)):
        pod = copy.deepcopy(templates[i % len(templates)])
        node = names[i % len(names)]
        meta = pod["metadata"]
        meta["name"], meta["uid"] = f"bench-{i:03d}", f"bench-uid-{i:03d}"
        meta.pop("ownerReferences", None)
        pod["spec"]["nodeName"] = node
        pod["status"]["podIP"] = f"{nodes[node].rsplit('.', 1)[0]}.{100 + i // len(names)}"  # in its podCIDR
        items.append(pod)
    return out


class Terminal:
    """``labctl tui ARGS`` in a pseudo-terminal of ``size`` (columns, rows)."""

    def __init__(self, args: list[str], size: tuple[int, int]) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
        env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(size[0]), "LINES": str(size[1])}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "-m", "labctl", "tui", *args], stdin=slave, stdout=slave,
                                     stderr=slave, env=env, start_new_session=True, close_fds=True)
        os.close(slave)
        self.seen = b""

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.master], [], [], timeout)
        if not ready:
            return b""
        try:
            data = os.read(self.master, 65536)
        except OSError:
            return b""
        self.seen = (self.seen + data)[-200_000:]
        return data

    def wait_for(self, text: bytes, timeout: float = 30) -> float:
        """Seconds from the start until ``text`` was written."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read(0.05)
            if text in self.seen:
                return time.perf_counter() - self.started
        raise TimeoutError(f"{text!r} never appeared")

    def drain(self, quiet: float = 0.5) -> None:
        while self.read(quiet):
            pass

    def waited(self) -> float:
        """Seconds the app's UI thread has spent runnable but waiting for a CPU (``/proc/PID/schedstat``)."""
        return int(Path(f"/proc/{self.proc.pid}/schedstat").read_text().split()[1]) / 1e9

    def press(self, key: bytes, timeout: float = 2.0) -> float | None:
        """Seconds from writing ``key`` to the end of the first frame it caused (None: nothing changed).

        A frame is one burst of output (Textual writes each in one go); it ends when the output
        pauses for :data:`QUIET` seconds. Later frames (a scroll's animation) are not waited for:
        the screen was updated when the first one arrived.
        """
        self.drain(0.05)
        sent = time.perf_counter()
        os.write(self.master, key)
        last = None
        deadline = sent + timeout
        while time.perf_counter() < deadline:
            if self.read(QUIET if last else deadline - time.perf_counter()):
                last = time.perf_counter()
            elif last:
                break
        return None if last is None else last - sent

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def close(self) -> None:
        os.write(self.master, b"q")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
        os.close(self.master)


def key_latencies(replay: Path, presses: int, size: tuple[int, int]) -> list[tuple[float, float]]:
    """Keys that change the screen, in a loop: a view's number, ↓ ↓ ↑ in its table, a filter typed and erased;
    for each, (seconds to the screen, of which the UI thread waited for a CPU other programs held)."""
    term = Terminal(["--replay", str(replay), "--view", "pods"], size)
    term.wait_for(b"Exercise")
    for view in b"12345678":  # each view is mounted on its first visit: not what a key press costs later
        term.press(bytes([view]), timeout=10)
        term.drain(1.0)
    # no bare ESC: a terminal cannot tell it from the start of an escape sequence, so Textual waits
    # ESCDELAY (100 ms) for more bytes before it acts on it, as curses programs do
    cycle = [b"2", b"\x1b[B", b"\x1b[B", b"\x1b[A", b"/", b"w", b"e", b"\x7f", b"\x7f", b"\r", b"3", b"\x1b[B",
             b"\x1b[A", b"4", b"\x1b[B", b"7", b"\x1b[B", b"\x1b[A", b"1", b"5", b"6", b"8"]
    out = []
    try:
        while len(out) < presses:
            for key in cycle:
                before = term.waited()
                latency = term.press(key)
                if latency is not None:
                    out.append((latency, min(term.waited() - before, latency)))
    finally:
        term.close()
    return out[:presses]


def first_paint(args: list[str], size: tuple[int, int], data: bytes | None = None) -> tuple[float, float | None]:
    term = Terminal(args, size)
    try:
        painted = term.wait_for(b"Exercise")
        with_data = term.wait_for(data, 60) if data else None
    finally:
        term.close()
    return painted, with_data


def idle_cpu(args: list[str], seconds: float, size: tuple[int, int]) -> float:
    """Percent of one core the app uses while nobody types (after it settled)."""
    term = Terminal(args, size)
    try:
        term.wait_for(b"Exercise")
        time.sleep(5)  # listing, the first polls
        term.drain(0.2)
        before, started = term.cpu_seconds(), time.perf_counter()
        deadline = started + seconds
        while time.perf_counter() < deadline:
            term.read(0.5)  # keep the pty drained, as a terminal does
        return 100 * (term.cpu_seconds() - before) / (time.perf_counter() - started)
    finally:
        term.close()


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(round(p / 100 * (len(ordered) - 1)), len(ordered) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--name", help="a running lab for the live figures (first paint, idle CPU)")
    parser.add_argument("--pods", type=int, default=200)
    parser.add_argument("--presses", type=int, default=240)
    parser.add_argument("--idle", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=3, help="first-paint runs (the median is reported)")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    size = (160, 48)
    result: dict = {"machine": platform.platform(), "load": os.getloadavg(), "pods": args.pods}
    with tempfile.TemporaryDirectory() as tmp:
        replay = Path(tmp) / "scaled.json"
        replay.write_text(json.dumps(scaled(json.loads(RECORDING.read_text()), args.pods)))
        measured = key_latencies(replay, args.presses, size)
        for name, values in (("keys", [t for t, _ in measured]), ("keys_without_cpu_wait", [t - w for t, w in measured])):
            result[name] = {"presses": len(values), "p50_ms": 1000 * statistics.median(values),
                            "p90_ms": 1000 * percentile(values, 90), "p99_ms": 1000 * percentile(values, 99),
                            "max_ms": 1000 * max(values)}
        paints = [first_paint(["--replay", str(replay), "--view", "pods"], size)[0] for _ in range(args.runs)]
        result["first_paint_recorded_s"] = statistics.median(paints)
        result["idle_cpu_recorded_pct"] = idle_cpu(["--replay", str(replay), "--view", "pods"], args.idle, size)
    if args.name:
        live = [first_paint(["--name", args.name, "--view", "pods"], size, b"Running") for _ in range(args.runs)]
        result["first_paint_live_s"] = statistics.median(p for p, _ in live)
        result["first_data_live_s"] = statistics.median(d for _, d in live if d is not None)
        for view in ("pods", "overview"):
            result[f"idle_cpu_live_{view}_pct"] = idle_cpu(["--name", args.name, "--view", view], args.idle, size)
    result["load_after"] = os.getloadavg()
    for key, value in result.items():
        print(f"{key:>28}: {value}")
    write_json(args.out, result)


if __name__ == "__main__":
    main()
