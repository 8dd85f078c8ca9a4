"""``labctl-bridge``: put a pod on the node bridge, like the reference ``bridge`` plugin.

ADD: ensure bridge ``cni0`` (holding the podCIDR gateway when ``isGateway``),
create a veth pair whose ``eth0`` end is born inside the pod's netns, attach
the host end (``veth`` + 8 hex of sha256(containerID+ifname), so a student
can tell which pod owns it) to the bridge with hairpin on, get addresses from
the IPAM plugin and configure them plus the routes inside the pod.
DEL releases IPAM first and then removes the veth; missing things are fine.
CHECK compares ``prevResult`` with the kernel's view.

How the work is done is a :class:`Backend`. Run as its own process (:data:`EXEC`),
the kernel work is :mod:`labctl.cni.links` (iproute2's ``ip``: importing pyroute2
would cost more than the whole ADD) and IPAM is the delegated plugin's process,
started first so that the host side is built while it starts. In the node's CNI
daemon (:mod:`labctl.cni.daemon`) the kernel work is :mod:`labctl.cni.netlink`
(pyroute2, already loaded) and ``labctl-host-local`` is a library call.
"""

from __future__ import annotations

from labctl.cni import invoke, links, skel, types
from labctl.cni.bridge_check import check_network
from labctl.cni.masq import setup_ip_masq, teardown_ip_masq
from labctl.cni.types import CNIError, Interface, IPConfig, Result, Route

TYPE_CHECKING = False  # typing costs every plugin exec ~6 ms; only the type checker needs it
if TYPE_CHECKING:
    from types import ModuleType
    from typing import Any


class Backend(types.Record):
    """How one call touches the kernel (``kernel``: a module with :mod:`labctl.cni.links`'s
    functions) and reaches IPAM (``in_process_ipam``: IPAM types answered by a library call
    instead of exec'ing the plugin; any other type is still exec'd from ``CNI_PATH``)."""

    __slots__ = ("in_process_ipam", "kernel")

    def __init__(self, kernel: ModuleType, in_process_ipam: dict[str, skel.PluginFuncs]) -> None:
        self.kernel, self.in_process_ipam = kernel, in_process_ipam


#: a plugin process: ``ip`` commands, IPAM exec'd
EXEC = Backend(links, {})


class _InProcessIPAM:
    """An IPAM call made as a library call, shaped like :class:`invoke.PendingPlugin`."""

    def __init__(self, funcs: skel.PluginFuncs, command: str, args: skel.CmdArgs) -> None:
        self.funcs, self.command, self.args = funcs, command, args

    def result(self) -> dict[str, Any] | None:
        handler = {"ADD": self.funcs.add, "DEL": self.funcs.delete, "CHECK": self.funcs.check}[self.command]
        out = handler(self.args)
        return out.to_json() if isinstance(out, Result) else out


def _start_ipam(args: skel.CmdArgs, n: NetConf, command: str,
                backend: Backend) -> invoke.PendingPlugin | _InProcessIPAM:
    """Start the IPAM call (``ipam.type``) with the caller's stdin, as ``pkg/ipam.ExecAdd`` does."""
    funcs = backend.in_process_ipam.get(n.ipam["type"])
    if funcs is not None:
        return _InProcessIPAM(funcs, command, args)
    return invoke.start_plugin(n.ipam["type"], command, args.stdin_data, **_ipam_kw(args))


class NetConf(types.Record):
    """The bridge plugin's network config, with the reference plugin's JSON names."""

    __slots__ = (
        "bridge",
        "cni_version",
        "hairpin_mode",
        "ip_masq",
        "ipam",
        "is_default_gateway",
        "is_gateway",
        "mtu",
        "name",
        "prev_result",
        "promisc_mode",
        "raw",
        "type",
    )

    def __init__(self, cni_version: str, name: str, type: str, ipam: dict[str, Any], bridge: str = "cni0",
                 is_gateway: bool = False, is_default_gateway: bool = False, ip_masq: bool = False,
                 hairpin_mode: bool = False, promisc_mode: bool = False, mtu: int = 1500,
                 prev_result: dict[str, Any] | None = None, raw: dict[str, Any] | None = None) -> None:
        self.cni_version, self.name, self.type, self.ipam, self.bridge = cni_version, name, type, ipam, bridge
        self.is_gateway, self.is_default_gateway, self.ip_masq = is_gateway, is_default_gateway, ip_masq
        self.hairpin_mode, self.promisc_mode, self.mtu = hairpin_mode, promisc_mode, mtu
        self.prev_result, self.raw = prev_result, raw if raw is not None else {}


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
    import hashlib  # here, not at the top: loading OpenSSL must not delay starting IPAM

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


