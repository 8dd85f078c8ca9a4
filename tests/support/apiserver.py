"""Start labctl's API server as a real process, the way the control-plane node runs it."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

READY_PREFIX = "labctl-apiserver ready on "


@dataclass
class APIServerProcess:
    data_dir: Path
    listen: str = "127.0.0.1:0"
    extra_args: list[str] = field(default_factory=list)
    proc: subprocess.Popen | None = None
    url: str = ""

    @property
    def kubeconfig(self) -> Path:
        return self.data_dir / "admin.kubeconfig"

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def start(self, timeout: float = 30.0) -> APIServerProcess:
        log = open(self.data_dir / "apiserver.log", "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "labctl.apiserver", "--data-dir", str(self.data_dir), "--listen", self.listen,
             *self.extra_args],
            stdout=subprocess.PIPE, stderr=log, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        line = b""
        while time.monotonic() < deadline:
            if sel.select(timeout=0.5):
                line = self.proc.stdout.readline()
                if line.decode().startswith(READY_PREFIX) or not line:
                    break
            if self.proc.poll() is not None:
                break
        text = line.decode().strip()
        if not text.startswith(READY_PREFIX):
            self.stop()
            raise RuntimeError(f"API server did not start: {(self.data_dir / 'apiserver.log').read_text()[-2000:]}")
        self.url = text[len(READY_PREFIX):]
        # keep the listen port stable across restarts so kubeconfigs stay valid
        self.listen = f"127.0.0.1:{self.port}"
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc and self.proc.stdout:
            self.proc.stdout.close()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
