"""``labctl-portmap``: hostPort forwarding as a chained plugin, like the reference ``portmap``.

It runs after ``labctl-bridge`` in the node's network configuration list and only when the
runtime passes ``runtimeConfig.portMappings`` (the plugin declares the ``portMappings``
capability). ADD takes the pod's address from ``prevResult`` and writes the reference's
nat layout (:mod:`labctl.cni.portmap_rules`) with one ``iptables-save`` and one
``iptables-restore --noflush`` under a file lock, then passes ``prevResult`` on unchanged.
DEL removes the pod's ``CNI-DN-<hash>`` chain and the jumps to it; unlike the reference it
looks even without ``portMappings``, so a runtime that lost a pod's ports (an agent restart)
still cleans up. CHECK compares the rules with the saved table.

Like the reference it reserves nothing: a process on the node listening on the same port
loses its traffic to the pod (the scheduler keeps two pods' hostPorts apart).
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import subprocess

from labctl.cni import skel, types
from labctl.cni.portmap_rules import (
    DEFAULT_MARK_BIT,
    SavedNat,
    check_problem,
    parse_port_mappings,
    setup_text,
    teardown_text,
)
from labctl.cni.types import CNIError

TYPE_CHECKING = False  # typing costs every plugin exec ~6 ms; only the type checker needs it
if TYPE_CHECKING:
    from typing import Any

    from labctl.cni.portmap_rules import PortMapping

#: Serialises save → restore across concurrent plugin calls (nf_tables' iptables takes no xtables lock).
LOCK_FILE = "/run/labctl-portmap.lock"


class NetConf(types.Record):
    """The portmap config with the reference plugin's JSON names."""

    __slots__ = ("cni_version", "mappings", "mark_bit", "masq_all", "name", "prev_result", "snat")

    def __init__(self, cni_version: str, name: str, mappings: list[PortMapping], prev_result: dict[str, Any] | None,
                 snat: bool = True, mark_bit: int = DEFAULT_MARK_BIT, masq_all: bool = False) -> None:
        self.cni_version, self.name, self.mappings, self.prev_result = cni_version, name, mappings, prev_result
        self.snat, self.mark_bit, self.masq_all = snat, mark_bit, masq_all


def load_netconf(stdin_data: bytes) -> NetConf:
    """Parse stdin; problems are error 7 naming the field."""
    conf = skel.decode_config(stdin_data)
    snat, masq_all, mark_bit = conf.get("snat", True), conf.get("masqAll", False), conf.get("markMasqBit")
    if not isinstance(snat, bool) or not isinstance(masq_all, bool):
        raise CNIError(types.ERR_INVALID_NETCONF, "invalid network config: 'snat' and 'masqAll' must be bool")
    if mark_bit is None:
        mark_bit = DEFAULT_MARK_BIT
    if not isinstance(mark_bit, int) or isinstance(mark_bit, bool) or not 0 <= mark_bit <= 31:
        raise CNIError(types.ERR_INVALID_NETCONF, "invalid network config: 'markMasqBit' must be between 0 and 31")
    if conf.get("backend", "iptables") != "iptables":
        raise CNIError(types.ERR_INVALID_NETCONF, f"unsupported backend {conf.get('backend')!r}: only iptables")
    runtime = conf.get("runtimeConfig") or {}
    if not isinstance(runtime, dict):
        raise CNIError(types.ERR_INVALID_NETCONF, "invalid network config: 'runtimeConfig' must be an object")
    prev = conf.get("prevResult")
    if prev is not None and not isinstance(prev, dict):
        raise CNIError(types.ERR_DECODE, "could not parse prevResult", "not a JSON object")
    return NetConf(str(conf.get("cniVersion", types.CURRENT_VERSION)), str(conf.get("name", "")),
                   parse_port_mappings(runtime.get("portMappings")), prev, snat, mark_bit, masq_all)


def container_ipv4(prev_result: dict[str, Any], ifname: str) -> ipaddress.IPv4Interface | None:
    """The pod's IPv4 address (with its prefix) on ``ifname``, skipping host-side interfaces."""
    result = types.Result.from_json(prev_result)
    for ipc in result.ips:
        if ipc.interface is not None and 0 <= ipc.interface < len(result.interfaces):
            iface = result.interfaces[ipc.interface]
            if iface.name != ifname or not iface.sandbox:
                continue
        address = ipc.ip_interface
        if isinstance(address, ipaddress.IPv4Interface):
            return address
    return None


