"""Run CNI plugins the way a container runtime (libcni) does.

The node agent calls :func:`add`, :func:`delete` and :func:`check` with the
network config it wrote to ``/etc/cni/net.d``; ``labctl-bridge`` uses
:func:`start_plugin` to hand IPAM to ``labctl-host-local``. Both exec the plugin
named by ``type`` from ``CNI_PATH`` with the ``CNI_*`` environment and the
config on stdin, and turn the spec's error JSON into :class:`CNIError`.
A network configuration list (``{"plugins": [...]}``) runs its plugins in order on
ADD, passing each result on as ``prevResult``, in reverse on DEL, and in order on
CHECK with the ADD's result as ``prevResult``; ``runtimeConfig`` carries only the
capability arguments (e.g. ``portMappings``) a plugin declares in its
``capabilities``, as libcni's ``injectRuntimeConfig`` does. :func:`load_netconf_dir`
parses files as libcni does: a ``.conflist`` must have ``plugins``, a ``.conf`` is
one plugin, made into a list of one. Given a ``cache_dir``, ADD keeps its result and
capability arguments where libcni keeps them (``<cache_dir>/results/<network>-<container>-<ifname>``,
libcni's ``cniCacheV1`` format), and DEL hands them back to the plugins as
``prevResult`` and ``runtimeConfig``, then forgets them.
"""

from __future__ import annotations

import json
import os
import subprocess

from labctl.cni import types
from labctl.cni.types import CNIError

TYPE_CHECKING = False  # typing costs every plugin exec ~6 ms; only the type checker needs it
if TYPE_CHECKING:
    from typing import Any

DEFAULT_CNI_PATH = ["/opt/cni/bin"]
DEFAULT_CONF_DIR = "/etc/cni/net.d"
DEFAULT_CACHE_DIR = "/var/lib/cni"  # libcni's CacheDir
#: A plugin that hangs must not hang the node agent's pod sync forever.
PLUGIN_TIMEOUT_S = 60.0
PIPE_BUFFER = 65536  # Linux default pipe capacity


def find_plugin(plugin_type: str, cni_path: list[str]) -> str:
    """Return the path of executable ``plugin_type`` in the first dir of ``cni_path`` holding it."""
    if not plugin_type or "/" in plugin_type:
        raise CNIError(types.ERR_INVALID_NETCONF, f"invalid plugin type {plugin_type!r}")
    for directory in cni_path:
        candidate = os.path.join(directory, plugin_type)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise CNIError(types.ERR_INVALID_NETCONF, f"failed to find plugin {plugin_type!r} in path {cni_path}")


class PendingPlugin:
    """A plugin that has been started and fed its stdin but not waited for.

    ``labctl-bridge`` starts IPAM this way and imports netlink while it runs:
    both are mostly interpreter start-up, so overlapping them cuts ADD latency.
    """

    def __init__(self, plugin_type: str, proc: subprocess.Popen[bytes], late_input: bytes | None = None) -> None:
        self.plugin_type = plugin_type
        self.proc = proc
        self.late_input = late_input

    def result(self) -> dict[str, Any] | None:
        """Wait for the plugin; return its decoded stdout (None if empty) or raise its CNIError."""
        try:
            stdout, stderr = self.proc.communicate(self.late_input, timeout=PLUGIN_TIMEOUT_S)
        except subprocess.TimeoutExpired as err:
            self.proc.kill()
            self.proc.communicate()
            raise CNIError(types.ERR_IO, f"plugin {self.plugin_type!r} timed out", str(err)) from err
        return decode_output(self.plugin_type, self.proc.returncode, stdout, stderr)


def decode_output(plugin_type: str, returncode: int, stdout: bytes, stderr: bytes) -> dict[str, Any] | None:
    """Turn a finished plugin's output into its result, or raise the CNIError it reported."""
    out = stdout.strip()
    try:
        decoded = json.loads(out) if out else None
    except ValueError:
        decoded = None
    if returncode != 0:
        if isinstance(decoded, dict) and "code" in decoded:
            raise CNIError.from_json(decoded)
        detail = (stderr or stdout).decode(errors="replace").strip()
        raise CNIError(types.ERR_INTERNAL, f"plugin {plugin_type!r} failed with exit status {returncode}", detail)
    if out and decoded is None:
        detail = out[:200].decode(errors="replace")
        raise CNIError(types.ERR_DECODE, f"failed to decode the output of plugin {plugin_type!r}", detail)
    return decoded


