"""The plugin executables' body on a node: hand the call to the node's CNI daemon.

Like Cilium's and Multus's thin plugins: the runtime still execs
``/opt/cni/bin/labctl-bridge`` with ``CNI_*`` in the environment and the config on
stdin, and reads the result or error JSON on stdout and the exit status; this
process only forwards them over a unix socket to :mod:`labctl.cni.daemon`, which
does the work with netlink in the long-running node agent, and copies the answer
back. It runs under ``python -S -E`` and imports only ``os``, ``socket`` and
``sys`` (``json`` would pull in ``re``): its start-up is most of what an ADD costs.

No daemon listening (its socket absent or refusing), or a daemon in another network
namespace than this process (a plugin run by hand inside ``nsenter --net=...``): the
plugin does the work itself, in this process (:func:`fallback`). A daemon that takes
the call but does not answer within :data:`ANSWER_TIMEOUT_S` is a CNI error (code 5),
never a hang.

Wire format (one call per connection, both ways NUL-separated so no JSON is needed):
request ``labctl-cni/1 NUL plugin NUL netns-id NUL KEY=VALUE NUL ... NUL NUL stdin``
(then the client shuts its side down), answer ``exit-status NUL stderr-length NUL stderr stdout``
or ``fallback NUL`` when the daemon will not do it.
"""

import _socket
import os
import sys

PROTOCOL = b"labctl-cni/1"
FALLBACK = b"fallback"
#: environment the daemon's plugin code reads (the spec's parameters, and the debug switch)
FORWARDED_ENV = ("CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH",
                 "LABCTL_CNI_DEBUG")
CONNECT_TIMEOUT_S = 2.0
#: under the kubelet's own plugin timeout (labctl.cni.invoke.PLUGIN_TIMEOUT_S), so its error is ours
ANSWER_TIMEOUT_S = 55.0


def netns_id() -> bytes:
    """This process's network namespace, as the daemon compares it: ``dev:inode`` of its nsfs file."""
    st = os.stat("/proc/self/ns/net")
    return b"%d:%d" % (st.st_dev, st.st_ino)


def encode_request(plugin: str, environ: dict, stdin_data: bytes) -> bytes:
    """The request bytes for one call."""
    env = [f"{k}={environ[k]}".encode() for k in FORWARDED_ENV if k in environ]
    return b"\0".join([PROTOCOL, plugin.encode(), netns_id(), *env]) + b"\0\0" + stdin_data


def decode_request(data: bytes) -> tuple[str, bytes, dict, bytes]:
    """``(plugin, netns id, env, stdin)`` of a request; ValueError if it is not one."""
    head, sep, stdin_data = data.partition(b"\0\0")
    fields = head.split(b"\0")
    if not sep or len(fields) < 3 or fields[0] != PROTOCOL:
        raise ValueError("not a labctl-cni/1 request")
    env = dict(f.decode().split("=", 1) for f in fields[3:])
    return fields[1].decode(), fields[2], env, stdin_data


def encode_answer(code: int, stdout: str, stderr: str) -> bytes:
    """The answer bytes: exit status, stderr, stdout."""
    err = stderr.encode()
    return b"%d\0%d\0" % (code, len(err)) + err + stdout.encode()


def _read_all(sock: _socket.socket) -> bytes:
    chunks: list[bytes] = []
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def call_daemon(path: str, request: bytes) -> bytes | None:
    """Send ``request``; return the answer, or None when no daemon listens at ``path``."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT_S)
        try:
            sock.connect(path)
        except (TimeoutError, FileNotFoundError, ConnectionRefusedError):
            return None
        sock.settimeout(ANSWER_TIMEOUT_S)
        sock.sendall(request)
        sock.shutdown(_socket.SHUT_WR)
        return _read_all(sock)
    finally:
        sock.close()


def fail(stdin_data: bytes, msg: str, details: str) -> int:
    """Print the spec's I/O error (code 5) for a daemon that took the call and broke; exit status 1."""
    import json  # only on this path: it costs every call ~10 ms

    try:
        version = str(json.loads(stdin_data).get("cniVersion", "1.0.0"))
    except (ValueError, AttributeError):
        version = "1.0.0"
    sys.stdout.write(json.dumps({"cniVersion": version, "code": 5, "msg": msg, "details": details}))
    return 1


def fallback(module: str, stdin_data: bytes) -> int:
    """Do the call in this process, as a plugin without a daemon (``module``'s ``plugin_funcs``)."""
    import importlib
    import io

    from labctl.cni import skel

    funcs = importlib.import_module(module).plugin_funcs()
    return skel.run(funcs, os.environ, io.BytesIO(stdin_data), sys.stdout, sys.stderr)


def run(plugin: str, module: str, path: str) -> int:
    """One plugin call through the daemon at ``path``; return the exit status."""
    stdin_data = sys.stdin.buffer.read()
    try:
        answer = call_daemon(path, encode_request(plugin, dict(os.environ), stdin_data))
    except OSError as err:
        return fail(stdin_data, f"labctl CNI daemon at {path} did not answer", str(err) or type(err).__name__)
    if answer is None or answer.startswith(FALLBACK + b"\0"):
        return fallback(module, stdin_data)
    code, _, rest = answer.partition(b"\0")
    length, _, rest = rest.partition(b"\0")
    if not code.isdigit() or not length.isdigit():
        return fail(stdin_data, f"labctl CNI daemon at {path} gave a broken answer", repr(answer[:200]))
    sys.stderr.buffer.write(rest[:int(length)])
    sys.stdout.buffer.write(rest[int(length):])
    return int(code)


def main(plugin: str, module: str, path: str) -> None:
    """Entry point of a plugin executable.

    ``plugin``: its type; ``module``: its in-process code; ``path``: the daemon's socket.
    """
    code = run(plugin, module, path)
    sys.stdout.flush()
    sys.exit(code)
