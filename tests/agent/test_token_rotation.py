"""Tokens that last the lesson, as pure logic with a fake clock: no test waits an hour.

The API server's own token authority (with the same fake clock) issues and checks the
tokens; the pod's kube-api-access volume is written into a temporary node root, as the
kubelet writes it under ``/var/lib/kubelet/pods`` of its node.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import replace
from types import SimpleNamespace

import pytest

from labctl.agent.kubelet.podworker import PodWorker
from labctl.agent.kubelet.projection import DATA_LINK, VolumeFile, generation_name, write_volume
from labctl.agent.kubelet.serviceaccount import (
    MAX_TOKEN_AGE_SECONDS,
    ProjectedToken,
    ServiceAccountTokens,
    token_from_answer,
)
from labctl.agent.kubelet.volumes import NodeVolumes, PreparedVolumes
from labctl.apiserver import errors
from labctl.apiserver.serviceaccounts import InvalidToken, SigningKey
from labctl.apiserver.serviceaccounts import ServiceAccountTokens as TokenAuthority
from labctl.client.tokenfile import TokenFile
from labctl.clusterconfig import NodeConfig
from labctl.kube.serviceaccount import mount_token_volume
from labctl.nodeinit import components
from labctl.topology import parse_topology

NOW = 1_800_000_000.0
POD = {"metadata": {"name": "web", "namespace": "default", "uid": "pod-uid"},
       "spec": {"serviceAccountName": "default", "nodeName": "worker", "containers": [{"name": "app"}]}}
mount_token_volume(POD, "abcde")  # as the API server's admission stored it
SA_VOLUME = "kube-api-access-abcde"


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


async def _direct(fn, *args, **kwargs):
    return fn(*args, **kwargs)


@pytest.fixture
def lab(tmp_path):
    clock = Clock()
    authority = TokenAuthority(SigningKey.generate(), Store(), clock=clock)
    client = APIClient(authority)
    (tmp_path / "ca.crt").write_bytes(b"CA")
    tokens = ServiceAccountTokens(client, clock=clock, ca_path=tmp_path / "ca.crt")
    volumes = NodeVolumes(root=tmp_path / "node", host_root="/var/lib/docker/overlay2/x/merged")
    worker = PodWorker(SimpleNamespace(tokens=tokens, volumes=volumes, blocking=_direct), POD)
    sa_dir = tmp_path / "node" / volumes.volume_dir("pod-uid", "projected", SA_VOLUME).lstrip("/")
    return SimpleNamespace(clock=clock, authority=authority, client=client, tokens=tokens, worker=worker,
                           read=lambda name: (sa_dir / name).read_bytes(), sa_dir=sa_dir)


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
    """The pod's volume gets its token before the sandbox starts; the pod worker resyncs every
    10 s; at every moment of two hours the token file the containers mount is one the API
    server accepts."""
    async def scenario():
        await lab.worker.volumes.setup(POD)  # what start_pod does before the sandbox
        for step in range(0, 2 * 3600 + 1, 10):
            lab.clock.now = NOW + step
            await lab.worker.refresh_volumes()
            claims = lab.authority.validate(lab.read("token").decode())
            assert lab.clock.now < claims.expires_at, f"the mounted token expired at +{step}s"
        lab.worker._token_timer.cancel()
    asyncio.run(scenario())
    assert len(lab.client.requests) == 3  # at 0, at 48 min and at 96 min
    assert lab.read("namespace") == b"default"
    assert lab.read("ca.crt") == b"CA"


def test_without_renewal_the_same_pod_would_be_locked_out_after_an_hour(lab):
    """The regression the test above guards: the token copied once at creation."""
    token = asyncio.run(lab.tokens.token(POD))
    lab.clock.now = NOW + 3600 + 61  # past the expiry and go-jose's leeway
    with pytest.raises(InvalidToken):
        lab.authority.validate(token.token)


def test_after_an_agent_restart_the_volume_is_written_again_once(lab):
    """After an agent restart nothing is known to be written: the running pod's volumes are set
    up again (the token written once), and the next resync writes nothing."""
    async def scenario():
        await lab.worker.refresh_volumes()
        first = os.readlink(lab.sa_dir / DATA_LINK)
        lab.clock.now = NOW + 10
        await lab.worker.refresh_volumes()
        assert os.readlink(lab.sa_dir / DATA_LINK) == first
        lab.worker._token_timer.cancel()
    asyncio.run(scenario())
    assert lab.read("token").decode() == lab.tokens._cache["pod-uid"].token
    assert len(lab.client.requests) == 1


def test_a_pod_without_automount_gets_no_token(lab):
    # admission gave it no token volume: the kubelet follows the stored spec
    pod = {**POD, "spec": {"serviceAccountName": "default", "nodeName": "worker", "containers": [{"name": "app"}],
                           "automountServiceAccountToken": False}}
    prepared = asyncio.run(lab.worker.volumes.setup(pod))
    assert prepared == PreparedVolumes() and not lab.client.requests and not lab.sa_dir.exists()


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
def _layout(directory) -> dict[str, str]:
    return {p.name: (f"-> {os.readlink(p)}" if p.is_symlink() else "dir") for p in sorted(directory.iterdir())}


def test_first_write_makes_the_atomic_writer_layout(tmp_path):
    assert write_volume(tmp_path / "sa", {"token": VolumeFile(b"t"), "namespace": VolumeFile(b"ns")}, now=NOW)
    generation = generation_name(NOW)
    assert generation == "..2027_01_15_08_00_00.000000000"
    assert _layout(tmp_path / "sa") == {generation: "dir", "..data": f"-> {generation}",
                                        "namespace": "-> ..data/namespace", "token": "-> ..data/token"}
    assert (tmp_path / "sa" / "token").read_bytes() == b"t"


def test_an_update_writes_a_new_generation_swaps_data_and_removes_what_is_gone(tmp_path):
    sa = tmp_path / "sa"
    write_volume(sa, {"token": VolumeFile(b"t"), "old": VolumeFile(b"x")}, now=NOW)
    assert not write_volume(sa, {"token": VolumeFile(b"t"), "old": VolumeFile(b"x")}, now=NOW + 1)  # unchanged
    assert write_volume(sa, {"token": VolumeFile(b"t2"), "dir/nested": VolumeFile(b"n")}, now=NOW + 2)
    generation = generation_name(NOW + 2)
    assert _layout(sa) == {generation: "dir", "..data": f"-> {generation}", "dir": "-> ..data/dir",
                           "token": "-> ..data/token"}
    assert (sa / "token").read_bytes() == b"t2" and (sa / "dir" / "nested").read_bytes() == b"n"


def test_files_carry_their_mode_and_fs_group_makes_them_group_readable(tmp_path):
    write_volume(tmp_path / "v", {"key": VolumeFile(b"k", 0o400), "conf": VolumeFile(b"c")}, now=NOW)
    assert (tmp_path / "v" / "key").stat().st_mode & 0o777 == 0o400
    assert (tmp_path / "v" / "conf").stat().st_mode & 0o777 == 0o644
    write_volume(tmp_path / "g", {"key": VolumeFile(b"k", 0o400)}, gid=os.getgid(), now=NOW)
    assert (tmp_path / "g" / "key").stat().st_mode & 0o777 == 0o440


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
