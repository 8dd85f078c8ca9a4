"""A lab for the Services tests: the shared ``Lab`` plus one host port mapping to NodePort 30000.

The host port is a free one picked at run time (not 30000), so the tests run next to a
student's lab or another test's lab; the mechanism is the same as the default topology's
``127.0.0.1:30000``.
"""

from __future__ import annotations

import pytest

from labctl.cluster.scratch import unique_name
from support.lab import Lab, free_port


@pytest.fixture(scope="module")
def svc_lab(docker_engine, kubectl_binary, tmp_path_factory):
    """A running 1 control-plane + 2 worker lab with ``127.0.0.1:<free port>`` → NodePort 30000."""
    host_port = free_port()
    lab = Lab(unique_name("svc"), tmp_path_factory.mktemp("svclab"), kubectl_binary,
              extra={"portMappings": [{"hostPort": host_port, "nodePort": 30000, "listenAddress": "127.0.0.1"}]})
    lab.host_port = host_port
    created = lab.up()
    try:
        assert created.returncode == 0, f"labctl up failed:\n{created.stderr}"
        yield lab
    finally:
        lab.down()
