"""The plugin executables on a node: thin clients of the node's CNI daemon, and their wire format.

Like Cilium's and Multus's thin plugins: the runtime still execs
``/opt/cni/bin/labctl-bridge`` with ``CNI_*`` in the environment and the config on
stdin, and reads the result or error JSON on stdout and the exit status; the executable
only forwards them over a unix socket to :mod:`labctl.cni.daemon`, which does the work
with netlink in the long-running node agent, and copies the answer back. Its start-up is
most of what an ADD costs, so the executable is not Python: :func:`client_script` writes
it in Perl's builtins (``client.pl`` beside this module; a bare ``perl`` starts in ~2 ms of
CPU, ``python3 -SE`` in ~9 ms, and perl-base is in every Debian image).

No daemon listening (its socket absent or refusing), or a daemon in another network
namespace than the plugin (a plugin run by hand inside ``nsenter --net=...``): the
plugin does the work itself, in a Python process (:func:`fallback`). A daemon that takes
the call but does not answer within :data:`ANSWER_TIMEOUT_S`, or answers garbage, is a
CNI error (code 5, :func:`fail`), never a hang. Those rare paths are :func:`finish`.

Wire format (one call per connection, both ways NUL-separated so no JSON is needed):
request ``labctl-cni/1 NUL plugin NUL netns-id NUL KEY=VALUE NUL ... NUL NUL stdin``
(then the client shuts its side down), answer ``exit-status NUL stderr-length NUL stderr stdout``
or ``fallback NUL`` when the daemon will not do it.
"""

import json
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


def fail(stdin_data: bytes, msg: str, details: str) -> int:
    """Print the spec's I/O error (code 5) for a daemon that could not be asked or broke off; exit status 1."""
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


def finish(argv: list[str]) -> None:
    """The client's rare paths, run as ``python -SE -c ... fallback MODULE`` or ``... fail MSG DETAILS``.

    The client hands over the config on stdin; the exit status is the plugin's.
    """
    stdin_data = sys.stdin.buffer.read()
    code = fallback(argv[1], stdin_data) if argv[0] == "fallback" else fail(stdin_data, argv[1], argv[2])
    sys.stdout.flush()
    sys.exit(code)


def _perl_str(value: str) -> str:
    """``value`` as a single-quoted Perl literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def client_script(plugin: str, module: str, path: str, python: str, packages: str) -> str:
    """The text of plugin executable ``plugin``: the client of the daemon at ``path``.

    ``module``: the plugin's in-process code, which ``python`` runs with ``packages`` on
    its path when no daemon will do the call.
    """
    with open(os.path.join(os.path.dirname(__file__), "client.pl"), encoding="utf-8") as f:
        body = f.read()
    code = f"import sys; sys.path.insert(0, {packages!r}); from labctl.cni.shim import finish; finish(sys.argv[1:])"
    settings = [
        f"my ($plugin, $module, $socket) = ({_perl_str(plugin)}, {_perl_str(module)}, {_perl_str(path)});",
        f"my ($python, $python_code) = ({_perl_str(python)}, {_perl_str(code)});",
        f"my @forwarded_env = qw({' '.join(FORWARDED_ENV)});",
        f"my ($connect_timeout, $answer_timeout) = ({CONNECT_TIMEOUT_S}, {ANSWER_TIMEOUT_S});",
    ]
    return "\n".join(["#!/usr/bin/perl", f"# {plugin}: a CNI plugin written by labctl.cni.shim", *settings, body])