def cmd_add(args: skel.CmdArgs, backend: Backend = EXEC) -> Result:
    """Wire one pod; on any failure undo the veth and the IPAM reservation.

    The host side (bridge, veth pair) is built while the IPAM plugin runs: both
    are mostly process start-up. An IPAM error still wins, as if IPAM ran first.
    """
    n = load_netconf(args.stdin_data)
    pending = _start_ipam(args, n, "ADD", backend)
    host_name = host_veth_name(args.container_id, args.ifname)
    plugged: tuple[Interface, Interface, Interface, list[str]] | None = None
    host_error: Exception | None = None
    try:
        plugged = _plug_veth(args, n, host_name, backend.kernel)
    except Exception as err:  # raised below, once IPAM has answered (its error wins)
        host_error = err
    try:
        raw = pending.result()
    except CNIError:
        if plugged is not None:
            _delete_veth(host_name, backend.kernel)
        raise
    success = False
    try:
        if host_error is not None:
            raise host_error
        assert plugged is not None
        result = _configure_pod(args, n, backend.kernel, Result.from_json(raw or {}), *plugged)
        if n.ip_masq:
            setup_ip_masq(n.name, args.container_id, result.ips)
        success = True
        return result
    finally:
        if not success:
            _rollback(args, n, backend, host_name if plugged is not None else None)


def _plug_veth(args: skel.CmdArgs, n: NetConf, host_name: str,
               kernel: ModuleType) -> tuple[Interface, Interface, Interface, list[str]]:
    """Host side, no addresses needed: bridge up, veth pair made and attached.

    Returns the result's [bridge, host veth, pod iface] and the addresses the bridge holds.

    Raises with no veth left behind, so the caller owns a veth exactly when this returns.
    """
    bridge = kernel.ensure_bridge(n)
    kernel.create_veth(args, n, host_name)
    try:
        host, cont = kernel.attach_veth(args, n, host_name)
    except Exception:
        _delete_veth(host_name, kernel)
        raise
    return Interface(n.bridge, bridge["mac"]), host, cont, bridge["addrs"]


def _configure_pod(args: skel.CmdArgs, n: NetConf, kernel: ModuleType, ipam: Result, bridge: Interface, host: Interface,
                   cont: Interface, bridge_addrs: list[str]) -> Result:
    """Pod addresses and routes, then the gateway on the bridge."""
    if not ipam.ips:
        raise CNIError(types.ERR_INVALID_NETCONF, f"IPAM plugin {n.ipam['type']!r} returned no IP addresses")
    result = build_result(n, ipam, bridge, host, cont)
    kernel.configure_iface(args, result)
    if n.is_gateway:
        for ipc in result.ips:
            if ipc.gateway:
                kernel.ensure_addr(f"{ipc.gateway}/{ipc.ip_interface.network.prefixlen}", n.bridge, bridge_addrs)
                kernel.enable_ip_forward(ipc.ip_interface.version)
    return result


def _delete_veth(host_name: str, kernel: ModuleType) -> None:
    try:
        kernel.delete_link(host_name)
    except Exception:  # the original error is the one the runtime must see
        pass


def _rollback(args: skel.CmdArgs, n: NetConf, backend: Backend, host_name: str | None) -> None:
    """Best-effort undo of a failed ADD: the veth we made (both ends), masq rules, the addresses."""
    if host_name is not None:
        _delete_veth(host_name, backend.kernel)
    if n.ip_masq:
        teardown_ip_masq(n.name, args.container_id)
    try:
        _start_ipam(args, n, "DEL", backend).result()
    except CNIError:
        pass


def cmd_del(args: skel.CmdArgs, backend: Backend = EXEC) -> None:
    """Release IPAM, then remove the pod's veth; a missing netns or link is success."""
    n = load_netconf(args.stdin_data)
    _start_ipam(args, n, "DEL", backend).result()
    if n.ip_masq:
        teardown_ip_masq(n.name, args.container_id)
    if args.netns:
        backend.kernel.remove_pod_iface(args.netns, args.ifname)


def cmd_check(args: skel.CmdArgs, backend: Backend = EXEC) -> None:
    """Compare prevResult with reality; raise a specific error on the first difference.

    The comparison always reads the kernel through ``ip -j`` (CHECK is rare, not on a pod's path).
    """
    n = load_netconf(args.stdin_data)
    if not n.prev_result:
        raise CNIError(types.ERR_INVALID_NETCONF, "required prevResult missing")
    _start_ipam(args, n, "CHECK", backend).result()
    check_network(n.bridge, Result.from_json(n.prev_result), args.netns, args.ifname)


def plugin_funcs(backend: Backend = EXEC) -> skel.PluginFuncs:
    """The plugin's commands done through ``backend``."""
    return skel.PluginFuncs(lambda a: cmd_add(a, backend), lambda a: cmd_del(a, backend),
                            lambda a: cmd_check(a, backend), about="labctl-bridge: CNI bridge plugin")


def main() -> None:
    """Entry point of the ``labctl-bridge`` executable."""
    skel.plugin_main(plugin_funcs())


if __name__ == "__main__":
    main()
