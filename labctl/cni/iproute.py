"""The one seam through which the plugins touch the kernel: iproute2's ``ip`` and ``bridge``.

The plugins are a fresh process per call, so they must start fast: importing
pyroute2 cost 0.3-0.9 s, an ``ip`` exec costs a few ms. Every command is the
exact argv a student would type; set ``LABCTL_CNI_DEBUG=1`` and each one is
printed to stderr (``+ nsenter --net=/run/netns/pod ip addr add ...``) before it
runs. Work inside a pod runs as ``nsenter --net=<netns path> ip ...``, so the
plugin process itself never switches namespace (the hazard
containernetworking's ``ns.Do`` documents) and any netns path works, not only
names under /run/netns. Reads use ``ip -j`` (JSON), parsed with the stdlib.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from labctl.cni import types
from labctl.cni.types import CNIError

TYPE_CHECKING = False  # typing costs every plugin exec ~6 ms; only the type checker needs it
if TYPE_CHECKING:
    from typing import Any

#: stderr fragments of iproute2 / nsenter that callers turn into "fine" or specific errors
EXISTS = ("File exists", "Address already assigned")
NO_DEVICE = ("does not exist", "Cannot find device")


class IPCommandError(Exception):
    """An ``ip``/``bridge`` command failed; carries the argv and what it printed."""

    def __init__(self, argv: list[str], output: str, returncode: int) -> None:
        super().__init__(f"command {' '.join(argv)!r} failed with status {returncode}: {output}")
        self.argv = argv
        self.output = output
        self.returncode = returncode
        #: for :func:`batch`: index into its ``lines`` of the line that failed
        self.line: int | None = None

    @property
    def exists(self) -> bool:
        """The kernel said EEXIST (address, route or link already there)."""
        return any(s in self.output for s in EXISTS)

    @property
    def no_device(self) -> bool:
        """The named link is not there."""
        return any(s in self.output for s in NO_DEVICE)

    @property
    def failed_line(self) -> int | None:
        """For ``ip -batch``: the 0-based index of the line that failed (``Command failed -:N``)."""
        found = re.search(r"Command failed -:(\d+)", self.output)
        return int(found.group(1)) - 1 if found else None


def in_netns(netns: str | None, argv: list[str]) -> list[str]:
    """Prefix ``argv`` to run inside the netns at path ``netns`` (None: this process's netns)."""
    return ["nsenter", f"--net={netns}", *argv] if netns else argv


def run(argv: list[str], netns: str | None = None, stdin: str | None = None) -> str:
    """Run one command (inside ``netns`` if given); return stdout or raise :class:`IPCommandError`."""
    argv = in_netns(netns, argv)
    if os.environ.get("LABCTL_CNI_DEBUG"):
        print("+ " + " ".join(argv) + (f" <<< {stdin!r}" if stdin else ""), file=sys.stderr, flush=True)
    try:
        proc = subprocess.run(argv, input=stdin, capture_output=True, text=True)
    except OSError as err:
        raise IPCommandError(argv, str(err), 127) from err
    if proc.returncode != 0:
        output = proc.stderr.strip() or proc.stdout.strip()
        if netns and output.startswith("nsenter:"):  # not a netns (any more): the spec's "unknown container"
            raise CNIError(types.ERR_UNKNOWN_CONTAINER, f"failed to open netns {netns!r}", output)
        raise IPCommandError(argv, output, proc.returncode)
    return proc.stdout


def ip(*args: str, netns: str | None = None, stdin: str | None = None) -> str:
    """``ip ARGS`` (inside ``netns``)."""
    return run(["ip", *args], netns, stdin)


def ip_json(*args: str, netns: str | None = None) -> list[dict[str, Any]]:
    """``ip -j ARGS`` decoded (``ip`` prints nothing at all for an empty dump)."""
    out = ip("-j", *args, netns=netns).strip()
    return json.loads(out) if out else []


def batch(lines: list[str], netns: str | None = None, may_exist: frozenset[int] = frozenset()) -> None:
    """Run ``lines`` through one ``ip -batch -`` (one exec for many changes).

    ``ip`` stops at the first failing line; if that line is in ``may_exist`` and
    failed with "File exists", the rest is run again from the next line. Any
    other failure raises :class:`IPCommandError` whose ``line`` says which one.
    """
    start = 0
    while start < len(lines):
        try:
            ip("-batch", "-", netns=netns, stdin="\n".join(lines[start:]) + "\n")
            return
        except IPCommandError as err:
            line = err.failed_line
            if line is None or not (err.exists and start + line in may_exist):
                err.line = None if line is None else start + line
                raise
            start += line + 1


def link(name: str, netns: str | None = None) -> dict[str, Any] | None:
    """``ip -j -d addr show dev NAME`` as a plain dict, or None if there is no such link.

    Keys: ifname, index, kind (``veth``/``bridge``/None), master (a name), mac,
    link (the veth peer's ifindex in the other netns), mtu, up, promisc and
    addrs (``["10.244.1.1/24", ...]``): ``addr show`` prints the link too, so
    one exec answers "is the bridge there, up, and holding the gateway?".
    """
    try:
        found = ip_json("-d", "addr", "show", "dev", name, netns=netns)
    except IPCommandError as err:
        if err.no_device:
            return None
        raise
    return _link_dict(found[0]) if found else None


def links(netns: str | None = None) -> list[dict[str, Any]]:
    """Every link of the netns (``ip -j -d link show``), as :func:`link` dicts."""
    return [_link_dict(msg) for msg in ip_json("-d", "link", "show", netns=netns)]


def _link_dict(msg: dict[str, Any]) -> dict[str, Any]:
    flags = msg.get("flags") or []
    return {
        "ifname": msg.get("ifname"),
        "index": msg.get("ifindex"),
        "kind": (msg.get("linkinfo") or {}).get("info_kind"),
        "master": msg.get("master"),
        "mac": msg.get("address"),
        "link": msg.get("link_index"),
        "mtu": msg.get("mtu"),
        "up": "UP" in flags,
        "promisc": "PROMISC" in flags,
        "addrs": [f"{a['local']}/{a['prefixlen']}" for a in msg.get("addr_info") or [] if "local" in a],
    }


def require_netns(netns: str) -> None:
    """Raise the spec's "unknown container" error (3) unless ``netns`` exists."""
    if not os.path.exists(netns):
        raise CNIError(types.ERR_UNKNOWN_CONTAINER, f"failed to open netns {netns!r}", "no such file")
