"""Tokens that last the lesson, as pure logic with a fake clock: no test waits an hour.

The API server's own token authority (with the same fake clock) issues and checks the
tokens; Docker is a small in-memory stand-in that extracts archives the way
``put_archive`` does (entries in order, each replacing what was there).
"""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

from labctl.agent.kubelet.podworker import PodWorker
from labctl.agent.kubelet.projection import DATA_LINK, GENERATIONS, next_generation, volume_archive
from labctl.agent.kubelet.runtime import ContainerRecord
from labctl.agent.kubelet.serviceaccount import (
    MAX_TOKEN_AGE_SECONDS,
    MOUNT_PATH,
    ProjectedToken,
    ServiceAccountTokens,
    token_from_answer,
)
from labctl.apiserver import errors
from labctl.apiserver.serviceaccounts import InvalidToken, SigningKey
from labctl.apiserver.serviceaccounts import ServiceAccountTokens as TokenAuthority
from labctl.client.tokenfile import TokenFile
from labctl.clusterconfig import NodeConfig
from labctl.nodeinit import components
from labctl.topology import parse_topology

NOW = 1_800_000_000.0
POD = {"metadata": {"name": "web", "namespace": "default", "uid": "pod-uid"},
       "spec": {"serviceAccountName": "default", "nodeName": "worker"}}


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Store:
    """The API server store's ``get((key, namespace, name))`` over a dict."""

    def __init__(self) -> None:
        self.objects = {("core/serviceaccounts", "default", "default"): {"metadata": {"uid": "sa-uid"}},
                        ("core/pods", "default", "web"): {"metadata": {"uid": "pod-uid"}, "spec": POD["spec"]},
                        ("core/nodes", "", "worker"): {"metadata": {"uid": "node-uid"}}}

    def get(self, key):
        return self.objects.get(key)


class APIClient:
    """The kubelet's client, answering TokenRequests from the authority."""

    def __init__(self, authority: TokenAuthority) -> None:
        self.authority = authority
        self.requests: list[dict] = []

    async def create(self, path: str, body: dict) -> dict:
        parts = path.strip("/").split("/")  # api/v1/namespaces/<ns>/serviceaccounts/<name>/token
        self.requests.append(body)
        return self.authority.create_token(parts[3], parts[5], body)


class Containers:
    """Files of containers, written only through archives, like Docker's archive API."""

    def __init__(self) -> None:
        self.fs: dict[str, dict[str, tuple[str, str | bytes]]] = {}  # container → path → (kind, data)

    def put_archive(self, cid: str, archive: bytes) -> None:
        files = self.fs.setdefault(cid, {})
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            for member in tar.getmembers():
                path = "/" + member.name
                if member.isdir():
                    files[path] = ("dir", "")
                elif member.issym():
                    files[path] = ("link", member.linkname)
                else:
                    files[path] = ("file", tar.extractfile(member).read())

    def read_link(self, cid: str, path: str) -> str | None:
        kind, data = self.fs.get(cid, {}).get(path, ("", ""))
        return f"{path.rsplit('/', 1)[0]}/{data}" if kind == "link" else None

    def read(self, cid: str, path: str) -> bytes:
        """``cat path`` in the container: (relative) symlinks followed at any component."""
        files = self.fs[cid]
        for _ in range(8):
            parts = path.strip("/").split("/")
            for i in range(1, len(parts) + 1):
                kind, data = files.get("/" + "/".join(parts[:i]), ("", ""))
                if kind == "link":
                    path = "/" + "/".join([*parts[:i - 1], str(data), *parts[i:]])
                    break
            else:
                return files[path][1]
        raise AssertionError(f"symlink loop at {path}")


async def _direct(fn, *args, **kwargs):
    return fn(*args, **kwargs)


@pytest.fixture
def lab(tmp_path):
    clock = Clock()
    authority = TokenAuthority(SigningKey.generate(), Store(), clock=clock)
    client = APIClient(authority)
    (tmp_path / "ca.crt").write_bytes(b"CA")
    tokens = ServiceAccountTokens(client, "10.96.0.1", clock=clock, ca_path=tmp_path / "ca.crt")
    containers = Containers()
    worker = PodWorker(SimpleNamespace(tokens=tokens, runtime=containers, blocking=_direct), POD)
    return SimpleNamespace(clock=clock, authority=authority, client=client, tokens=tokens,
                           containers=containers, worker=worker)


# -- the schedule ------------------------------------------------------------------------------
def test_a_token_is_renewed_at_80_percent_of_its_life_or_after_a_day():
    assert ProjectedToken("t", 1000.0, 1000.0 + 3600).refresh_at == 1000.0 + 2880
    assert ProjectedToken("t", 0.0, 7 * 86400.0).refresh_at == MAX_TOKEN_AGE_SECONDS


