"""``ipMasq``: SNAT a pod's traffic that leaves its podCIDR (reference bridge option).

labctl's own network config sets ``ipMasq: false`` (pods keep their source IP
across nodes thanks to host-gw routes); this exists so a user's spec-valid
config with ``ipMasq: true`` works. One rule per pod address in nat
POSTROUTING, tagged with a comment naming the network and container, so DEL
finds exactly its own rules.
"""

from __future__ import annotations

import shlex
import subprocess

from labctl.cni import types
from labctl.cni.types import CNIError, IPConfig


def _comment(network: str, container_id: str) -> str:
    return f"labctl-bridge: {network} {container_id}"[:255]


def _rule(ipc: IPConfig, comment: str) -> list[str]:
    iface = ipc.ip_interface
    return ["POSTROUTING", "-s", str(iface.ip), "!", "-d", str(iface.network),
            "-m", "comment", "--comment", comment, "-j", "MASQUERADE"]


def _iptables(version: int) -> str:
    return "iptables" if version == 4 else "ip6tables"


def setup_ip_masq(network: str, container_id: str, ips: list[IPConfig]) -> None:
    """Append a MASQUERADE rule per pod IP for traffic leaving its subnet."""
    for ipc in ips:
        tool = _iptables(ipc.ip_interface.version)
        argv = [tool, "-w", "-t", "nat", "-A", *_rule(ipc, _comment(network, container_id))]
        proc = subprocess.run(argv, capture_output=True, text=True)
        if proc.returncode != 0:
            raise CNIError(types.ERR_IO, f"failed to set up ipMasq for {ipc.address!r}", proc.stderr.strip())


def teardown_ip_masq(network: str, container_id: str) -> None:
    """Delete every nat rule carrying this container's comment; none is fine."""
    comment = _comment(network, container_id)
    for tool in ("iptables", "ip6tables"):
        proc = subprocess.run([tool, "-w", "-t", "nat", "-S", "POSTROUTING"], capture_output=True, text=True)
        for line in proc.stdout.splitlines():
            if comment in line:
                subprocess.run([tool, "-w", "-t", "nat", "-D", *shlex.split(line)[1:]], capture_output=True)
