"""The kubelet's Docker client keeps one pool of connections to the engine, whatever the URL."""

from __future__ import annotations

import docker

from labctl.engine.sdk import OneEndpointAdapter, reuse_connections


def test_calls_about_different_containers_share_one_pool():
    client = reuse_connections(docker.DockerClient(base_url="unix:///var/run/docker.sock", version="1.41",
                                                   max_pool_size=20))
    adapter = client.api.adapters["http+docker://"]
    assert isinstance(adapter, OneEndpointAdapter) and adapter.max_pool_size == 20
    a = adapter.get_connection("http+docker://localhost/v1.41/containers/a/json")
    b = adapter.get_connection("http+docker://localhost/v1.41/containers/b/start")
    assert a is b
    assert reuse_connections(client).api.adapters["http+docker://"] is adapter  # idempotent
    client.close()