def test_issue_time_is_derived_from_the_answer_as_the_kubelet_does():
    answer = {"spec": {"expirationSeconds": 3600},
              "status": {"token": "x", "expirationTimestamp": "2027-01-15T08:00:00Z"}}
    token = token_from_answer(answer, now=0.0)
    assert token.expires_at - token.issued_at == 3600
    assert token_from_answer({"status": {"token": "y"}}, now=50.0) == ProjectedToken("y", 50.0, 3650.0)


def test_the_cached_token_is_kept_until_its_refresh_time(lab):
    async def scenario():
        first = await lab.tokens.token(POD)
        lab.clock.now = NOW + 2879
        assert await lab.tokens.token(POD) is first
        lab.clock.now = NOW + 2880
        second = await lab.tokens.token(POD)
        assert second.token != first.token and second.issued_at == NOW + 2880
    asyncio.run(scenario())
    assert [r["spec"]["expirationSeconds"] for r in lab.client.requests] == [3600, 3600]
    assert lab.client.requests[0]["spec"]["boundObjectRef"] == {"kind": "Pod", "apiVersion": "v1", "name": "web",
                                                                "uid": "pod-uid"}


def test_the_requested_lifetime_is_the_clusters_setting(lab):
    lab.tokens.expiration_seconds = 7200
    token = asyncio.run(lab.tokens.token(POD))
    assert token.expires_at - token.issued_at == 7200


# -- the acceptance: a pod's token works after 2 hours ------------------------------------------
def test_a_running_pods_token_still_authenticates_after_two_hours(lab):
    """The container gets its token at creation; the pod worker resyncs every 10 s; at every
    moment of two hours the token file in the container is one the API server accepts."""
    running = {"app": [ContainerRecord("c1", "app", 0, True)]}

    async def scenario():
        token = await lab.tokens.token(POD)  # what create_container puts in before the start
        lab.containers.put_archive("c1", volume_archive(MOUNT_PATH, lab.tokens.volume(POD, token)))
        lab.worker.tokens_written["c1"] = token.token
        for step in range(0, 2 * 3600 + 1, 10):
            lab.clock.now = NOW + step
            await lab.worker.refresh_token(running)
            mounted = lab.containers.read("c1", f"{MOUNT_PATH}/token").decode()
            claims = lab.authority.validate(mounted)
            assert lab.clock.now < claims.expires_at, f"the mounted token expired at +{step}s"
        lab.worker._token_timer.cancel()
    asyncio.run(scenario())
    assert len(lab.client.requests) == 3  # at 0, at 48 min and at 96 min
    assert lab.containers.read("c1", f"{MOUNT_PATH}/namespace") == b"default"
    assert lab.containers.read("c1", f"{MOUNT_PATH}/ca.crt") == b"CA"


def test_without_renewal_the_same_pod_would_be_locked_out_after_an_hour(lab):
    """The regression the test above guards: the token copied once at creation."""
    token = asyncio.run(lab.tokens.token(POD))
    lab.clock.now = NOW + 3600 + 61  # past the expiry and go-jose's leeway
    with pytest.raises(InvalidToken):
        lab.authority.validate(token.token)


def test_a_container_that_missed_a_renewal_gets_the_current_token(lab):
    """After an agent restart nothing is known to be written: every running container is
    given the (new) token once, and only once."""
    running = {"app": [ContainerRecord("c1", "app", 0, True)], "side": [ContainerRecord("c2", "side", 3, True)]}

    async def scenario():
        for cid in ("c1", "c2"):
            lab.containers.put_archive(cid, volume_archive(MOUNT_PATH, {"token": b"old"}))
        await lab.worker.refresh_token(running)
        writes = {cid: lab.containers.read_link(cid, f"{MOUNT_PATH}/{DATA_LINK}") for cid in ("c1", "c2")}
        await lab.worker.refresh_token(running)  # nothing new to write
        assert {cid: lab.containers.read_link(cid, f"{MOUNT_PATH}/{DATA_LINK}") for cid in writes} == writes
        lab.worker._token_timer.cancel()
    asyncio.run(scenario())
    token = lab.tokens._cache["pod-uid"].token
    assert lab.containers.read("c1", f"{MOUNT_PATH}/token").decode() == token
    assert lab.containers.read("c2", f"{MOUNT_PATH}/token").decode() == token
    assert len(lab.client.requests) == 1


def test_exited_containers_are_left_alone(lab):
    stopped = {"app": [ContainerRecord("c1", "app", 0, False, finished_at="2027-01-01T00:00:00Z")]}
    lab.worker.tokens_written["c1"] = "old"
    asyncio.run(lab.worker.refresh_token(stopped))
    assert not lab.client.requests and "c1" not in lab.worker.tokens_written