def start_plugin(
    plugin_type: str,
    command: str,
    stdin_data: bytes,
    *,
    container_id: str = "",
    netns: str = "",
    ifname: str = "",
    cni_path: list[str],
    cni_args: str = "",
) -> PendingPlugin:
    """Exec one plugin with ``CNI_COMMAND=command`` and the ``CNI_*`` env; don't wait."""
    path = find_plugin(plugin_type, cni_path)
    env = dict(os.environ)
    env.update(
        CNI_COMMAND=command,
        CNI_CONTAINERID=container_id,
        CNI_NETNS=netns,
        CNI_IFNAME=ifname,
        CNI_ARGS=cni_args,
        CNI_PATH=os.pathsep.join(cni_path),
    )
    # Hand small configs over through a pre-filled pipe so the plugin can run to
    # completion before we wait; a config above a pipe buffer is fed at wait time.
    late_input = stdin_data if len(stdin_data) >= PIPE_BUFFER else None
    try:
        if late_input is None:
            r, w = os.pipe()
            os.write(w, stdin_data)
            os.close(w)
            try:
                proc = subprocess.Popen([path], stdin=r, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
            finally:
                os.close(r)
        else:
            proc = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=env)
    except OSError as err:
        raise CNIError(types.ERR_IO, f"failed to run plugin {plugin_type!r}", str(err)) from err
    return PendingPlugin(plugin_type, proc, late_input)


def exec_plugin(plugin_type: str, command: str, stdin_data: bytes, **kw: Any) -> dict[str, Any] | None:
    """Exec one plugin and wait; return its decoded stdout (None if empty)."""
    return start_plugin(plugin_type, command, stdin_data, **kw).result()


