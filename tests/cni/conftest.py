"""Fixtures for the CNI tests (see cni_helpers.py for what they build)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

from cni_helpers import REFERENCE_DIR, Flavour, Netns, unique, write_shim, write_wrapper  # noqa: E402

PLUGIN_MODULES = {"labctl-bridge": "labctl.cni.bridge", "labctl-host-local": "labctl.cni.ipam.plugin",
                  "labctl-portmap": "labctl.cni.portmap"}


@pytest.fixture(autouse=True)
def _require_root(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("root") and os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces, bridges and veths")


@pytest.fixture(scope="session")
def cni_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CNI_PATH dir with labctl's three plugins and the reference bridge/host-local/portmap."""
    d = tmp_path_factory.mktemp("cni-bin")
    for plugin, module in PLUGIN_MODULES.items():
        write_wrapper(d / plugin, module)
    for name in ("bridge", "host-local", "portmap"):
        if (REFERENCE_DIR / name).exists():
            (d / name).symlink_to(REFERENCE_DIR / name)
    return d


@pytest.fixture
def netns_factory() -> Iterator[Any]:
    """Create namespaces on demand; delete them all afterwards (veths die with them)."""
    made: list[str] = []

    def make(prefix: str = "lcp") -> Netns:
        name = unique(prefix)
        subprocess.run(["ip", "netns", "add", name], check=True)
        made.append(name)
        return Netns(name)

    yield make
    for name in made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


@contextlib.contextmanager
def cni_daemon(node: Netns) -> Iterator[Path]:
    """A CNI daemon serving in the node netns; yields a CNI_PATH dir of its thin-client plugins."""
    d = Path(tempfile.mkdtemp(prefix="lcd", dir="/tmp"))  # a unix socket path must stay under 108 bytes
    socket_path = str(d / "cni.sock")
    for plugin, module in PLUGIN_MODULES.items():
        write_shim(d / plugin, module, socket_path)
    proc = subprocess.Popen(["nsenter", f"--net={node.path}", sys.executable, "-m", "labctl.cni.daemon", socket_path],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)))
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("listening"), "CNI daemon did not start"
        yield d
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)


FLAVOURS = ["labctl", "labctl-daemon", "reference"]


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest, cni_bin: Path, netns_factory: Any, tmp_path: Path) -> Iterator[Flavour]:
    """labctl's plugins (run as processes, or through a CNI daemon) or the reference ones, each on a fresh node netns."""
    if request.param == "labctl-daemon":
        node = netns_factory("lcn")
        with cni_daemon(node) as shim_bin:
            yield Flavour("labctl-daemon", "labctl-bridge", "labctl-host-local", node=node, cni_bin=shim_bin,
                          data_dir=tmp_path / "ipam")
        return
    if request.param == "reference":
        if not (cni_bin / "bridge").exists() or not (cni_bin / "host-local").exists():
            pytest.skip("reference plugins missing: apt-get install containernetworking-plugins")
        types_ = ("bridge", "host-local")
    else:
        types_ = ("labctl-bridge", "labctl-host-local")
    if shutil.which("nsenter") is None:
        pytest.skip("needs nsenter (util-linux) to run plugins inside the node netns")
    yield Flavour(request.param, *types_, node=netns_factory("lcn"), cni_bin=cni_bin, data_dir=tmp_path / "ipam")


@pytest.fixture
def labctl(cni_bin: Path, netns_factory: Any, tmp_path: Path) -> Flavour:
    """Only labctl's plugins, on a fresh node netns."""
    return Flavour("labctl", "labctl-bridge", "labctl-host-local", node=netns_factory("lcn"), cni_bin=cni_bin,
                   data_dir=tmp_path / "ipam")
