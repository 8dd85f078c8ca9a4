"""The CNI protocol around a plugin: environment, stdin, stdout, error JSON, exit code.

Like containernetworking's ``pkg/skel``, this module alone reads ``CNI_*``
variables and writes to stdout, so plugin code is three functions over a
parsed :class:`CmdArgs` and never sees the protocol. A plugin error is
printed as the spec's error object and exits 1; an unexpected exception
becomes code 999 with a one-line message (no traceback unless
``LABCTL_CNI_DEBUG`` is set), because a runtime shows stdout to a user.
"""

from __future__ import annotations

import json
import os
import re
import sys

from labctl.cni import types
from labctl.cni.types import CNIError

TYPE_CHECKING = False  # typing costs every plugin exec ~6 ms; only the type checker needs it
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, BinaryIO, NoReturn, TextIO

    Handler = Callable[["CmdArgs"], "types.Result | dict[str, Any] | None"]

#: Env vars each command needs (spec "Parameters"); DEL may run without a netns.
REQUIRED_ENV = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
}
_CONTAINER_ID = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")


class CmdArgs(types.Record):
    """What the runtime told the plugin: the ``CNI_*`` env plus the config on stdin."""

    __slots__ = ("args", "command", "container_id", "ifname", "netns", "path", "stdin_data")

    def __init__(self, command: str, container_id: str, netns: str, ifname: str, args: str, path: list[str],
                 stdin_data: bytes) -> None:
        self.command, self.container_id, self.netns, self.ifname = command, container_id, netns, ifname
        self.args, self.path, self.stdin_data = args, path, stdin_data

    def netconf(self) -> dict[str, Any]:
        """Return stdin decoded as JSON (validated already by :func:`run`)."""
        return json.loads(self.stdin_data)


class PluginFuncs(types.Record):
    """The three commands a plugin implements (VERSION is answered here)."""

    __slots__ = ("about", "add", "check", "delete")

    def __init__(self, add: Handler, delete: Handler, check: Handler, about: str = "") -> None:
        self.add, self.delete, self.check, self.about = add, delete, check, about


def validate_ifname(name: str) -> None:
    """Reject interface names the kernel would refuse (spec: CNI_IFNAME rules)."""
    if not name or len(name) > 15 or name in (".", "..") or any(c in name for c in "/: \t\n"):
        raise CNIError(types.ERR_INVALID_ENV, "invalid interface name", repr(name))


def load_args(environ: Mapping[str, str], stdin_data: bytes) -> CmdArgs:
    """Build :class:`CmdArgs` from the environment, checking what the command requires."""
    command = environ.get("CNI_COMMAND", "")
    if command not in REQUIRED_ENV:
        raise CNIError(types.ERR_INVALID_ENV, f"unknown CNI_COMMAND: {command!r}")
    missing = [k for k in REQUIRED_ENV[command] if not environ.get(k)]
    if missing:
        raise CNIError(types.ERR_INVALID_ENV, f"required env variables [{','.join(missing)}] missing")
    args = CmdArgs(
        command=command,
        container_id=environ.get("CNI_CONTAINERID", ""),
        netns=environ.get("CNI_NETNS", ""),
        ifname=environ.get("CNI_IFNAME", ""),
        args=environ.get("CNI_ARGS", ""),
        path=[p for p in environ.get("CNI_PATH", "").split(os.pathsep) if p],
        stdin_data=stdin_data,
    )
    if not _CONTAINER_ID.match(args.container_id):
        raise CNIError(types.ERR_INVALID_ENV, "invalid characters in containerID", args.container_id)
    validate_ifname(args.ifname)
    return args


def decode_config(stdin_data: bytes) -> dict[str, Any]:
    """Decode the network config, mapping bad JSON to the spec's decode error."""
    try:
        conf = json.loads(stdin_data or b"{}")
    except ValueError as err:
        raise CNIError(types.ERR_DECODE, "failed to decode network configuration", str(err)) from err
    if not isinstance(conf, dict):
        raise CNIError(types.ERR_DECODE, "failed to decode network configuration", "not a JSON object")
    return conf


def check_version(conf: dict[str, Any], command: str) -> str:
    """Return the config's cniVersion after checking we speak it."""
    version = str(conf.get("cniVersion", "0.1.0"))
    if version not in types.SUPPORTED_VERSIONS:
        raise CNIError(
            types.ERR_INCOMPATIBLE_VERSION,
            "incompatible CNI versions",
            f"config is {version!r}, plugin supports {types.SUPPORTED_VERSIONS}",
        )
    if command == "CHECK" and version in ("0.3.0", "0.3.1"):
        raise CNIError(types.ERR_INCOMPATIBLE_VERSION, "config version does not allow CHECK", version)
    return version


def run(funcs: PluginFuncs, environ: Mapping[str, str], stdin: BinaryIO, stdout: TextIO, stderr: TextIO) -> int:
    """Run one plugin invocation; return the process exit status. Tests call this."""
    version = types.CURRENT_VERSION
    if not environ.get("CNI_COMMAND") and funcs.about:
        print(funcs.about, file=stderr)
        return 0
    try:
        stdin_data = stdin.read()
        if environ.get("CNI_COMMAND") == "VERSION":
            version = check_version(decode_config(stdin_data), "VERSION") if stdin_data.strip() else version
            json.dump({"cniVersion": version, "supportedVersions": types.SUPPORTED_VERSIONS}, stdout)
            return 0
        args = load_args(environ, stdin_data)
        conf = decode_config(stdin_data)
        version = check_version(conf, args.command)
        handler = {"ADD": funcs.add, "DEL": funcs.delete, "CHECK": funcs.check}[args.command]
        result = handler(args)
    except CNIError as err:
        json.dump(err.to_json(version), stdout)
        return 1
    except Exception as err:  # a bug: still answer in the protocol, never a bare traceback
        if environ.get("LABCTL_CNI_DEBUG"):
            import traceback  # only here: the import costs every plugin exec a few ms

            traceback.print_exc(file=stderr)
        json.dump(CNIError(types.ERR_INTERNAL, f"internal error: {err}").to_json(version), stdout)
        return 1
    if result is not None:
        json.dump(result.to_json() if isinstance(result, types.Result) else result, stdout)
    return 0


def plugin_main(funcs: PluginFuncs) -> NoReturn:
    """Entry point body for a plugin executable: the only place that exits."""
    code = run(funcs, os.environ, sys.stdin.buffer, sys.stdout, sys.stderr)
    sys.stdout.flush()
    sys.exit(code)
