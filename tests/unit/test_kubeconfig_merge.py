"""Merging kubeconfig contexts from several processes at once (two `labctl up` side by side).

Each merge is a read-modify-write under a host-wide lock, so no context is lost; the file
is replaced through a temporary file with a unique name created 0600, so no other process
trips over it and no user can read the private key in it for a moment.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import yaml

from labctl.kubeconfig import build_kubeconfig, merge_kubeconfig, remove_context

MERGER = """
import os, sys
from pathlib import Path
from labctl.kubeconfig import build_kubeconfig, merge_kubeconfig
os.umask(0o022)   # an ordinary umask: a plainly created file would be 0644
path, prefix, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
for i in range(count):
    merge_kubeconfig(path, build_kubeconfig(f"{prefix}{i}", "https://127.0.0.1:6443", b"ca", b"cert", b"KEY"))
"""


def contexts(path: Path) -> list[str]:
    return sorted(c["name"] for c in yaml.safe_load(path.read_text())["contexts"])


def test_two_processes_merging_30_contexts_each_keep_all_60_and_no_file_is_ever_world_readable(tmp_path):
    path = tmp_path / "kube" / "config"
    readable: list[str] = []
    done = threading.Event()

    def watch() -> None:
        """Look at every file in the kubeconfig's folder, as another user could, until the merges end."""
        while not done.is_set():
            for entry in os.scandir(tmp_path / "kube") if path.parent.exists() else []:
                try:
                    mode = entry.stat(follow_symlinks=False).st_mode
                except FileNotFoundError:
                    continue  # a temporary file renamed meanwhile
                if mode & (stat.S_IRGRP | stat.S_IROTH):
                    readable.append(f"{entry.name} {stat.filemode(mode)}")

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        procs = [subprocess.Popen([sys.executable, "-c", MERGER, str(path), prefix, "30"], stderr=subprocess.PIPE,
                                  text=True) for prefix in ("a", "b")]
        errors = [proc.communicate(timeout=120)[1] for proc in procs]
    finally:
        done.set()
        watcher.join()
    assert [p.returncode for p in procs] == [0, 0], errors
    assert contexts(path) == sorted(f"labctl-{p}{i}" for p in "ab" for i in range(30))
    assert not readable, f"world- or group-readable while merging: {sorted(set(readable))[:5]}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(path.parent) == ["config"], "no temporary file is left behind"


def test_merge_replaces_a_context_and_remove_keeps_the_others(tmp_path):
    path = tmp_path / "config"
    merge_kubeconfig(path, build_kubeconfig("one", "https://127.0.0.1:1", b"ca", b"c", b"k"))
    merge_kubeconfig(path, build_kubeconfig("two", "https://127.0.0.1:2", b"ca", b"c", b"k"))
    merge_kubeconfig(path, build_kubeconfig("one", "https://127.0.0.1:3", b"ca", b"c", b"k"))
    config = yaml.safe_load(path.read_text())
    assert contexts(path) == ["labctl-one", "labctl-two"]
    assert [c["cluster"]["server"] for c in config["clusters"]] == ["https://127.0.0.1:2", "https://127.0.0.1:3"]
    assert config["current-context"] == "labctl-one"
    assert remove_context(path, "one") and not remove_context(path, "one")
    assert contexts(path) == ["labctl-two"]
    assert yaml.safe_load(path.read_text())["current-context"] == ""


def test_a_symlinked_kubeconfig_stays_a_symlink(tmp_path):
    real = tmp_path / "real-config"
    link = tmp_path / "config"
    link.symlink_to(real)
    merge_kubeconfig(link, build_kubeconfig("one", "https://127.0.0.1:1", b"ca", b"c", b"k"))
    assert link.is_symlink() and contexts(real) == ["labctl-one"]
