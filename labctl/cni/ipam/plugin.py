"""``labctl-host-local``: the IPAM plugin ``labctl-bridge`` delegates to.

Same stdin as the bridge call; reads the ``ipam`` section, allocates one
address per range set from the node's disk store and answers a result with
``ips`` (no interfaces: the caller owns those), ``routes`` and ``dns``.
"""

from __future__ import annotations

from labctl.cni import skel, types
from labctl.cni.ipam.allocator import IPAllocator, parse_range_sets
from labctl.cni.ipam.store import DEFAULT_DATA_DIR, DiskStore
from labctl.cni.types import CNIError, Result, Route

TYPE_CHECKING = False  # typing costs every plugin exec ~6 ms; only the type checker needs it
if TYPE_CHECKING:
    from typing import Any


def load_ipam_conf(args: skel.CmdArgs) -> tuple[str, str, dict[str, Any]]:
    """Return (cniVersion, network name, ipam section), checking the required keys."""
    conf = args.netconf()
    ipam = conf.get("ipam")
    if not isinstance(ipam, dict):
        raise CNIError(types.ERR_INVALID_NETCONF, "IPAM config missing 'ipam' key")
    name = conf.get("name")
    if not name or not isinstance(name, str):
        raise CNIError(types.ERR_INVALID_NETCONF, "network config is missing 'name'")
    return str(conf.get("cniVersion", types.CURRENT_VERSION)), name, ipam


def open_store(name: str, ipam: dict[str, Any]) -> DiskStore:
    return DiskStore(name, str(ipam.get("dataDir") or DEFAULT_DATA_DIR))


def parse_routes(ipam: dict[str, Any]) -> list[Route]:
    try:
        return [Route(str(r["dst"]), str(r.get("gw", ""))) for r in ipam.get("routes") or []]
    except (KeyError, TypeError) as err:
        raise CNIError(types.ERR_INVALID_NETCONF, "invalid IPAM routes: each needs 'dst'", str(err)) from err


def read_resolv_conf(path: str) -> dict[str, Any]:
    """Turn a resolv.conf into the result's ``dns`` (host-local's ``resolvConf`` option)."""
    dns: dict[str, Any] = {}
    try:
        lines = open(path).read().splitlines()
    except OSError as err:
        raise CNIError(types.ERR_IO, f"failed to read resolvConf {path!r}", str(err)) from err
    for line in lines:
        fields = line.split()
        if len(fields) > 1 and fields[0] == "nameserver":
            dns.setdefault("nameservers", []).append(fields[1])
        elif len(fields) > 1 and fields[0] == "domain":
            dns["domain"] = fields[1]
        elif len(fields) > 1 and fields[0] in ("search", "options"):
            dns.setdefault(fields[0], []).extend(fields[1:])
    return dns


def cmd_add(args: skel.CmdArgs) -> Result:
    """Reserve one address per range set; roll every reservation back on failure."""
    version, name, ipam = load_ipam_conf(args)
    range_sets = parse_range_sets(ipam)
    routes = parse_routes(ipam)
    dns = read_resolv_conf(ipam["resolvConf"]) if ipam.get("resolvConf") else dict(ipam.get("dns") or {})
    store = open_store(name, ipam)
    result = Result(cni_version=version, routes=routes, dns=dns)
    with store.locked():
        success = False
        try:
            for i, range_set in enumerate(range_sets):
                result.ips.append(IPAllocator(range_set, store, i).get(args.container_id, args.ifname))
            success = True
        finally:
            if not success:  # only what this call reserved: a duplicate ADD must not free the first one
                for ipc in result.ips:
                    store.release(str(ipc.ip_interface.ip))
    return result


def cmd_del(args: skel.CmdArgs) -> None:
    """Release the container's addresses; nothing reserved is fine (DEL twice)."""
    _, name, ipam = load_ipam_conf(args)
    store = open_store(name, ipam)
    with store.locked():
        store.release_by_id(args.container_id, args.ifname)


def cmd_check(args: skel.CmdArgs) -> None:
    """Verify the container still holds a reservation."""
    _, name, ipam = load_ipam_conf(args)
    store = open_store(name, ipam)
    with store.locked():
        if not store.get_by_id(args.container_id, args.ifname):
            raise CNIError(
                types.ERR_CHECK_FAILED,
                f"failed to find address added by container {args.container_id!r} on {args.ifname!r}",
            )


def plugin_funcs() -> skel.PluginFuncs:
    """The plugin's commands (the executable's, and the node's CNI daemon's)."""
    return skel.PluginFuncs(cmd_add, cmd_del, cmd_check, about="labctl-host-local: CNI IPAM plugin")


def main() -> None:
    """Entry point of the ``labctl-host-local`` executable."""
    skel.plugin_main(plugin_funcs())


if __name__ == "__main__":
    main()
