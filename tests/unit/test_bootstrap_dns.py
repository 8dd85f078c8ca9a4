"""`labctl up`'s wait for cluster DNS, the parts that need no lab: the in-node probe script
(retries inside one process, counts only a real answer) and the kube-dns add-on created with
one replica, scaled to the manifest's count once DNS answers."""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
import threading

import pytest
from dnslib import QTYPE, RCODE, RR, A, DNSRecord

from labctl.addons import load_addon
from labctl.cluster import bootstrap
from labctl.clusterconfig import ClusterConfig

NAME = "kubernetes.default.svc.cluster.local"


def fake_dns(replies: list[str]) -> tuple[str, list[str], threading.Thread]:
    """A UDP server on a loopback address's port 53 that answers the i-th query as
    ``replies[i]`` ("drop", "servfail" or "answer"); the queries' names are recorded."""
    host = f"127.{random.randint(1, 254)}.{random.randint(1, 254)}.{random.randint(1, 254)}"
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.bind((host, 53))  # the probe asks port 53, as a pod's resolver does
    except PermissionError:
        sock.close()
        pytest.skip("binding port 53 needs root (or CAP_NET_BIND_SERVICE)")
    sock.settimeout(5)
    asked: list[str] = []

    def serve() -> None:
        with sock:
            for how in replies:
                try:
                    data, peer = sock.recvfrom(512)
                except TimeoutError:  # the probe stopped asking (its deadline): the server is done
                    return
                query = DNSRecord.parse(data)
                asked.append(str(query.q.qname))
                reply = query.reply()
                if how == "drop":
                    continue
                if how == "servfail":
                    reply.header.rcode = RCODE.SERVFAIL
                else:
                    reply.add_answer(RR(query.q.qname, QTYPE.A, rdata=A("10.96.0.1"), ttl=5))
                sock.sendto(reply.pack(), peer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return host, asked, thread


def run_probe(host: str, seconds: float) -> int:
    argv = [sys.executable, "-I", "-S", "-c", bootstrap.DNS_PROBE, NAME, host, str(seconds)]
    proc = subprocess.run(argv, timeout=30, capture_output=True, text=True)
    assert proc.stderr == ""  # no traceback: every failure is a retry, the deadline the one way out
    return proc.returncode


def test_the_probe_retries_in_one_process_until_a_real_answer():
    host, asked, thread = fake_dns(["drop", "servfail", "answer"])
    assert run_probe(host, 20) == 0
    thread.join(5)
    assert asked == [NAME + "."] * 3


def test_the_probe_gives_up_at_its_deadline():
    host, asked, _ = fake_dns(["servfail"] * 100)
    assert run_probe(host, 0.5) == 1
    assert asked  # it asked, and a SERVFAIL is no answer


class FakeAPI:
    def __init__(self) -> None:
        self.created: list[dict] = []

    async def create(self, path: str, obj: dict) -> dict:
        self.created.append(obj)
        return obj


def test_kube_dns_is_created_with_one_replica_and_scaled_to_the_manifests_count_later():
    api = FakeAPI()
    later = asyncio.run(bootstrap.install_addons(api, ClusterConfig(), "labctl/node:test",  # type: ignore[arg-type]
                                                 ["kube-dns"], first_replica_only=True))
    deployment = next(o for o in api.created if o["kind"] == "Deployment")
    manifest = next(o for o in load_addon("kube-dns", ClusterConfig()) if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert later == {("kube-system", "kube-dns"): manifest["spec"]["replicas"]} == {("kube-system", "kube-dns"): 2}


def test_other_addons_are_created_as_their_manifests_say():
    api = FakeAPI()
    later = asyncio.run(bootstrap.install_addons(api, ClusterConfig(), "labctl/node:test",  # type: ignore[arg-type]
                                                 ["kube-dns"]))
    assert later == {}
    assert next(o for o in api.created if o["kind"] == "Deployment")["spec"]["replicas"] == 2


def test_a_refused_send_is_tried_again_not_the_end():
    # a send the kernel refuses (here: to the broadcast address without SO_BROADCAST; in a
    # node, the proxy's rules before they list the replica) is retried until the deadline
    assert run_probe("255.255.255.255", 0.5) == 1
