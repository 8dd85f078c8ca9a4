"""A tiny real node for the datapath tests: netns, a cni0 bridge, pod netns with veths.

    outside (192.168.77.2) --ext veth-- node netns: cni0 10.244.1.1/24 --veths-- pods
                                          (iptables of the proxier live here)

Everything is named with a per-run suffix and deleted in ``destroy()``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field

SERVER = r"""
import socketserver, sys
class H(socketserver.BaseRequestHandler):
    def handle(self):
        me, peer = self.request.getsockname()[0], self.request.getpeername()[0]
        self.request.sendall(f"{me} {peer}\n".encode())
socketserver.ThreadingTCPServer.allow_reuse_address = True
socketserver.ThreadingTCPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"""

CLIENT = r"""
import json, socket, sys, time
ip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = {"answers": [], "errors": [], "seconds": []}
for _ in range(n):
    t = time.monotonic()
    try:
        with socket.create_connection((ip, port), timeout=3) as s:
            out["answers"].append(s.makefile().readline().split())
    except OSError as err:
        out["errors"].append(type(err).__name__)
    out["seconds"].append(time.monotonic() - t)
print(json.dumps(out))
"""


def sh(*argv: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise RuntimeError(f"failed to run {' '.join(argv)!r}: {proc.stderr.strip()}")
    return proc


@dataclass
class Topology:
    """One node netns, backend pods, a client pod and an outside host."""

    suffix: str = field(default_factory=lambda: f"{os.getpid() % 1000}{uuid.uuid4().hex[:4]}")
    pods: dict[str, str] = field(default_factory=dict)  # netns name -> pod IP
    servers: list[subprocess.Popen] = field(default_factory=list)
    node: str = ""
    outside: str = ""
    node_ext_ip: str = "192.168.77.1"
    outside_ip: str = "192.168.77.2"

    def create(self, backends: int = 3, port: int = 8080) -> None:
        self.node = f"lpxnode{self.suffix}"
        sh("ip", "netns", "add", self.node)
        n = ("ip", "netns", "exec", self.node)
        for key in ("net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables", "net.ipv4.conf.all.route_localnet"):
            sh(*n, "sysctl", "-qw", f"{key}=1")
        if sh(*n, "sysctl", "-n", "net.bridge.bridge-nf-call-iptables").stdout.strip() != "1":
            raise RuntimeError("failed to enable net.bridge.bridge-nf-call-iptables in the node netns")
        sh("ip", "-n", self.node, "link", "set", "lo", "up")
        sh("ip", "-n", self.node, "link", "add", "cni0", "type", "bridge")
        sh("ip", "-n", self.node, "addr", "add", "10.244.1.1/24", "dev", "cni0")
        sh("ip", "-n", self.node, "link", "set", "cni0", "up")
        for i in range(backends):
            self.add_pod(f"lpxb{i}{self.suffix}", f"10.244.1.{11 + i}", f"vb{i}{self.suffix}")
            self.serve(f"lpxb{i}{self.suffix}", port)
        self.add_pod(f"lpxc{self.suffix}", "10.244.1.20", f"vc{self.suffix}")
        self.outside = f"lpxout{self.suffix}"
        sh("ip", "netns", "add", self.outside)
        sh("ip", "-n", self.node, "link", "add", "ext0", "type", "veth", "peer", "name", "eth0", "netns", self.outside)
        sh("ip", "-n", self.node, "addr", "add", f"{self.node_ext_ip}/24", "dev", "ext0")
        sh("ip", "-n", self.node, "link", "set", "ext0", "up")
        self._up_with_route(self.outside, f"{self.outside_ip}/24", self.node_ext_ip)
        # A real node has a default route; without one a Service IP is "unreachable" before filter runs.
        sh("ip", "-n", self.node, "route", "add", "default", "via", self.outside_ip)
        self.wait_for_servers(port)

    def add_pod(self, ns: str, ip: str, host_veth: str) -> None:
        """Like the CNI bridge plugin with ``hairpinMode: true`` (a pod may reach itself via a Service)."""
        sh("ip", "netns", "add", ns)
        self.pods[ns] = ip
        sh("ip", "-n", self.node, "link", "add", host_veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        sh("ip", "-n", self.node, "link", "set", host_veth, "master", "cni0", "up")
        sh("ip", "-n", self.node, "link", "set", host_veth, "type", "bridge_slave", "hairpin", "on")
        self._up_with_route(ns, f"{ip}/24", "10.244.1.1")

    def _up_with_route(self, ns: str, cidr: str, gateway: str) -> None:
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "addr", "add", cidr, "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")
        sh("ip", "-n", ns, "route", "add", "default", "via", gateway)

    def serve(self, ns: str, port: int) -> None:
        self.servers.append(subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER, str(port)]))

    def wait_for_servers(self, port: int) -> None:
        for ns, ip in self.pods.items():
            if ns.startswith("lpxb"):
                for _ in range(100):
                    if self.connect(self.node, ip, port, 1)["answers"]:
                        break
                    time.sleep(0.05)
                else:
                    raise RuntimeError(f"failed to reach the test server in pod {ns!r}")

    @property
    def client(self) -> str:
        return f"lpxc{self.suffix}"

    def backend(self, i: int) -> str:
        return f"lpxb{i}{self.suffix}"

    def connect(self, ns: str, ip: str, port: int, count: int) -> dict:
        """Open ``count`` fresh TCP connections from netns ``ns``; each answer is ``[backend, peer]``."""
        out = sh("ip", "netns", "exec", ns, sys.executable, "-c", CLIENT, ip, str(port), str(count)).stdout
        return json.loads(out)

    def destroy(self) -> None:
        for proc in self.servers:
            proc.terminate()
        for proc in self.servers:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        for ns in [*self.pods, self.outside, self.node]:
            if ns:
                sh("ip", "netns", "del", ns, check=False)
