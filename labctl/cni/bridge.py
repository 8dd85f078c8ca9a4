"""``labctl-bridge``: put a pod on the node bridge, like the reference ``bridge`` plugin.

ADD: ensure bridge ``cni0`` (holding the podCIDR gateway when ``isGateway``),
create a veth pair whose ``eth0`` end is born inside the pod's netns, attach
the host end (``veth`` + 8 hex of sha256(containerID+ifname), so a student
can tell which pod owns it) to the bridge with hairpin on, get addresses from
the IPAM plugin and configure them plus the routes inside the pod.
DEL releases IPAM first and then removes the veth; missing things are fine.
CHECK compares ``prevResult`` with the kernel's view.

The netlink work lives in :mod:`labctl.cni.links`, imported only after the
IPAM plugin has been started, so the two interpreter start-ups overlap.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from labctl.cni import invoke, skel, types
from labctl.cni.masq import setup_ip_masq, teardown_ip_masq
from labctl.cni.types import CNIError, Interface, IPConfig, Result, Route


@dataclass
class NetConf:
    """The bridge plugin's network config, with the reference plugin's JSON names."""

    cni_version: str
    name: str
    type: str
    ipam: dict[str, Any]
    bridge: str = "cni0"
    is_gateway: bool = False
    is_default_gateway: bool = False
    ip_masq: bool = False
    hairpin_mode: bool = False
    promisc_mode: bool = False
    mtu: int = 1500
    prev_result: dict[str, Any] | None = None
    raw: dict[str, Any] = field(default_factory=dict)


def load_netconf(stdin_data: bytes) -> NetConf:
    """Parse and validate stdin; every problem is a spec error 7 naming the field."""
    conf = skel.decode_config(stdin_data)

    def want(key: str, kind: type, default: Any) -> Any:
        value = conf.get(key, default)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise CNIError(types.ERR_INVALID_NETCONF, f"invalid network config: {key!r} must be {kind.__name__}")
        return value

    name = want("name", str, "")
    if not name:
        raise CNIError(types.ERR_INVALID_NETCONF, "invalid network config: 'name' is required")
    ipam = want("ipam", dict, {})
    if not ipam.get("type"):
        raise CNIError(types.ERR_INVALID_NETCONF, "invalid network config: 'ipam.type' is required")
    n = NetConf(
        cni_version=str(conf.get("cniVersion", types.CURRENT_VERSION)),
        name=name,
        type=want("type", str, ""),
        ipam=ipam,
        bridge=want("bridge", str, "cni0") or "cni0",
        is_gateway=want("isGateway", bool, False),
        is_default_gateway=want("isDefaultGateway", bool, False),
        ip_masq=want("ipMasq", bool, False),
        hairpin_mode=want("hairpinMode", bool, False),
        promisc_mode=want("promiscMode", bool, False),
        mtu=want("mtu", int, 0) or 1500,
        prev_result=conf.get("prevResult"),
        raw=conf,
    )
    if n.is_default_gateway:
        n.is_gateway = True  # the reference does the same: a default gateway must be a gateway
    if len(n.bridge) > 15:
        raise CNIError(types.ERR_INVALID_NETCONF, f"invalid bridge name {n.bridge!r}: longer than 15 characters")
    if not 68 <= n.mtu <= 65535:
        raise CNIError(types.ERR_INVALID_NETCONF, f"invalid mtu {n.mtu}")
    return n


def host_veth_name(container_id: str, ifname: str) -> str:
    """Return the stable host-side veth name for one pod interface."""
    return "veth" + hashlib.sha256(f"{container_id}{ifname}".encode()).hexdigest()[:8]


def build_result(n: NetConf, ipam: Result, bridge: Interface, host: Interface, cont: Interface) -> Result:
    """The CNI result: [bridge, host veth, pod iface]; every IP sits on index 2."""
    ips = [IPConfig(i.address, i.gateway, 2) for i in ipam.ips]
    routes = list(ipam.routes)
    if n.is_default_gateway:
        for ipc in ips:
            dst = "0.0.0.0/0" if ipc.ip_interface.version == 4 else "::/0"
            if not any(r.dst == dst for r in routes):
                routes.append(Route(dst, ipc.gateway))
    return Result(n.cni_version, [bridge, host, cont], ips, routes, ipam.dns)


def _ipam_kw(args: skel.CmdArgs) -> dict[str, Any]:
    return dict(container_id=args.container_id, netns=args.netns, ifname=args.ifname, cni_path=args.path,
                cni_args=args.args)


def cmd_add(args: skel.CmdArgs) -> Result:
    """Wire one pod; on any failure undo the veth and the IPAM reservation."""
    n = load_netconf(args.stdin_data)
    pending = invoke.start_plugin(n.ipam["type"], "ADD", args.stdin_data, **_ipam_kw(args))
    from labctl.cni import links  # pyroute2 imports while IPAM runs

    raw = pending.result()
    success = False
    try:
        result = _wire_pod(links, args, n, Result.from_json(raw or {}))
        if n.ip_masq:
            setup_ip_masq(n.name, args.container_id, result.ips)
        success = True
        return result
    finally:
        if not success:
            _rollback(links, args, n)


def _wire_pod(links: Any, args: skel.CmdArgs, n: NetConf, ipam: Result) -> Result:
    """Bridge, veth, pod addresses and routes, then the gateway on the bridge."""
    if not ipam.ips:
        raise CNIError(types.ERR_INVALID_NETCONF, f"IPAM plugin {n.ipam['type']!r} returned no IP addresses")
    with links.IPRoute() as ipr:
        bridge_index = links.ensure_bridge(ipr, n)
        host, cont = links.setup_veth(ipr, args, n, bridge_index, host_veth_name(args.container_id, args.ifname))
        bridge = Interface(n.bridge, links.get_link(ipr, bridge_index)["mac"])
        result = build_result(n, ipam, bridge, host, cont)
        links.configure_iface(args, result)
        if n.is_gateway:
            for ipc in result.ips:
                if ipc.gateway:
                    prefix = ipc.ip_interface.network.prefixlen
                    links.ensure_addr(ipr, bridge_index, f"{ipc.gateway}/{prefix}", n.bridge)
                    links.enable_ip_forward(ipc.ip_interface.version)
    return result


def _rollback(links: Any, args: skel.CmdArgs, n: NetConf) -> None:
    """Best-effort undo of a failed ADD: the veth (both ends) and the addresses."""
    try:
        with links.IPRoute() as ipr:
            links.delete_link(ipr, host_veth_name(args.container_id, args.ifname))
    except Exception:  # the original error is the one the runtime must see
        pass
    if n.ip_masq:
        teardown_ip_masq(n.name, args.container_id)
    try:
        invoke.delegate(n.ipam["type"], "DEL", args.stdin_data, **_ipam_kw(args))
    except CNIError:
        pass


def cmd_del(args: skel.CmdArgs) -> None:
    """Release IPAM, then remove the pod's veth; a missing netns or link is success."""
    n = load_netconf(args.stdin_data)
    pending = invoke.start_plugin(n.ipam["type"], "DEL", args.stdin_data, **_ipam_kw(args))
    from labctl.cni import links

    pending.result()
    if n.ip_masq:
        teardown_ip_masq(n.name, args.container_id)
    if args.netns:
        links.remove_pod_iface(args.netns, args.ifname)


def cmd_check(args: skel.CmdArgs) -> None:
    """Compare prevResult with reality; raise a specific error on the first difference."""
    n = load_netconf(args.stdin_data)
    if not n.prev_result:
        raise CNIError(types.ERR_INVALID_NETCONF, "required prevResult missing")
    pending = invoke.start_plugin(n.ipam["type"], "CHECK", args.stdin_data, **_ipam_kw(args))
    from labctl.cni.bridge_check import check_network  # pyroute2 imports while IPAM runs

    pending.result()
    check_network(n.bridge, Result.from_json(n.prev_result), args.netns, args.ifname)


def main() -> None:
    """Entry point of the ``labctl-bridge`` executable."""
    skel.plugin_main(skel.PluginFuncs(cmd_add, cmd_del, cmd_check, about="labctl-bridge: CNI bridge plugin"))


if __name__ == "__main__":
    main()
