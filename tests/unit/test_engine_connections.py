"""The kubelet's Docker client keeps one pool of connections to the engine, whatever the URL."""

from __future__ import annotations

import docker

from labctl.engine.sdk import OneEndpointAdapter, daemon_error, reuse_connections


def test_calls_about_different_containers_share_one_pool():
    client = reuse_connections(docker.DockerClient(base_url="unix:///var/run/docker.sock", version="1.41",
                                                   max_pool_size=20))
    adapter = client.api.adapters["http+docker://"]
    assert isinstance(adapter, OneEndpointAdapter) and adapter.max_pool_size == 20
    a = adapter.get_connection("http+docker://localhost/v1.41/containers/a/json")
    b = adapter.get_connection("http+docker://localhost/v1.41/containers/b/start")
    assert a is b
    assert client.api.trust_env is False  # a local socket: no proxy, no ~/.netrc looked up per call
    assert reuse_connections(client).api.adapters["http+docker://"] is adapter  # idempotent
    client.close()


def test_an_engine_error_reads_as_the_daemons_answer_not_the_sdks_request():
    """What a student reads in a RunContainerError: dockershim's words, not docker-py's URL."""
    err = docker.errors.APIError("400 Client Error for http+docker://localhost/v1.41/containers/abc/start",
                                 explanation='failed to create shim task: OCI runtime create failed: exec: "wget": '
                                             "executable file not found in $PATH: unknown")
    assert daemon_error(err) == ('Error response from daemon: failed to create shim task: OCI runtime create '
                                 'failed: exec: "wget": executable file not found in $PATH: unknown')
    assert daemon_error(TimeoutError("timed out")) == "timed out"