# -- a short lifetime: a topology setting, and the API server's floor follows ---------------------
def test_a_short_lifetime_is_set_by_the_topology_and_lowers_the_api_servers_floor_only_then():
    topo = parse_topology({"name": "x", "serviceAccounts": {"tokenExpirationSeconds": 20}})
    node = NodeConfig(topo.cluster_config(), "control-plane", "control-plane", "172.30.0.2", "10.244.0.0/24")
    assert node.cluster.service_account_token_seconds == 20
    argv = components(node)["kube-apiserver"]
    assert argv[argv.index("--service-account-min-token-seconds") + 1] == "20"
    default = replace(node, cluster=parse_topology({"name": "x"}).cluster_config())
    assert default.cluster.service_account_token_seconds == 3600
    assert "--service-account-min-token-seconds" not in components(default)["kube-apiserver"]


def test_the_api_server_accepts_short_tokens_only_with_its_test_floor():
    request = {"spec": {"expirationSeconds": 20}}
    short = TokenAuthority(SigningKey.generate(), Store(), clock=Clock(), min_expiration_seconds=20)
    assert short.create_token("default", "default", request)["spec"]["expirationSeconds"] == 20
    with pytest.raises(errors.APIError, match="may not specify a duration less than 20 seconds"):
        short.create_token("default", "default", {"spec": {"expirationSeconds": 19}})
    with pytest.raises(errors.APIError, match="may not specify a duration less than 10 minutes"):
        TokenAuthority(SigningKey.generate(), Store(), clock=Clock()).create_token("default", "default", request)


# -- the atomic write -------------------------------------------------------------------------
def _entries(archive: bytes) -> list[tuple[str, str]]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return [(m.name, m.linkname if m.issym() else ("dir" if m.isdir() else "file")) for m in tar.getmembers()]


def test_first_write_makes_the_atomic_writer_layout():
    entries = _entries(volume_archive("/run/sa", {"token": b"t", "namespace": b"ns"}, now=NOW))
    assert entries == [("run/sa/..0", "dir"), ("run/sa/..0/token", "file"), ("run/sa/..0/namespace", "file"),
                       ("run/sa/token", "..data/token"), ("run/sa/namespace", "..data/namespace"),
                       ("run/sa/..data", "..0")]


def test_an_update_writes_the_other_generation_then_swaps_data_last():
    entries = _entries(volume_archive("/run/sa", {"token": b"t2"}, current="/run/sa/..0", now=NOW))
    assert entries == [("run/sa/..1", "dir"), ("run/sa/..1/token", "file"), ("run/sa/..data", "..1")]
    assert next_generation("/run/sa/..1") == GENERATIONS[0] and next_generation(None) == GENERATIONS[0]


def test_files_carry_kubes_mode_and_a_fresh_mtime():
    with tarfile.open(fileobj=io.BytesIO(volume_archive("/run/sa", {"token": b"t"}, now=NOW + 0.25))) as tar:
        token = tar.getmember("run/sa/..0/token")
        assert token.mode == 0o644 and token.mtime == NOW + 0.25
        assert tar.getmember("run/sa/..0").mode == 0o755


# -- the reader's side: the in-cluster client re-reads a rotated file -----------------------------
def test_token_file_is_re_read_when_the_data_link_swaps(tmp_path):
    sa = tmp_path / "sa"
    (sa / "..0").mkdir(parents=True)
    (sa / "..0" / "token").write_text("first\n")
    (sa / "..data").symlink_to("..0")
    (sa / "token").symlink_to("..data/token")
    source = TokenFile(sa / "token", "first")
    assert source.token() == "first"
    (sa / "..1").mkdir()
    (sa / "..1" / "token").write_text("second")
    (sa / "..data_tmp").symlink_to("..1")
    (sa / "..data_tmp").replace(sa / "..data")
    assert source.token() == "second"


def test_token_file_keeps_the_last_token_while_the_file_is_missing(tmp_path):
    path = tmp_path / "token"
    path.write_text("one")
    source = TokenFile(path)
    assert source.token() == "one"
    path.unlink()
    assert source.token() == "one"


def test_token_file_is_read_again_after_a_401_even_if_it_looks_unchanged(tmp_path):
    path = tmp_path / "token"
    path.write_text("aaaa")
    source = TokenFile(path)
    assert source.token() == "aaaa"
    stamp = path.stat()
    path.write_text("bbbb")
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))  # same inode, size and mtime
    assert source.token() == "aaaa"
    source.invalidate()
    assert source.token() == "bbbb"


def test_a_stat_per_request_is_cheap(tmp_path):
    path = tmp_path / "token"
    path.write_text("x" * 900)
    source = TokenFile(path)
    started = time.perf_counter()
    for _ in range(2000):
        source.token()
    assert (time.perf_counter() - started) / 2000 < 200e-6