def _iptables(*argv: str, stdin: str | None = None) -> str:
    proc = subprocess.run(list(argv), input=stdin, capture_output=True, text=True)
    if proc.returncode != 0:
        raise CNIError(types.ERR_IO, f"{argv[0]} failed", (proc.stderr or proc.stdout).strip())
    return proc.stdout


def _saved_nat() -> SavedNat:
    return SavedNat.parse(_iptables("iptables-save", "-t", "nat"))


def _locked() -> int:
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def enable_localnet_routing(container_ip: str) -> None:
    """Let 127.0.0.1:<hostPort> on the node reach the pod (``route_localnet``), as the reference does.

    A node sets ``net.ipv4.conf.all.route_localnet=1`` when it is created (its /proc/sys is
    read-only); elsewhere the interface routing to the pod gets it.
    """
    with open("/proc/sys/net/ipv4/conf/all/route_localnet") as f:
        if f.read().strip() == "1":
            return
    route = subprocess.run(["ip", "-o", "route", "get", container_ip], capture_output=True, text=True).stdout.split()
    if "dev" in route:
        path = f"/proc/sys/net/ipv4/conf/{route[route.index('dev') + 1]}/route_localnet"
        try:
            with open(path, "w") as f:
                f.write("1")
        except OSError as err:
            raise CNIError(types.ERR_IO, "unable to enable route_localnet", str(err)) from err


def _forget_udp_flows(mappings: list[PortMapping]) -> None:
    """Drop stale UDP conntrack entries of the host ports, so new datagrams see the DNAT (best effort)."""
    for m in mappings:
        if m.protocol == "udp":
            try:
                subprocess.run(["conntrack", "-D", "-p", "udp", "--orig-port-dst", str(m.host_port)],
                               capture_output=True)
            except OSError:
                return  # no conntrack tool: the reference only logs this too


def _passed_on(n: NetConf) -> dict[str, Any]:
    return dict(n.prev_result or {}, cniVersion=n.cni_version)


def cmd_add(args: skel.CmdArgs) -> dict[str, Any]:
    """Forward the pod's host ports; without mappings just pass ``prevResult`` on."""
    n = load_netconf(args.stdin_data)
    if n.prev_result is None:
        raise CNIError(types.ERR_INVALID_NETCONF, "must be called as chained plugin")
    container = container_ipv4(n.prev_result, args.ifname) if n.mappings else None
    if container is None:
        return _passed_on(n)
    fd = _locked()
    try:
        text = setup_text(_saved_nat(), n.name, args.container_id, n.mappings, container, n.snat, n.mark_bit,
                          n.masq_all)
        _iptables("iptables-restore", "--noflush", stdin=text)
    finally:
        os.close(fd)
    _forget_udp_flows(n.mappings)
    if n.snat:
        enable_localnet_routing(str(container.ip))
    return _passed_on(n)


def cmd_del(args: skel.CmdArgs) -> None:
    """Remove the pod's chain and the jumps to it; nothing there is success."""
    n = load_netconf(args.stdin_data)
    fd = _locked()
    try:
        text = teardown_text(_saved_nat(), n.name, args.container_id)
        if text:
            _iptables("iptables-restore", "--noflush", stdin=text)
    finally:
        os.close(fd)


def cmd_check(args: skel.CmdArgs) -> None:
    """Every rule ADD writes for ``portMappings`` is in the nat table, or error 101 names the first missing."""
    n = load_netconf(args.stdin_data)
    if n.prev_result is None:
        raise CNIError(types.ERR_INVALID_NETCONF, "required prevResult missing")
    container = container_ipv4(n.prev_result, args.ifname) if n.mappings else None
    if container is None:
        return
    problem = check_problem(_saved_nat(), n.name, args.container_id, n.mappings, container, n.snat, n.mark_bit,
                            n.masq_all)
    if problem:
        raise CNIError(types.ERR_CHECK_FAILED, problem)


def plugin_funcs() -> skel.PluginFuncs:
    """The plugin's commands (the executable's, and the node's CNI daemon's)."""
    return skel.PluginFuncs(cmd_add, cmd_del, cmd_check, about="labctl-portmap: CNI portmap plugin")


def main() -> None:
    """Entry point of the ``labctl-portmap`` executable."""
    skel.plugin_main(plugin_funcs())


if __name__ == "__main__":
    main()
