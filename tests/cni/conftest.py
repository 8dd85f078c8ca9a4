"""Fixtures for the CNI tests (see cni_helpers.py for what they build)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(REPO))

from cni_helpers import REFERENCE_DIR, Flavour, Netns, unique, write_wrapper  # noqa: E402


@pytest.fixture(autouse=True)
def _require_root(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("root") and os.geteuid() != 0:
        pytest.skip("needs root: creates network namespaces, bridges and veths")


@pytest.fixture(scope="session")
def cni_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CNI_PATH dir with labctl's three plugins and the reference bridge/host-local/portmap."""
    d = tmp_path_factory.mktemp("cni-bin")
    write_wrapper(d / "labctl-bridge", "labctl.cni.bridge")
    write_wrapper(d / "labctl-host-local", "labctl.cni.ipam.plugin")
    write_wrapper(d / "labctl-portmap", "labctl.cni.portmap")
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


FLAVOURS = ["labctl", "reference"]


@pytest.fixture(params=FLAVOURS)
def flavour(request: pytest.FixtureRequest, cni_bin: Path, netns_factory: Any, tmp_path: Path) -> Flavour:
    """labctl's plugins or the reference ones, each on a fresh node netns."""
    if request.param == "reference":
        if not (cni_bin / "bridge").exists() or not (cni_bin / "host-local").exists():
            pytest.skip("reference plugins missing: apt-get install containernetworking-plugins")
        types_ = ("bridge", "host-local")
    else:
        types_ = ("labctl-bridge", "labctl-host-local")
    if shutil.which("nsenter") is None:
        pytest.skip("needs nsenter (util-linux) to run plugins inside the node netns")
    return Flavour(request.param, *types_, node=netns_factory("lcn"), cni_bin=cni_bin, data_dir=tmp_path / "ipam")


@pytest.fixture
def labctl(cni_bin: Path, netns_factory: Any, tmp_path: Path) -> Flavour:
    """Only labctl's plugins, on a fresh node netns."""
    return Flavour("labctl", "labctl-bridge", "labctl-host-local", node=netns_factory("lcn"), cni_bin=cni_bin,
                   data_dir=tmp_path / "ipam")
