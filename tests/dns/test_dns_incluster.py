"""In-cluster credentials and upstream discovery: the files and env a DNS pod gets."""

from __future__ import annotations

import pytest

from labctl.client.incluster import InClusterConfigError, in_cluster_credentials
from labctl.dns.server import Upstream, parse_hostport, upstreams_from_resolv_conf


def test_in_cluster_credentials_from_the_service_account_mount(tmp_path):
    (tmp_path / "token").write_text("abc.def\n")
    (tmp_path / "ca.crt").write_bytes(b"PEM")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    creds = in_cluster_credentials(env, tmp_path)
    assert (creds.server, creds.token, creds.ca_pem) == ("https://10.96.0.1:443", "abc.def", b"PEM")
    assert in_cluster_credentials({**env, "KUBERNETES_SERVICE_HOST": "fd00::1"}, tmp_path).server == "https://[fd00::1]:443"


def test_in_cluster_credentials_explain_what_is_missing(tmp_path):
    with pytest.raises(InClusterConfigError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"):
        in_cluster_credentials({}, tmp_path)
    with pytest.raises(InClusterConfigError, match="failed to read the service account credentials"):
        in_cluster_credentials({"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}, tmp_path)


def test_loopback_nameservers_are_skipped_to_avoid_a_forwarding_loop(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("# docker\nnameserver 127.0.0.11\nnameserver 172.30.1.1\nnameserver ::1\nsearch x\n")
    assert upstreams_from_resolv_conf(conf) == [Upstream("172.30.1.1")]


@pytest.mark.parametrize("text,expected", [("1.2.3.4", ("1.2.3.4", 53)), ("1.2.3.4:5353", ("1.2.3.4", 5353)),
                                           ("[::1]:5353", ("::1", 5353)), ("fd00::1", ("fd00::1", 53))])
def test_parse_hostport(text, expected):
    assert parse_hostport(text, 53) == expected