def _plugin_confs(netconf: dict[str, Any], capability_args: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Expand a configuration list into per-plugin configs, as libcni builds each plugin's stdin.

    Each plugin gets the list's ``name`` and ``cniVersion``, and a ``runtimeConfig`` holding
    the capability arguments it declared (``"capabilities": {"portMappings": true}``).
    """
    plugins = netconf["plugins"] if "plugins" in netconf else [netconf]
    confs = []
    for plugin in plugins:
        conf = dict(plugin)
        conf["name"] = netconf.get("name", "")
        conf["cniVersion"] = netconf.get("cniVersion", types.CURRENT_VERSION)
        declared = conf.get("capabilities") or {}
        runtime = {k: v for k, v in (capability_args or {}).items() if declared.get(k)}
        if runtime:
            conf["runtimeConfig"] = dict(conf.get("runtimeConfig") or {}, **runtime)
        confs.append(conf)
    return confs


def _call_kw(container_id: str, netns: str, ifname: str, cni_path: list[str] | None, cni_args: str) -> dict[str, Any]:
    return dict(container_id=container_id, netns=netns, ifname=ifname, cni_path=cni_path or DEFAULT_CNI_PATH,
                cni_args=cni_args)


def _encode(conf: dict[str, Any], prev_result: dict[str, Any] | None) -> bytes:
    if prev_result is not None:
        conf = dict(conf, prevResult=prev_result)
    return json.dumps(conf).encode()


def cache_path(cache_dir: str, network: str, container_id: str, ifname: str) -> str:
    """Where libcni caches one attachment's result: ``results/<network>-<container>-<ifname>``."""
    return os.path.join(cache_dir, "results", f"{network}-{container_id}-{ifname}")


def _write_cache(cache_dir: str, netconf: dict[str, Any], container_id: str, ifname: str,
                 capability_args: dict[str, Any] | None, result: dict[str, Any]) -> None:
    import base64  # only the node agent caches: keep it off the plugins' exec path

    entry = {"kind": "cniCacheV1", "containerId": container_id, "ifName": ifname,
             "networkName": netconf.get("name", ""), "config": base64.b64encode(json.dumps(netconf).encode()).decode(),
             "result": result}
    if capability_args:
        entry["capabilityArgs"] = capability_args
    path = cache_path(cache_dir, netconf.get("name", ""), container_id, ifname)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(entry, f)
    os.replace(tmp, path)


def read_cache(cache_dir: str, network: str, container_id: str, ifname: str) -> dict[str, Any] | None:
    """The cached entry of one attachment (libcni's ``cniCacheV1``), or None when there is none."""
    try:
        with open(cache_path(cache_dir, network, container_id, ifname)) as f:
            entry = json.load(f)
    except (OSError, ValueError):
        return None
    return entry if isinstance(entry, dict) else None


def add(
    netconf: dict[str, Any],
    container_id: str,
    netns_path: str,
    ifname: str = "eth0",
    cni_path: list[str] | None = None,
    cni_args: str = "",
    capability_args: dict[str, Any] | None = None,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """Attach a pod sandbox to the network; return the final CNI result (cached in ``cache_dir``)."""
    result: dict[str, Any] | None = None
    kw = _call_kw(container_id, netns_path, ifname, cni_path, cni_args)
    for conf in _plugin_confs(netconf, capability_args):
        result = exec_plugin(conf.get("type", ""), "ADD", _encode(conf, result), **kw) or result
    if result is None:
        raise CNIError(types.ERR_DECODE, f"network {netconf.get('name', '')!r} returned no result")
    if cache_dir:
        _write_cache(cache_dir, netconf, container_id, ifname, capability_args, result)
    return result


def delete(
    netconf: dict[str, Any],
    container_id: str,
    netns_path: str = "",
    ifname: str = "eth0",
    cni_path: list[str] | None = None,
    prev_result: dict[str, Any] | None = None,
    cni_args: str = "",
    capability_args: dict[str, Any] | None = None,
    cache_dir: str | None = None,
) -> None:
    """Detach a pod sandbox and release its addresses; safe to call twice.

    With ``cache_dir`` the ADD's cached result and capability arguments stand in for the
    ones not given, and the cache entry goes once every plugin succeeded.
    """
    cached = read_cache(cache_dir, netconf.get("name", ""), container_id, ifname) if cache_dir else None
    if cached is not None:
        prev_result = prev_result or cached.get("result")
        capability_args = capability_args or cached.get("capabilityArgs")
    kw = _call_kw(container_id, netns_path, ifname, cni_path, cni_args)
    for conf in reversed(_plugin_confs(netconf, capability_args)):
        exec_plugin(conf.get("type", ""), "DEL", _encode(conf, prev_result), **kw)
    if cached is not None and cache_dir:
        try:
            os.remove(cache_path(cache_dir, netconf.get("name", ""), container_id, ifname))
        except FileNotFoundError:
            pass


def check(
    netconf: dict[str, Any],
    container_id: str,
    netns_path: str,
    prev_result: dict[str, Any],
    ifname: str = "eth0",
    cni_path: list[str] | None = None,
    cni_args: str = "",
    capability_args: dict[str, Any] | None = None,
) -> None:
    """Verify the pod's network still matches ``prev_result``; raise CNIError if not."""
    kw = _call_kw(container_id, netns_path, ifname, cni_path, cni_args)
    for conf in _plugin_confs(netconf, capability_args):
        exec_plugin(conf.get("type", ""), "CHECK", _encode(conf, prev_result), **kw)


def version(plugin_type: str, cni_path: list[str] | None = None) -> dict[str, Any]:
    """Ask a plugin which spec versions it supports."""
    return exec_plugin(plugin_type, "VERSION", b"", cni_path=cni_path or DEFAULT_CNI_PATH) or {}


def parse_netconf_file(name: str, data: bytes) -> dict[str, Any]:
    """Parse one file of ``/etc/cni/net.d`` into a configuration list, with libcni's errors.

    A ``.conflist`` needs ``plugins`` (libcni: ``no 'plugins' key``), each with a ``type``;
    a ``.conf``/``.json`` is a single plugin, turned into a list of one (``ConfListFromConf``).
    """
    try:
        conf = json.loads(data)
    except ValueError as err:
        raise CNIError(types.ERR_DECODE, f"error parsing configuration {name!r}", str(err)) from err
    if not isinstance(conf, dict):
        raise CNIError(types.ERR_DECODE, f"error parsing configuration {name!r}", "not a JSON object")
    if not name.endswith(".conflist"):
        if not conf.get("type"):
            raise CNIError(types.ERR_INVALID_NETCONF, f"error parsing configuration {name!r}: missing 'type'")
        plugin = {k: v for k, v in conf.items() if k not in ("name", "cniVersion")}
        conf = {"cniVersion": conf.get("cniVersion", types.CURRENT_VERSION), "name": conf.get("name", ""),
                "plugins": [plugin]}
    plugins = conf.get("plugins")
    if plugins is None:
        raise CNIError(types.ERR_INVALID_NETCONF, "error parsing configuration list: no 'plugins' key")
    if not isinstance(plugins, list) or not plugins:
        raise CNIError(types.ERR_INVALID_NETCONF, "error parsing configuration list: 'plugins' must be a non-empty list")
    if not conf.get("name"):
        raise CNIError(types.ERR_INVALID_NETCONF, "error parsing configuration list: no name")
    for i, plugin in enumerate(plugins):
        if not isinstance(plugin, dict) or not plugin.get("type"):
            raise CNIError(types.ERR_INVALID_NETCONF, f"error parsing configuration list: plugins[{i}] has no 'type'")
    return conf


def load_netconf_dir(conf_dir: str = DEFAULT_CONF_DIR) -> dict[str, Any]:
    """Return the first network configuration in ``conf_dir`` by file name, as a list (libcni's pick)."""
    from pathlib import Path  # only the node agent calls this: keep it off the plugins' exec path

    files = sorted(p for p in Path(conf_dir).glob("*") if p.suffix in (".conf", ".conflist", ".json"))
    if not files:
        raise CNIError(types.ERR_INVALID_NETCONF, f"no network config found in {conf_dir!r}")
    try:
        data = files[0].read_bytes()
    except OSError as err:
        raise CNIError(types.ERR_IO, f"failed to load network config {str(files[0])!r}", str(err)) from err
    return parse_netconf_file(files[0].name, data)
